"""Number answers: numerical (tolerance), regression (mean relative accuracy), counting (exact)."""

from __future__ import annotations

from typing import Any

from openvlthinker.rewards.parsing import parse_number
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer


def _numbers(answer: str, ground_truth: Any) -> tuple[float, float] | Verdict:
    target = parse_number(ground_truth)
    if target is None:
        return Verdict(0.0, 0.0, f"ground truth {str(ground_truth)[:40]!r} is not a number")
    value = parse_number(answer)
    if value is None:
        return Verdict(0.0, 0.0, "answer is not a single number")
    return value, target


@register_scorer("numerical")
def score_numerical(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 when |value - target| <= max(abs_tol, rel_tol * |target|)."""
    pair = _numbers(answer, ground_truth)
    if isinstance(pair, Verdict):
        return pair
    value, target = pair
    tol = max(ctx.config.numeric_abs_tol, ctx.config.numeric_rel_tol * abs(target))
    return Verdict(1.0 if abs(value - target) <= tol else 0.0)


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
