"""G2RPO estimators (method.md section 1): Gaussian advantages by rank, per group then per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from openvlthinker.advantage.gaussian import gaussian_quantile_map, gaussian_quantile_map_on_grid
from openvlthinker.advantage.registry import Batch, option_error, register_estimator
from openvlthinker.advantage.segments import is_constant_within_segments

STAGES = ("group", "task")
# Stage-1 values that are equal in exact arithmetic (a sum of quantiles reached by two
# paths, as in GS-GDPO) can differ in the last bits; snapping them first makes them tie.
SNAP_DECIMALS = 9


def _check_stages(stages: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(stages)
    if not chosen or any(s not in STAGES for s in chosen) or len(set(chosen)) != len(chosen):
        raise option_error(
            "stages", f"{list(chosen)!r} is invalid; choose a non-empty subset of {list(STAGES)}"
        )
    return tuple(s for s in STAGES if s in chosen)


def _stage_two(batch: Batch, stage1: torch.Tensor, stages: tuple[str, ...]) -> torch.Tensor:
    if "task" not in stages:
        return stage1
    return gaussian_quantile_map_on_grid(stage1, batch.task, SNAP_DECIMALS)


def _pin(out: torch.Tensor, signals: list[torch.Tensor], batch: Batch) -> torch.Tensor:
    """Zero the rows of groups in which every signal was constant."""
    constant = torch.ones_like(out, dtype=torch.bool)
    for signal in signals:
        constant &= is_constant_within_segments(signal, batch.group, batch.num_groups)
    return torch.where(constant, torch.zeros_like(out), out)


@register_estimator("gs_grpo", uses_task=True)
def gs_grpo(
    batch: Batch, stages: Sequence[str] = STAGES, pin_equal_groups: bool = False
) -> torch.Tensor:
    """G2RPO: stage 1 maps rewards to N(0,1) quantiles inside each prompt group, stage 2
    maps the stage-1 values again over each task. ``pin_equal_groups`` sets groups whose
    rewards were all equal back to exactly 0 after stage 2."""
    chosen = _check_stages(stages)
    r = batch.rewards
    stage1 = gaussian_quantile_map(r, batch.group) if "group" in chosen else r
    out = _stage_two(batch, stage1, chosen)
    if pin_equal_groups:
        out = _pin(out, [r], batch)
    return out


@register_estimator("gs_gdpo", uses_task=True, needs_components=True)
def gs_gdpo(
    batch: Batch,
    stages: Sequence[str] = STAGES,
    pin_equal_groups: bool = False,
    component_weights: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """GS-GDPO: each reward component mapped by rank inside its prompt group, the maps
    summed with the task's reward weights (``component_weights`` overrides; neither: 1.0),
    then the sum mapped over each task."""
    chosen = _check_stages(stages)
    total = torch.zeros_like(batch.rewards)
    for key, weight in batch.weights_of(component_weights).items():
        value = batch.components[key]
        mapped = gaussian_quantile_map(value, batch.group) if "group" in chosen else value
        total = total + weight * mapped
    out = _stage_two(batch, total, chosen)
    if pin_equal_groups:
        out = _pin(out, list(batch.components.values()), batch)
    return out
