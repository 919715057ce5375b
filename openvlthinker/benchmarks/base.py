"""What every benchmark metric sees and returns, their registry and :func:`compute_metric`."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from openvlthinker.rewards.tags import answer_without_tag, extract_answer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricInput:
    """One response to score against one record."""

    prediction: str = field(metadata={"help": "The extracted answer text (see module doc)."})
    answer: Any = field(metadata={"help": "The record's ground truth."})
    problem_type: str = field(default="", metadata={"help": "The record's problem type."})
    options: tuple[str, ...] = field(default=(), metadata={"help": "Multiple-choice options."})
    metadata: Mapping[str, Any] = field(
        default_factory=dict, metadata={"help": "The record's metadata (unmapped card columns)."}
    )
    image_size: tuple[int, int] | None = field(
        default=None, metadata={"help": "Original (width, height) of the first image."}
    )
    model_image_size: tuple[int, int] | None = field(
        default=None, metadata={"help": "(width, height) the model saw (after resizing)."}
    )
    coordinate_frame: str = field(
        default="qwen_1000",
        metadata={"help": "Frame of predicted boxes (reward.coordinate_frame)."},
    )


@dataclass(frozen=True)
class MetricResult:
    """A metric's value for one response and what it compared (written to samples.jsonl)."""

    value: float
    extracted: Any = None
    error: str | None = None


Metric = Callable[[MetricInput], MetricResult]
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Decorator: make ``fn(MetricInput) -> MetricResult`` the metric called ``name``."""

    def wrap(fn: Metric) -> Metric:
        if name in METRICS and METRICS[name] is not fn:
            raise ValueError(f"metric {name!r} is already registered ({METRICS[name].__name__})")
        METRICS[name] = fn
        return fn

    return wrap


def compute_metric(name: str, inp: MetricInput) -> MetricResult:
    """``METRICS[name](inp)``; an exception becomes value 0 with ``error`` set (never raises
    for a bad response; an unknown name is a KeyError naming the known ones)."""
    if name not in METRICS:
        raise KeyError(f"metric {name!r} is unknown; known: {', '.join(sorted(METRICS))}")
    try:
        result = METRICS[name](inp)
    except Exception as e:  # a malformed response or record must not stop an evaluation
        logger.debug("metric %s failed", name, exc_info=True)
        return MetricResult(0.0, None, f"{type(e).__name__}: {str(e)[:160]}")
    return MetricResult(float(result.value), result.extracted, result.error)


def metric_input(
    record: Any,
    response: str,
    *,
    model_image_size: tuple[int, int] | None = None,
    answer_tag: str = "answer",
    think_tag: str = "think",
    coordinate_frame: str = "qwen_1000",
) -> MetricInput:
    """The :class:`MetricInput` of one response to one ``openvlthinker.data.Record``: the
    prediction is the last answer block's text, else the text after the think block."""
    prediction = extract_answer(response, answer_tag)
    if prediction is None:
        prediction = answer_without_tag(response, think_tag)
    return MetricInput(
        prediction=prediction,
        answer=record.answer,
        problem_type=record.problem_type,
        options=tuple(record.options),
        metadata=record.metadata,
        image_size=record.image_size,
        model_image_size=None if model_image_size is None else tuple(model_image_size),
        coordinate_frame=coordinate_frame,
    )


def option_text(option: str) -> str:
    """``"A. dog"`` / ``"(A) dog"`` -> ``"dog"``; an unlabelled option is kept."""
    match = re.fullmatch(r"\s*\(?[A-Z]\)?[.:)]\s*(.*)", option, re.DOTALL)
    return match.group(1) if match else option
