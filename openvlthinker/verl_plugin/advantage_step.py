"""The trainer's advantage step as a function of tensors: our estimator, per-task metrics
and the per-response entropy-band weight the actor loss reads.

Kept free of Ray and TransferQueue so it is tested directly; the trainer only fetches the
fields, calls :func:`advantage_step` and writes the result back by key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from openvlthinker.advantage import compute_advantage
from openvlthinker.advantage.segments import segment_count, segment_std, segment_sum
from openvlthinker.shaping import entropy_band_direction, task_token_sums


@dataclass(frozen=True)
class TaskBands:
    """Per-task entropy bands in registry order. names: K task keys; h_min, h_max, coef: (K,)."""

    names: tuple[str, ...]
    h_min: torch.Tensor
    h_max: torch.Tensor
    coef: torch.Tensor

    def index_of(self, tasks: Sequence[str], *, where: str = "data_source") -> torch.Tensor:
        """(B,) long index of each row's task; unknown tasks raise naming the row and value."""
        lookup = {name: i for i, name in enumerate(self.names)}
        out = []
        for row, key in enumerate(tasks):
            if key not in lookup:
                raise ValueError(
                    f"{where} {key!r} of row {row} is not a task of the task file; "
                    f"known: {', '.join(self.names)}"
                )
            out.append(lookup[key])
        return torch.tensor(out, dtype=torch.long)


@dataclass
class StepInputs:
    """One rollout batch as the advantage step sees it (B rows, T response positions).

    group: prompt-group id per row (verl's uid); task: task key per row (data_source);
    advantage_key: the key stage 2 of G2RPO splits on (the task, or the problem type);
    rewards: (B,) scalar outcome reward; components: name -> (B,); response_mask: (B, T);
    entropy: (B, T) old-policy token entropy or None; padding: (B,) bool, rows verl added
    to fill the batch, which take no part and get advantage 0; reward_weights: component ->
    (B,) weight of the component in the row's task (the task file's), or None.
    """

    group: list[Any]
    task: list[str]
    advantage_key: list[Any]
    rewards: torch.Tensor
    components: dict[str, torch.Tensor]
    response_mask: torch.Tensor
    entropy: torch.Tensor | None = None
    padding: torch.Tensor | None = None
    reward_weights: dict[str, torch.Tensor] | None = None


@dataclass
class StepOutputs:
    """advantages: (B,) scalar per row; band_weight: (B,) per-token weight of the band term
    (0 inside the band and for padding); metrics: name -> float."""

    advantages: torch.Tensor
    band_weight: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


def band_weights(
    entropy: torch.Tensor,
    response_mask: torch.Tensor,
    task_index: torch.Tensor,
    bands: TaskBands,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row weight of the entropy-band term, judged on the batch's old-policy entropy.

    entropy, response_mask: (B, T); task_index: (B,) long. The actor loss adds
    ``token_mean(weight * entropy)`` over a mini-batch; with weight = direction_t * coef_t *
    N / N_t (N response tokens in the batch, N_t of task t) its gradient is that of
    ``coef_t * hinge(H_t)`` whenever the mini-batch holds task t in the batch's proportion.
    Returns (weight (B,), per-task mean entropy (K,), present (K,) bool).
    """
    total, count = task_token_sums(
        entropy.to(torch.float64), response_mask, task_index, len(bands.names)
    )
    present = count > 0
    mean = total / count.clamp_min(1)
    h_min, h_max, coef = (t.to(torch.float64) for t in (bands.h_min, bands.h_max, bands.coef))
    direction = torch.where(present, entropy_band_direction(mean, h_min, h_max), 0.0)
    per_task = direction * coef * count.sum() / count.clamp_min(1)
    return per_task[task_index], mean, present


def advantage_step(
    inputs: StepInputs,
    estimator: str,
    bands: TaskBands,
    *,
    options: Mapping[str, Any] | None = None,
) -> StepOutputs:
    """Advantages by ``compute_advantage(estimator)`` over the real rows, per-task metrics
    ``train/<task>/{reward,response_length,entropy,advantage_std}`` and the band weights."""
    b = inputs.rewards.numel()
    padding = torch.zeros(b, dtype=torch.bool) if inputs.padding is None else inputs.padding.bool()
    real = torch.nonzero(~padding).flatten()
    rows = real.tolist()
    task_index = bands.index_of([inputs.task[i] for i in rows])
    rewards = inputs.rewards.to(torch.float64)[real]
    scalar = compute_advantage(
        estimator,
        rewards,
        group=[inputs.group[i] for i in rows],
        task=[inputs.advantage_key[i] for i in rows],
        components={k: v.to(torch.float64)[real] for k, v in inputs.components.items()} or None,
        lengths=inputs.response_mask[real].sum(dim=-1),
        reward_weights={k: v[real] for k, v in (inputs.reward_weights or {}).items()},
        **dict(options or {}),
    )
    advantages = torch.zeros(b, dtype=torch.float64)
    advantages[real] = scalar.to(torch.float64)

    k = len(bands.names)
    mask = inputs.response_mask[real]
    lengths = mask.sum(dim=-1).to(torch.float64)
    present = torch.bincount(task_index, minlength=k) > 0
    count = segment_count(task_index, k, torch.float64).clamp_min(1)
    reward_mean = segment_sum(rewards, task_index, k) / count
    length_mean = segment_sum(lengths, task_index, k) / count
    # segment_std broadcasts each task's value to its rows; their mean is that value
    adv_rows = segment_std(advantages[real], task_index, k, unbiased=False)
    adv_std = segment_sum(adv_rows, task_index, k) / count

    band_weight = torch.zeros(b, dtype=torch.float64)
    entropy_mean = None
    if inputs.entropy is not None:
        weight, entropy_mean, _ = band_weights(inputs.entropy[real], mask, task_index, bands)
        band_weight[real] = weight

    metrics: dict[str, float] = {}
    for t in torch.nonzero(present).flatten().tolist():
        name = bands.names[t]
        metrics[f"train/{name}/reward"] = float(reward_mean[t])
        metrics[f"train/{name}/response_length"] = float(length_mean[t])
        metrics[f"train/{name}/advantage_std"] = float(adv_std[t])
        if entropy_mean is not None:
            metrics[f"train/{name}/entropy"] = float(entropy_mean[t])
    return StepOutputs(advantages=advantages, band_weight=band_weight, metrics=metrics)
