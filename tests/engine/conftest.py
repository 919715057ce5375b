"""Shared fixtures: one tiny Qwen-VL checkpoint per architecture, built once per session."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_qwen3(tiny_cache):
    """(path, processor, model) of the tiny Qwen3-VL, loaded through from_pretrained."""
    from openvlthinker.engine.modeling import (
        TinySpec,
        ensure_tiny_checkpoint,
        load_policy,
        load_processor,
    )

    path = ensure_tiny_checkpoint(TinySpec(architecture="qwen3_vl"), tiny_cache)
    processor = load_processor(path, "qwen3_vl", 32 * 32, 128 * 128)
    model = load_policy(path, torch.float32, "cpu")
    return path, processor, model


def random_image(seed: int, width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8"))


@pytest.fixture()
def make_image():
    """``make_image(seed, width, height)``: a deterministic random RGB image."""
    return random_image


def write_tasks(root, tasks: dict[str, tuple[str, str]], n_train: int = 6, n_val: int = 2) -> str:
    """A task file plus records and small images under ``root``; returns the task file path.

    ``tasks``: task key -> (problem type, fixed answer). Every record of a task has the
    same answer, so a tiny model can learn it; bands and weights are neutral (tests set them).
    """
    import json
    from pathlib import Path

    root = Path(root)
    blocks = []
    for t, (ptype, answer) in tasks.items():
        folder = root / t
        (folder / "images").mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n_train + n_val):
            random_image(i, 32 + 16 * (i % 2), 32).save(folder / "images" / f"{i}.png")
            rows.append(
                {
                    "id": f"{t}-{i}",
                    "problem": "<image>Read it.",
                    "answer": answer,
                    "images": [f"{i}.png"],
                    "problem_type": ptype,
                    "data_type": "image",
                    "task": t,
                }
            )
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:n_train]))
        (folder / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[n_train:]))
        blocks.append(
            f"  {t}:\n    domain: test\n    problem_types: [{ptype}]\n"
            f"    length_envelope: [1, 2, 8, 16]\n"
            f"    train:\n      - {{path: {t}/train.jsonl, image_root: {t}/images}}\n"
            f"    validation:\n      - {{name: {t}_val, path: {t}/val.jsonl, image_root: {t}/images}}\n"
        )
    (root / "tasks.yaml").write_text(
        "advantage_key: task\n"
        "defaults:\n"
        "  entropy_band: {h_min: 0.0, h_max: 100.0, coef: 0.0}\n"
        "  reward_weights: {correctness: 1.0, format: 0.0, structure: 0.0}\n"
        "  length_weight: 0.0\n"
        "tasks:\n" + "".join(blocks)
    )
    return str(root / "tasks.yaml")


# Dense reward for tests: the OCR scorer's 1 - CER on the whole response (no answer tag
# needed), so a random tiny model already earns varied, non-zero rewards.
DENSE_REWARD = "reward={require_answer_tag: false, ocr_metric: cer}"


@pytest.fixture()
def engine_config(tmp_path, tiny_cache):
    """``engine_config(*overrides, tasks=None)``: a small validated TrainConfig in tmp_path."""
    from openvlthinker.engine.config import load_config

    def make(*overrides: str, tasks: dict | None = None, out: str = "run"):
        task_file = write_tasks(tmp_path / "data", tasks or {"alpha": ("ocr", "the the the the")})
        base = [
            f"data.tasks={task_file}",
            f"model.cache_dir={tiny_cache}",
            f"trainer.out_dir={tmp_path / out}",
            "trainer.logger=[jsonl]",
            "trainer.progress_bar=false",
            "trainer.plot=false",
            "trainer.test_freq=0",
            "trainer.val_before_train=false",
            "trainer.save_freq=0",
            "trainer.resume_mode=disable",
            "data.rollout_batch_size=2",
            "rollout.n=4",
            "rollout.max_new_tokens=8",
            "actor.mini_batch_size=2",
            "actor.micro_batch_size=8",
            DENSE_REWARD,
        ]
        return load_config(None, base + list(overrides))

    return make


class Killed(Exception):
    """Stands in for a crash in the middle of a run."""


def fit_until_killed(trainer, step: int) -> None:
    """``trainer.fit()`` that dies right after step ``step`` (its checkpoint, if due, is
    written), as a killed job would: the next step's call raises before it starts."""
    train_step = trainer.train_step

    def killed_after_step() -> dict:
        if trainer.step == step:
            raise Killed
        return train_step()

    trainer.train_step = killed_after_step
    with pytest.raises(Killed):
        trainer.fit()
    assert trainer.step == step


def set_band(trainer, **bounds: float) -> None:
    """Gives every task of ``trainer`` the entropy band ``h_min`` / ``h_max`` / ``coef``
    named (the others as the task file has them), as a task file saying so would."""
    from dataclasses import replace

    tasks = trainer.step_tasks
    old = tasks.bands
    new = {k: torch.full_like(getattr(old, k), float(v)) for k, v in bounds.items()}
    trainer.step_tasks = replace(tasks, bands=replace(old, **new))
