"""Multiple choice: known answers, multi-select, option text, released defects."""

import pytest

from openvlthinker.rewards import score
from openvlthinker.rewards.choice import option_texts, parse_choice
from tests.rewards.helpers import assert_in_range, wrap

OPTIONS = ["A. a red cat", "B. a blue dog", "C. a green cow", "D. a black hen"]


@pytest.mark.parametrize(
    ("answer", "key", "expected"),
    [
        ("B", "B", 1.0),
        ("b", "B", 1.0),
        ("(B)", "B", 1.0),
        ("B.", "B", 1.0),
        ("B. a blue dog", "B", 1.0),
        ("B) a blue dog", "B", 1.0),
        ("B: a blue dog", "B", 1.0),
        ("\\boxed{B}", "B", 1.0),
        ("a blue dog", "B", 1.0),
        ("A Blue  Dog.", "B", 1.0),
        ("C", "B", 0.0),
        ("a green cow", "B", 0.0),
        ("B", "(B)", 1.0),
        ("B", "B. a blue dog", 1.0),
        ("A, C", "A,C", 1.0),
        ("A and C", "AC", 1.0),
        ("(A)(C)", "A, C", 1.0),
        ("A", "A, C", 0.0),
        ("A, B, C", "A, C", 0.0),
        ("C, A", ["A", "C"], 1.0),
        ("Answer: B", "B", 1.0),
        ("The answer is (B)", "B", 1.0),
        ("Option B", "B", 1.0),
        ("The correct answer is C", "B", 0.0),
    ],
)
def test_known_answers(answer, key, expected):
    result = score(wrap(answer), key, "multiple_choice", options=OPTIONS)
    assert result["correctness"] == expected, result
    assert result["error"] is None


@pytest.mark.parametrize(
    "answer", ["", "I am not sure", "the answer is B or C", "AB?", "ZZ", "Options", "Answer is"]
)
def test_unparseable_answer_scores_zero_with_error(answer):
    result = score(wrap(answer), "B", "multiple_choice", options=OPTIONS)
    assert result["correctness"] == 0.0 and result["structure"] == 0.0
    assert result["error"] == "no option letter in the answer"
    assert_in_range(result)


def test_released_spelling_and_answer_tag_in_ground_truth():
    result = score(wrap("D"), "<answer>D</answer>", "multiple choice", options=OPTIONS)
    assert result["correctness"] == 1.0


def test_no_credit_without_answer_tag():
    # Released defect: the whole response was scored when the answer tag was missing.
    result = score("<think>B</think> B", "B", "multiple_choice")
    assert result["correctness"] == 0.0
    assert result["error"] == "no <answer> tag"


def test_option_table_labels_and_positions():
    assert option_texts(["(A) one", "B) two", "three"]) == {"A": "one", "B": "two", "C": "three"}
    assert parse_choice("three", ["one", "two", "three"]) == frozenset("C")
    # Compact letters outside the options are not a selection.
    assert parse_choice("OK", OPTIONS) is None
    assert parse_choice("AD", OPTIONS) == frozenset("AD")
