"""Numerical (tolerances, commas, percent, units), regression (MRA) and counting."""

import pytest

from openvlthinker.rewards import RewardConfig, score
from openvlthinker.rewards.numeric import mean_relative_accuracy
from openvlthinker.rewards.parsing import parse_number
from tests.rewards.helpers import wrap

THRESHOLDS = RewardConfig().regression_thresholds


@pytest.mark.parametrize(
    ("answer", "key", "expected"),
    [
        ("42", "42", 1.0),
        ("42.0", "42", 1.0),
        ("1,234.5", "1234.5", 1.0),
        ("1234.5", "1,234.5", 1.0),
        ("45%", "45", 1.0),
        ("45 %", "45%", 1.0),
        ("12 cm", "12", 1.0),
        ("$12.50", "12.5", 1.0),
        ("x = 3", "3", 1.0),
        ("-7", "-7", 1.0),
        ("\u22127", "-7", 1.0),
        ("3/4", "0.75", 1.0),
        ("\\frac{3}{4}", "0.75", 1.0),
        ("\\boxed{0.75}", "0.75", 1.0),
        ("1e3", "1000", 1.0),
        ("3.144", "3.14", 1.0),  # within the 5e-3 absolute tolerance
        ("3.15", "3.14", 0.0),
        ("1001.5", "1000", 0.0),  # outside 1e-3 relative
        ("1000.9", "1000", 1.0),  # inside 1e-3 relative
        ("43", "42", 0.0),
    ],
)
def test_numerical_known_answers(answer, key, expected):
    result = score(wrap(answer), key, "numerical")
    assert result["correctness"] == expected, result
    assert result["error"] is None


@pytest.mark.parametrize("answer", ["12 or 13", "about 3 to 4", "", "many", "1/0", "1e999", "nan"])
def test_numerical_rejects_non_numbers(answer):
    result = score(wrap(answer), "12", "numerical")
    assert result["correctness"] == 0.0
    assert result["error"] == "answer is not a single number"


def test_numerical_tolerance_is_configurable():
    cfg = RewardConfig(numeric_rel_tol=0.05, numeric_abs_tol=0.0)
    assert score(wrap("104"), "100", "numerical", config=cfg)["correctness"] == 1.0
    assert score(wrap("106"), "100", "numerical", config=cfg)["correctness"] == 0.0


@pytest.mark.parametrize(
    ("value", "target", "expected"),
    [
        (10.0, 10.0, 1.0),
        (10.4, 10.0, 1.0),  # rel error 0.04 < 0.05
        (10.6, 10.0, 0.9),  # 0.06 fails only t = 0.95
        (12.0, 10.0, 0.6),  # 0.2 < 1 - t for t in 0.50..0.75
        (15.0, 10.0, 0.0),  # 0.5 is not < 0.5
        (0.0, 0.0, 1.0),  # target 0: sane
        (0.1, 0.0, 0.8),  # |0.1| / zero_scale 1 = 0.1 < 1 - t for t in 0.50..0.85
        (-10.0, 10.0, 0.0),
    ],
)
def test_mean_relative_accuracy(value, target, expected):
    assert mean_relative_accuracy(value, target, THRESHOLDS) == pytest.approx(expected)
    result = score(wrap(str(value)), str(target), "regression")
    assert result["correctness"] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [("3", 1.0), ("3.0", 1.0), ("three", 1.0), ("4", 0.0), ("3 apples", 1.0)],
)
def test_counting(answer, expected):
    assert score(wrap(answer), "3", "counting")["correctness"] == expected


def test_counting_rejects_fractions():
    result = score(wrap("2.5"), "3", "counting")
    assert result["correctness"] == 0.0 and result["error"] == "count is not a whole number"


def test_ground_truth_may_be_a_number():
    assert score(wrap("7"), 7, "numerical")["correctness"] == 1.0
    assert parse_number(True) is None
    assert score(wrap("7"), "seven-ish", "numerical")["error"].startswith("ground truth")
