"""The advantage step of both engines as a function of tensors: the estimator over the real
rows of a rollout batch, with the task's reward weights and the length component masked per
task, and (verl) the per-row entropy-band weight the actor loss reads.

Kept free of any engine so it is tested directly; the single-process engine calls it on its
rollout batch, verl's trainer on the fields it fetches from TransferQueue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from openvlthinker.advantage import compute_advantage
from openvlthinker.step.bands import BandSide, TaskBands, band_weights
from openvlthinker.step.scores import estimator_components


@dataclass(frozen=True)
class StepTasks:
    """What the step needs of the task file, as tensors in registry order (K tasks).

    bands: names and entropy bands; length_on: (K,) bool, the task weights length;
    reward_weights: component -> (K,) weight of the component in each task.
    """

    bands: TaskBands
    length_on: torch.Tensor
    reward_weights: dict[str, torch.Tensor]

    @classmethod
    def from_registry(cls, registry: Any, components: Sequence[str]) -> StepTasks:
        return cls(
            bands=TaskBands.from_registry(registry),
            length_on=registry.length_enabled(),
            reward_weights=registry.reward_weight_tensors(components),
        )

    @property
    def names(self) -> tuple[str, ...]:
        return self.bands.names


@dataclass
class StepInputs:
    """One rollout batch as the advantage step sees it (B rows, T response positions).

    group: prompt-group id per row (verl's uid); task_index: (B,) long into the task file;
    advantage_key: the key stage 2 of G2RPO splits on (the task, or the problem type);
    rewards: (B,) the reward the estimator reads (verl: after any KL in the reward);
    scores: score key -> (B,) (``step.scores``), the components' source; response_mask:
    (B, T); entropy: (B, T) old-policy token entropy or None; padding: (B,) bool, rows verl
    added to fill the batch, which take no part and get advantage 0; baselines: (B,) the
    greedy response's reward (ReMax) or None.
    """

    group: Sequence[Any]
    task_index: torch.Tensor
    advantage_key: Sequence[Any]
    rewards: torch.Tensor
    scores: Mapping[str, torch.Tensor]
    response_mask: torch.Tensor
    entropy: torch.Tensor | None = None
    padding: torch.Tensor | None = None
    baselines: torch.Tensor | None = None


@dataclass
class StepOutputs:
    """advantages: (B,) scalar per row in the rewards' dtype (0 for padding); band_weight:
    (B,) per-token weight of the band term (0 inside the band, for padding, and without
    entropy); band: the batch's band side (None without entropy)."""

    advantages: torch.Tensor
    band_weight: torch.Tensor
    band: BandSide | None = None


def advantage_step(
    inputs: StepInputs,
    estimator: str,
    tasks: StepTasks,
    *,
    components: Sequence[str] = (),
    options: Mapping[str, Any] | None = None,
) -> StepOutputs:
    """Advantages by ``compute_advantage(estimator)`` over the real rows and the band weights.

    components: the reward components the estimator normalises (GS-GDPO / GDPO), read from
    ``inputs.scores`` in the rewards' dtype."""
    b = inputs.rewards.numel()
    padding = torch.zeros(b, dtype=torch.bool) if inputs.padding is None else inputs.padding.bool()
    real = torch.nonzero(~padding).flatten()
    rows = real.tolist()
    all_real = len(rows) == b
    task_index = inputs.task_index[real]
    rewards = inputs.rewards[real]
    scores = {k: v[real] for k, v in inputs.scores.items()}
    comps = estimator_components(scores, components, task_index, tasks.length_on, rewards.dtype)
    call_options = dict(options or {})
    if inputs.baselines is not None:
        call_options["baselines"] = inputs.baselines[real]
    mask = inputs.response_mask[real]
    scalar = compute_advantage(
        estimator,
        rewards,
        inputs.group if all_real else [inputs.group[i] for i in rows],
        task=inputs.advantage_key if all_real else [inputs.advantage_key[i] for i in rows],
        components=comps or None,
        lengths=mask.sum(dim=-1),
        reward_weights={n: w[task_index] for n, w in tasks.reward_weights.items()},
        **call_options,
    )
    advantages = torch.zeros(b, dtype=scalar.dtype)
    advantages[real] = scalar

    band_weight = torch.zeros(b, dtype=torch.float64)
    band = None
    if inputs.entropy is not None:
        weight, band = band_weights(inputs.entropy[real], mask, task_index, tasks.bands)
        band_weight[real] = weight
    return StepOutputs(advantages=advantages, band_weight=band_weight, band=band)
