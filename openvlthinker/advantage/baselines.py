"""Linear estimators kept for comparison: GRPO, GDPO, RLOO, REINFORCE++ and ReMax.

Every default is verl 0.9.1's choice (``verl/trainer/ppo/core_algos.py``), so a name that
verl also has gives verl's numbers: unbiased group std, a one-response group keeps its raw
reward (verl's mean 0 / std 1), batch whitening over response *tokens* (verl's
``masked_whiten``). Our earlier choices stay as named options: ``std="population"``,
``singleton="zero"``, ``whiten="response"`` (docs/method.md lists each difference).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from openvlthinker.advantage.registry import Batch, option_error, register_estimator
from openvlthinker.advantage.segments import segment_count, segment_mean, segment_std

STD_KINDS = ("unbiased", "population")
SINGLETON_KINDS = ("keep", "zero")
WHITEN_KINDS = ("token", "response")
# verl's masked_mean / masked_whiten constants (torch_functional.py), kept for parity.
_VERL_MEAN_EPS = 1e-8
_VERL_VAR_EPS = 1e-8


def _check(option: str, value: str, kinds: tuple[str, ...]) -> None:
    if value not in kinds:
        raise option_error(option, f"{value!r} is invalid; choose one of {list(kinds)}")


def _lone(batch: Batch) -> torch.Tensor:
    """(B,) bool: the row is the only response of its prompt group."""
    return segment_count(batch.group, batch.num_groups, torch.float64)[batch.group] == 1


def _group_zscore(
    x: torch.Tensor, batch: Batch, std: str, eps: float, scale: bool, singleton: str
) -> torch.Tensor:
    """(x - mean_g) / (std_g + eps) per prompt group; a lone response gets x / (1 + eps)
    (verl: mean 0, std 1) or x with ``scale=False``, or 0 with ``singleton="zero"``."""
    _check("std", std, STD_KINDS)
    _check("singleton", singleton, SINGLETON_KINDS)
    centred = x - segment_mean(x, batch.group, batch.num_groups)
    if scale:
        spread = segment_std(x, batch.group, batch.num_groups, unbiased=std == "unbiased")
        centred = centred / (spread + eps)
    if singleton == "zero":
        return centred
    kept = x / (1.0 + eps) if scale else x
    return torch.where(_lone(batch), kept, centred)


def _whiten(x: torch.Tensor, batch: Batch, kind: str, eps: float, name: str) -> torch.Tensor:
    """Batch whitening. ``token`` (verl's masked_whiten of the per-token broadcast): mean and
    unbiased variance over all response tokens, i.e. each response weighted by its length,
    then (x - mean) / sqrt(var + 1e-8). ``response``: one vote per response,
    (x - mean) / (std + eps). Fewer than 2 tokens (responses) give 0."""
    _check("whiten", kind, WHITEN_KINDS)
    if kind == "response":
        if x.numel() < 2:
            return torch.zeros_like(x)
        return (x - x.mean()) / (x.std(unbiased=True) + eps)
    if batch.lengths is None:
        raise ValueError(
            f"{name}: whiten='token' (verl's) weighs responses by their length: pass "
            "lengths=(B,) response token counts, or set whiten='response'"
        )
    w = batch.lengths
    tokens = w.sum()
    if float(tokens) < 2:
        return torch.zeros_like(x)
    mean = (w * x).sum() / (tokens + _VERL_MEAN_EPS)
    var = (w * (x - mean) ** 2).sum() / (tokens + _VERL_MEAN_EPS) * tokens / (tokens - 1)
    return (x - mean) * torch.rsqrt(var + _VERL_VAR_EPS)


@register_estimator("grpo")
def grpo(
    batch: Batch,
    std: str = "unbiased",
    eps: float = 1e-6,
    norm_adv_by_std_in_grpo: bool = True,
    singleton: str = "keep",
) -> torch.Tensor:
    """GRPO: (R - mean_group) / (std_group + eps), as verl's ``compute_grpo_outcome_advantage``.
    ``norm_adv_by_std_in_grpo=False`` (verl's key) gives Dr. GRPO's mean-centring only."""
    return _group_zscore(batch.rewards, batch, std, eps, norm_adv_by_std_in_grpo, singleton)


@register_estimator("gdpo", needs_components=True, needs_lengths=True)
def gdpo(
    batch: Batch,
    std: str = "unbiased",
    eps: float = 1e-6,
    norm_adv_by_std_in_grpo: bool = True,
    singleton: str = "keep",
    whiten: str = "token",
    component_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """GDPO: each component GRPO-normalised inside its group, the z-scores summed with the
    task's reward weights (``component_weights`` overrides; neither: 1.0, verl's default),
    then whitened over the batch (verl's ``compute_gdpo_outcome_advantage``)."""
    total = torch.zeros_like(batch.rewards)
    for key, weight in batch.weights_of(component_weights).items():
        z = _group_zscore(
            batch.components[key], batch, std, eps, norm_adv_by_std_in_grpo, singleton
        )
        total = total + weight * z
    return _whiten(total, batch, whiten, eps, "gdpo")


@register_estimator("rloo")
def rloo(batch: Batch, singleton: str = "keep") -> torch.Tensor:
    """RLOO: R_i minus the mean of the other responses of its group; a lone response keeps
    its reward (verl) or gets 0 (``singleton="zero"``)."""
    _check("singleton", singleton, SINGLETON_KINDS)
    n = segment_count(batch.group, batch.num_groups, batch.rewards.dtype)[batch.group]
    centred = batch.rewards - segment_mean(batch.rewards, batch.group, batch.num_groups)
    lone = batch.rewards if singleton == "keep" else torch.zeros_like(centred)
    return torch.where(n > 1, centred * n / (n - 1).clamp_min(1), lone)


@register_estimator("reinforce_plus_plus", needs_lengths=True)
def reinforce_plus_plus(
    batch: Batch,
    baseline: str = "none",
    eps: float = 1e-6,
    whiten: str = "token",
    singleton: str = "keep",
) -> torch.Tensor:
    """REINFORCE++ (outcome form, gamma = 1): rewards whitened over the batch.
    ``baseline="group"`` subtracts the group mean first: verl's ``reinforce_plus_plus_baseline``
    (a lone response keeps its reward there; ``singleton="zero"`` gives it 0)."""
    if baseline not in ("none", "group"):
        raise option_error("baseline", f"{baseline!r} is invalid; choose 'none' or 'group'")
    _check("singleton", singleton, SINGLETON_KINDS)
    r = batch.rewards
    if baseline == "group":
        centred = r - segment_mean(r, batch.group, batch.num_groups)
        r = torch.where(_lone(batch), r, centred) if singleton == "keep" else centred
    return _whiten(r, batch, whiten, eps, "reinforce_plus_plus")


@register_estimator("remax", needs_baselines=True)
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
