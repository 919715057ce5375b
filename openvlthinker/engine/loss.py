"""PPO-clip policy loss, KL penalty and token aggregation, as pure tensor functions.

Aggregation takes the mini-batch's normaliser explicitly, so the losses of its
micro-batches sum to the mini-batch loss (token-mean over the whole mini-batch, not a
mean of micro-batch means).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum")
KL_PENALTIES = ("low_var_kl", "kl", "mse", "abs")


def aggregation_denominator(response_mask: torch.Tensor, mode: str) -> float:
    """Normaliser of a (mini-)batch for ``mode``: its token count or its sequence count."""
    if mode == "token-mean":
        return float(response_mask.sum())
    if mode in ("seq-mean-token-mean", "seq-mean-token-sum"):
        return float(response_mask.shape[0])
    raise ValueError(f"actor.loss_agg_mode {mode!r} is unknown; known: {', '.join(LOSS_AGG_MODES)}")


def aggregate(
    values: torch.Tensor, mask: torch.Tensor, mode: str, denominator: float
) -> torch.Tensor:
    """Sum of token ``values`` (B, T) under ``mask`` normalised per ``mode``; scalar.

    token-mean: sum / denominator (tokens of the mini-batch). seq-mean-token-mean: each
    sequence's token mean, summed / denominator (sequences of the mini-batch).
    seq-mean-token-sum: each sequence's token sum, summed / denominator.
    """
    mask = mask.to(values.dtype)
    if mode == "token-mean":
        total = (values * mask).sum()
    elif mode == "seq-mean-token-mean":
        total = ((values * mask).sum(-1) / mask.sum(-1).clamp_min(1)).sum()
    elif mode == "seq-mean-token-sum":
        total = (values * mask).sum()
    else:
        raise ValueError(
            f"actor.loss_agg_mode {mode!r} is unknown; known: {', '.join(LOSS_AGG_MODES)}"
        )
    return total / max(denominator, 1.0)


@dataclass
class PolicyLossOutput:
    """Per-token PPO loss (B, T) and masked-mean diagnostics (floats)."""

    token_loss: torch.Tensor
    clipfrac: float
    clipfrac_dual: float
    approx_kl: float


def ppo_clip_token_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    clip_low: float,
    clip_high: float,
    clip_dual: float | None,
) -> PolicyLossOutput:
    """Clipped surrogate per token (PPO; decoupled low/high clip; dual clip for A < 0).

    log_probs, old_log_probs: (B, T); advantages: (B,) or (B, T); response_mask: (B, T).
    loss = max(-A r, -A clip(r, 1 - low, 1 + high)), and for A < 0 at most -A * dual.
    """
    if advantages.dim() == 1:
        advantages = advantages[:, None].expand_as(log_probs)
    log_ratio = (log_probs - old_log_probs).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    loss_unclipped = -advantages * ratio
    loss_clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss = torch.maximum(loss_unclipped, loss_clipped)
    mask = response_mask.bool()
    dual_hit = torch.zeros_like(mask)
    if clip_dual is not None:
        dual_cap = -advantages * clip_dual
        dual_hit = (advantages < 0) & (loss > dual_cap)
        loss = torch.where(advantages < 0, torch.minimum(loss, dual_cap), loss)
    n = mask.sum().clamp_min(1)
    with torch.no_grad():
        clipfrac = ((loss_clipped > loss_unclipped) & mask).sum() / n
        dualfrac = (dual_hit & mask).sum() / n
        approx_kl = (-log_ratio * mask).sum() / n
    return PolicyLossOutput(loss, float(clipfrac), float(dualfrac), float(approx_kl))


def kl_penalty(log_probs: torch.Tensor, ref_log_probs: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-token KL(pi || ref) estimate (B, T): k1 "kl", k2 "mse", k3 "low_var_kl", "abs"."""
    diff = log_probs - ref_log_probs
    if kind == "kl":
        return diff
    if kind == "abs":
        return diff.abs()
    if kind == "mse":
        return 0.5 * diff.square()
    if kind == "low_var_kl":
        neg = (ref_log_probs - log_probs).clamp(-20.0, 20.0)
        return (torch.exp(neg) - neg - 1.0).clamp(-10.0, 10.0)
    raise ValueError(f"actor.kl_loss_type {kind!r} is unknown; known: {', '.join(KL_PENALTIES)}")
