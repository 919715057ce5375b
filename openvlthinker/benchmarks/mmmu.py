"""MMMU's response parsing and accuracy."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from openvlthinker.benchmarks.base import MetricInput, MetricResult, option_text, register_metric


def mmmu_parse_choice(response: str, all_choices: Sequence[str], index2ans: Mapping[str, str]):
    """MMMU's ``parse_multi_choice_response`` (MMMU-Benchmark/MMMU ``eval/eval_utils.py``):
    strip outer punctuation, pad with spaces; candidates are the letters written ``(X)``,
    else written `` X ``, else (responses over 5 words) the options whose text occurs; of
    several, the one that occurs last. Where MMMU then picks a *random* letter (no
    candidate), this returns None, scored wrong: a reproducible number instead of a seeded
    guess."""
    for char in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(char)
    response = f" {response} "
    candidates: list[str] = []
    with_brackets = False
    by_letter = True
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            with_brackets = True
    if not candidates:
        candidates = [c for c in all_choices if f" {c} " in response]
    if not candidates and len(response.split()) > 5:
        lowered = response.lower()
        candidates = [i for i, ans in index2ans.items() if ans.lower() in lowered]
        by_letter = False
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    if by_letter:
        pattern = "({})" if with_brackets else " {} "
        starts = [response.rfind(pattern.format(c)) for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[max(range(len(starts)), key=lambda i: (starts[i], -i))]


def _mmmu_is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _mmmu_normalize(text: str) -> list[Any]:
    """MMMU ``normalize_str``: numbers -> [round(float, 2)], one letter -> [" x", "x "]."""
    text = text.strip()
    if _mmmu_is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def _mmmu_numbers(text: str) -> list[str]:
    """MMMU ``extract_numbers``: numbers with thousands commas, scientific, then simple."""
    commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", text)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", text)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", text)
    return commas + scientific + simple


def mmmu_parse_open(response: str) -> list[Any]:
    """MMMU ``parse_open_response``: the shortest tail after a key phrase ("so ", "is ",
    "therefore ", ...; "=" in the last sentence) of each sentence, plus every number in
    those, normalised (numbers rounded to 2 places, text lower-cased)."""
    text = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", text)
    indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
    keys: list[str] = []
    for i, sentence in enumerate(sentences):
        if i == len(sentences) - 1:
            indicators.append("=")
        shortest = None
        for indicator in indicators:
            if indicator in sentence:
                tail = sentence.split(indicator)[-1].strip()
                if shortest is None or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    if not keys:
        keys = [text]
    preds = list(keys)
    for key in keys:
        preds.extend(_mmmu_numbers(key))
    out: list[Any] = []
    for p in preds:
        for v in _mmmu_normalize(p):
            if v not in out:
                out.append(v)
    return out


def mmmu_eval_open(gold: Any, preds: Sequence[Any]) -> bool:
    """MMMU ``eval_open``: a text prediction is right when a normalised text answer is a
    substring of it; a number when it is among the normalised answers."""
    golds = gold if isinstance(gold, list | tuple) else [gold]
    answers = [v for g in golds for v in _mmmu_normalize(str(g))]
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(a, str) and a in pred for a in answers):
                return True
        elif pred in answers:
            return True
    return False


@register_metric("mmmu")
def mmmu_accuracy(inp: MetricInput) -> MetricResult:
    """MMMU accuracy (MMMU-Benchmark/MMMU ``eval/eval_utils.py``): multiple-choice records
    (problem type ``multiple_choice``) by :func:`mmmu_parse_choice` against the answer
    letter; open records by :func:`mmmu_parse_open` / :func:`mmmu_eval_open`."""
    if inp.problem_type == "multiple_choice":
        letters = [chr(ord("A") + i) for i in range(len(inp.options))]
        index2ans = {x: option_text(o) for x, o in zip(letters, inp.options)}
        picked = mmmu_parse_choice(inp.prediction, letters, index2ans)
        golds = inp.answer if isinstance(inp.answer, list | tuple) else [inp.answer]
        return MetricResult(float(picked is not None and picked in golds), picked)
    preds = mmmu_parse_open(inp.prediction)
    return MetricResult(float(mmmu_eval_open(inp.answer, preds)), preds)
