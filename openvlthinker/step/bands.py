"""Per-task entropy bands and the side of its band each task is on (method.md section 3).

Both engines judge the band the same way: each task's token-mean entropy over the tokens at
hand (a mini-batch in the single-process engine, the rollout batch on verl), the hinge
``coef * (relu(H - h_max) + relu(h_min - H))`` as the logged ``actor/entropy_band_loss``, and
its direction, which the engines' surrogate terms turn into a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from openvlthinker.shaping import entropy_band_direction, entropy_band_penalty, task_token_sums


@dataclass(frozen=True)
class TaskBands:
    """Per-task entropy bands in registry order. names: K task keys; h_min, h_max, coef: (K,)."""

    names: tuple[str, ...]
    h_min: torch.Tensor
    h_max: torch.Tensor
    coef: torch.Tensor

    @classmethod
    def from_registry(cls, registry: Any) -> TaskBands:
        """The bands of a :class:`~openvlthinker.tasks.TaskRegistry`, in its index order."""
        h_min, h_max, coef = registry.entropy_tensors()
        return cls(names=tuple(registry), h_min=h_min, h_max=h_max, coef=coef)


@dataclass(frozen=True)
class BandSide:
    """Where each task of a batch stands against its band. All (K,) but ``penalty``.

    mean: token-mean entropy; count: response tokens; present: count > 0;
    direction: +1 above h_max, -1 below h_min, 0 inside or absent;
    penalty: the band loss, sum over present tasks of coef * hinge(mean).
    """

    mean: torch.Tensor
    count: torch.Tensor
    present: torch.Tensor
    direction: torch.Tensor
    penalty: float


def band_side(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    task_index: torch.Tensor,
    bands: TaskBands,
) -> BandSide:
    """The side of its band each task is on over these tokens, in ``token_entropy``'s dtype
    and device. token_entropy, response_mask: (B, T); task_index: (B,) long."""
    dtype, device = token_entropy.dtype, token_entropy.device
    h_min, h_max, coef = (x.to(device, dtype) for x in (bands.h_min, bands.h_max, bands.coef))
    total, count = task_token_sums(
        token_entropy, response_mask, task_index.to(device), len(bands.names)
    )
    mean = total / count.clamp_min(1)
    present = count > 0
    penalty = torch.where(present, entropy_band_penalty(mean, h_min, h_max, coef), 0.0).sum()
    direction = torch.where(present, entropy_band_direction(mean, h_min, h_max), 0.0)
    return BandSide(
        mean=mean, count=count, present=present, direction=direction, penalty=float(penalty)
    )


def band_weights(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    task_index: torch.Tensor,
    bands: TaskBands,
) -> tuple[torch.Tensor, BandSide]:
    """Per-row weight of the band term, judged on the whole batch (verl's actor loss).

    The actor loss adds ``token_mean(weight * entropy)`` over a mini-batch; with weight =
    direction_t * coef_t * N / N_t (N response tokens in the batch, N_t of task t) its
    gradient is that of ``coef_t * hinge(H_t)`` whenever the mini-batch holds task t in the
    batch's proportion. Returns (weight (B,) float64, the batch's :class:`BandSide`).
    """
    side = band_side(token_entropy.to(torch.float64), response_mask, task_index, bands)
    coef = bands.coef.to(torch.float64)
    per_task = side.direction * coef * side.count.sum() / side.count.clamp_min(1)
    return per_task[task_index], side
