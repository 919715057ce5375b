"""Checkpoints: the policy in Hugging Face format plus optimizer, RNG and data-order state.

Layout: ``<out_dir>/checkpoints/global_step_<N>/`` holding ``model/`` (``save_pretrained``
of model and processor: loadable with ``model.path=...``) and ``trainer_state.pt``. A
checkpoint is written to a temporary folder and renamed, so a killed run never leaves a
half-written ``global_step_<N>``.
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, ProcessorMixin

logger = logging.getLogger(__name__)

_STEP_DIR = re.compile(r"^global_step_(\d+)$")


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch (CPU and CUDA) RNG states."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out_dir`` as (step, folder), oldest first."""
    root = checkpoint_root(out_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and (child / "trainer_state.pt").is_file():
            found.append((int(match.group(1)), child))
    return sorted(found)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def save_checkpoint(
    out_dir: str | Path,
    step: int,
    model: PreTrainedModel,
    processor: ProcessorMixin,
    trainer_state: dict[str, Any],
    keep: int = 0,
    files: Mapping[str, str] | None = None,
) -> Path:
    """Write ``global_step_<step>`` atomically; drop the oldest beyond ``keep`` (0 = keep all).

    ``files``: name -> text of plain files kept with the checkpoint (e.g. calibration.json)."""
    root = checkpoint_root(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"global_step_{step}"
    tmp = root / f".tmp_global_step_{step}"
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp / "model")
    processor.save_pretrained(tmp / "model")
    torch.save(trainer_state, tmp / "trainer_state.pt")
    for name, text in (files or {}).items():
        (tmp / name).write_text(text, encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if keep > 0:
        for _, old in list_checkpoints(out_dir)[:-keep]:
            shutil.rmtree(old)
    logger.info("saved checkpoint %s", final)
    return final


def load_trainer_state(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / "trainer_state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"trainer.resume: {folder} holds no trainer_state.pt")
    return torch.load(path, weights_only=False)
