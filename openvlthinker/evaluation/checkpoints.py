"""What ``openvlthinker eval --checkpoint PATH`` accepts, and the identity it records.

- an engine checkpoint ``<run>/checkpoints/global_step_N`` (its ``model/`` folder is a
  Hugging Face model, see ``openvlthinker.engine.checkpoint``);
- a verl checkpoint ``<run>/global_step_N`` (or its ``actor/``): FSDP shards
  ``actor/model_world_size_W_rank_R.pt`` with ``actor/fsdp_config.json`` and the Hugging
  Face config in ``actor/huggingface/``. verl's own merger
  (``python -m verl.model_merger merge --backend fsdp``) turns it into one Hugging Face
  folder, written once into a cache folder and reused;
- any Hugging Face model folder (what ``model.path`` accepts: a ``config.json`` and weights).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors", ".bin")


class CheckpointError(ValueError):
    """A ``--checkpoint`` path is not something eval can load; the message names it."""


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint to evaluate: where the user pointed, the model folder loaded, and
    the identity recorded in results.json."""

    name: str
    path: Path
    model_path: Path
    kind: str
    weights_sha256: str


def _is_hf_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(
        p.suffix in WEIGHT_SUFFIXES for p in folder.iterdir() if p.is_file()
    )


def verl_actor_dir(path: Path) -> Path | None:
    """The ``actor/`` folder of a verl FSDP checkpoint at ``path`` (itself or its child)."""
    for folder in (path / "actor", path):
        if (folder / "fsdp_config.json").is_file() and any(
            folder.glob("model_world_size_*_rank_*.pt")
        ):
            return folder
    return None


def merge_command(actor_dir: Path, target_dir: Path) -> list[str]:
    """verl's FSDP merger as a command line (its documented entry point)."""
    return [
        sys.executable,
        "-m",
        "verl.model_merger",
        "merge",
        "--backend",
        "fsdp",
        "--local_dir",
        str(actor_dir),
        "--target_dir",
        str(target_dir),
    ]


def merge_verl_checkpoint(actor_dir: Path, cache_dir: Path) -> Path:
    """Merge a verl FSDP checkpoint with verl's merger into ``cache_dir`` (once: an existing
    merge is reused); the merge goes to a temporary folder renamed on success."""
    key = hashlib.sha256(str(actor_dir.resolve()).encode()).hexdigest()[:12]
    target = cache_dir / f"{actor_dir.parent.name}-{key}"
    if _is_hf_folder(target):
        logger.info("verl checkpoint %s: using the merged model in %s", actor_dir, target)
        return target
    if not (actor_dir / "huggingface" / "config.json").is_file():
        raise CheckpointError(
            f"--checkpoint {actor_dir}: a verl FSDP checkpoint without huggingface/config.json; "
            "verl's merger needs the model config saved next to the shards"
        )
    tmp = cache_dir / f".tmp-{target.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    cmd = merge_command(actor_dir, tmp)
    logger.info("verl checkpoint %s: merging with verl's model merger into %s", actor_dir, target)
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    if done.returncode != 0 or not _is_hf_folder(tmp):
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"--checkpoint {actor_dir}: verl's model merger failed ({' '.join(cmd)}): "
            + " | ".join(tail)
        )
    tmp.rename(target)
    return target


def weights_sha256(model_path: Path) -> str:
    """SHA-256 over the weight files' names and bytes, in name order. (An index file alone,
    ``model.safetensors.index.json``, is the same for every checkpoint of one architecture,
    so it cannot tell two checkpoints apart; the bytes can.)"""
    digest = hashlib.sha256()
    files = sorted(p for p in model_path.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    index = model_path / "model.safetensors.index.json"
    for p in ([index] if index.is_file() else []) + files:
        digest.update(p.name.encode())
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def checkpoint_name(path: Path) -> str:
    """A file-system-safe display name: ``<run>-global_step_N`` for step folders."""
    path = path.resolve()
    if path.name == "actor":
        path = path.parent
    if path.name.startswith("global_step_"):
        run = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        return f"{run.name}-{path.name}"
    return path.name


def resolve_checkpoint(
    path: str | os.PathLike, cache_dir: Path, *, merge: bool = True
) -> Checkpoint:
    """Classify ``path`` (engine step folder, verl step folder, Hugging Face folder) and
    return the folder to load; a verl checkpoint is merged (``merge=False``: checked only,
    the merge left to :func:`materialize`). Raises :class:`CheckpointError` naming it."""
    p = Path(path)
    if not p.is_dir():
        raise CheckpointError(f"--checkpoint {p}: no such folder")
    if _is_hf_folder(p / "model"):
        return Checkpoint(checkpoint_name(p), p, p / "model", "engine", "")
    for folder in (p / "model", p):
        if (folder / "adapter_config.json").is_file():
            raise CheckpointError(
                f"--checkpoint {p}: holds a LoRA adapter ({folder}), not a whole model; "
                "evaluate the run's merged model (trainer.save_merged=true writes "
                "<out_dir>/merged) or merge the adapter into its base first"
            )
    actor = verl_actor_dir(p)
    if actor is not None:
        target = merge_verl_checkpoint(actor, cache_dir) if merge else actor
        return Checkpoint(checkpoint_name(p), p, target, "verl", "")
    if _is_hf_folder(p):
        return Checkpoint(checkpoint_name(p), p, p, "huggingface", "")
    raise CheckpointError(
        f"--checkpoint {p}: not a model folder (no config.json with weights, no model/ of an "
        "engine checkpoint, no actor/ FSDP shards of a verl checkpoint)"
    )


def materialize(ckpt: Checkpoint, cache_dir: Path) -> Checkpoint:
    """The checkpoint with a loadable model folder (verl merged) and its weights hash."""
    model_path = ckpt.model_path
    if ckpt.kind == "verl" and not _is_hf_folder(model_path):
        model_path = merge_verl_checkpoint(model_path, cache_dir)
    return Checkpoint(ckpt.name, ckpt.path, model_path, ckpt.kind, weights_sha256(model_path))
