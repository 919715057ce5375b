"""Reading numbers and JSON out of answer text; every input is length-capped before a regex."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

MAX_NUMBER_CHARS = 200

_BOXED = re.compile(r"\\(?:boxed|fbox)\{(.*)\}", re.DOTALL)
_FRAC = re.compile(r"\\[dt]?frac\{\s*([-+]?\d+(?:\.\d+)?)\s*\}\{\s*(\d+(?:\.\d+)?)\s*\}")
# An optional "x =" prefix, sign, currency, the number (thousands commas allowed), an
# optional "/denominator", then a unit: anything without digits ("cm", "%", "apples").
_NUMBER = re.compile(
    r"(?:[A-Za-z_]\w{0,15}\s*=\s*)?"
    r"(?P<sign>[-+\u2212]?)\s*[$€£¥]?\s*"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)?(?P<frac>\.\d+)?(?:[eE](?P<exp>[-+]?\d{1,4}))?"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?P<unit>[^\d]{0,32})"
)
_NUMBER_WORDS = {
    word: float(i)
    for i, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)\s*```", re.DOTALL)


def strip_boxed(text: str) -> str:
    """``\\boxed{X}`` (the whole answer) -> ``X``; anything else unchanged."""
    text = text.strip()
    if text.startswith(("\\boxed{", "\\fbox{")) and text.endswith("}"):
        match = _BOXED.fullmatch(text)
        if match:
            return match.group(1).strip()
    return text


def parse_number(value: Any) -> float | None:
    """One finite number from an answer or a ground truth, or None.

    Accepts ``1,234.5``, ``-3``, ``45%`` (= 45), ``$12``, ``12 cm``, ``x = 3``, ``3/4``,
    ``\\frac{3}{4}``, ``1e-3``, number words up to twenty. Two numbers ("12 or 13") is None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
        return number if math.isfinite(number) else None
    if not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS:
        return None
    text = strip_boxed(value).strip().strip("$").strip()
    word = _NUMBER_WORDS.get(text.lower().rstrip("."))
    if word is not None:
        return word
    frac = _FRAC.fullmatch(text)
    if frac:
        num, den = float(frac.group(1)), float(frac.group(2))
        return num / den if den != 0 else None
    match = _NUMBER.fullmatch(text)
    if match is None or (match.group("int") is None and match.group("frac") is None):
        return None
    digits = (match.group("int") or "0").replace(",", "") + (match.group("frac") or "")
    number = float(digits + ("e" + match.group("exp") if match.group("exp") else ""))
    if match.group("den"):
        den = float(match.group("den"))
        if den == 0:
            return None
        number /= den
    if match.group("sign") in ("-", "\u2212"):
        number = -number
    return number if math.isfinite(number) else None


def number_decimals(value: Any) -> int | None:
    """Decimal places a number is written with: 0 for ``2019``, ``1,000``, ``45%``, 2 for
    ``1.25`` / ``12.50 cm``, exponent-adjusted for ``1.5e-3`` (4); None for fractions,
    ``\\frac``, and anything :func:`parse_number` does not read."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return 0 if value.is_integer() else max(0, -int(Decimal(repr(value)).as_tuple().exponent))
    if not isinstance(value, str) or len(value) > MAX_NUMBER_CHARS:
        return None
    text = strip_boxed(value).strip().strip("$").strip()
    if text.lower().rstrip(".") in _NUMBER_WORDS:
        return 0
    match = _NUMBER.fullmatch(text)
    if match is None or match.group("den") or parse_number(value) is None:
        return None
    places = len(match.group("frac")) - 1 if match.group("frac") else 0
    if match.group("exp"):
        places -= int(match.group("exp"))
    return max(places, 0)


def load_json(value: Any) -> Any:
    """Parse a JSON answer (one ```json fence allowed); non-strings pass through. Raises ValueError."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("```"):
        match = _FENCE.fullmatch(text)
        if match:
            text = match.group(1)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"invalid JSON ({type(e).__name__})") from e


def finite_numbers(values: Any, length: int) -> list[float] | None:
    """``values`` as ``length`` finite floats, or None (bools and strings are not numbers)."""
    if not isinstance(values, (list, tuple)) or len(values) != length:
        return None
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        f = float(v)
        if not math.isfinite(f):
            return None
        out.append(f)
    return out
