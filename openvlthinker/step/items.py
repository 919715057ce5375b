"""The reward item of one response: the record's answer fields plus its task's envelope,
weights and scorer options. Both engines build their items here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openvlthinker.data.records import Record
from openvlthinker.rewards.item import reward_item
from openvlthinker.tasks.registry import TaskRegistry, TaskSpec


def task_reward_item(
    spec: TaskSpec,
    response: str,
    response_tokens: int,
    ground_truth: Any,
    *,
    problem_type: str | None = None,
    options: Sequence[str] | None = None,
    image_size: Sequence[int] | None = None,
    model_image_size: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The ``rewards.score_batch`` item of a response to a record of task ``spec``.

    problem_type: the record's (default: the task's first); the length envelope is None
    while the task file's ``auto`` bounds are being measured (no length term then); the
    weights are the task's, length included (its ``length_weight``); a record without
    options (None or empty) is not multiple choice."""
    return reward_item(
        response,
        ground_truth,
        problem_type or spec.problem_types[0],
        task=spec.key,
        response_tokens=int(response_tokens),
        length_envelope=spec.length_envelope,
        weights=spec.reward_weights,
        options=options if options is not None and len(options) else None,
        image_size=image_size,
        model_image_size=model_image_size,
        scorer_options=spec.scorer_options,
    )


def record_reward_items(
    responses: Sequence[str],
    response_tokens: Sequence[int],
    records: Sequence[Record],
    model_image_sizes: Sequence[Sequence[int] | None],
    registry: TaskRegistry,
) -> list[dict[str, Any]]:
    """:func:`task_reward_item` of each response to its record (``data.Record``)."""
    return [
        task_reward_item(
            registry[record.task],
            text,
            n_tokens,
            record.answer,
            problem_type=record.problem_type,
            options=record.options,
            image_size=record.image_size,
            model_image_size=model_size if record.image_size is not None else None,
        )
        for text, n_tokens, record, model_size in zip(
            responses, response_tokens, records, model_image_sizes, strict=True
        )
    ]
