"""Metric sinks: console (logging), a JSONL file, TensorBoard, and wandb when installed."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CONSOLE_KEYS = (
    "train/reward",
    "train/acc",
    "train/length",
    "train/response_length",
    "train/entropy",
    "actor/pg_loss",
    "actor/entropy_band_loss",
    "actor/kl_loss",
    "actor/grad_norm",
    "batch/kept_groups",
    "timing/step",
    "val/macro/reward",
    "val/macro/acc",
    "val/score",
)


class Tracker:
    """Send ``{name: float}`` per step to every enabled sink.

    ``start_step``: the first step this run logs; earlier runs' JSONL rows and TensorBoard
    events from that step on are dropped (a resumed run logs each step once). None appends.
    """

    def __init__(
        self,
        out_dir: str | Path,
        sinks: list[str],
        experiment: str,
        config: dict[str, Any],
        start_step: int | None = None,
    ):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.sinks = list(sinks)
        self._jsonl = None
        self._tb = None
        self._wandb = None
        self.last: dict[str, float] = {}
        if "jsonl" in self.sinks:
            path = self.out_dir / "metrics.jsonl"
            if start_step is not None:
                _truncate_jsonl(path, start_step)
            self._jsonl = open(path, "a", encoding="utf-8")
        if "tensorboard" in self.sinks:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(
                log_dir=str(self.out_dir / "tensorboard"), purge_step=start_step
            )
        if "wandb" in self.sinks:
            if importlib.util.find_spec("wandb") is None:
                logger.warning("trainer.logger: wandb requested but not installed; skipping it")
            else:
                import wandb

                self._wandb = wandb.init(name=experiment, config=config, dir=str(self.out_dir))

    def log(self, metrics: dict[str, float], step: int) -> None:
        clean = {
            k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))
        }
        self.last = clean
        if "console" in self.sinks:
            # Per-task detail goes to the files; the console keeps a short batch-level view.
            shown = {k: v for k, v in clean.items() if k in CONSOLE_KEYS}
            logger.info(
                "step %d | %s", step, " ".join(f"{k}={v:.4g}" for k, v in sorted(shown.items()))
            )
        if self._jsonl is not None:
            self._jsonl.write(json.dumps({"step": step, **clean}, sort_keys=True) + "\n")
            self._jsonl.flush()
        if self._tb is not None:
            for key, value in clean.items():
                self._tb.add_scalar(key, value, step)
            self._tb.flush()
        if self._wandb is not None:
            self._wandb.log(clean, step=step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _truncate_jsonl(path: Path, start_step: int) -> None:
    """Keep only the rows of steps before ``start_step`` (written atomically)."""
    if not path.is_file():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] < start_step
    ]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    tmp.replace(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics.jsonl; for a resumed run the last record of each step wins."""
    by_step: dict[int, dict[str, Any]] = {}
    p = Path(path)
    if not p.is_file():
        return []
    for line in p.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_step.setdefault(row["step"], {}).update(row)
    return [by_step[s] for s in sorted(by_step)]
