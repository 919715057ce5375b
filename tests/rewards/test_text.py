"""OCR (1 - WER / CER), open-ended (ROUGE-L F, checked against rouge-score itself) and ANLS;
answers with several keys, case and whitespace per task."""

import random

import pytest
from rouge_score import rouge_scorer

from openvlthinker.rewards import RewardConfig, score
from openvlthinker.rewards.text import anls, ocr_accuracy, rouge_l
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


LOBO = ["Dear Dr. Lobo", "Dr. Lobo"]


@pytest.mark.parametrize(
    ("problem_type", "options"),
    [
        ("ocr", None),
        ("ocr", {"ocr": {"metric": "cer"}}),
        ("ocr", {"ocr": {"metric": "anls"}}),
        ("open_ended", None),
        ("open_ended", {"open_ended": {"metric": "anls"}}),
    ],
)
def test_a_list_ground_truth_means_any_of_these_keys(problem_type, options):
    # joined into one string it scored 0.2 (ocr) and 0.571 (open_ended)
    result = score(wrap("Dr. Lobo"), LOBO, problem_type, scorer_options=options)
    assert result["correctness"] == 1.0 and result["error"] is None
    # the best key counts: "Dear Dr. Lobo" is 2 of 3 words, "Dr. Lobo" none
    part = score(wrap("Dear Dr. Lobo"), ["Dr. Lobo", "Dear Dr. Lobo"], problem_type)
    assert part["correctness"] == 1.0


def test_the_best_key_scores_a_partial_answer():
    result = score(wrap("Dear Lobo"), LOBO, "ocr")
    # "Dear Dr. Lobo": one deletion in 3 words; "Dr. Lobo": one substitution in 2
    assert result["correctness"] == pytest.approx(2 / 3)


def test_an_empty_key_list_is_an_error_not_a_crash():
    result = score(wrap("anything"), [], "ocr")
    assert result["correctness"] == 0.0 and result["error"] == "ground truth is an empty list"


def test_ocr_is_case_insensitive_by_default_and_case_sensitive_per_task():
    assert score(wrap("stop"), "STOP", "ocr")["correctness"] == 1.0
    strict = {"ocr": {"case_sensitive": True}}
    assert score(wrap("stop"), "STOP", "ocr", scorer_options=strict)["correctness"] == 0.0
    assert score(wrap("STOP"), "STOP", "ocr", scorer_options=strict)["correctness"] == 1.0


def test_whitespace_normalisation_is_an_option_of_the_character_metrics():
    cer = {"ocr": {"metric": "cer"}}
    assert score(wrap("a  b\nc"), "a b c", "ocr", scorer_options=cer)["correctness"] == 1.0
    raw = {"ocr": {"metric": "cer", "normalize_whitespace": False}}
    # "a  b\nc" vs "a b c": one deletion and one substitution over 5 characters
    assert score(wrap("a  b\nc"), "a b c", "ocr", scorer_options=raw)[
        "correctness"
    ] == pytest.approx(1 - 2 / 5)


@pytest.mark.parametrize(
    ("prediction", "keys", "expected"),
    [
        ("Dear dr. Lobo", ["Dear Dr. Lobo", "Dr. Lobo"], 1.0),  # case-insensitive
        ("  Denver   Broncos ", ["Denver Broncos"], 1.0),  # whitespace collapsed
        ("12/15/89", ["12/15/88"], 1 - 1 / 8),
        ("abx", ["abc"], 1 - 1 / 3),
        ("ax", ["ab"], 0.0),  # NL = 0.5 is not below the 0.5 threshold
        ("axc", ["ab", "abc"], 1 - 1 / 3),  # the best key
        ("xyz", ["abc"], 0.0),
        ("", [""], 1.0),
        ("anything", [], 0.0),
    ],
)
def test_anls_is_the_docvqa_metric(prediction, keys, expected):
    assert anls(prediction, keys) == pytest.approx(expected)


def test_anls_threshold_and_its_use_as_an_ocr_metric():
    assert anls("ax", ["ab"], threshold=0.6) == pytest.approx(0.5)
    options = {"ocr": {"metric": "anls", "anls_threshold": 0.6}}
    result = score(wrap("ax"), "ab", "ocr", scorer_options=options)
    assert result["correctness"] == pytest.approx(0.5)
    default = score(
        wrap("12/15/89"), ["12/15/88"], "ocr", scorer_options={"ocr": {"metric": "anls"}}
    )
    assert default["correctness"] == pytest.approx(1 - 1 / 8)
