"""Checkpoints: the policy in Hugging Face format plus optimizer, RNG and data-order state.

Layout: ``<out_dir>/checkpoints/global_step_<N>/`` holding ``model/`` (``save_pretrained``
of model and processor: loadable with ``model.path=...``) and ``trainer_state.pt``. A
checkpoint is written to a temporary folder and renamed, so a killed run never leaves a
half-written ``global_step_<N>``. With ``trainer.save_best`` each checkpoint comes with its
``val/score`` and ``checkpoints/best_checkpoint.json`` names the best one so far (step, score,
folder), which rotation never removes.
"""

from __future__ import annotations

import json
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
BEST_FILE = "best_checkpoint.json"


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
    best_score: float | None = None,
) -> Path:
    """Write ``global_step_<step>`` atomically; drop the oldest beyond ``keep`` (0 = keep all).

    ``files``: name -> text of plain files kept with the checkpoint (e.g. calibration.json).
    ``best_score``: this checkpoint's val/score; when it beats the recorded best, this
    checkpoint becomes the best (:func:`record_best`); the best is never rotated out."""
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
    if best_score is not None:
        record_best(out_dir, step, best_score)
    rotate(out_dir, keep)
    logger.info("saved checkpoint %s", final)
    return final


def best_checkpoint(out_dir: str | Path) -> dict[str, Any] | None:
    """``{"step", "score", "metric", "path"}`` of the best checkpoint, or None when none is
    recorded or its folder is gone."""
    path = checkpoint_root(out_dir) / BEST_FILE
    if not path.is_file():
        return None
    best = json.loads(path.read_text(encoding="utf-8"))
    return best if (checkpoint_root(out_dir) / best["path"]).is_dir() else None


def record_best(out_dir: str | Path, step: int, score: float) -> bool:
    """Name ``global_step_<step>`` the best checkpoint when ``score`` beats the recorded best
    (a tie keeps the earlier one). A record from a later or equal step belongs to a run this
    one replaces (a fresh start in the same folder): it is overwritten. True when recorded."""
    from openvlthinker.tasks.validation import BEST_CHECKPOINT_METRIC

    best = best_checkpoint(out_dir)
    if best is not None and best["step"] < step and not score > best["score"]:
        return False
    record = {
        "step": step,
        "score": float(score),
        "metric": BEST_CHECKPOINT_METRIC,
        "path": f"global_step_{step}",
    }
    path = checkpoint_root(out_dir) / BEST_FILE
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    logger.info("best checkpoint: step %d (%s=%.4g)", step, BEST_CHECKPOINT_METRIC, score)
    return True


def rotate(out_dir: str | Path, keep: int) -> list[Path]:
    """Remove the oldest checkpoints beyond the ``keep`` newest (0 = keep all), never the
    best one (:func:`best_checkpoint`); returns the folders removed."""
    if keep <= 0:
        return []
    best = best_checkpoint(out_dir)
    spared = None if best is None else checkpoint_root(out_dir) / best["path"]
    removed = [old for _, old in list_checkpoints(out_dir)[:-keep] if old != spared]
    for old in removed:
        shutil.rmtree(old)
    return removed


def load_trainer_state(folder: str | Path) -> dict[str, Any]:
    """The trainer state of a checkpoint, read with ``weights_only=True``: tensors and plain
    Python values only, so a checkpoint from elsewhere cannot run code when it is loaded."""
    path = Path(folder) / "trainer_state.pt"
    if not path.is_file():
        raise FileNotFoundError(f"trainer.resume_from_path: {folder} holds no trainer_state.pt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph; the line naming the refused global is the useful one
        lines = [x for x in str(e).splitlines() if "GLOBAL" in x or "global" in x]
        raise ValueError(
            f"trainer.resume_mode: {path} holds objects other than tensors and plain Python values; "
            "refused, since loading them could run code (a checkpoint written before "
            f"openvlthinker stored only those, or one that was tampered with): "
            f"{(lines or str(e).splitlines())[0].strip()}"
        ) from e
