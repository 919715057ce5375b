"""One response -> format, correctness, structure, length and their weighted overall."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openvlthinker.rewards.config import RewardConfig
from openvlthinker.rewards.item import (
    ITEM_KEYS,
    default_config,
    error_result,
    reward_item,
    score_item,
)
from openvlthinker.rewards.pool import shared_pool
from openvlthinker.rewards.timeouts import can_interrupt

__all__ = [
    "ITEM_KEYS",
    "default_config",
    "error_result",
    "reward_item",
    "score",
    "score_item",
    "score_reward_item",
]


def score(
    response: str,
    ground_truth: Any,
    problem_type: str,
    *,
    task: str | None = None,
    response_tokens: int | None = None,
    length_envelope: tuple[int, int, int, int] | None = None,
    weights: Mapping[str, float] | None = None,
    options: list[str] | None = None,
    image_size: tuple[int, int] | None = None,
    model_image_size: tuple[int, int] | None = None,
    scorer_options: Mapping[str, Mapping[str, Any]] | None = None,
    config: RewardConfig | None = None,
) -> dict[str, Any]:
    """Score one response; never raises and never runs past ``config.call_timeout`` (+ grace).

    scorer_options: problem type -> options of its scorer (a task's ``scorer_options``,
    e.g. ``{"numerical": {"rule": "relaxed"}}``).

    Returns overall, format, correctness, structure, length (finite floats; components in
    [0, 1]), acc (= correctness) and error (None or a short reason). User scorers are
    loaded once at config load (:func:`~openvlthinker.rewards.user.load_user_scorers`), not here.
    """
    try:
        item = reward_item(
            response,
            ground_truth,
            problem_type,
            task=task,
            response_tokens=response_tokens,
            length_envelope=length_envelope,
            weights=weights,
            options=options,
            image_size=image_size,
            model_image_size=model_image_size,
            scorer_options=scorer_options,
        )
    except (TypeError, ValueError) as e:
        return error_result(f"{type(e).__name__}: {str(e)[:160]}")
    return score_reward_item(item, config)


def score_reward_item(item: Any, config: RewardConfig | None = None) -> dict[str, Any]:
    """:func:`score` of an item built by :func:`~openvlthinker.rewards.item.reward_item`."""
    cfg = config if config is not None else default_config()
    if not can_interrupt():
        # Off the main thread no signal can stop a stuck parser: a worker process can.
        return shared_pool(max(1, cfg.workers), cfg).map([item], cfg)[0]
    return score_item(item, cfg)
