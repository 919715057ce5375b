"""`openvlthinker calibrate` and `auto` bounds on the tiny Qwen3-VL: the written task file,
its report, determinism, training with it, and resume without re-calibrating."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from openvlthinker.cli import main
from openvlthinker.engine import calibrate as calibrate_module
from openvlthinker.engine.calibrate import CALIBRATION_FILE, Calibration
from openvlthinker.engine.trainer import Trainer
from openvlthinker.tasks import load_tasks
from openvlthinker.verl_plugin.config import refuse_auto_bounds
from tests.engine.conftest import DENSE_REWARD, fit_until_killed, write_tasks

TWO_TASKS = {"alpha": ("ocr", "the the the the"), "beta": ("ocr", "the world the the")}
# Long enough for the tiny random model to finish some responses inside the budget.
MEASURE = ("rollout.max_new_tokens=40", "calibration.batches=3")
VOLATILE = ("timing/", "perf/")


def _stable(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith(VOLATILE)}


def _cli_args(task_file: str, tiny_cache: str, tmp_path: Path, *extra: str) -> list[str]:
    return [
        f"data.tasks={task_file}",
        f"model.cache_dir={tiny_cache}",
        f"trainer.out_dir={tmp_path / 'unused'}",
        "data.rollout_batch_size=2",
        "actor.mini_batch_size=2",
        "rollout.n=4",
        "trainer.num_threads=1",
        DENSE_REWARD,
        *MEASURE,
        *extra,
    ]


@pytest.mark.slow
def test_calibrate_writes_a_task_file_that_extends_the_input_with_a_report(tmp_path, tiny_cache):
    task_file = write_tasks(tmp_path / "data", TWO_TASKS)
    args = _cli_args(task_file, tiny_cache, tmp_path)
    first, second = tmp_path / "a" / "tasks_cal.yaml", tmp_path / "b" / "tasks_cal.yaml"
    assert main(["calibrate", "--out", str(first), *args]) == 0
    assert main(["calibrate", "--out", str(second), "--batches", "3", *args]) == 0
    # same seed, same file (and the same measurements behind it)
    assert first.read_text() == second.read_text()
    assert (first.parent / CALIBRATION_FILE).read_text() == (
        second.parent / CALIBRATION_FILE
    ).read_text()

    raw = yaml.safe_load(first.read_text())
    assert raw["extends"] == "../data/tasks.yaml"
    # only the derived bounds are overridden
    assert {t: set(body) for t, body in raw["tasks"].items()} == {
        "alpha": {"length_envelope", "entropy_band"},
        "beta": {"length_envelope", "entropy_band"},
    }
    source, calibrated = load_tasks(task_file), load_tasks(first)  # no 'auto' left: loads plainly
    cal = Calibration.from_json((first.parent / CALIBRATION_FILE).read_text())
    assert cal.settings["batches"] == 3 and cal.settings["max_new_tokens"] == 40
    for task in TWO_TASKS:
        b, m = cal.bounds[task], cal.measurements[task]
        assert len(m.lengths) == 3 * 2 * 4
        assert calibrated[task].length_envelope == b.length_envelope
        assert calibrated[task].entropy_band == (b.h_min, b.h_max, 0.0)  # coef of the input
        l_min, l_low, l_high, l_max = b.length_envelope
        assert 0 <= l_min < l_low <= l_high < l_max <= 40
        finished = m.lengths[m.lengths < 40]
        assert b.evidence["finished"] == len(finished) > 0
        assert 0 < b.h_min < m.token_mean_entropy() < b.h_max
        for name in ("domain", "problem_types", "reward_weights", "length_weight", "train"):
            assert getattr(calibrated[task], name) == getattr(source[task], name)
    # every derived field sits under a comment that names its measurement
    lines = first.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(("length_envelope:", "entropy_band:")):
            assert lines[i - 1].strip().startswith("#")
    text = first.read_text()
    assert "responses finished under the 40-token limit" in text
    assert "token-mean entropy m = " in text
    report = (first.parent / "calibration.md").read_text()
    assert "| alpha | medium | 24 |" in report and "length bucket" in report
    assert (first.parent / "calibration.png").stat().st_size > 10_000
    refuse_auto_bounds(str(first))  # and openvlthinker-verl takes it as it is


def test_calibrate_fails_in_one_line_when_no_response_finishes(tmp_path, tiny_cache, capsys):
    task_file = write_tasks(tmp_path / "data", TWO_TASKS)
    args = _cli_args(task_file, tiny_cache, tmp_path, "rollout.max_new_tokens=1")
    assert main(["calibrate", "--out", str(tmp_path / "out.yaml"), *args]) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # after the model-loading progress bar
    assert last.startswith("openvlthinker: task 'alpha': all 24 calibration responses hit the 1-")
    assert "Traceback" not in err


def _auto_file(tmp_path: Path) -> str:
    task_file = Path(write_tasks(tmp_path / "data", TWO_TASKS))
    auto = task_file.parent / "tasks_auto.yaml"
    auto.write_text(
        "extends: tasks.yaml\n"
        "defaults:\n  length_weight: 0.5\n"
        "  entropy_band: {h_min: auto, h_max: auto, coef: 0.05}\n"
        "tasks:\n  alpha: {length_envelope: auto}\n  beta: {length_intent: short}\n"
    )
    return str(auto)


@pytest.mark.slow
def test_auto_calibrates_before_step_1_trains_like_the_calibrated_file_and_resumes(
    engine_config, tmp_path, monkeypatch
):
    auto = _auto_file(tmp_path)
    common = (f"data.tasks={auto}", "trainer.total_steps=2", "trainer.save_freq=1", *MEASURE)
    straight = Trainer(engine_config(*common, out="auto", tasks=TWO_TASKS))
    assert straight.registry.auto_fields()
    history = straight.fit()
    assert straight.registry.auto_fields() == {}
    report = tmp_path / "auto" / "calibration"
    written = report / "tasks_calibrated.yaml"
    assert (report / "calibration.md").is_file() and (report / "calibration.png").is_file()
    # alpha's envelope and both bands were auto; beta's envelope stays the file's
    assert straight.calibration.fields == {
        "alpha": ("length_envelope", "h_min", "h_max"),
        "beta": ("h_min", "h_max"),
    }
    assert straight.registry["beta"].length_envelope == (1, 2, 8, 16)
    for step in (1, 2):
        saved = tmp_path / "auto" / "checkpoints" / f"global_step_{step}" / CALIBRATION_FILE
        assert json.loads(saved.read_text())["tasks"]["alpha"]["length_envelope"] == list(
            straight.registry["alpha"].length_envelope
        )

    # The calibrated file trains, exactly as the auto run did (calibration has its own RNG).
    by_file = Trainer(engine_config(*common, f"data.tasks={written}", out="file", tasks=TWO_TASKS))
    assert by_file.registry == replace(straight.registry, source=by_file.registry.source)
    before = [p.detach().clone() for p in by_file.policy.parameters()]
    again = by_file.fit()
    assert [_stable(r) for r in again] == [_stable(r) for r in history]
    assert any(not torch.equal(a, b) for a, b in zip(before, by_file.policy.parameters()))

    # Killed after step 1, the auto run resumes from its checkpoint without re-measuring.
    fit_until_killed(Trainer(engine_config(*common, out="killed", tasks=TWO_TASKS)), step=1)

    def no_measuring(*args, **kwargs):
        raise AssertionError("a resumed run must not re-measure the policy")

    monkeypatch.setattr(calibrate_module, "measure", no_measuring)
    resumed = Trainer(
        engine_config(*common, "trainer.resume_mode=auto", out="killed", tasks=TWO_TASKS)
    )
    rows = resumed.fit()
    assert resumed.step == 2
    assert resumed.registry["alpha"] == straight.registry["alpha"]
    assert _stable(rows[-1]) == _stable(history[-1])
