"""Trainer.validate: per-set metrics next to per-task and macro ones, benchmark metric included."""

from pathlib import Path

import pytest


def test_validate_reports_each_set_its_task_and_the_macro(engine_config, tmp_path):
    from openvlthinker.engine.trainer import Trainer

    cfg = engine_config(
        "trainer.num_threads=1",
        tasks={"alpha": ("ocr", "the the"), "beta": ("ocr", "a b")},
    )
    text = Path(cfg.data.tasks).read_text()
    Path(cfg.data.tasks).write_text(
        text.replace("name: alpha_val,", "name: alpha_val, metric: ocrbench,")
    )
    trainer = Trainer(cfg)
    m = trainer.validate()
    for name, task in (("alpha_val", "alpha"), ("beta_val", "beta")):
        # one set per task: the set's numbers are the task's
        assert m[f"val/{name}/count"] == 2.0
        assert m[f"val/{name}/correctness"] == pytest.approx(m[f"val/{task}/correctness"])
        assert m[f"val/{name}/ocr/correctness"] == pytest.approx(m[f"val/{task}/correctness"])
    assert 0.0 <= m["val/alpha_val/ocrbench"] <= 1.0 and "val/beta_val/ocrbench" not in m
    assert m["val/macro/correctness"] == pytest.approx(
        (m["val/alpha/correctness"] + m["val/beta/correctness"]) / 2
    )
