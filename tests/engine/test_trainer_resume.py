"""Resume: a changed config is refused naming the keys, a finished run does nothing, and each
step is logged once (the checkpoint files themselves: test_checkpoint.py)."""

from __future__ import annotations

import json
import logging
import os

import pytest

from openvlthinker.engine.config import ConfigError, resume_conflicts, to_dict
from openvlthinker.engine.trainer import Trainer
from tests.engine.conftest import fit_until_killed

SAVED = ("trainer.total_steps=2", "trainer.save_freq=2", "trainer.resume_mode=auto")


def _steps(path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_cache):
    """Run folder of a finished 2-step run (checkpoint at step 2)."""
    from openvlthinker.engine.config import load_config
    from tests.engine.conftest import DENSE_REWARD, write_tasks

    root = tmp_path_factory.mktemp("finished")
    tasks = write_tasks(root / "data", {"alpha": ("ocr", "the the the the")})

    def make(*overrides: str):
        base = [
            f"data.tasks={tasks}",
            f"model.cache_dir={tiny_cache}",
            f"trainer.out_dir={root / 'run'}",
            "trainer.logger=[jsonl]",
            "trainer.progress_bar=false",
            "trainer.plot=false",
            "trainer.test_freq=0",
            "trainer.val_before_train=false",
            "data.rollout_batch_size=2",
            "rollout.n=2",
            "rollout.max_new_tokens=4",
            "actor.mini_batch_size=2",
            "actor.micro_batch_size=8",
            DENSE_REWARD,
            *SAVED,
        ]
        return load_config(None, base + list(overrides))

    assert [r["step"] for r in Trainer(make()).fit()] == [1, 2]
    return root / "run", make


def test_a_resumed_run_with_another_estimator_is_refused_naming_the_keys(finished):
    out, make = finished
    before = (out / "metrics.jsonl").read_text()
    trainer = Trainer(make("algorithm.adv_estimator=grpo", "actor.lr=0.01"))
    with pytest.raises(ConfigError) as info:
        trainer.fit()
    message = str(info.value)
    assert message.startswith(f"trainer.resume_mode=auto: {out / 'checkpoints/global_step_2'} ")
    assert "actor.lr: 0.001 -> 0.01; algorithm.adv_estimator: 'gs_grpo' -> 'grpo'" in message
    assert "trainer.experiment_name=<name>" in message and "trainer.resume_mode=disable" in message
    assert (out / "metrics.jsonl").read_text() == before
    assert trainer.step == 0  # nothing was loaded


def test_a_finished_run_asked_for_nothing_more_says_so_in_one_line(finished, caplog):
    out, make = finished
    stamp = os.stat(out / "metrics.jsonl").st_mtime_ns
    trainer = Trainer(make("trainer.save_freq=5", "trainer.logger=[jsonl,console]"))
    with caplog.at_level(logging.INFO, logger="openvlthinker"):
        assert trainer.fit() == []
    said = [r for r in caplog.records if r.name == "openvlthinker.engine.trainer"]
    assert [r.getMessage() for r in said][-1] == (
        f"{out}: already trained 2 steps (trainer.total_steps=2): nothing to do; raise "
        "trainer.total_steps to continue, or name a new run with trainer.experiment_name"
    )
    assert os.stat(out / "metrics.jsonl").st_mtime_ns == stamp


def test_run_length_keys_may_change_and_everything_else_is_compared():
    from openvlthinker.engine.config import TrainConfig

    saved = to_dict(TrainConfig())
    cfg = TrainConfig()
    cfg.trainer.total_steps, cfg.trainer.test_freq, cfg.trainer.logger = 50, 5, ["jsonl"]
    cfg.trainer.num_threads, cfg.trainer.experiment_name = 1, "other"
    assert resume_conflicts(saved, cfg) == []
    cfg.rollout.n, cfg.reward.workers = 8, 2
    assert resume_conflicts(saved, cfg) == ["reward.workers: 0 -> 2", "rollout.n: 4 -> 8"]
    # A key the checkpoint lacks (written before it existed) counts as its default.
    del saved["actor"]["warmup_steps"]
    assert resume_conflicts(saved, cfg) == ["reward.workers: 0 -> 2", "rollout.n: 4 -> 8"]


def test_resume_logs_each_step_once(engine_config, tmp_path):
    common = ("trainer.total_steps=4", "trainer.save_freq=2", "trainer.logger=[jsonl,tensorboard]")

    fit_until_killed(Trainer(engine_config(*common, out="run")), step=3)
    assert _steps(tmp_path / "run/metrics.jsonl") == [1, 2, 3]
    # Step 3 was logged after the last checkpoint (step 2): the resumed run logs it again.
    Trainer(engine_config(*common, "trainer.resume_mode=auto", out="run")).fit()
    assert _steps(tmp_path / "run/metrics.jsonl") == [1, 2, 3, 4]
    # A fresh start in the same folder does not append to the old run's rows.
    Trainer(engine_config(*common, "trainer.total_steps=1", out="run")).fit()
    assert _steps(tmp_path / "run/metrics.jsonl") == [1]
