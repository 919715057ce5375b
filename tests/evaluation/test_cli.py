"""``openvlthinker eval`` end to end on tiny models: files, deltas, resume, bad input."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from openvlthinker.cli import main
from openvlthinker.engine.modeling import TinySpec, ensure_tiny_checkpoint
from tests.engine.conftest import DENSE_REWARD, write_tasks


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A task file (alpha: ocr, set alpha_val with the ocrbench metric; beta: numerical),
    the tiny model folder and a second one with other weights."""
    root = tmp_path_factory.mktemp("eval")
    tasks = write_tasks(root / "data", {"alpha": ("ocr", "the"), "beta": ("numerical", "3")})
    text = Path(tasks).read_text()
    text = text.replace("name: alpha_val,", "name: alpha_val, metric: ocrbench,")
    Path(tasks).write_text(text)
    cache = root / "cache"
    tiny = ensure_tiny_checkpoint(TinySpec(), cache)
    other = root / "other_model"
    shutil.copytree(tiny, other)
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(other)
    with torch.no_grad():
        model.get_output_embeddings().weight.mul_(-1.0)
    model.save_pretrained(other)
    overrides = [
        f"data.tasks={tasks}",
        f"model.cache_dir={cache}",
        "trainer.num_threads=1",
        "trainer.progress_bar=false",
        "rollout.max_new_tokens=4",
        DENSE_REWARD,
    ]
    return {"root": root, "tasks": tasks, "tiny": tiny, "other": other, "overrides": overrides}


def eval_args(setup, out, *checkpoints, extra=()):
    args = ["eval", "--out", str(out)]
    for c in checkpoints:
        args += ["--checkpoint", str(c)]
    return args + list(extra) + setup["overrides"]


def test_two_checkpoints_side_by_side_with_deltas(setup, tmp_path):
    out = tmp_path / "out"
    assert main(eval_args(setup, out, setup["tiny"], setup["other"])) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert {(r["checkpoint"]["name"], r["set"]) for r in runs} == {
        (setup["tiny"].name, "alpha_val"),
        (setup["tiny"].name, "beta_val"),
        ("other_model", "alpha_val"),
        ("other_model", "beta_val"),
    }
    for r in runs:
        assert r["settings"]["n"] == 1 and r["settings"]["temperature"] == 0.0
        assert len(r["checkpoint"]["weights_sha256"]) == 64
        assert r["metrics"]["count"] == 2.0
        assert (r["score_metric"] == "ocrbench") == (r["set"] == "alpha_val")
        assert r["score_metric"] in r["metrics"]
    hashes = {r["checkpoint"]["name"]: r["checkpoint"]["weights_sha256"] for r in runs}
    assert hashes[setup["tiny"].name] != hashes["other_model"]
    score = {(r["checkpoint"]["name"], r["set"]): r["metrics"][r["score_metric"]] for r in runs}

    with (out / "results.csv").open() as fh:
        table = list(csv.DictReader(fh))
    first, second = setup["tiny"].name, "other_model"
    assert [(row["task"], row["set"]) for row in table] == [
        ("alpha", "alpha_val"),
        ("beta", "beta_val"),
        ("macro", "average"),
    ]
    for row in table[:2]:
        v1, v2 = score[(first, row["set"])], score[(second, row["set"])]
        assert float(row[first]) == pytest.approx(v1) and float(row[second]) == pytest.approx(v2)
        assert float(row[f"delta {second}"]) == pytest.approx(v2 - v1, abs=1e-6)
    macro = (score[(first, "alpha_val")] + score[(first, "beta_val")]) / 2
    assert float(table[2][first]) == pytest.approx(macro, abs=1e-6)
    md = (out / "results.md").read_text()
    assert md.splitlines()[0] == f"| task | set | metric | {first} | {second} | delta {second} |"
    assert (out / "results.png").stat().st_size > 0
    lines = (out / "samples" / second / "alpha_val.jsonl").read_text().splitlines()
    sample = json.loads(lines[0])
    assert len(lines) == 2
    assert {
        "id",
        "prompt",
        "response",
        "extracted_answer",
        "ground_truth",
        "rewards",
        "response_length",
        "metrics",
    } <= set(sample)
    assert sample["ground_truth"] == "the" and "Read it." in sample["prompt"]
    assert set(sample["rewards"]) >= {"overall", "correctness", "format", "error"}


def test_rerun_skips_done_pairs_and_an_interrupted_eval_resumes(
    setup, tmp_path, monkeypatch, capsys
):
    import openvlthinker.evaluation.runner as runner

    out = tmp_path / "out"
    real, calls = runner.run_set, []

    def interrupted(spec, *args, **kwargs):
        calls.append(spec.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(runner, "run_set", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(eval_args(setup, out, setup["tiny"]))
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["set"] for r in runs] == ["alpha_val"]  # the finished set is on disk
    assert not list(out.rglob(".*.tmp"))  # nothing half-written
    monkeypatch.setattr(runner, "run_set", real)
    capsys.readouterr()
    assert main(eval_args(setup, out, setup["tiny"])) == 0
    err = capsys.readouterr().err
    assert "skip tiny" in err and "on alpha_val: already in" in err
    assert "evaluated 1 (checkpoint, set) pairs, skipped 1" in err
    again = json.loads((out / "results.json").read_text())["runs"]
    assert [r["set"] for r in again] == ["alpha_val", "beta_val"]
    assert again[0] == runs[0]  # untouched
    # other settings are another evaluation, not a skip
    assert (
        main(
            eval_args(
                setup,
                out,
                setup["tiny"],
                extra=["--sets", "beta_val", "eval.n=2", "eval.temperature=1.0"],
            )
        )
        == 0
    )
    runs3 = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs3) == 3 and "pass@2/correctness" in runs3[-1]["metrics"]
    assert runs3[-1]["metrics"]["count"] == 4.0


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such folder"),
        ("not_a_model", "not a model folder"),
        ("unknown_set", "--sets: unknown validation set(s) ['nope']"),
        ("empty_set", "validation set 'beta_val'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(setup, tmp_path, capsys, case, message):
    out = tmp_path / "out"
    ckpt, extra, overrides = setup["tiny"], [], []
    if case == "missing":
        ckpt = tmp_path / "nowhere"
    elif case == "not_a_model":
        ckpt = tmp_path / "folder"
        ckpt.mkdir()
        (ckpt / "notes.txt").write_text("x")
    elif case == "unknown_set":
        extra = ["--sets", "alpha_val,nope"]
    else:
        tasks = tmp_path / "tasks"
        shutil.copytree(Path(setup["tasks"]).parent, tasks)
        (tasks / "beta" / "val.jsonl").write_text("")
        overrides = [f"data.tasks={tasks / 'tasks.yaml'}"]
    capsys.readouterr()
    assert main(eval_args(setup, out, ckpt, extra=extra) + overrides) == 2
    err_lines = [
        line for line in capsys.readouterr().err.splitlines() if "openvlthinker eval" in line
    ]
    assert len(err_lines) == 1 and message in err_lines[0]
    assert not out.exists()


@pytest.mark.slow
def test_eval_of_a_checkpoint_written_by_a_two_step_run(setup, tmp_path):
    run = tmp_path / "run"
    train = [
        "train",
        f"trainer.out_dir={run}",
        "trainer.total_steps=2",
        "trainer.save_freq=2",
        "trainer.test_freq=0",
        "trainer.logger=[jsonl]",
        "trainer.plot=false",
        "data.rollout_batch_size=2",
        "rollout.n=2",
        "actor.mini_batch_size=2",
        *setup["overrides"],
    ]
    assert main(train) == 0
    step = run / "checkpoints" / "global_step_2"
    out = tmp_path / "out"
    assert main(eval_args(setup, out, step, setup["tiny"])) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    mine = [r for r in runs if r["checkpoint"]["name"] == "run-global_step_2"]
    assert len(mine) == 2 and all(r["checkpoint"]["kind"] == "engine" for r in mine)
    assert mine[0]["checkpoint"]["model_path"] == str((step / "model").resolve())
    assert "delta " + setup["tiny"].name in (out / "results.md").read_text()
