"""configs/benchmarks.yaml: every set loads its card-shaped fixture through the field map
and is scored by its metric (or the reward's correctness)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from openvlthinker.benchmarks import compute_metric, metric_input
from openvlthinker.data import load_task_data
from openvlthinker.rewards import score
from openvlthinker.tasks import load_tasks

REPO = Path(__file__).resolve().parents[2]
BENCHMARKS = REPO / "configs" / "benchmarks.yaml"
FIXTURES = json.loads((Path(__file__).parent / "benchmark_fixtures.json").read_text())
# Thin wrappers of openvlthinker.rewards (issue 12): scored here once those functions land.
FROM_REWARDS = {"anls", "relaxed_accuracy"}


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (30, 60, 90)).save(buf, format="PNG")
    return buf.getvalue()


def _materialise(value, folder: Path, name: str):
    if value == "<png>":
        return {"bytes": _png(), "path": f"{name}.png"}
    if value == "<file>":
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.png").write_bytes(_png())
        return f"{name}.png"
    if isinstance(value, list):
        return [_materialise(v, folder, f"{name}_{i}") for i, v in enumerate(value)]
    return value


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """The fixtures written where benchmarks.yaml expects them, loaded through it."""
    root = tmp_path_factory.mktemp("benchmarks")
    registry = load_tasks(BENCHMARKS, check_files=False)
    base = Path(registry["general"].validation[0].path).parents[1]  # the data_root
    for name, (_, vset) in registry.validation_sets().items():
        rel = Path(vset.path).relative_to(base)
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        images = (
            root / Path(vset.image_root).relative_to(base) if vset.image_root else target.parent
        )
        row = {k: _materialise(v, images, f"{name}_{k}") for k, v in FIXTURES[name]["row"].items()}
        if target.suffix == ".parquet":
            pq.write_table(pa.Table.from_pylist([row]), target)
        elif target.suffix == ".json":
            target.write_text(json.dumps([row]))
        else:
            target.write_text(json.dumps(row) + "\n")
    task_file = root / "tasks.yaml"
    task_file.write_text(f"extends: {BENCHMARKS}\ndata_root: .\n")
    registry = load_tasks(task_file)
    return registry, load_task_data(registry, "validation")


def test_eighteen_sets_under_six_categories():
    registry = load_tasks(BENCHMARKS, check_files=False)
    assert list(registry) == ["general", "math", "chart", "document", "spatial", "grounding"]
    assert all(len(registry[t].validation) == 3 for t in registry)
    assert set(registry.validation_sets()) == set(FIXTURES) - {"_doc"}


@pytest.mark.parametrize("name", [n for n in FIXTURES if n != "_doc"])
def test_fixture_loads_through_the_field_map_and_scores(loaded, name):
    registry, data = loaded
    task, vset = registry.validation_sets()[name]
    (record,) = data[name]
    assert record.task == task and record.images, name
    assert record.problem_type in registry[task].problem_types
    spec = registry[task]
    size = record.image_size

    def correctness(response: str) -> float:
        return score(
            response,
            record.answer,
            record.problem_type,
            options=list(record.options) or None,
            length_envelope=spec.length_envelope,
            image_size=size,
            model_image_size=size,
        )["correctness"]

    right, wrong = FIXTURES[name]["correct"], FIXTURES[name]["wrong"]
    if vset.metric is None:
        assert (correctness(right), correctness(wrong)) == (1.0, 0.0), name
    elif vset.metric in FROM_REWARDS:
        # a list of reference answers: the open-ended reward only ranks them
        assert correctness(right) > correctness(wrong), name
    else:
        for response, want in ((right, 1.0), (wrong, 0.0)):
            got = compute_metric(vset.metric, metric_input(record, response, model_image_size=size))
            assert got.value == want, (name, response, got)
