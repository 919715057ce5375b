"""The policy update of one step: ``actor.ppo_epochs`` passes of PPO-clip over shuffled
mini-batches (one optimiser step each), accumulated over micro-batches, with the KL loss to
the reference and the per-task entropy band (method.md section 3), then gradient clipping.

The micro-batch losses sum exactly to the mini-batch loss: each is aggregated with the
mini-batch's normaliser, and the band's direction is judged on the whole mini-batch
(one extra no-grad pass when it spans several micro-batches).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass

import torch

from openvlthinker.engine import lora
from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.loss import (
    aggregate,
    aggregation_denominator,
    kl_penalty,
    ppo_clip_token_loss,
)
from openvlthinker.engine.phases import OldLogProbs, RolloutBatch
from openvlthinker.engine.policy import PolicyIO
from openvlthinker.shaping import entropy_band_surrogate
from openvlthinker.step import BandSide, TaskBands, band_side

logger = logging.getLogger(__name__)

#: Statistics summed per micro-batch: the mini-batch's loss is their sum.
_SUMMED = ("actor/pg_loss", "actor/kl_loss")


@dataclass(frozen=True)
class UpdateSettings:
    """mini_batch_size / micro_batch_size: responses per optimiser step / per forward
    (``actor.mini_batch_size`` prompts x ``rollout.n``; ``actor.micro_batch_size``);
    kl_loss_type, kl_loss_coef: the KL loss's estimator and weight (used when the step brings
    reference log-probs); entropy_band: add the band's surrogate; the rest as in ``actor``."""

    ppo_epochs: int
    shuffle: bool
    mini_batch_size: int
    micro_batch_size: int
    clip_ratio_low: float
    clip_ratio_high: float
    clip_ratio_c: float | None
    loss_agg_mode: str
    kl_loss_type: str
    kl_loss_coef: float
    entropy_band: bool
    max_grad_norm: float

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> UpdateSettings:
        a = cfg.actor
        return cls(
            ppo_epochs=a.ppo_epochs,
            shuffle=a.shuffle,
            mini_batch_size=a.mini_batch_size * cfg.rollout.n,
            micro_batch_size=a.micro_batch_size,
            clip_ratio_low=a.clip_ratio_low,
            clip_ratio_high=a.clip_ratio_high,
            clip_ratio_c=a.clip_ratio_c,
            loss_agg_mode=a.loss_agg_mode,
            kl_loss_type=a.kl_loss_type,
            kl_loss_coef=a.kl_loss_coef,
            entropy_band=a.entropy_band.enable,
            max_grad_norm=a.max_grad_norm,
        )


class PolicyUpdate:
    """One step's update of ``policy`` by ``optimizer`` / ``scheduler`` against ``bands``."""

    def __init__(
        self,
        policy: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        io: PolicyIO,
        bands: TaskBands,
        settings: UpdateSettings,
    ):
        self.policy, self.optimizer, self.scheduler = policy, optimizer, scheduler
        self.io, self.bands, self.settings = io, bands, settings

    def __call__(
        self,
        batch: RolloutBatch,
        advantages: torch.Tensor,
        old: OldLogProbs,
        shuffle_gen: torch.Generator,
        step: int,
    ) -> dict[str, float]:
        """actor/* statistics (means over micro- or mini-batches) and timing/entropy_band*."""
        s = self.settings
        self.policy.train()
        size = batch.size
        mini_size = min(s.mini_batch_size, size)
        stats: dict[str, list[float]] = defaultdict(list)
        for _ in range(s.ppo_epochs):
            order = torch.randperm(size, generator=shuffle_gen) if s.shuffle else torch.arange(size)
            for mini_index in order.split(mini_size):
                self.mini_batch(batch, advantages, old, mini_index, stats, step)
        optimiser_steps = len(stats["actor/grad_norm"])
        out = {}
        for key, values in stats.items():
            if key in _SUMMED:
                out[key] = sum(values) / optimiser_steps
            elif key.startswith("timing/"):
                out[key] = sum(values)
            else:
                out[key] = sum(values) / len(values)
        out["actor/lr"] = self.scheduler.get_last_lr()[0]
        return out

    def mini_batch(
        self,
        batch: RolloutBatch,
        advantages: torch.Tensor,
        old: OldLogProbs,
        mini_index: torch.Tensor,
        stats: dict[str, list[float]],
        step: int,
    ) -> None:
        """Accumulate the micro-batches' gradients, clip, take one optimiser step."""
        s = self.settings
        mini_mask = batch.rollout.response_mask[mini_index]
        denominator = aggregation_denominator(mini_mask, s.loss_agg_mode)
        micro_indices = list(mini_index.split(s.micro_batch_size))
        band = None
        if s.entropy_band and len(micro_indices) > 1:
            t0 = time.perf_counter()
            band = self.mini_batch_band(batch, micro_indices, mini_index)
            stats["actor/entropy_band_loss"].append(band.penalty)
            stats["timing/entropy_band_prepass"].append(time.perf_counter() - t0)
        for micro_index in micro_indices:
            self.micro_batch_loss(batch, advantages, old, micro_index, denominator, band, stats)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            lora.trainable_parameters(self.policy), s.max_grad_norm
        )
        stats["actor/grad_norm"].append(float(grad_norm))
        if math.isfinite(float(grad_norm)):
            self.optimizer.step()
        else:
            logger.warning("step %d: non-finite gradient norm, update skipped", step)
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def micro_batch_loss(
        self,
        batch: RolloutBatch,
        advantages: torch.Tensor,
        old: OldLogProbs,
        micro_index: torch.Tensor,
        denominator: float,
        band: BandSide | None,
        stats: dict[str, list[float]],
    ) -> None:
        """Forward one micro-batch and backpropagate its share of the mini-batch loss;
        ``band``: the mini-batch's band side, or None to judge it on this micro-batch."""
        s = self.settings
        micro = batch.rollout.select(micro_index)
        mask = micro.response_mask
        device = batch.rollout.responses.device
        new = self.io.log_probs(self.policy, micro, with_grad=True, entropy=s.entropy_band)
        pg = ppo_clip_token_loss(
            new.log_probs,
            old.log_probs[micro_index],
            advantages[micro_index].to(device),
            mask,
            s.clip_ratio_low,
            s.clip_ratio_high,
            s.clip_ratio_c,
        )
        loss = aggregate(pg.token_loss, mask, s.loss_agg_mode, denominator)
        stats["actor/pg_loss"].append(float(loss.detach()))
        if old.ref_log_probs is not None:
            kl = kl_penalty(new.log_probs, old.ref_log_probs[micro_index], s.kl_loss_type)
            kl_loss = aggregate(kl, mask, s.loss_agg_mode, denominator)
            loss = loss + s.kl_loss_coef * kl_loss
            stats["actor/kl_loss"].append(float(kl_loss.detach()))
        if s.entropy_band:
            t0 = time.perf_counter()
            task_index = batch.task_index[micro_index]
            if band is None:
                band = band_side(new.entropy.detach().float(), mask, task_index, self.bands)
                stats["actor/entropy_band_loss"].append(band.penalty)
            loss = loss + entropy_band_surrogate(
                new.entropy,
                mask,
                task_index.to(device),
                band.direction,
                self.bands.coef.to(device),
                band.count,
            )
            stats["timing/entropy_band"].append(time.perf_counter() - t0)
        loss.backward()
        stats["actor/pg_clipfrac"].append(pg.clipfrac)
        stats["actor/pg_clipfrac_dual"].append(pg.clipfrac_dual)
        stats["actor/ppo_kl"].append(pg.approx_kl)

    @torch.no_grad()
    def mini_batch_band(
        self, batch: RolloutBatch, micro_indices: list[torch.Tensor], mini_index: torch.Tensor
    ) -> BandSide:
        """The band side of an accumulated mini-batch: each task's entropy over all of its
        tokens at the current parameters (one extra no-grad pass; method.md section 3)."""
        entropy = torch.cat(
            [self.io.log_probs(self.policy, batch.rollout.select(m)).entropy for m in micro_indices]
        )
        mask = batch.rollout.response_mask[mini_index]
        return band_side(entropy.float(), mask, batch.task_index[mini_index], self.bands)
