"""engine/tracking.py: one JSONL row per step, a resumed run's rows truncated at its start,
read_jsonl's merge, the console's short view and the optional sinks."""

from __future__ import annotations

import json
import logging
import math

from openvlthinker.engine import tracking
from openvlthinker.engine.tracking import CONSOLE_KEYS, Tracker, read_jsonl


def tracker(out, *sinks: str, start_step: int | None = None) -> Tracker:
    return Tracker(out, list(sinks), "exp", {"seed": 1}, start_step=start_step)


def rows(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def log_steps(out, steps, start_step=None) -> None:
    t = tracker(out, "jsonl", start_step=start_step)
    for step in steps:
        t.log({"train/reward": step / 10}, step=step)
    t.close()


def test_each_log_call_is_one_row_of_finite_floats(tmp_path):
    t = tracker(tmp_path / "run", "jsonl")
    t.log({"train/reward": 1, "actor/kl_loss": float("nan"), "x": None, "inf": math.inf}, step=1)
    t.log({"train/reward": 0.5, "val/score": 0.25}, step=2)
    t.close()
    assert rows(tmp_path / "run") == [
        {"step": 1, "train/reward": 1.0},
        {"step": 2, "train/reward": 0.5, "val/score": 0.25},
    ]
    line = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[1]
    assert line == '{"step": 2, "train/reward": 0.5, "val/score": 0.25}'  # keys sorted


def test_last_holds_the_metrics_of_the_last_step_whatever_the_sinks(tmp_path):
    t = tracker(tmp_path, "console")  # no file: the trainer's history comes from here
    t.log({"train/reward": 0.5, "bad": float("nan")}, step=3)
    assert t.last == {"train/reward": 0.5}
    t.close()


def test_a_resumed_run_drops_the_rows_from_its_first_step_on(tmp_path):
    log_steps(tmp_path, [1, 2, 3])  # killed after step 3, last checkpoint at step 2
    log_steps(tmp_path, [3, 4], start_step=3)
    assert [r["step"] for r in rows(tmp_path)] == [1, 2, 3, 4]
    assert rows(tmp_path)[2] == {"step": 3, "train/reward": 0.3}
    assert not (tmp_path / "metrics.jsonl.tmp").exists()


def test_a_fresh_start_truncates_everything_and_none_appends(tmp_path):
    log_steps(tmp_path, [1, 2])
    log_steps(tmp_path, [1], start_step=0)
    assert [r["step"] for r in rows(tmp_path)] == [1]
    log_steps(tmp_path, [2])  # start_step None: appends
    assert [r["step"] for r in rows(tmp_path)] == [1, 2]


def test_start_step_without_an_earlier_file_starts_one(tmp_path):
    log_steps(tmp_path / "new", [5], start_step=5)
    assert rows(tmp_path / "new") == [{"step": 5, "train/reward": 0.5}]


def test_read_jsonl_merges_rows_of_a_step_later_values_winning(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 2, "train/reward": 0.1, "val/score": 0.4}\n'
        "\n"
        '{"step": 1, "train/reward": 0.0}\n'
        '{"step": 2, "train/reward": 0.3}\n'
    )
    assert read_jsonl(path) == [
        {"step": 1, "train/reward": 0.0},
        {"step": 2, "train/reward": 0.3, "val/score": 0.4},
    ]
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_the_console_shows_the_batch_level_keys_only(tmp_path, caplog):
    t = tracker(tmp_path, "console")
    with caplog.at_level(logging.INFO, logger="openvlthinker.engine.tracking"):
        t.log({"train/reward": 0.51234, "train/math/reward": 0.9, "timing/step": 2.0}, step=4)
    t.close()
    assert "train/math/reward" not in CONSOLE_KEYS
    assert [r.getMessage() for r in caplog.records] == [
        "step 4 | timing/step=2 train/reward=0.5123"
    ]
    assert not (tmp_path / "metrics.jsonl").exists()


def test_tensorboard_events_are_written(tmp_path):
    t = tracker(tmp_path, "tensorboard")
    t.log({"train/reward": 0.5}, step=1)
    t.close()
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    assert events.stat().st_size > 0


def test_wandb_requested_but_missing_is_skipped_with_a_warning(tmp_path, monkeypatch, caplog):
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(
        tracking.importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name)
    )
    with caplog.at_level(logging.WARNING, logger="openvlthinker.engine.tracking"):
        t = tracker(tmp_path, "wandb", "jsonl")
    t.log({"train/reward": 1.0}, step=1)
    t.close()
    assert [r.getMessage() for r in caplog.records] == [
        "trainer.logger: wandb requested but not installed; skipping it"
    ]
    assert rows(tmp_path) == [{"step": 1, "train/reward": 1.0}]
