"""The single-process G2RPO trainer. One step reads top to bottom:

rollout -> reward -> (dynamic sampling) -> advantage -> old/ref log-probs ->
mini-batch PPO-clip updates (micro-batches, grad accumulation, clipping, entropy band).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import AutoConfig

from openvlthinker.advantage import compute_advantage, estimator_requirements
from openvlthinker.advantage.segments import segment_count, segment_sum
from openvlthinker.data import load_task_data
from openvlthinker.engine import checkpoint as ckpt
from openvlthinker.engine import lora
from openvlthinker.engine.calibrate import CALIBRATION_FILE, auto_calibration
from openvlthinker.engine.config import ConfigError, TrainConfig, resume_conflicts, to_dict
from openvlthinker.engine.data import EncodedPrompts, RecordSampler, encode_records, reward_items
from openvlthinker.engine.logprob import score_tokens
from openvlthinker.engine.loss import (
    aggregate,
    aggregation_denominator,
    kl_penalty,
    ppo_clip_token_loss,
)
from openvlthinker.engine.modeling import (
    TinySpec,
    ensure_tiny_checkpoint,
    load_policy,
    load_processor,
    never_sampled_ids,
)
from openvlthinker.engine.plot import plot_history
from openvlthinker.engine.rollout import Rollout, concat_rollouts, generate
from openvlthinker.engine.tracking import Tracker, read_jsonl
from openvlthinker.engine.validation import EvalSet, PolicyCalls, run_set
from openvlthinker.rewards import RewardConfig, close_pools, score_batch, validate_problem_types
from openvlthinker.rewards.config import RESULT_KEYS
from openvlthinker.rewards.user import load_user_scorers
from openvlthinker.shaping import (
    entropy_band_direction,
    entropy_band_penalty,
    entropy_band_surrogate,
    task_token_sums,
)
from openvlthinker.tasks import compute_validation_metrics, load_tasks

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_num_threads(cores: int | None = None, load: float | None = None) -> int:
    """torch CPU threads when ``trainer.num_threads`` is null: the cores this process may run
    on (its affinity mask, ``os.sched_getaffinity``) less those other processes keep busy
    (the whole part of the 1-minute load average), at least 1.

    Why the load: torch's threads meet at a barrier in every parallel op, so a thread
    waiting for a core held by another job stalls them all. On 2 cores at load 8 the tiny
    run took 64-137 s per step with 2 threads and 7-12 s with 1 (docs/engine.md).
    An ``OMP_NUM_THREADS`` set in the environment is the user's choice and wins.
    """
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # no affinity call (macOS, Windows)
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, cores - int(load))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class StepBatch:
    """One step's final rollout batch of B responses (prompt groups of ``rollout.n`` in a row).

    records, scores, image_sizes: per response; group: (B,) prompt-group id; advantages: (B,);
    baselines: per response, the overall reward of its prompt's greedy response (ReMax);
    old_log_probs, ref_log_probs, token_entropy: (B, T); task_index: (B,) row of the registry.
    """

    rollout: Rollout
    records: list
    scores: list[dict]
    group: torch.Tensor
    image_sizes: list
    advantages: torch.Tensor | None = None
    old_log_probs: torch.Tensor | None = None
    ref_log_probs: torch.Tensor | None = None
    token_entropy: torch.Tensor | None = None
    task_index: torch.Tensor | None = None
    baselines: list[float] | None = None


class Trainer:
    """Builds everything from a validated :class:`TrainConfig`; :meth:`fit` runs the loop."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out_dir = Path(cfg.trainer.out_dir)
        torch.set_num_threads(cfg.trainer.num_threads or default_num_threads())
        self.device = resolve_device(cfg.model.device)
        self.dtype = _DTYPES[cfg.model.dtype]
        self.shuffle_gen = torch.Generator().manual_seed(cfg.trainer.seed + 1)

        # Rewards first: user scorers register their problem types before the task file loads.
        self.reward_config = RewardConfig.from_dict(cfg.reward)
        load_user_scorers(self.reward_config)
        # 'auto' bounds are measured from the policy before step 1 (resolve_auto_bounds).
        self.registry = load_tasks(cfg.data.tasks, allow_auto=True)
        self.tasks = [
            t for t in self.registry if not cfg.data.only_tasks or t in cfg.data.only_tasks
        ]
        unknown = sorted(set(cfg.data.only_tasks) - set(self.registry))
        if unknown:
            raise ConfigError(
                f"data.only_tasks={list(cfg.data.only_tasks)}: unknown task(s) {unknown} in "
                f"{cfg.data.tasks}; known: {', '.join(self.registry)}"
            )
        validate_problem_types(
            self.registry.problem_types(),
            self.reward_config,
            where=f"{cfg.data.tasks}: problem_types",
        )
        self.advantage_key = cfg.algorithm.advantage_key or self.registry.advantage_key
        self.calibration = None
        if not self.registry.auto_fields():
            self.h_min, self.h_max, self.band_coef = self.registry.entropy_tensors()
        self.length_on = self.registry.length_enabled()

        model_path = cfg.model.path
        if model_path is None:
            spec = TinySpec(**to_dict(cfg)["model"]["tiny"])
            model_path = str(ensure_tiny_checkpoint(spec, os.path.expanduser(cfg.model.cache_dir)))
        self.model_path = model_path
        self.model_type = AutoConfig.from_pretrained(model_path).model_type
        self.processor = load_processor(
            model_path, self.model_type, cfg.model.min_pixels, cfg.model.max_pixels
        )
        self.tokenizer = self.processor.tokenizer
        ip = self.processor.image_processor
        self.image_factor = int(ip.patch_size * ip.merge_size)
        self.policy = self._load_policy(model_path)
        trainable, total = lora.parameter_counts(self.policy)
        logger.info(
            "trainable parameters: %d of %d (%.4f%%)%s%s",
            trainable,
            total,
            100 * trainable / total,
            f"; LoRA rank {cfg.model.lora_rank} on {len(lora.adapted_modules(self.policy))} layers"
            if cfg.model.lora_rank > 0
            else "",
            "; vision tower frozen" if cfg.model.freeze_vision_tower else "",
        )
        # With LoRA the reference is the policy with its adapters disabled (lora.reference).
        self.ref_policy = None
        if cfg.algorithm.use_kl_loss and cfg.model.lora_rank == 0:
            self.ref_policy = copy.deepcopy(self.policy).eval().requires_grad_(False)
        vocab = self.policy.get_output_embeddings().weight.shape[0]
        self.suppress_ids = never_sampled_ids(self.tokenizer, vocab)
        self.eos_ids = sorted({self.tokenizer.eos_token_id, *self._generation_eos()})
        self.pad_id = self.tokenizer.pad_token_id

        self.optimizer, self.scheduler = self._make_optimizer()

        # Selected by each record's own task: a file listed under one task may hold others.
        train = load_task_data(self.registry, "train")
        # Every task's records: calibration also measures tasks that data.only_tasks leaves out.
        self.all_train_records = [
            r
            for recs in train.values()
            for r in (recs[: cfg.data.max_train_records] if cfg.data.max_train_records else recs)
        ]
        self.train_records = [r for r in self.all_train_records if r.task in self.tasks]
        self.sampler = RecordSampler(self.train_records, cfg.data.seed, cfg.data.shuffle)
        val = load_task_data(self.registry, "validation") if self.registry.validation_sets() else {}
        cap = cfg.data.max_val_records
        self.val_sets: dict[str, list] = {}
        for name, recs in val.items():
            kept = [r for r in (recs[:cap] if cap else recs) if r.task in self.tasks]
            if kept:
                self.val_sets[name] = kept
        self.step = 0
        self.resumed_from: Path | None = None
        # Seeded last, so whatever set-up did (building a tiny model or not) the run samples alike.
        torch.manual_seed(cfg.trainer.seed)
        self.tracker: Tracker | None = None
        self.step_hook = None  # tests: called as hook(trainer, step) after each step

    # ------------------------------------------------------------------ set-up helpers
    def _make_optimizer(self):
        """AdamW over the policy and a linear warm-up of ``actor.warmup_steps`` updates."""
        a = self.cfg.actor
        optimizer = torch.optim.AdamW(
            lora.trainable_parameters(self.policy),
            lr=a.lr,
            betas=tuple(a.betas),
            weight_decay=a.weight_decay,
        )
        warmup = a.warmup_steps
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0
        )
        return optimizer, scheduler

    def _load_policy(self, path: str):
        """The policy from ``path``: the base model, or a checkpoint's ``model/`` folder, which
        with LoRA holds the adapter (the base is then ``self.model_path``)."""
        m = self.cfg.model
        adapter = None
        if m.lora_rank > 0:
            adapter = m.lora_adapter_path if path == self.model_path else path
            path = self.model_path
        model = load_policy(path, self.dtype, self.device)
        if m.freeze_vision_tower:
            lora.freeze_vision_tower(model)
        if m.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            model.config.use_cache = False
            if m.lora_rank > 0 or m.freeze_vision_tower:
                # frozen inputs to a checkpointed block would otherwise cut the graph
                model.enable_input_require_grads()
        if m.lora_rank > 0:
            model = lora.apply_lora(model, m, adapter, seed=self.cfg.trainer.seed)
            if m.freeze_vision_tower:
                lora.check_frozen_tower_has_no_adapter(model)
        return model

    def _generation_eos(self) -> list[int]:
        eos = self.policy.generation_config.eos_token_id
        return [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))

    def _encode(self, records: list) -> EncodedPrompts:
        return encode_records(
            records,
            self.processor,
            template=self.cfg.data.template,
            min_pixels=self.cfg.model.min_pixels,
            max_pixels=self.cfg.model.max_pixels,
            factor=self.image_factor,
            max_prompt_length=self.cfg.data.max_prompt_length,
            message_options={
                "think_tag": self.reward_config.think_tag,
                "answer_tag": self.reward_config.answer_tag,
                "coordinate_frame": self.reward_config.coordinate_frame,
            },
        )

    def _generate(
        self, prompts, *, temperature: float, greedy: bool, return_log_probs: bool = False
    ) -> Rollout:
        r = self.cfg.rollout
        self.policy.eval()
        return generate(
            self.policy,
            prompts.to(self.device, self.dtype),
            max_new_tokens=r.max_new_tokens,
            temperature=temperature,
            top_p=r.top_p,
            top_k=r.top_k,
            do_sample=not greedy,
            suppress_ids=self.suppress_ids,
            eos_ids=self.eos_ids,
            pad_id=self.pad_id,
            return_log_probs=return_log_probs,
        )

    def _score(self, rollout: Rollout, records: list, image_sizes: list) -> list[dict]:
        """Reward suite on decoded responses; length counted in tokens, envelopes per task."""
        texts = self.tokenizer.batch_decode(rollout.responses.cpu(), skip_special_tokens=True)
        lengths = rollout.response_lengths().cpu().tolist()
        items = reward_items(texts, lengths, records, image_sizes, self.registry)
        return score_batch(items, config=self.reward_config)

    # ------------------------------------------------------------------ the step
    def collect(self) -> tuple[StepBatch, dict[str, float]]:
        """Rollout + reward, refilled by dynamic sampling until rollout_batch_size groups."""
        cfg, n = self.cfg, self.cfg.rollout.n
        ds = cfg.algorithm.dynamic_sampling
        want = cfg.data.rollout_batch_size
        parts, records, scores, sizes, baselines = [], [], [], [], []
        # Estimators that take per-row baselines (ReMax) get the greedy response's reward.
        needs_baselines = estimator_requirements(cfg.algorithm.adv_estimator).baselines
        timing = defaultdict(float)
        kept_groups = gen_batches = 0
        while kept_groups < want and gen_batches < (ds.max_num_gen_batches if ds.enable else 1):
            gen_batches += 1
            b_records = self.sampler.next(want)
            t0 = time.perf_counter()
            encoded = self._encode(b_records)
            rollout = self._generate(
                encoded.batch.repeat(n),
                temperature=cfg.rollout.temperature,
                greedy=False,
                return_log_probs=cfg.rollout.check_log_probs,
            )
            timing["timing/generate"] += time.perf_counter() - t0
            b_records_n = [r for r in b_records for _ in range(n)]
            b_sizes = [s for s in encoded.model_image_sizes for _ in range(n)]
            t0 = time.perf_counter()
            b_scores = self._score(rollout, b_records_n, b_sizes)
            timing["timing/reward"] += time.perf_counter() - t0
            if needs_baselines:
                t0 = time.perf_counter()
                greedy = self._generate(encoded.batch, temperature=1.0, greedy=True)
                greedy_scores = self._score(greedy, b_records, encoded.model_image_sizes)
                b_baselines = [g["overall"] for g in greedy_scores for _ in range(n)]
                timing["timing/baseline"] += time.perf_counter() - t0
            keep = torch.ones(want, dtype=torch.bool)
            if ds.enable:
                metric = torch.tensor([s[ds.metric] for s in b_scores], dtype=torch.float64).view(
                    want, n
                )
                keep = (metric.max(dim=1).values - metric.min(dim=1).values) > 0
                keep[torch.cumsum(keep.long(), 0) > want - kept_groups] = False
            kept_rows = torch.nonzero(keep.repeat_interleave(n)).flatten()
            if kept_rows.numel():
                parts.append(rollout.select(kept_rows))
                records += [b_records_n[i] for i in kept_rows.tolist()]
                scores += [b_scores[i] for i in kept_rows.tolist()]
                sizes += [b_sizes[i] for i in kept_rows.tolist()]
                if needs_baselines:
                    baselines += [b_baselines[i] for i in kept_rows.tolist()]
            kept_groups += int(keep.sum())
        if not parts:
            return None, {
                **timing,
                "batch/kept_groups": 0.0,
                "batch/gen_batches": float(gen_batches),
            }
        rollout = concat_rollouts(parts, self.pad_id)
        group = torch.arange(kept_groups).repeat_interleave(n)
        info = {
            **timing,
            "batch/kept_groups": float(kept_groups),
            "batch/gen_batches": float(gen_batches),
        }
        batch = StepBatch(rollout, records, scores, group, sizes)
        batch.baselines = baselines if needs_baselines else None
        return batch, info

    def advantage(self, batch: StepBatch) -> None:
        """One scalar per response from the configured estimator, keyed per task."""
        a = self.cfg.algorithm
        rewards = torch.tensor([s["overall"] for s in batch.scores], dtype=torch.float32)
        task_keys = [getattr(r, self.advantage_key) for r in batch.records]
        batch.task_index = torch.tensor([self.registry.index(r.task) for r in batch.records])
        components = {
            name: torch.tensor([float(s[name]) for s in batch.scores]) for name in a.components
        }
        if "length" in components:
            # A task that does not weight length gets a constant component (verl does the same).
            components["length"] = components["length"] * self.length_on[batch.task_index]
        options = dict(a.estimator_options)
        if batch.baselines is not None:
            options["baselines"] = torch.tensor(batch.baselines, dtype=torch.float32)
        # GS-GDPO / GDPO weigh each normalised component by the row's task weight
        weights = {
            name: w[batch.task_index]
            for name, w in self.registry.reward_weight_tensors(a.components).items()
        }
        batch.advantages = compute_advantage(
            a.adv_estimator,
            rewards,
            batch.group,
            task=task_keys,
            components=components,
            lengths=batch.rollout.response_lengths().cpu(),
            reward_weights=weights,
            **options,
        )

    def micro_batches(self, index: torch.Tensor) -> list[torch.Tensor]:
        return list(index.split(self.cfg.actor.micro_batch_size))

    def _token_entropy(self, scores) -> torch.Tensor:
        if self.cfg.actor.entropy_band.estimator == "full":
            return scores.entropy
        return -scores.log_probs

    def _forward(self, model, rollout: Rollout, with_grad: bool):
        full = self.cfg.actor.entropy_band.estimator == "full"
        with torch.set_grad_enabled(with_grad):
            return score_tokens(
                model,
                rollout,
                suppress_ids=self.suppress_ids,
                temperature=self.cfg.rollout.temperature,
                with_entropy=full,
            )

    @torch.no_grad()
    def old_log_probs(self, batch: StepBatch) -> None:
        """Log-probs (and token entropy) of the sampled tokens before any update."""
        self.policy.eval()
        old, ent, ref = [], [], []
        for mb in self.micro_batches(torch.arange(batch.rollout.size)):
            mb_rollout = batch.rollout.select(mb)
            scores = self._forward(self.policy, mb_rollout, with_grad=False)
            old.append(scores.log_probs)
            ent.append(self._token_entropy(scores))
            if self.cfg.algorithm.use_kl_loss:
                ref_model = self.policy if self.ref_policy is None else self.ref_policy
                with lora.reference(ref_model):
                    ref.append(self._forward(ref_model, mb_rollout, with_grad=False).log_probs)
        batch.old_log_probs = torch.cat(old)
        batch.token_entropy = torch.cat(ent)
        batch.ref_log_probs = torch.cat(ref) if ref else None

    def update(self, batch: StepBatch) -> dict[str, float]:
        """PPO-clip over mini-batches; micro-batch losses sum to the mini-batch loss."""
        cfg, a = self.cfg, self.cfg.actor
        self.policy.train()
        B = batch.rollout.size
        mini = min(a.mini_batch_size * cfg.rollout.n, B)
        device = batch.rollout.responses.device
        band_on = a.entropy_band.enable
        coef = self.band_coef.to(device)
        stats = defaultdict(list)
        for _ in range(a.ppo_epochs):
            order = torch.randperm(B, generator=self.shuffle_gen) if a.shuffle else torch.arange(B)
            for mb_index in order.split(mini):
                mb_mask = batch.rollout.response_mask[mb_index]
                denom = aggregation_denominator(mb_mask, a.loss_agg_mode)
                micros = self.micro_batches(mb_index)
                direction = count = None
                if band_on and len(micros) > 1:
                    t0 = time.perf_counter()
                    direction, count, band_value = self._minibatch_band(batch, micros, mb_index)
                    stats["actor/entropy_band_loss"].append(band_value)
                    stats["timing/entropy_band_prepass"].append(time.perf_counter() - t0)
                for micro in micros:
                    m_rollout = batch.rollout.select(micro)
                    scores = self._forward(self.policy, m_rollout, with_grad=True)
                    mask = m_rollout.response_mask
                    pg = ppo_clip_token_loss(
                        scores.log_probs,
                        batch.old_log_probs[micro],
                        batch.advantages[micro].to(device),
                        mask,
                        a.clip_ratio_low,
                        a.clip_ratio_high,
                        a.clip_ratio_dual,
                    )
                    loss = aggregate(pg.token_loss, mask, a.loss_agg_mode, denom)
                    stats["actor/pg_loss"].append(float(loss.detach()))
                    if batch.ref_log_probs is not None:
                        kl = kl_penalty(
                            scores.log_probs, batch.ref_log_probs[micro], cfg.algorithm.kl_penalty
                        )
                        kl_loss = aggregate(kl, mask, a.loss_agg_mode, denom)
                        loss = loss + cfg.algorithm.kl_coef * kl_loss
                        stats["actor/kl_loss"].append(float(kl_loss.detach()))
                    if band_on:
                        t0 = time.perf_counter()
                        if direction is None:
                            direction, count, band_value = self._band_stats(
                                self._token_entropy(scores).detach(), mask, batch.task_index[micro]
                            )
                            stats["actor/entropy_band_loss"].append(band_value)
                        loss = loss + entropy_band_surrogate(
                            self._token_entropy(scores),
                            mask,
                            batch.task_index[micro].to(device),
                            direction,
                            coef,
                            count,
                        )
                        stats["timing/entropy_band"].append(time.perf_counter() - t0)
                    loss.backward()
                    stats["actor/pg_clipfrac"].append(pg.clipfrac)
                    stats["actor/pg_clipfrac_dual"].append(pg.clipfrac_dual)
                    stats["actor/ppo_kl"].append(pg.approx_kl)
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    lora.trainable_parameters(self.policy), a.max_grad_norm
                )
                stats["actor/grad_norm"].append(float(grad_norm))
                if math.isfinite(float(grad_norm)):
                    self.optimizer.step()
                else:
                    logger.warning("step %d: non-finite gradient norm, update skipped", self.step)
                self.optimizer.zero_grad(set_to_none=True)
                self.scheduler.step()
        out = {}
        for key, values in stats.items():
            # pg/kl losses are partial sums per micro-batch: report the mini-batch total.
            if key in ("actor/pg_loss", "actor/kl_loss"):
                out[key] = sum(values) / (len(stats["actor/grad_norm"]))
            elif key.startswith("timing/"):
                out[key] = sum(values)
            else:
                out[key] = sum(values) / len(values)
        out["actor/lr"] = self.scheduler.get_last_lr()[0]
        return out

    @torch.no_grad()
    def _minibatch_band(self, batch: StepBatch, micros: list[torch.Tensor], mb_index: torch.Tensor):
        """Band direction of an accumulated mini-batch: each task's entropy over all of its
        tokens at the current parameters (one extra no-grad pass; method.md section 3)."""
        entropy = torch.cat(
            [
                self._token_entropy(self._forward(self.policy, batch.rollout.select(m), False))
                for m in micros
            ]
        )
        return self._band_stats(
            entropy, batch.rollout.response_mask[mb_index], batch.task_index[mb_index]
        )

    def _band_stats(
        self, token_entropy: torch.Tensor, mask: torch.Tensor, task_index: torch.Tensor
    ):
        """Per-task band direction (K,), token count (K,) and band loss value of a mini-batch."""
        k = self.h_min.numel()
        device = token_entropy.device
        h_min, h_max, coef = (x.to(device) for x in (self.h_min, self.h_max, self.band_coef))
        total, count = task_token_sums(token_entropy.float(), mask, task_index.to(device), k)
        mean = total / count.clamp_min(1)
        present = count > 0
        penalty = torch.where(present, entropy_band_penalty(mean, h_min, h_max, coef), 0.0).sum()
        direction = torch.where(present, entropy_band_direction(mean, h_min, h_max), 0.0)
        return direction, count, float(penalty)

    def train_step(self) -> dict[str, float]:
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
        t0 = time.perf_counter()
        self.advantage(batch)
        metrics["timing/advantage"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.old_log_probs(batch)
        metrics["timing/old_log_prob"] = time.perf_counter() - t0
        if batch.rollout.gen_log_probs is not None:
            gap = (batch.old_log_probs - batch.rollout.gen_log_probs).abs()
            metrics["debug/log_prob_gap"] = float(gap[batch.rollout.response_mask.bool()].max())
        t0 = time.perf_counter()
        metrics.update(self.update(batch))
        metrics["timing/update"] = time.perf_counter() - t0
        metrics.update(self.batch_metrics(batch))
        metrics["timing/step"] = time.perf_counter() - t_step
        response_tokens = float(batch.rollout.response_mask.sum())
        prompt_tokens = float(batch.rollout.prompts.attention_mask.sum())
        metrics["perf/response_tokens"] = response_tokens
        metrics["perf/generate_tokens_per_s"] = response_tokens / max(
            metrics["timing/generate"], 1e-9
        )
        metrics["perf/update_tokens_per_s"] = (
            (prompt_tokens + response_tokens)
            * self.cfg.actor.ppo_epochs
            / max(metrics["timing/update"], 1e-9)
        )
        metrics["perf/peak_memory_mb"] = peak_memory_mb(self.device)
        return metrics

    def batch_metrics(self, batch: StepBatch) -> dict[str, float]:
        """train/<metric> and train/<task>/<metric>: rewards, lengths, entropy, advantages.

        Segment sums over task rows (segment K is the whole batch); tasks absent from the
        batch log nothing."""
        k = len(self.registry)
        b = len(batch.scores)
        mask = batch.rollout.response_mask.to(torch.float64).cpu()
        lengths = mask.sum(-1)
        values = {
            "response_length": lengths,
            # summed per segment, divided by the segment's tokens below (token mean)
            "entropy": (batch.token_entropy.to(torch.float64).cpu() * mask).sum(-1),
            "advantage_mean": batch.advantages.to(torch.float64).cpu(),
        }
        for name in RESULT_KEYS:
            values["reward" if name == "overall" else name] = torch.tensor(
                [float(s[name]) for s in batch.scores], dtype=torch.float64
            )
        task_index = batch.task_index.cpu()
        seg = torch.cat([task_index, torch.full_like(task_index, k)])
        count = segment_count(seg, k + 1, torch.float64)

        def per_segment(x: torch.Tensor) -> torch.Tensor:
            return segment_sum(torch.cat([x, x]), seg, k + 1)

        means = {name: per_segment(x) / count.clamp_min(1) for name, x in values.items()}
        means["entropy"] = per_segment(values["entropy"]) / per_segment(lengths).clamp_min(1)
        adv = values["advantage_mean"]
        centred = torch.cat([adv, adv]) - means["advantage_mean"][seg]
        means["advantage_std"] = (
            segment_sum(centred * centred, seg, k + 1) / count.clamp_min(1)
        ).sqrt()
        names = [*self.registry, None]
        out: dict[str, float] = {}
        for s in torch.nonzero(count > 0).flatten().tolist():
            prefix = "" if names[s] is None else f"{names[s]}/"
            out.update({f"train/{prefix}{name}": float(m[s]) for name, m in means.items()})
        out["train/reward_error_rate"] = sum(s.get("error") is not None for s in batch.scores) / b
        out["batch/responses"] = float(b)
        out["batch/clip_ratio"] = float((lengths >= self.cfg.rollout.max_new_tokens).float().mean())
        return out

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Every validation set of every (selected) task: per-set, per-task and macro metrics."""
        if not self.val_sets:
            return {}
        r = self.cfg.rollout
        samples = []
        t0 = time.perf_counter()
        # Validation draws from its own seeded stream: it never shifts the training samples.
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(self.cfg.trainer.seed + 10_000 + self.step)
            for spec in self.eval_sets():
                samples += run_set(
                    spec,
                    self.policy_calls(r.val_temperature),
                    n=r.val_n,
                    batch_size=r.val_batch_size,
                    max_new_tokens=r.max_new_tokens,
                    answer_tag=self.reward_config.answer_tag,
                    think_tag=self.reward_config.think_tag,
                    coordinate_frame=self.reward_config.coordinate_frame,
                )
        tasks = [t for t in self.tasks if any(s["task"] == t for s in samples)]
        metrics = compute_validation_metrics(samples, tasks=tasks)
        metrics["timing/validation"] = time.perf_counter() - t0
        return metrics

    def eval_sets(self) -> list[EvalSet]:
        """The loaded validation sets with their task and benchmark metric."""
        named = self.registry.validation_sets()
        return [
            EvalSet(name, named[name][0], named[name][1].metric, records)
            for name, records in self.val_sets.items()
        ]

    def policy_calls(self, temperature: float) -> PolicyCalls:
        """encode / generate (greedy at temperature 0) / score / decode of this policy."""
        greedy = temperature == 0
        return PolicyCalls(
            encode=self._encode,
            generate=lambda batch: self._generate(
                batch, temperature=temperature or 1.0, greedy=greedy
            ),
            score=self._score,
            decode=lambda rollout: self.tokenizer.batch_decode(
                rollout.responses.cpu(), skip_special_tokens=True
            ),
        )

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

    def save(self) -> Path:
        return ckpt.save_checkpoint(
            self.out_dir,
            self.step,
            self.policy,
            self.processor,
            self.state_dict(),
            keep=self.cfg.trainer.save_limit,
            files={CALIBRATION_FILE: self.calibration.to_json()} if self.calibration else None,
        )

    def resume(self) -> bool:
        """Load ``trainer.resume`` (auto = latest in out_dir); True when a checkpoint was loaded."""
        mode = self.cfg.trainer.resume
        if mode == "disable":
            return False
        folder = ckpt.latest_checkpoint(self.out_dir) if mode == "auto" else Path(mode)
        if folder is None:
            return False
        try:
            state = ckpt.load_trainer_state(folder)
        except (ValueError, FileNotFoundError) as e:
            raise ConfigError(str(e)) from e
        conflicts = resume_conflicts(state["config"], self.cfg)
        if conflicts:
            raise ConfigError(
                f"trainer.resume={mode}: {folder} was trained with another config "
                f"({'; '.join(conflicts)}); a resumed run may change only how long it runs and "
                "what it logs (see docs/engine.md, Resume). For a new run give it a name, "
                "trainer.experiment_name=<name> (its folder is outputs/<name>), or start over "
                f"here with trainer.resume=disable"
            )
        try:
            self.sampler.load_state_dict(state["sampler"])
        except ValueError as e:
            raise ConfigError(str(e)) from e
        self.policy = self._load_policy(str(folder / "model"))
        self.optimizer, self.scheduler = self._make_optimizer()
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
        self.h_min, self.h_max, self.band_coef = self.registry.entropy_tensors()

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
                    if t.val_freq > 0 and (self.step % t.val_freq == 0 or last):
                        metrics.update(self.validate())
                    self.tracker.log(metrics, step=self.step)
                    self._history.append({"step": self.step, **self.tracker.last})
                    if t.save_freq > 0 and (self.step % t.save_freq == 0 or last):
                        self.save()
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(
                            reward=f"{metrics.get('train/reward', float('nan')):.3f}",
                            entropy=f"{metrics.get('train/entropy', float('nan')):.3f}",
                        )
                    if self.step_hook is not None:
                        self.step_hook(self, self.step)
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


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
