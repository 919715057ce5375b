"""Multiple choice (single or multi-select): the chosen option letters must equal the key's."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from openvlthinker.rewards.parsing import strip_boxed
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer

MAX_CHOICE_CHARS = 2_000
_LABELLED = re.compile(r"\s*\(?([A-Z])\)?\s*[.:)\]]\s*(.*)", re.DOTALL)
_PAREN = re.compile(r"\s*\(([A-Za-z])\)\s*(.*)", re.DOTALL)
# Multi-select: only letters, brackets, dots and separators (one char or "and" per step, so
# the match is linear); stripping the rest leaves the letters.
# "Answer: B", "The answer is (B)", "Option B" -> "B"
_LEAD_IN = re.compile(
    r"^(?i:(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)s?)"
    r"(?:\s*:\s*|\s+(?i:is\s+)?)(?=\(?[A-Z](?![A-Za-z]))"
)
_MULTI = re.compile(r"(?:[A-Z\s,;&().]|\band\b)+")
_MULTI_STRIP = re.compile(r"[\s,;&().]|\band\b")


def option_texts(options: Sequence[str] | None) -> dict[str, str]:
    """Letter -> normalised option text; ``"B. dog"`` is labelled B, an unlabelled option by position."""
    table: dict[str, str] = {}
    for i, option in enumerate(options or ()):
        text = str(option)
        match = _LABELLED.fullmatch(text)
        if match:
            table[match.group(1)] = _normalise(match.group(2))
        elif i < 26:
            table[chr(ord("A") + i)] = _normalise(text)
    return table


def parse_choice(answer: Any, options: Sequence[str] | None = None) -> frozenset[str] | None:
    """The set of option letters an answer picks, or None.

    Accepts ``B``, ``b``, ``(B)``, ``B.``, ``B. text``, ``B) text``, ``\\boxed{B}``, the option
    text itself, a lead-in ("Answer: B", "The answer is B", "Option B") and multi-select
    ``A, C`` / ``A and C`` / ``AC``.
    """
    if isinstance(answer, (list, tuple)):
        letters = [parse_choice(a, options) for a in answer]
        if not letters or any(s is None or len(s) != 1 for s in letters):
            return None
        return frozenset().union(*letters)
    if not isinstance(answer, str):
        return None
    if len(answer) > MAX_CHOICE_CHARS:
        return None
    text = strip_boxed(_LEAD_IN.sub("", answer.strip(), count=1))
    if not text:
        return None
    if len(text) == 1 and text.isalpha() and text.isascii():
        return frozenset(text.upper())
    table = option_texts(options)
    if len(text) <= 80 and _MULTI.fullmatch(text):
        letters = _MULTI_STRIP.sub("", text)
        picked = frozenset(letters)
        if 2 <= len(letters) == len(picked) and (not table or picked <= set(table)):
            return picked
    for pattern in (_PAREN, _LABELLED):
        match = pattern.fullmatch(text)
        if match:
            return frozenset(match.group(1).upper())
    normalised = _normalise(text)
    hits = [letter for letter, option in table.items() if option and option == normalised]
    return frozenset(hits) if len(hits) == 1 else None


@register_scorer("multiple_choice")
def score_multiple_choice(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 when the picked letters equal the key's letters exactly (no partial credit)."""
    key = parse_choice(ground_truth, ctx.options)
    if key is None:
        return Verdict(0.0, 0.0, f"ground truth {str(ground_truth)[:40]!r} is not an option")
    picked = parse_choice(answer, ctx.options)
    if picked is None:
        return Verdict(0.0, 0.0, "no option letter in the answer")
    return Verdict(1.0 if picked == key else 0.0)


def _normalise(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".").strip()
