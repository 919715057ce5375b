"""Free-text answers: OCR (1 - word/character error rate, or ANLS) and open-ended (ROUGE-L F,
or ANLS); a list ground truth is "any of these" (the best key counts)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from rapidfuzz.distance import LCSseq, Levenshtein

from openvlthinker.rewards.options import OcrOptions, OpenEndedOptions
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer


@functools.cache
def _rouge_tokenizer() -> Any:
    """rouge-score's tokenizer with its Porter stemmer, built on first use: importing
    rouge-score pulls in absl, whose first log call configures the root logger."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)._tokenizer


def ocr_accuracy(
    reference: str, hypothesis: str, metric: str = "wer", *, collapse_whitespace: bool = True
) -> float:
    """1 - WER (or CER), clipped to [0, 1]; an empty reference is matched only by an empty answer.

    Words are split on any whitespace (newlines in OCR text are word breaks); the edit
    distance is rapidfuzz's Levenshtein over words (WER) or characters (CER). CER compares
    with whitespace runs collapsed to one space unless ``collapse_whitespace=False``.
    """
    if metric == "cer":
        if collapse_whitespace:
            reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())
        ref, hyp = reference, hypothesis
    else:
        ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return 1.0 if not hyp else 0.0
    error = Levenshtein.distance(ref, hyp) / len(ref)
    return min(max(1.0 - error, 0.0), 1.0)


def rouge_l(reference: str, hypothesis: str) -> float:
    """ROUGE-L F1 as rouge-score computes it (its tokenizer and Porter stemmer).

    The longest common subsequence comes from rapidfuzz (bit-parallel C++), not rouge-score's
    quadratic Python table, so long answers stay fast; the value is identical.
    """
    ref = _rouge_tokenizer().tokenize(reference)
    hyp = _rouge_tokenizer().tokenize(hypothesis)
    if not ref or not hyp:
        return 0.0
    lcs = LCSseq.similarity(ref, hyp)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(hyp), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def normalize_text(text: str, *, case_sensitive: bool = False, whitespace: bool = True) -> str:
    """``text`` lower-cased unless ``case_sensitive``, whitespace runs collapsed to one space
    and the ends stripped when ``whitespace``."""
    if not case_sensitive:
        text = text.lower()
    return " ".join(text.split()) if whitespace else text


def _normalized_similarity(reference: str, answer: str, threshold: float) -> float:
    """1 - Levenshtein distance / the longer length (1 for two empty strings), or 0 when
    that distance is >= ``threshold``."""
    longest = max(len(reference), len(answer))
    distance = Levenshtein.distance(reference, answer) / longest if longest else 0.0
    return 1.0 - distance if distance < threshold else 0.0


def anls(prediction: str, keys: Sequence[str], threshold: float = 0.5) -> float:
    """ANLS of one answer, the DocVQA / InfographicVQA metric (Biten et al. 2019, arXiv
    1907.00490, Eq. 1): the best over ``keys`` of ``1 - NL``, NL the Levenshtein distance
    (rapidfuzz) over ``max(len(key), len(prediction))``, and 0 where NL >= ``threshold``.
    Both sides lower-cased with whitespace collapsed first, as the DocVQA scorers do. No
    key: 0."""
    answer = normalize_text(prediction)
    return max(
        (_normalized_similarity(normalize_text(k), answer, threshold) for k in keys), default=0.0
    )


def answer_keys(ground_truth: Any) -> list[str]:
    """The acceptable answers of a text ground truth: each item of a list ("any of these"),
    or the one string."""
    if isinstance(ground_truth, (list, tuple)):
        return [str(k) for k in ground_truth]
    return [str(ground_truth)]


def _best(ground_truth: Any, similarity: Callable[[str], float]) -> Verdict:
    keys = answer_keys(ground_truth)
    if not keys:
        return Verdict(0.0, 0.0, "ground truth is an empty list")
    return Verdict(max(similarity(key) for key in keys))


def _normalizer(o: Any) -> Callable[[str], str]:
    def norm(text: str) -> str:
        return normalize_text(
            text, case_sensitive=o.case_sensitive, whitespace=o.normalize_whitespace
        )

    return norm


@register_scorer("ocr", options=OcrOptions)
def score_ocr(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 - word error rate (``metric: cer``: character error rate), clipped, or ``anls``;
    the best over the keys of a list ground truth. Case-insensitive and whitespace-normalised
    by default (as OCRBench and ANLS); a task's ``scorer_options.ocr`` says otherwise."""
    o = ctx.scorer_options or OcrOptions()
    metric = o.metric or ctx.config.ocr_metric
    norm = _normalizer(o)
    if metric == "anls":
        return _best(
            ground_truth,
            lambda key: _normalized_similarity(norm(key), norm(answer), o.anls_threshold),
        )
    whitespace = o.normalize_whitespace
    return _best(
        ground_truth,
        lambda key: ocr_accuracy(norm(key), norm(answer), metric, collapse_whitespace=whitespace),
    )


@register_scorer("open_ended", options=OpenEndedOptions)
def score_open_ended(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """ROUGE-L F1 against the reference (really computed; released: always 0), or ``anls``;
    the best over the keys of a list ground truth."""
    o = ctx.scorer_options or OpenEndedOptions()
    if o.metric == "anls":
        norm = _normalizer(o)
        return _best(
            ground_truth,
            lambda key: _normalized_similarity(norm(key), norm(answer), o.anls_threshold),
        )
    return _best(ground_truth, lambda key: rouge_l(key, answer))
