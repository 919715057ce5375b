"""The README command on the shipped example tasks: a short run through the CLI."""

import json
from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText

from openvlthinker.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_command_validates_checkpoints_logs_and_plots(tmp_path, tiny_cache, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    rc = main(
        [
            "train",
            "--config",
            "configs/tiny_cpu.yaml",
            f"trainer.out_dir={out}",
            f"model.cache_dir={tiny_cache}",
            "trainer.total_steps=2",
            "trainer.val_freq=2",
            "trainer.save_freq=2",
            "data.max_val_records=1",
            "rollout.max_new_tokens=8",
            "trainer.progress_bar=false",
        ]
    )
    assert rc == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2]
    tasks = ("grounding", "spatial", "science", "math", "chart", "ocr")
    for step in (0, 2):  # validation before training and after the last step
        assert all(f"val/{t}/reward" in rows[step] for t in tasks)
        assert "val/macro/reward" in rows[step]
    assert {"train/reward", "train/entropy", "actor/pg_loss", "actor/grad_norm"} <= set(rows[1])
    assert any(
        k.startswith("train/") and k.endswith("/entropy") and k.count("/") == 2 for k in rows[1]
    )
    assert (out / "training_curves.png").stat().st_size > 10_000
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    model_dir = out / "checkpoints/global_step_2/model"
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    assert model.config.model_type == "qwen3_vl"
    assert (model_dir / "tokenizer_config.json").is_file()


def test_bad_override_exits_2_naming_the_key(capsys):
    assert main(["train", "--config", str(ROOT / "configs/tiny_cpu.yaml"), "actor.lr=fast"]) == 2
    assert "actor.lr" in capsys.readouterr().err


def test_config_help_lists_every_key(capsys):
    assert main(["config-help"]) == 0
    text = capsys.readouterr().out
    assert "algorithm.adv_estimator" in text and "Advantage estimator" in text


def test_a_bad_task_file_is_one_line_naming_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    bad = tmp_path / "tasks.yaml"
    bad.write_text("tasks:\n  math:\n    domain: math\n    problem_types: [algebra]\n")
    rc = main(["train", "--config", "configs/tiny_cpu.yaml", f"data.tasks={bad}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"openvlthinker: {bad}: task 'math', key 'problem_types'")
    assert "unknown problem type 'algebra'" in err and "Traceback" not in err
