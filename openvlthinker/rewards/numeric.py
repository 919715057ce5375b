"""Number answers: numerical (MathVista's rule, or ChartQA's relaxed accuracy per task),
regression (mean relative accuracy), counting (exact)."""

from __future__ import annotations

import math
from typing import Any

from openvlthinker.rewards.options import NumericalOptions
from openvlthinker.rewards.parsing import number_decimals, parse_number
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer


def _numbers(answer: str, ground_truth: Any) -> tuple[float, float] | Verdict:
    target = parse_number(ground_truth)
    if target is None:
        return Verdict(0.0, 0.0, f"ground truth {str(ground_truth)[:40]!r} is not a number")
    value = parse_number(answer)
    if value is None:
        return Verdict(0.0, 0.0, "answer is not a single number")
    return value, target


def mathvista_match(
    prediction: str | float,
    key: str | float,
    *,
    precision: int | None = None,
    truncate: bool = False,
) -> bool:
    """MathVista's rule for a free-form number (``evaluation/calculate_score.py``,
    ``normalize_extracted_answer`` + ``safe_equal`` in lupantech/MathVista).

    An integer key needs the same integer; a decimal key is matched at its own precision:
    the answer rounded (Python's ``round``, as MathVista) to the key's number of decimals
    (``precision`` overrides, as MathVista's per-problem field) must equal the key. Numbers
    are read by :func:`~openvlthinker.rewards.parsing.parse_number` (``45%`` = 45, ``1,234``,
    units); a key that is not a decimal (``3/4``) must be equal up to float rounding.
    MathVista casts an integer answer with ``int(float(x))``, which truncates (``2.7`` -> 2);
    as a reward that pays a wrong decimal, so a non-whole answer does not match an integer key
    unless ``truncate=True`` (MathVista's scorer exactly).
    """
    value, target = parse_number(prediction), parse_number(key)
    if value is None or target is None:
        return False
    places = number_decimals(key) if precision is None else precision
    if places is None:
        return math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-12)
    if places == 0:
        return (math.trunc(value) if truncate else value) == target
    return round(value, places) == round(target, places)


def _chart_number(text: Any) -> float | None:
    """ChartQA's reading: a trailing ``%`` divides by 100; otherwise :func:`parse_number`."""
    if isinstance(text, str) and text.strip().endswith("%"):
        number = parse_number(text.strip()[:-1])
        return None if number is None else number / 100.0
    return parse_number(text)


def relaxed_match(prediction: str | float, key: str | float, tolerance: float = 0.05) -> bool:
    """ChartQA's relaxed accuracy (``relaxed_correctness`` in google-research/pix2struct
    ``pix2struct/metrics.py``, the metric of the ChartQA paper, section 5.1): a numeric key is
    matched when ``|answer - key| / |key| <= tolerance`` (5%); a value written with ``%`` is
    divided by 100 on either side (so ``45%`` matches ``0.45``, not ``45``); a non-numeric key
    needs the same text, case-insensitive. Differences: numbers are read by
    :func:`~openvlthinker.rewards.parsing.parse_number` (ChartQA: ``float()``, so ``1,234``
    counts here) and a key of 0 needs exactly 0 (ChartQA compares the strings there)."""
    value, target = _chart_number(prediction), _chart_number(key)
    if value is not None and target is not None:
        if target == 0:
            return value == 0
        return abs(value - target) / abs(target) <= tolerance
    return str(prediction).strip().lower() == str(key).strip().lower()


@register_scorer("numerical", options=NumericalOptions)
def score_numerical(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 when the answer matches by the task's rule: ``mathvista`` (default,
    :func:`mathvista_match`) or ``relaxed`` (:func:`relaxed_match`, ChartQA)."""
    options = ctx.scorer_options or NumericalOptions()
    if options.rule == "relaxed":
        return Verdict(
            1.0 if relaxed_match(answer, ground_truth, options.relative_tolerance) else 0.0
        )
    pair = _numbers(answer, ground_truth)
    if isinstance(pair, Verdict):
        return pair
    return Verdict(1.0 if mathvista_match(answer, ground_truth) else 0.0)


def mean_relative_accuracy(
    value: float, target: float, thresholds: tuple[float, ...], zero_scale: float = 1.0
) -> float:
    """Fraction of thresholds t with |value - target| / |target| < 1 - t.

    At target 0 the relative error divides by ``zero_scale`` instead of 0.
    """
    scale = abs(target) if target != 0 else zero_scale
    rel_error = abs(value - target) / scale
    return sum(rel_error < 1.0 - t for t in thresholds) / len(thresholds)


@register_scorer("regression")
def score_regression(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """Mean relative accuracy over the configured thresholds (0.50..0.95)."""
    pair = _numbers(answer, ground_truth)
    if isinstance(pair, Verdict):
        return pair
    value, target = pair
    cfg = ctx.config
    return Verdict(
        mean_relative_accuracy(value, target, cfg.regression_thresholds, cfg.regression_zero_scale)
    )


@register_scorer("counting")
def score_counting(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 when the answer is the same whole number as the key ("3", "3.0", "three")."""
    pair = _numbers(answer, ground_truth)
    if isinstance(pair, Verdict):
        return pair
    value, target = pair
    if value != round(value):
        return Verdict(0.0, 0.0, "count is not a whole number")
    return Verdict(1.0 if value == target else 0.0)
