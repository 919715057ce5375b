"""Our estimators in verl's advantage registry (``register_adv_est``) under their own names.

verl calls a registered estimator as ``fn(token_level_rewards, response_mask, config,
index=uid, ...)``: no task key and no reward components. These adapters therefore take
``task`` and ``components`` as extra keywords; :class:`~openvlthinker.verl_plugin.trainer.G2RPOTrainer`
passes them, and a stock verl trainer that cannot gets an error that says so instead of a
silently single-task G2RPO.

verl ships its own ``gdpo``; on the V1 trainer it cannot see the components and fails, so the
plugin replaces that entry with ours (method.md section 1; same name, same meaning).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from openvlthinker.advantage import compute_advantage, estimator_requirements

logger = logging.getLogger(__name__)

#: Names this plugin puts into verl's registry.
VERL_NAMES = ("gs_grpo", "gs_gdpo", "gdpo")


def _components_from_non_tensor(
    non_tensor_batch: Mapping[str, Any] | None, config: Any
) -> dict[str, torch.Tensor] | None:
    """verl's legacy trainer passes reward-extra columns in ``non_tensor_batch`` and names them
    in ``algorithm.gdpo_reward_keys``; use them when our trainer did not pass components."""
    keys = None if config is None else config.get("gdpo_reward_keys", None)
    if not keys or non_tensor_batch is None:
        return None
    missing = [k for k in keys if k not in non_tensor_batch]
    if missing:
        raise ValueError(
            f"algorithm.gdpo_reward_keys names {missing}, not among the reward columns "
            f"{sorted(non_tensor_batch)}"
        )
    return {k: torch.as_tensor(np.asarray(non_tensor_batch[k], dtype=np.float64)) for k in keys}


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
        non_tensor_batch: Mapping[str, Any] | None = None,
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
        if components is None:
            components = _components_from_non_tensor(non_tensor_batch, config)
        if needs.components and not components:
            raise ValueError(
                f"algorithm.adv_estimator {name!r} needs the reward components; launch with "
                "openvlthinker-verl, or set algorithm.gdpo_reward_keys on verl's legacy trainer"
            )
        rewards = (token_level_rewards * response_mask).sum(dim=-1)
        scalar = compute_advantage(
            name,
            rewards,
            group=list(index),
            task=None if task is None else list(task),
            components=components if needs.components else None,
            **dict(options or {}),
        )
        advantages = scalar.to(token_level_rewards.dtype).unsqueeze(-1) * response_mask
        return advantages, advantages

    estimator.__name__ = f"openvlthinker_{name}"
    estimator.__qualname__ = estimator.__name__
    return estimator


def register_verl_estimators() -> None:
    """Put :data:`VERL_NAMES` into verl's ``ADV_ESTIMATOR_REGISTRY``; idempotent."""
    from verl.trainer.ppo import core_algos

    registry = core_algos.ADV_ESTIMATOR_REGISTRY
    for name in VERL_NAMES:
        current = registry.get(name)
        if current is not None and current.__name__ == f"openvlthinker_{name}":
            continue
        if current is not None:
            logger.info("replacing verl's %r advantage estimator with openvlthinker's", name)
            del registry[name]
        core_algos.register_adv_est(name)(make_verl_estimator(name))
