"""MathVista's answer extraction and accuracy."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from openvlthinker.benchmarks.base import MetricInput, MetricResult, option_text, register_metric
from openvlthinker.rewards.numeric import mathvista_match


def mathvista_extract(response: str, choices: Sequence[str], question_type: str, answer_type: str):
    """MathVista's rule-based extraction (``evaluation/extract_answer.py``, lupantech/MathVista):
    an empty response gives ``""``; a multi-choice response that *is* one of the choices is
    taken whole; an integer / float response is parsed; else the response itself (the GPT
    extractor that follows there is replaced by our answer tag, see the module doc)."""
    if response == "":
        return ""
    if question_type == "multi_choice" and response in choices:
        return response
    if answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    return response


def mathvista_normalize_choice(extraction: Any, choices: Sequence[str]) -> str:
    """MathVista's multi-choice normalisation (``normalize_extracted_answer`` in
    ``evaluation/calculate_score.py``): ``(B) text`` -> ``B``; an option letter -> that
    choice's text; anything else -> the choice at the smallest Levenshtein distance."""
    from rapidfuzz.distance import Levenshtein

    text = extraction.strip() if isinstance(extraction, str) else str(extraction)
    letter = re.findall(r"\(([a-zA-Z])\)", text)
    if letter:
        text = letter[0].upper()
    letters = [chr(ord("A") + i) for i in range(len(choices))]
    if text in letters:
        return choices[letters.index(text)]
    distances = [Levenshtein.distance(text, c) for c in choices]
    return choices[distances.index(min(distances))]


@register_metric("mathvista")
def mathvista_accuracy(inp: MetricInput) -> MetricResult:
    """MathVista accuracy (lupantech/MathVista ``evaluation/calculate_score.py``): the
    extraction is normalised to the answer type (multi-choice: the choice text; integer:
    ``str(int(float(x)))``; float: ``str(round(float(x), precision))``) and must equal the
    answer string exactly. Reads ``answer_type``, ``precision`` (and ``question_type``, else
    the problem type) from the record's metadata and the choices from its options."""
    meta = inp.metadata
    # mapped to the record's problem type by the task file, the column is gone from metadata
    default = "multi_choice" if inp.problem_type == "multiple_choice" else "free_form"
    question_type = str(meta.get("question_type") or default)
    answer_type = str(meta.get("answer_type", ""))
    choices = [option_text(o) for o in inp.options]
    extraction = mathvista_extract(inp.prediction, choices, question_type, answer_type)
    if question_type == "multi_choice":
        if not choices:
            return MetricResult(0.0, extraction, "multi_choice record without choices")
        prediction = mathvista_normalize_choice(extraction, choices)
        return MetricResult(float(prediction == str(inp.answer)), prediction)
    if answer_type == "integer":  # MathVista: str(int(float(x))), which truncates
        matched = mathvista_match(extraction, inp.answer, precision=0, truncate=True)
    elif answer_type == "float":  # MathVista: str(round(float(x), precision))
        precision = meta.get("precision")
        matched = mathvista_match(
            extraction, inp.answer, precision=None if precision is None else int(precision)
        )
    else:  # list / text answers: MathVista compares the strings
        matched = str(extraction).strip() == str(inp.answer).strip()
    return MetricResult(float(matched), extraction)
