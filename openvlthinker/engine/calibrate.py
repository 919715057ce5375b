"""Measure the policy for the calibration rule (method.md section 7) and keep the result.

:func:`measure` runs the trainer's current policy, with no update, on
``calibration.batches`` rollout batches of each task's training prompts (the rollout,
reward and log-prob code of a training step) and returns per-task
:class:`~openvlthinker.shaping.calibration.TaskMeasurements`. :func:`calibrate` turns them
into bounds for the task file's ``auto`` fields (or, when it has none, every task's
envelope and band). Sampling runs on its own seeded RNG stream, so a run that calibrates
at start-up trains exactly like a run given the calibrated file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from openvlthinker.data import Record
from openvlthinker.engine.calibration_report import write_report
from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.data import RecordSampler
from openvlthinker.engine.phases import old_log_probs, scores_of
from openvlthinker.engine.policy import PolicyIO
from openvlthinker.shaping.calibration import (
    CALIBRATION_FILE,
    Calibration,
    TaskMeasurements,
    derive_bounds,
)
from openvlthinker.tasks.registry import AUTO_FIELDS, TaskRegistry

logger = logging.getLogger(__name__)

#: Offset of the calibration's RNG stream from trainer.seed (validation uses +10_000).
SEED_OFFSET = 20_000


class TrainerView(Protocol):
    """What calibration reads of ``engine.trainer.Trainer``: its config, tasks and records,
    its policy I/O and reward call, and the micro-batch size of its update (no update)."""

    cfg: TrainConfig
    registry: TaskRegistry
    device: torch.device
    out_dir: Path
    policy: torch.nn.Module
    all_train_records: Sequence[Record]

    policy_io: PolicyIO
    update_settings: Any

    def score(self, rollout: Any, records: Sequence[Record], sizes: Sequence[Any]) -> Any: ...


def fields_to_derive(registry: TaskRegistry) -> dict[str, tuple[str, ...]]:
    """The task file's ``auto`` bounds; when it marks none, every bound of every task."""
    return registry.auto_fields() or {task: AUTO_FIELDS for task in registry}


@torch.no_grad()
def measure_task(trainer: TrainerView, task: str, batches: int) -> TaskMeasurements:
    """``batches`` rollout batches of ``task``'s training prompts under the current policy."""
    cfg = trainer.cfg
    records = [r for r in trainer.all_train_records if r.task == task]
    if not records:
        raise ValueError(f"{cfg.data.tasks}: task {task!r} has no training record to calibrate on")
    sampler = RecordSampler(records, cfg.data.seed, cfg.data.shuffle)
    n = cfg.rollout.n
    io, policy = trainer.policy_io, trainer.policy
    lengths, entropy, correctness, reward = [], [], [], []
    for _ in range(batches):
        prompt_records = sampler.next(cfg.data.rollout_batch_size)
        encoded = io.encode(prompt_records)
        rollout = io.generate(
            policy, encoded.batch.repeat(n), temperature=cfg.rollout.temperature, greedy=False
        )
        scores = scores_of(
            trainer.score(
                rollout,
                [r for r in prompt_records for _ in range(n)],
                [s for s in encoded.model_image_sizes for _ in range(n)],
            )
        )
        mask = rollout.response_mask.to(torch.float64)
        token_entropy = old_log_probs(
            io, policy, rollout, trainer.update_settings.micro_batch_size
        ).entropy.to(torch.float64)
        n_tokens = mask.sum(-1)
        lengths.append(n_tokens.cpu())
        entropy.append(((token_entropy * mask).sum(-1) / n_tokens.clamp_min(1)).cpu())
        correctness.append(scores["correctness"])
        reward.append(scores["overall"])
    return TaskMeasurements(
        lengths=torch.cat(lengths).long().numpy(),
        entropy=torch.cat(entropy).numpy(),
        correctness=torch.cat(correctness).numpy(),
        reward=torch.cat(reward).numpy(),
        max_new_tokens=cfg.rollout.max_new_tokens,
    )


def measure(trainer: TrainerView, tasks: list[str], batches: int) -> dict[str, TaskMeasurements]:
    """:func:`measure_task` for each task, each on its own seeded stream (trainer.seed +
    SEED_OFFSET + the task's index), outside the training RNG stream."""
    device = trainer.device
    out = {}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for task in tasks:
            t0 = time.perf_counter()
            torch.manual_seed(trainer.cfg.trainer.seed + SEED_OFFSET + trainer.registry.index(task))
            out[task] = measure_task(trainer, task, batches)
            logger.info(
                "calibration: measured %s on %d responses in %.1fs",
                task,
                len(out[task].lengths),
                time.perf_counter() - t0,
            )
    return out


def settings_of(trainer: TrainerView, batches: int) -> dict[str, Any]:
    """What the measurement depended on, written into every calibration output."""
    cfg = trainer.cfg
    tiny = cfg.model.tiny
    return {
        "model": cfg.model.path or f"tiny {tiny.architecture} (model.tiny, seed {tiny.seed})",
        "batches": batches,
        "prompts_per_batch": cfg.data.rollout_batch_size,
        "responses_per_prompt": cfg.rollout.n,
        "temperature": cfg.rollout.temperature,
        "max_new_tokens": cfg.rollout.max_new_tokens,
        "entropy_estimator": cfg.actor.entropy_band.estimator,
        "seed": cfg.trainer.seed + SEED_OFFSET,
    }


def calibrate(trainer: TrainerView, batches: int | None = None) -> Calibration:
    """Measure the trainer's policy and derive the bounds of :func:`fields_to_derive`."""
    registry = trainer.registry
    batches = batches or trainer.cfg.calibration.batches
    fields = fields_to_derive(registry)
    measurements = measure(trainer, list(fields), batches)
    bounds = {
        task: derive_bounds(m, registry[task].length_intent, task=task)
        for task, m in measurements.items()
    }
    return Calibration(
        task_file=str(registry.source),
        settings=settings_of(trainer, batches),
        fields=fields,
        bounds=bounds,
        measurements=measurements,
    )


def log_bounds(calibration: Calibration, how: str) -> None:
    for task, values in calibration.overrides().items():
        logger.info("%s %s: %s", how, task, ", ".join(f"{k}={v}" for k, v in values.items()))


def load_calibration(path: str | Path) -> Calibration:
    path = Path(path)
    return Calibration.from_json(path.read_text(encoding="utf-8"), where=str(path))


def run_calibrate(trainer: TrainerView, out: str | Path) -> list[Path]:
    """``openvlthinker calibrate``: measure, derive, write ``out`` and its report."""
    t0 = time.perf_counter()
    calibration = calibrate(trainer)
    log_bounds(calibration, "calibrated")
    paths = write_report(calibration, trainer.registry, out)
    logger.info(
        "calibration written in %.1fs: %s", time.perf_counter() - t0, ", ".join(map(str, paths))
    )
    return paths


def auto_calibration(trainer: TrainerView, resumed_from: Path | None) -> Calibration:
    """The bounds of the trainer's ``auto`` fields, logged: read from the checkpoint a run
    resumed from, or else measured now (report under ``<out_dir>/calibration/``)."""
    pending = trainer.registry.auto_fields()
    saved = resumed_from / CALIBRATION_FILE if resumed_from is not None else None
    if saved is not None and saved.is_file():
        calibration = load_calibration(saved)
        missing = {
            task: [f for f in names if f not in calibration.fields.get(task, ())]
            for task, names in pending.items()
        }
        missing = {task: names for task, names in missing.items() if names}
        if missing:
            raise ValueError(
                f"{saved}: the checkpoint's calibration lacks auto bound(s) {missing} of "
                f"{trainer.cfg.data.tasks}; resume with the task file it was calibrated for"
            )
        # Only what is auto now: a bound the file has since set by hand keeps its value.
        calibration.fields = {task: tuple(names) for task, names in pending.items()}
        log_bounds(calibration, f"auto bounds read from {saved} (not re-measured):")
        return calibration
    if saved is not None:
        logger.warning(
            "%s holds no %s: calibrating the resumed policy", resumed_from, CALIBRATION_FILE
        )
    t0 = time.perf_counter()
    calibration = calibrate(trainer)
    out = trainer.out_dir / "calibration" / "tasks_calibrated.yaml"
    write_report(calibration, trainer.registry, out)
    log_bounds(
        calibration,
        f"auto bounds calibrated before step 1 in {time.perf_counter() - t0:.1f}s "
        f"(report: {out.parent}):",
    )
    return calibration
