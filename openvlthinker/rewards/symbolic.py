"""Math answers: symbolic equivalence with math-verify, bounded by our own time limit."""

from __future__ import annotations

import functools
import math
from typing import Any

import math_verify.grader
import math_verify.parser
from math_verify import parse, verify

from openvlthinker.rewards.parsing import parse_number, strip_boxed
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer
from openvlthinker.rewards.timeouts import ScoreTimeout, time_limit

# math-verify's timeouts are off (they use signal.alarm and would clobber ours); it would log
# a warning saying we must bound time ourselves, which time_limit does.
math_verify.parser.TIMEOUT_WARNING_SHOWN = True
math_verify.grader.TIMEOUT_WARNING_SHOWN = True

_DELIMITERS = ("$", "\\boxed", "\\(", "\\[")


@functools.lru_cache(maxsize=4096)
def parse_math(text: str) -> tuple[Any, ...]:
    """math-verify's parse of a bare or delimited expression (bare text is read as LaTeX first)."""
    if not any(d in text for d in _DELIMITERS):
        parsed = parse(f"${text}$", parsing_timeout=None)
        if parsed:
            return tuple(parsed)
    return tuple(parse(text, parsing_timeout=None))


@functools.lru_cache(maxsize=16384)
def math_equal(answer: str, ground_truth: str) -> bool:
    """Symbolic equivalence (fractions, LaTeX, intervals, sets, equations); no time limit.

    Cached: a group of rollouts often repeats the same answer to the same key.
    """
    gold = parse_math(ground_truth)
    pred = parse_math(answer)
    if not gold or not pred:
        return False
    return bool(verify(list(gold), list(pred), timeout_seconds=None))


@register_scorer("math")
def score_math(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 when the answer is mathematically equal to the key; a timeout scores 0 with an error."""
    cfg = ctx.config
    gold = strip_boxed(str(ground_truth))
    if not answer:
        return Verdict(0.0, 0.0, "empty answer")
    if len(answer) > cfg.max_math_chars:
        return Verdict(
            0.0, 0.0, f"math answer too long ({len(answer)} > {cfg.max_math_chars} chars)"
        )
    pred = strip_boxed(answer)
    if pred == gold:
        return Verdict(1.0)
    a, b = parse_number(pred), parse_number(gold)
    if a is not None and b is not None:
        # Two plain numbers (or simple fractions): math-verify would compare them rounded
        # to 6 decimals; skip its symbolic machinery.
        return Verdict(1.0 if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) else 0.0)
    try:
        with time_limit(cfg.math_timeout):
            equal = math_equal(answer, gold)
    except ScoreTimeout:
        return Verdict(0.0, 1.0, f"math verification timed out after {cfg.math_timeout:g}s")
    return Verdict(1.0 if equal else 0.0)
