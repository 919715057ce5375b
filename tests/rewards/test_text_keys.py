"""Text answers: any of several keys, case and whitespace per task, and ANLS."""

import pytest

from openvlthinker.rewards import score
from openvlthinker.rewards.text import anls
from tests.rewards.helpers import wrap

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
