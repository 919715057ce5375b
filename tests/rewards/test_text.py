"""OCR (1 - WER / CER) and open-ended (ROUGE-L F, checked against rouge-score itself)."""

import random

import pytest
from rouge_score import rouge_scorer

from openvlthinker.rewards import RewardConfig, score
from openvlthinker.rewards.text import ocr_accuracy, rouge_l
from tests.rewards.helpers import wrap


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("total due 42", "total due 42", 1.0),
        ("total due 41", "total due 42", 2 / 3),
        ("total 42", "total due 42", 2 / 3),  # one deletion
        ("total due now 42", "total due 42", 2 / 3),  # one insertion
        ("due total 42", "total due 42", 1 / 3),  # two substitutions
        ("x y z w v", "a b", 0.0),  # WER > 1 is clipped to 0
        ("", "total", 0.0),
        ("Total due 42", "total due 42", 1.0),  # case does not by default (OCRBench, ANLS)
        ("total  due\n42", "total due 42", 1.0),  # whitespace between words does not
        ("hello / world", "hello / world", 1.0),  # released defect: '/' spacing was rewritten
        ("a < b", "a < b", 1.0),
        ("one two three four", "one two three five", 0.75),
        ("一 二 三", "一 二 三", 1.0),
        ("the the the", "the", 0.0),
        ("invoice 2024 paid", "invoice 2024 paid in full", 0.6),
    ],
)
def test_ocr_known_answers(answer, reference, expected):
    result = score(wrap(answer), reference, "ocr")
    assert result["correctness"] == pytest.approx(expected), result
    assert result["error"] is None


def test_wer_equals_jiwer_on_single_spaced_text():
    import jiwer

    rng = random.Random(1)
    words = ["total", "due", "42", "paid", "in", "full", "the"]
    for _ in range(200):
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(1, 20)))
        hyp = " ".join(rng.choice(words) for _ in range(rng.randint(1, 20)))
        expected = max(0.0, 1.0 - jiwer.wer(ref, hyp))
        assert ocr_accuracy(ref, hyp) == pytest.approx(expected, abs=1e-12), (ref, hyp)
        assert ocr_accuracy(ref, hyp, "cer") == pytest.approx(max(0.0, 1.0 - jiwer.cer(ref, hyp)))


def test_ocr_character_level_option():
    cfg = RewardConfig(ocr_metric="cer")
    assert score(wrap("abcd"), "abce", "ocr", config=cfg)["correctness"] == pytest.approx(0.75)
    assert score(wrap("abcd"), "abce", "ocr")["correctness"] == 0.0


def test_ocr_empty_reference():
    assert ocr_accuracy("", "") == 1.0
    assert ocr_accuracy("  ", "x") == 0.0


def test_open_ended_is_really_computed():
    # Released defect: open-ended correctness was always 0 (a missing import was swallowed).
    result = score(wrap("the cat sat on the mat"), "a cat sat on the mat", "open-ended")
    assert result["correctness"] == pytest.approx(5 / 6)
    assert score(wrap("completely unrelated"), "a cat sat", "open_ended")["correctness"] == 0.0


def test_rouge_l_equals_rouge_score():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    rng = random.Random(0)
    words = ["cats", "running", "the", "a", "mat", "sat", "dogs", "ran", "on", "quickly", "42"]
    for _ in range(200):
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        hyp = " ".join(rng.choice(words) for _ in range(rng.randint(0, 30)))
        expected = scorer.score(ref, hyp)["rougeL"].fmeasure
        assert rouge_l(ref, hyp) == pytest.approx(expected, abs=1e-12), (ref, hyp)


def test_long_open_ended_answer_scores():
    words = [f"word{i % 997}" for i in range(3000)]
    text = " ".join(words)
    value = rouge_l(text, text[::-1])
    assert 0.0 <= value <= 1.0
    assert rouge_l(text, text) == 1.0
    # every other word: the hypothesis is a subsequence, LCS = 1500, P = 1, R = 1/2
    assert rouge_l(text, " ".join(words[::2])) == pytest.approx(2 / 3, abs=1e-12)
