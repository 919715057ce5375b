"""The reward item: one response and what scoring it needs, as the dict the worker pool
sends between processes. :func:`reward_item` is the one place that builds it."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any


def _size(value: Sequence[int] | None, field: str) -> tuple[int, int] | None:
    """A (width, height) pair of ints, or None; anything else is refused naming the field."""
    if value is None:
        return None
    try:
        width, height = value
        return int(width), int(height)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: expected (width, height), got {value!r}") from None


def reward_item(
    response: str,
    ground_truth: Any,
    problem_type: str,
    *,
    task: str | None = None,
    response_tokens: int | None = None,
    length_envelope: Sequence[int] | None = None,
    weights: Mapping[str, float] | None = None,
    options: Sequence[str] | None = None,
    image_size: Sequence[int] | None = None,
    model_image_size: Sequence[int] | None = None,
    scorer_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The item of one response (plain Python values, so it pickles to a worker).

    response_tokens and length_envelope give the length term (none without both); weights:
    component -> weight (the task's); options: a multiple-choice record's options; image_size / model_image_size: (width, height) of the original and
    the resized image (grounding; a malformed size raises ValueError); scorer_options: problem type -> its scorer's options."""
    return {
        "response": response,
        "ground_truth": ground_truth,
        "problem_type": problem_type,
        "task": task,
        "response_tokens": response_tokens,
        "length_envelope": None if length_envelope is None else tuple(length_envelope),
        "weights": None if weights is None else dict(weights),
        "options": None if options is None else list(options),
        "image_size": _size(image_size, "image_size"),
        "model_image_size": _size(model_image_size, "model_image_size"),
        "scorer_options": (
            None if scorer_options is None else {k: dict(v) for k, v in scorer_options.items()}
        ),
    }


#: The keys of an item (score() refuses others).
ITEM_KEYS: frozenset[str] = frozenset(inspect.signature(reward_item).parameters)
