"""Linear estimators kept for comparison: GRPO, GDPO, RLOO, REINFORCE++ and ReMax."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from openvlthinker.advantage.registry import Batch, register_estimator
from openvlthinker.advantage.segments import segment_count, segment_mean, segment_std

_STD_KINDS = ("population", "unbiased")


def _group_zscore(x: torch.Tensor, batch: Batch, std: str, eps: float, scale: bool) -> torch.Tensor:
    if std not in _STD_KINDS:
        raise ValueError(f"algorithm.std {std!r} is invalid; choose one of {list(_STD_KINDS)}")
    centred = x - segment_mean(x, batch.group, batch.num_groups)
    if not scale:
        return centred
    return centred / (
        segment_std(x, batch.group, batch.num_groups, unbiased=std == "unbiased") + eps
    )


def _whiten(x: torch.Tensor, eps: float) -> torch.Tensor:
    if x.numel() < 2:
        return torch.zeros_like(x)
    return (x - x.mean()) / (x.std(unbiased=True) + eps)


@register_estimator("grpo")
def grpo(
    batch: Batch, std: str = "population", eps: float = 1e-6, scale_by_std: bool = True
) -> torch.Tensor:
    """GRPO: (R - mean_group) / (std_group + eps). A one-response group gets 0 (no baseline);
    ``scale_by_std=False`` gives Dr. GRPO's mean-centring only."""
    return _group_zscore(batch.rewards, batch, std, eps, scale_by_std)


@register_estimator("gdpo", needs_components=True)
def gdpo(
    batch: Batch,
    std: str = "population",
    eps: float = 1e-6,
    component_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """GDPO: each component z-scored inside its group, the (weighted) z-scores summed,
    then whitened over the whole batch."""
    weights = dict(component_weights or {})
    total = torch.zeros_like(batch.rewards)
    for key, value in batch.components.items():
        total = total + weights.get(key, 1.0) * _group_zscore(value, batch, std, eps, True)
    return _whiten(total, eps)


@register_estimator("rloo")
def rloo(batch: Batch) -> torch.Tensor:
    """RLOO: R_i minus the mean of the other responses of its group; 0 for a lone response."""
    n = segment_count(batch.group, batch.num_groups, batch.rewards.dtype)[batch.group]
    centred = batch.rewards - segment_mean(batch.rewards, batch.group, batch.num_groups)
    return torch.where(n > 1, centred * n / (n - 1).clamp_min(1), torch.zeros_like(centred))


@register_estimator("reinforce_plus_plus")
def reinforce_plus_plus(batch: Batch, baseline: str = "none", eps: float = 1e-6) -> torch.Tensor:
    """REINFORCE++ (outcome form): rewards whitened over the batch; ``baseline="group"``
    subtracts the group mean first (REINFORCE++-baseline)."""
    if baseline not in ("none", "group"):
        raise ValueError(f"algorithm.baseline {baseline!r} is invalid; choose 'none' or 'group'")
    r = batch.rewards
    if baseline == "group":
        r = r - segment_mean(r, batch.group, batch.num_groups)
    return _whiten(r, eps)


@register_estimator("remax")
def remax(batch: Batch, baselines: torch.Tensor | None = None) -> torch.Tensor:
    """ReMax: R minus the reward of the greedy response to the same prompt (``baselines``, (B,))."""
    if baselines is None:
        raise ValueError("remax needs baselines=(B,) tensor: the greedy response's reward per row")
    b = torch.as_tensor(baselines, dtype=torch.float64)
    if b.shape != batch.rewards.shape:
        raise ValueError(
            f"remax: baselines shape {tuple(b.shape)} != rewards {tuple(batch.rewards.shape)}"
        )
    if not torch.isfinite(b).all():
        rows = torch.nonzero(~torch.isfinite(b)).flatten()[:10].tolist()
        raise ValueError(f"remax: non-finite baselines at rows {rows}")
    return batch.rewards - b
