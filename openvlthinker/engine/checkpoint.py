"""Checkpoints: the policy in Hugging Face format plus optimizer, RNG and data-order state.

Layout: ``<out_dir>/checkpoints/global_step_<N>/`` holding ``model/`` (``save_pretrained``
of model and processor: loadable with ``model.path=...``) and ``trainer_state.pt``. A
checkpoint is written to a temporary folder and renamed, so a killed run never leaves a
half-written ``global_step_<N>``.
"""

from __future__ import annotations

import logging
import pickle
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
    """Python, NumPy and torch (CPU and CUDA) RNG states, as tensors and plain Python values
    only, so that ``torch.load(weights_only=True)`` reads them."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),  # (version, tuple of ints, None)
        "numpy": {
            "bit_generator": str(name),
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    n = state["numpy"]
    np.random.set_state(
        (
            n["bit_generator"],
            n["key"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["gauss"],
        )
    )
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
    """The trainer state of a checkpoint, read with ``weights_only=True``: tensors and plain
    Python values only, so a checkpoint from elsewhere cannot run code when it is loaded."""
    path = Path(folder) / "trainer_state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"trainer.resume: {folder} holds no trainer_state.pt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph; the line naming the refused global is the useful one
        lines = [x for x in str(e).splitlines() if "GLOBAL" in x or "global" in x]
        raise ValueError(
            f"trainer.resume: {path} holds objects other than tensors and plain Python values; "
            "refused, since loading them could run code (a checkpoint written before "
            f"openvlthinker stored only those, or one that was tampered with): "
            f"{(lines or str(e).splitlines())[0].strip()}"
        ) from e
