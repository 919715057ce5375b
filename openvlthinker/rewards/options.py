"""Per-task scorer options: what a task file's ``scorer_options`` may set, checked at load.

A task sets them per problem type::

    tasks:
      chart:
        scorer_options:
          numerical: {rule: relaxed, tolerance: 0.05}
          ocr: {case_sensitive: false}

Each scorer that takes options declares a frozen dataclass of them
(``register_scorer(name, options=Cls)``); the dataclass checks its own values and raises
:class:`ScorerOptionError` naming the option. Only the keys a task sets travel with a
scored item (plain dicts: they cross process boundaries); the scorer sees the dataclass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, ClassVar


class ScorerOptionError(ValueError):
    """A scorer option is invalid; ``key`` is the option's name."""

    def __init__(self, key: str, message: str):
        self.key = key
        self.reason = message
        super().__init__(f"{key}: {message}")


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise naming ``key`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ScorerOptionError(key, f"{value!r} is unknown; known: {', '.join(choices)}")


def check_bool(key: str, value: Any) -> None:
    """Raise naming ``key`` unless ``value`` is true or false."""
    if not isinstance(value, bool):
        raise ScorerOptionError(key, f"expected true or false, got {value!r}")


def check_number(key: str, value: Any, low: float, high: float) -> None:
    """Raise naming ``key`` unless ``value`` is a number in (low, high]."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low < value <= high:
        raise ScorerOptionError(key, f"expected a number in ({low}, {high}], got {value!r}")


def build_options(cls: type, values: Mapping[str, Any] | None) -> Any:
    """``cls(**values)``; an unknown key raises :class:`ScorerOptionError` naming it."""
    values = dict(values or {})
    known = [f.name for f in fields(cls)]
    for key in values:
        if key not in known:
            raise ScorerOptionError(key, f"unknown option; known: {', '.join(known)}")
    return cls(**values)


NUMERIC_RULES = ("mathvista", "relaxed")


@dataclass(frozen=True)
class NumericalOptions:
    """How a ``numerical`` answer is matched (see :mod:`openvlthinker.rewards.numeric`)."""

    rule: str = "mathvista"
    tolerance: float | None = None

    #: The relative change ChartQA's relaxed accuracy allows.
    DEFAULT_TOLERANCE: ClassVar[float] = 0.05

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, NUMERIC_RULES)
        if self.tolerance is not None:
            if self.rule != "relaxed":
                raise ScorerOptionError("tolerance", "applies to rule: relaxed only")
            check_number("tolerance", self.tolerance, 0.0, 1.0)

    @property
    def relative_tolerance(self) -> float:
        """The relaxed rule's maximum relative change."""
        return self.DEFAULT_TOLERANCE if self.tolerance is None else float(self.tolerance)


@dataclass(frozen=True)
class TextOptions:
    """How a free-text answer is compared with its keys.

    metric: the similarity (each problem type lists its own; None = the type's default);
    case_sensitive: compare letter case (False: both sides lower-cased, as OCRBench and
    ANLS do); normalize_whitespace: runs of whitespace count as one space and the ends are
    stripped; anls_threshold: ANLS gives 0 below this similarity (DocVQA: 0.5).
    """

    metric: str | None = None
    case_sensitive: bool = False
    normalize_whitespace: bool = True
    anls_threshold: float = 0.5

    METRICS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.metric is not None:
            check_choice("metric", self.metric, self.METRICS)
        check_bool("case_sensitive", self.case_sensitive)
        check_bool("normalize_whitespace", self.normalize_whitespace)
        check_number("anls_threshold", self.anls_threshold, 0.0, 1.0)


@dataclass(frozen=True)
class OcrOptions(TextOptions):
    """``ocr``: metric wer | cer | anls (None: the run's ``reward.ocr_metric``)."""

    METRICS: ClassVar[tuple[str, ...]] = ("wer", "cer", "anls")


@dataclass(frozen=True)
class OpenEndedOptions(TextOptions):
    """``open_ended``: metric rouge_l (default) | anls."""

    METRICS: ClassVar[tuple[str, ...]] = ("rouge_l", "anls")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.case_sensitive and self.metric in (None, "rouge_l"):
            raise ScorerOptionError(
                "case_sensitive", "rouge_l compares rouge-score's lower-cased tokens"
            )
