"""Free-text answers: OCR (1 - word/character error rate) and open-ended (ROUGE-L F)."""

from __future__ import annotations

import functools
from typing import Any

from rapidfuzz.distance import LCSseq, Levenshtein

from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer


@functools.cache
def _rouge_tokenizer() -> Any:
    """rouge-score's tokenizer with its Porter stemmer, built on first use: importing
    rouge-score pulls in absl, whose first log call configures the root logger."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)._tokenizer


def ocr_accuracy(reference: str, hypothesis: str, metric: str = "wer") -> float:
    """1 - WER (or CER), clipped to [0, 1]; an empty reference is matched only by an empty answer.

    Words are split on any whitespace (newlines in OCR text are word breaks); the edit
    distance is rapidfuzz's Levenshtein over words (WER) or characters (CER).
    """
    if metric == "cer":
        ref, hyp = " ".join(reference.split()), " ".join(hypothesis.split())
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


@register_scorer("ocr")
def score_ocr(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1 - word error rate (``ocr_metric='cer'``: character error rate), clipped."""
    return Verdict(ocr_accuracy(str(ground_truth), answer, ctx.config.ocr_metric))


@register_scorer("open_ended")
def score_open_ended(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """ROUGE-L F1 against the reference answer (really computed; released: always 0)."""
    return Verdict(rouge_l(str(ground_truth), answer))
