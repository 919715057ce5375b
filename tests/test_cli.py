"""The README command on the shipped example tasks: a short run through the CLI."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForImageTextToText

from openvlthinker.cli import configure_logging, main

ROOT = Path(__file__).resolve().parents[1]
# the README command, run from the repository root
TRAIN = ("train", "--config", "configs/tiny_cpu.yaml")


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
    rc = main([*TRAIN, f"data.tasks={bad}"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"openvlthinker: {bad}: task 'math', key 'problem_types'")
    assert "unknown problem type 'algebra'" in err and "Traceback" not in err


SMOKE = (
    "trainer.total_steps=2",
    "trainer.test_freq=2",
    "trainer.save_freq=2",
    "data.max_val_records=1",
    "rollout.max_new_tokens=8",
    "trainer.progress_bar=false",
)


def _run_cli(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    """``openvlthinker ...`` in a fresh interpreter running this checkout's code."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    return subprocess.run(
        [sys.executable, "-m", "openvlthinker.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=900,
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_cache):
    """The README command for 2 steps, run once for the tests below in a fresh interpreter:
    (its run folder, its arguments, the finished process)."""
    out = tmp_path_factory.mktemp("tiny_run") / "run"
    args = (*TRAIN, *SMOKE, f"model.cache_dir={tiny_cache}", f"trainer.out_dir={out}")
    done = _run_cli(*args)
    assert done.returncode == 0, done.stderr
    return out, args, done


@pytest.mark.slow
def test_train_command_validates_checkpoints_logs_and_plots(tiny_run):
    out, _, _ = tiny_run
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


@pytest.mark.slow
def test_the_tiny_run_logs_a_start_line_every_step_and_where_the_outputs_are(tiny_run):
    out, args, done = tiny_run
    lines = done.stderr.splitlines()
    start = [x for x in lines if " openvlthinker.engine.trainer: run tiny_cpu: steps 1-2, " in x]
    assert len(start) == 1 and "gs_grpo on 288 records of 6 tasks" in start[0]
    for step in (0, 1, 2):
        assert sum(f"openvlthinker.engine.tracking: step {step} | " in x for x in lines) == 1
    assert lines[-1].endswith(
        f"outputs in {out} (metrics.jsonl, tensorboard, training_curves.png, "
        "checkpoints/global_step_2)"
    )
    assert " INFO openvlthinker.engine.trainer: finished step 2 train/reward=" in lines[-1]
    # --log-level is honoured: WARNING keeps the one line that says there is nothing to do.
    again = _run_cli(*args, "--log-level", "warning")
    assert again.returncode == 0, again.stderr
    ours = [x for x in again.stderr.splitlines() if " openvlthinker." in x]
    assert len(ours) == 1 and "already trained 2 steps (trainer.total_steps=2): nothing" in ours[0]


def test_importing_the_package_leaves_the_root_logger_alone():
    code = (
        "import logging, sys; import openvlthinker.engine.trainer, openvlthinker.rewards; "
        "print(len(logging.root.handlers), 'rouge_score' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.stdout.split() == ["0", "False"], done.stderr


def test_package_log_lines_show_whatever_configured_the_root_logger(capsys):
    logging.basicConfig(level=logging.WARNING)  # what absl does on its first log call
    undo = configure_logging("INFO")
    try:
        logging.getLogger("openvlthinker.engine.trainer").info("step line")
    finally:
        undo()
    err = capsys.readouterr().err
    assert err.count("step line") == 1 and "INFO openvlthinker.engine.trainer: step line" in err
    assert logging.getLogger("openvlthinker").propagate  # undone


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["algorithm.adv_estimater=grpo"],
            "openvlthinker: config (configs/tiny_cpu.yaml): key 'algorithm.adv_estimater': Key "
            "'adv_estimater' not in 'AlgorithmConfig'; did you mean algorithm.adv_estimator?\n",
        ),
        (
            ["model.path=/no/such/Qwen3-VL"],
            "openvlthinker: model.path='/no/such/Qwen3-VL': not a Hugging Face checkpoint folder "
            "(no config.json there; the hub is never used: give a local folder, or null for the "
            "tiny model)\n",
        ),
        (
            ["data.only_tasks=[ocr,chrat]"],
            "openvlthinker: data.only_tasks=['ocr', 'chrat']: unknown task(s) ['chrat'] in "
            "configs/tasks_tiny.yaml; known: grounding, spatial, science, math, chart, ocr\n",
        ),
    ],
    ids=["misspelt-key", "missing-model-path", "unknown-task"],
)
def test_bad_input_is_one_line_naming_it(overrides, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main([*TRAIN, *overrides]) == 2
    err = capsys.readouterr().err
    assert err.endswith(message) and "Traceback" not in err  # before it: the log lines, if any


def test_a_yaml_syntax_error_is_one_line_with_its_position(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  logger: [jsonl\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert capsys.readouterr().err == (
        f"openvlthinker: config file {bad}: YAML syntax error at line 3, column 1: "
        "expected ',' or ']', but got '<stream end>'\n"
    )


def test_ctrl_c_names_the_last_checkpoint_and_exits_130(tmp_path, tiny_cache, capsys, monkeypatch):
    from openvlthinker.engine.trainer import Trainer

    calls = []
    original = Trainer.train_step

    def interrupted_on_step_two(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "train_step", interrupted_on_step_two)
    monkeypatch.chdir(ROOT)
    out = tmp_path / "run"
    rc = main(
        [
            *TRAIN,
            f"trainer.out_dir={out}",
            f"model.cache_dir={tiny_cache}",
            "trainer.total_steps=3",
            "trainer.save_freq=1",
            "trainer.val_before_train=false",
            "trainer.test_freq=0",
            "trainer.logger=[jsonl]",
            "trainer.plot=false",
            "trainer.progress_bar=false",
            "data.only_tasks=[ocr]",
            "data.rollout_batch_size=2",
            "actor.mini_batch_size=2",
            "rollout.n=2",
            "rollout.max_new_tokens=4",
        ]
    )
    assert rc == 130
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"openvlthinker: interrupted at step 1; the last checkpoint is "
        f"{out / 'checkpoints/global_step_1'}; the same command resumes from it"
    )
