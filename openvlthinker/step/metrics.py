"""The per-task training metrics of a rollout batch, the same set under the same names in
both engines.

``train/<metric>`` over the batch and ``train/<task>/<metric>`` per task present:
``reward`` (the scored overall reward, before any KL in the reward), each reward component,
``acc``, ``reward_error_rate``, ``response_length`` (tokens), ``entropy`` (token mean of the
old policy's token entropy), ``advantage_mean`` and ``advantage_std`` (population).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from openvlthinker.advantage.segments import segment_count, segment_sum

#: Score keys whose metric has another name.
METRIC_NAMES = {"overall": "reward", "reward_error": "reward_error_rate"}


def training_metrics(
    task_names: Sequence[str],
    task_index: torch.Tensor,
    scores: Mapping[str, torch.Tensor],
    response_mask: torch.Tensor,
    advantages: torch.Tensor,
    token_entropy: torch.Tensor | None = None,
) -> dict[str, float]:
    """task_index: (B,) long into ``task_names``; scores: score key -> (B,) (see
    ``step.scores``); response_mask, token_entropy: (B, T); advantages: (B,).

    One segment per task plus one for the whole batch (segment K); tasks absent from the
    batch log nothing."""
    k = len(task_names)
    mask = response_mask.to(torch.float64).cpu()
    lengths = mask.sum(-1)
    values = {"response_length": lengths}
    if token_entropy is not None:
        # summed per segment, divided by the segment's tokens below (token mean)
        values["entropy"] = (token_entropy.to(torch.float64).cpu() * mask).sum(-1)
    values["advantage_mean"] = advantages.to(torch.float64).cpu()
    for key, value in scores.items():
        values[METRIC_NAMES.get(key, key)] = value.to(torch.float64).cpu()
    task_index = task_index.cpu()
    seg = torch.cat([task_index, torch.full_like(task_index, k)])
    count = segment_count(seg, k + 1, torch.float64)

    def per_segment(x: torch.Tensor) -> torch.Tensor:
        return segment_sum(torch.cat([x, x]), seg, k + 1)

    means = {name: per_segment(x) / count.clamp_min(1) for name, x in values.items()}
    if token_entropy is not None:
        means["entropy"] = per_segment(values["entropy"]) / per_segment(lengths).clamp_min(1)
    adv = values["advantage_mean"]
    centred = torch.cat([adv, adv]) - means["advantage_mean"][seg]
    means["advantage_std"] = (
        segment_sum(centred * centred, seg, k + 1) / count.clamp_min(1)
    ).sqrt()
    names = [*task_names, None]
    out: dict[str, float] = {}
    for s in torch.nonzero(count > 0).flatten().tolist():
        prefix = "" if names[s] is None else f"{names[s]}/"
        out.update({f"train/{prefix}{name}": float(m[s]) for name, m in means.items()})
    return out
