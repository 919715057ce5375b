"""The single-process G2RPO trainer: a run's state (policy, optimiser, data position, step)
and its loop (:meth:`Trainer.fit`: steps, validation, checkpoints, resume).

Set-up is ``engine/setup.py``; the step's phases are ``engine/phases.py`` and
``engine/update.py``; validation is ``engine/validation.py``. :meth:`Trainer.train_step`
reads as the algorithm: collect (rollout -> score) -> advantage -> old/ref log-probs ->
update -> metrics.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import AutoConfig

from openvlthinker.data import Record
from openvlthinker.engine import checkpoint as ckpt
from openvlthinker.engine import lora, phases
from openvlthinker.engine.calibrate import CALIBRATION_FILE, auto_calibration
from openvlthinker.engine.config import ConfigError, TrainConfig, resume_conflicts, to_dict
from openvlthinker.engine.data import RecordSampler
from openvlthinker.engine.modeling import load_processor
from openvlthinker.engine.phases import (
    AdvantageSettings,
    CollectSettings,
    OldLogProbs,
    RolloutBatch,
    timed,
)
from openvlthinker.engine.plot import plot_history
from openvlthinker.engine.policy import PolicyIO
from openvlthinker.engine.rollout import Rollout
from openvlthinker.engine.setup import (
    DTYPES,
    base_model_path,
    default_num_threads,
    load_policy_model,
    load_run_data,
    load_run_tasks,
    log_parameter_counts,
    make_optimizer,
    reference_model,
    resolve_device,
)
from openvlthinker.engine.tracking import Tracker, read_jsonl
from openvlthinker.engine.update import PolicyUpdate, UpdateSettings
from openvlthinker.engine.validation import PolicyCalls, eval_sets, policy_calls, validate
from openvlthinker.rewards import close_pools
from openvlthinker.step import StepTasks
from openvlthinker.tasks.validation import BEST_CHECKPOINT_METRIC

logger = logging.getLogger(__name__)

#: Offset of validation's RNG stream from trainer.seed (calibration uses +20_000).
VALIDATION_SEED_OFFSET = 10_000


class Trainer:
    """Builds everything from a validated :class:`TrainConfig`; :meth:`fit` runs the loop."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out_dir = Path(cfg.trainer.out_dir)
        torch.set_num_threads(cfg.trainer.num_threads or default_num_threads())
        self.device = resolve_device(cfg.model.device)
        self.dtype = DTYPES[cfg.model.dtype]
        self.shuffle_gen = torch.Generator().manual_seed(cfg.trainer.seed + 1)

        run = load_run_tasks(cfg)
        self.reward_config = run.reward_config
        self.registry = run.registry
        self.tasks = list(run.tasks)
        self.calibration = None
        # Built once the task file's 'auto' bounds are known (resolve_auto_bounds).
        self.step_tasks: StepTasks | None = None
        if not self.registry.auto_fields():
            self.step_tasks = StepTasks.from_registry(self.registry, cfg.algorithm.components)

        self.model_path = base_model_path(cfg)
        self.model_type = AutoConfig.from_pretrained(self.model_path).model_type
        self.processor = load_processor(
            self.model_path, self.model_type, cfg.model.min_pixels, cfg.model.max_pixels
        )
        self.tokenizer = self.processor.tokenizer
        self.policy = self.load_policy(self.model_path)
        log_parameter_counts(cfg, self.policy)
        self.ref_policy = reference_model(cfg, self.policy)
        self.policy_io = PolicyIO.from_config(
            cfg, self.processor, self.policy, self.reward_config, self.device, self.dtype
        )
        self.optimizer, self.scheduler = make_optimizer(self.policy, cfg.actor)

        data = load_run_data(cfg.data, self.registry, self.tasks)
        self.all_train_records = data.all_train_records
        self.train_records = data.train_records
        self.val_sets = data.val_sets
        self.sampler = RecordSampler(self.train_records, cfg.data.seed, cfg.data.shuffle)

        # The step's settings, read from the config once.
        self.collect_settings = CollectSettings.from_config(cfg)
        self.advantage_settings = AdvantageSettings.from_config(cfg, self.registry)
        self.update_settings = UpdateSettings.from_config(cfg)

        self.step = 0
        self.resumed_from: Path | None = None
        # Seeded last, so whatever set-up did (building a tiny model or not) the run samples alike.
        torch.manual_seed(cfg.trainer.seed)
        self.tracker: Tracker | None = None

    def load_policy(self, path: str) -> torch.nn.Module:
        """The policy from the base model or a checkpoint's ``model/`` folder."""
        return load_policy_model(self.cfg, path, self.model_path, self.dtype, self.device)

    @property
    def reference(self) -> torch.nn.Module | None:
        """The KL loss's reference: the frozen copy, or with LoRA the policy itself (its
        adapters disabled while scoring); None without the KL loss."""
        if not self.cfg.actor.use_kl_loss:
            return None
        return self.policy if self.ref_policy is None else self.ref_policy

    def score(self, rollout: Rollout, records: list[Record], model_image_sizes: list) -> list[dict]:
        """The reward results of a rollout's rows (``phases.score_rollout``)."""
        return phases.score_rollout(
            self.policy_io, rollout, records, model_image_sizes, self.registry, self.reward_config
        )

    # ------------------------------------------------------------------ the step
    def train_step(self) -> dict[str, float]:
        """One G2RPO step: collect (rollout -> score) -> advantage -> old/ref log-probs ->
        update -> metrics."""
        if self.registry.auto_fields():
            raise RuntimeError(
                "the task file's 'auto' bounds are unresolved: call fit() or resolve_auto_bounds() first"
            )
        t_step = time.perf_counter()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        batch, metrics = self.collect()
        if batch is None:
            logger.warning("step %d: dynamic sampling kept no group; no update", self.step + 1)
            return metrics
        with timed(metrics, "timing/advantage"):
            advantages = self.advantage(batch)
        with timed(metrics, "timing/old_log_prob"):
            old = self.old_log_probs(batch)
        metrics.update(phases.log_prob_gap(batch.rollout, old))
        with timed(metrics, "timing/update"):
            metrics.update(self.update(batch, advantages, old))
        metrics.update(self.batch_metrics(batch, advantages, old.entropy))
        metrics["timing/step"] = time.perf_counter() - t_step
        metrics.update(phases.throughput(batch.rollout, metrics, self.update_settings.ppo_epochs))
        metrics["perf/peak_memory_mb"] = phases.peak_memory_mb(self.device)
        return metrics

    def collect(self) -> tuple[RolloutBatch | None, dict[str, float]]:
        """Rollout + score, refilled by dynamic sampling (``phases.collect``)."""
        return phases.collect(
            self.sampler,
            self.policy_io,
            self.policy,
            self.score,
            self.registry,
            self.collect_settings,
        )

    def advantage(self, batch: RolloutBatch) -> torch.Tensor:
        """(B,) advantages (``phases.advantage``)."""
        return phases.advantage(batch, self.step_tasks, self.advantage_settings)

    def old_log_probs(self, batch: RolloutBatch) -> OldLogProbs:
        """Log-probs, token entropy and reference log-probs before the update."""
        return phases.old_log_probs(
            self.policy_io,
            self.policy,
            batch.rollout,
            self.update_settings.micro_batch_size,
            self.reference,
        )

    def update(
        self, batch: RolloutBatch, advantages: torch.Tensor, old: OldLogProbs
    ) -> dict[str, float]:
        """The PPO-clip update (``engine/update.py``); actor/* statistics."""
        run = PolicyUpdate(
            self.policy,
            self.optimizer,
            self.scheduler,
            self.policy_io,
            self.step_tasks.bands,
            self.update_settings,
        )
        return run(batch, advantages, old, self.shuffle_gen, self.step)

    def batch_metrics(
        self, batch: RolloutBatch, advantages: torch.Tensor, token_entropy: torch.Tensor
    ) -> dict[str, float]:
        """train/<metric>, train/<task>/<metric> and batch sizes (``phases.batch_metrics``)."""
        return phases.batch_metrics(
            batch,
            advantages,
            token_entropy,
            self.step_tasks.names,
            self.policy_io.sampling.max_new_tokens,
        )

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict[str, float]:
        """Every validation set of every (selected) task: per-set, per-task and macro metrics."""
        if not self.val_sets:
            return {}
        r = self.cfg.rollout
        return validate(
            eval_sets(self.registry, self.val_sets),
            self.policy_calls(r.val_temperature),
            self.tasks,
            self.reward_config,
            seed=self.cfg.trainer.seed + VALIDATION_SEED_OFFSET + self.step,
            device=self.device,
            n=r.val_n,
            batch_size=r.val_batch_size,
            max_new_tokens=r.max_new_tokens,
        )

    def policy_calls(self, temperature: float) -> PolicyCalls:
        """encode / generate (greedy at temperature 0) / score / decode of this policy."""
        return policy_calls(self.policy_io, self.policy, temperature, self.score)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "sampler": self.sampler.state_dict(),
            "rng": ckpt.rng_state(),
            "shuffle_gen": self.shuffle_gen.get_state(),
            "config": to_dict(self.cfg),
        }

    def save(self, score: float | None = None) -> Path:
        """Checkpoint this step; ``score`` (its val/score) ranks it when trainer.save_best."""
        return ckpt.save_checkpoint(
            self.out_dir,
            self.step,
            self.policy,
            self.processor,
            self.state_dict(),
            keep=self.cfg.trainer.save_limit,
            files={CALIBRATION_FILE: self.calibration.to_json()} if self.calibration else None,
            best_score=score if self.cfg.trainer.save_best else None,
        )

    def resume(self) -> bool:
        """Load per ``trainer.resume_mode`` (auto = latest in out_dir, resume_path =
        ``trainer.resume_from_path``); True when a checkpoint was loaded."""
        mode = self.cfg.trainer.resume_mode
        if mode == "disable":
            return False
        folder = (
            ckpt.latest_checkpoint(self.out_dir)
            if mode == "auto"
            else Path(self.cfg.trainer.resume_from_path).expanduser()
        )
        if folder is None:
            return False
        try:
            state = ckpt.load_trainer_state(folder)
        except (ValueError, FileNotFoundError) as e:
            raise ConfigError(str(e)) from e
        conflicts = resume_conflicts(state["config"], self.cfg)
        if conflicts:
            raise ConfigError(
                f"trainer.resume_mode={mode}: {folder} was trained with another config "
                f"({'; '.join(conflicts)}); a resumed run may change only how long it runs and "
                "what it logs (see docs/engine.md, Resume). For a new run give it a name, "
                "trainer.experiment_name=<name> (its folder is outputs/<name>), or start over "
                f"here with trainer.resume_mode=disable"
            )
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as e:
            raise ConfigError(str(e)) from e
        self.policy = self.load_policy(str(folder / "model"))
        self.optimizer, self.scheduler = make_optimizer(self.policy, self.cfg.actor)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_state(state["rng"])
        self.shuffle_gen.set_state(state["shuffle_gen"])
        self.step = state["step"]
        self.resumed_from = folder
        logger.info("resumed from %s at step %d", folder, self.step)
        return True

    def resolve_auto_bounds(self) -> None:
        """Fill the task file's ``auto`` bounds before step 1 (method.md section 7): measured
        on the current policy, or read from the resumed checkpoint (never re-measured)."""
        if not self.registry.auto_fields():
            return
        self.calibration = auto_calibration(self, self.resumed_from)
        self.registry = self.registry.with_bounds(self.calibration.overrides())
        self.step_tasks = StepTasks.from_registry(self.registry, self.cfg.algorithm.components)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> list[dict[str, Any]]:
        """Train ``trainer.total_steps`` steps; returns the metrics history (one dict per step)."""
        t = self.cfg.trainer
        resumed = self.resume()
        if resumed and self.step >= t.total_steps:
            logger.warning(
                "%s: already trained %d steps (trainer.total_steps=%d): nothing to do; raise "
                "trainer.total_steps to continue, or name a new run with trainer.experiment_name",
                self.out_dir,
                self.step,
                t.total_steps,
            )
            return []
        self.resolve_auto_bounds()
        logger.info(
            "run %s: steps %d-%d, %s on %d records of %d tasks (%s), %s on %s (%d torch threads), "
            "into %s",
            t.experiment_name,
            self.step + 1,
            t.total_steps,
            self.cfg.algorithm.adv_estimator,
            len(self.train_records),
            len(self.tasks),
            ", ".join(self.tasks),
            self.model_type,
            self.device,
            torch.get_num_threads(),
            self.out_dir,
        )
        self._history: list[dict[str, Any]] = []
        # Rows and events past the checkpoint (a fresh run: all of them) belong to a run that
        # no longer exists: drop them, so every step is logged once.
        self.tracker = Tracker(
            self.out_dir,
            t.logger,
            t.experiment_name,
            to_dict(self.cfg),
            start_step=self.step + 1 if resumed else 0,
        )
        try:
            if t.val_before_train and not resumed:
                self.tracker.log(self.validate(), step=0)
                self._history.append({"step": 0, **self.tracker.last})
            bar = _progress(t.progress_bar, total=t.total_steps, initial=self.step)
            # Log lines go through tqdm.write so they never tear the progress bar; the CLI's
            # handler sits on the package logger, not on the root.
            with logging_redirect_tqdm(loggers=[logging.root, logging.getLogger("openvlthinker")]):
                while self.step < t.total_steps:
                    metrics = self.train_step()
                    self.step += 1
                    last = self.step == t.total_steps
                    if t.test_freq > 0 and (self.step % t.test_freq == 0 or last):
                        metrics.update(self.validate())
                    self.tracker.log(metrics, step=self.step)
                    self._history.append({"step": self.step, **self.tracker.last})
                    if t.save_freq > 0 and (self.step % t.save_freq == 0 or last):
                        self.save(metrics.get(BEST_CHECKPOINT_METRIC))
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(
                            reward=f"{metrics.get('train/reward', float('nan')):.3f}",
                            entropy=f"{metrics.get('train/entropy', float('nan')):.3f}",
                        )
            if bar is not None:
                bar.close()
            if t.save_merged:
                lora.save_merged(self.policy, self.processor, self.out_dir / "merged")
        finally:
            self.tracker.close()
            close_pools()
        # A resumed run's file also holds the steps before the kill: prefer it for the plot.
        jsonl = self.out_dir / "metrics.jsonl"
        history = read_jsonl(jsonl) if "jsonl" in t.logger else self._history
        if t.plot and history:
            path = plot_history(history, self.out_dir / "training_curves.png", self.registry)
            logger.info("plot written to %s", path)
        last = history[-1] if history else {"step": self.step}
        shown = "".join(
            f" {k}={last[k]:.4g}" for k in ("train/reward", "val/macro/reward") if k in last
        )
        latest = ckpt.latest_checkpoint(self.out_dir)
        logger.info(
            "finished step %d%s; outputs in %s (%s)",
            last["step"],
            shown,
            self.out_dir,
            ", ".join(_outputs(self.out_dir, latest)),
        )
        return history


def _outputs(out_dir: Path, checkpoint: Path | None) -> list[str]:
    """The run folder's outputs that exist, relative to it."""
    names = ["metrics.jsonl", "tensorboard", "training_curves.png"]
    found = [n for n in names if (out_dir / n).exists()]
    if checkpoint is not None:
        found.append(str(checkpoint.relative_to(out_dir)))
    return found


def _progress(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
