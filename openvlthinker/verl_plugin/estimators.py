"""Our G2RPO estimators in verl's advantage registry (``register_adv_est``), under names verl
does not have.

Only ``gs_grpo`` and ``gs_gdpo`` go in: verl's own entries (``grpo``, ``gdpo``, ``rloo``, ...)
stay exactly as verl shipped them, so importing this plugin never changes what verl's stock
trainer computes. Our trainer (:class:`~openvlthinker.verl_plugin.trainer.G2RPOTrainer`)
routes every name of ``openvlthinker.advantage`` through ``compute_advantage`` itself.

verl calls a registered estimator as ``fn(token_level_rewards, response_mask, config,
index=uid, ...)``: no task key and no reward components. These adapters therefore take
``task`` and ``components`` as extra keywords; a stock verl trainer that cannot pass them
gets an error that says so instead of a silently single-task G2RPO.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from openvlthinker.advantage import compute_advantage, estimator_requirements

#: Names this plugin puts into verl's registry: ours alone, none of verl's.
VERL_NAMES = ("gs_grpo", "gs_gdpo")


def make_verl_estimator(name: str) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """A function with verl's estimator signature that calls our ``compute_advantage(name)``."""
    needs = estimator_requirements(name)

    def estimator(
        token_level_rewards: torch.Tensor,
        response_mask: torch.Tensor,
        config: Any = None,
        index: Sequence[Any] | np.ndarray | None = None,
        task: Sequence[Any] | None = None,
        components: Mapping[str, torch.Tensor] | None = None,
        options: Mapping[str, Any] | None = None,
        reward_weights: Mapping[str, torch.Tensor] | None = None,
        **_: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """token_level_rewards, response_mask: (B, T). Returns (advantages, returns), both
        (B, T): the per-response scalar broadcast over its response tokens."""
        if index is None:
            raise ValueError(f"algorithm.adv_estimator {name!r} needs the prompt-group ids (uid)")
        if needs.task and task is None:
            raise ValueError(
                f"algorithm.adv_estimator {name!r} needs each response's task key, which verl's "
                "stock trainer does not pass to an estimator; launch with openvlthinker-verl "
                "(G2RPOTaskRunner), whose advantage step passes task keys and reward components"
            )
        if needs.components and not components:
            raise ValueError(
                f"algorithm.adv_estimator {name!r} needs the reward components, which verl's "
                "stock trainer does not pass to an estimator; launch with openvlthinker-verl"
            )
        rewards = (token_level_rewards * response_mask).sum(dim=-1)
        scalar = compute_advantage(
            name,
            rewards,
            group=list(index),
            task=None if task is None else list(task),
            components=components if needs.components else None,
            lengths=response_mask.sum(dim=-1),
            reward_weights=reward_weights,
            **dict(options or {}),
        )
        advantages = scalar.to(token_level_rewards.dtype).unsqueeze(-1) * response_mask
        return advantages, advantages

    estimator.__name__ = f"openvlthinker_{name}"
    estimator.__qualname__ = estimator.__name__
    return estimator


def register_verl_estimators() -> None:
    """Put :data:`VERL_NAMES` into verl's ``ADV_ESTIMATOR_REGISTRY``; idempotent. A name that
    verl itself registered is never replaced (that would change verl's stock trainer)."""
    from verl.trainer.ppo import core_algos

    registry = core_algos.ADV_ESTIMATOR_REGISTRY
    for name in VERL_NAMES:
        current = registry.get(name)
        if current is not None and current.__name__ == f"openvlthinker_{name}":
            continue
        if current is not None:
            raise ValueError(
                f"verl's advantage registry already has {name!r} ({current.__module__}."
                f"{current.__qualname__}); openvlthinker does not replace verl's estimators"
            )
        core_algos.register_adv_est(name)(make_verl_estimator(name))
