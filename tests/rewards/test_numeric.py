"""Numerical (tolerances, commas, percent, units), regression (MRA) and counting."""

import pytest

from openvlthinker.rewards import RewardConfig, score
from openvlthinker.rewards.numeric import mathvista_match, mean_relative_accuracy, relaxed_match
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
        ("3.144", "3.14", 1.0),  # rounded to the key's 2 decimals
        ("3.15", "3.14", 0.0),
        ("1001.5", "1000", 0.0),
        ("1000.9", "1000", 0.0),  # an integer key needs the same integer
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


@pytest.mark.parametrize(
    ("answer", "key"),
    [
        ("2021", "2019"),
        ("2017", "2019"),
        ("1001", "1000"),
        ("100000", "100099"),
        ("0.129", "0.125"),
    ],
)
def test_numerical_near_misses_score_zero_by_default(answer, key):
    # the old default tolerance max(5e-3, 1e-3 |key|) paid every one of these
    assert score(wrap(answer), key, "numerical")["correctness"] == 0.0
    assert score(wrap(key), key, "numerical")["correctness"] == 1.0


@pytest.mark.parametrize(
    ("answer", "key", "expected"),
    [
        # a decimal key is matched at its own precision: the answer rounded to its decimals
        ("0.1251", "0.13", True),
        ("0.1249", "0.13", False),
        ("0.1349", "0.13", True),
        ("0.1351", "0.13", False),
        ("2.54", "2.5", True),
        ("2.56", "2.5", False),
        ("12.504", "12.50", True),  # "12.50" has two decimals
        ("12.506", "12.50", False),
        ("0.0015", "1.5e-3", True),
        ("0.00151", "1.5e-3", True),  # 1.5e-3 is written to 4 places
        ("0.00156", "1.5e-3", False),
        ("2019.0", "2019", True),
        ("2019.4", "2019", False),
        ("45", "45%", True),  # percentages: the number with its sign stripped, as before
        ("0.75", "3/4", True),  # a fraction key: equal up to float rounding
        ("0.7501", "3/4", False),
    ],
)
def test_mathvista_precision_rule_on_both_sides_of_its_boundary(answer, key, expected):
    assert mathvista_match(answer, key) is expected
    assert score(wrap(answer), key, "numerical")["correctness"] == float(expected)


def test_mathvista_match_takes_a_precision_and_truncates_only_when_asked():
    assert mathvista_match("3.14159", "3.14159", precision=2)
    assert not mathvista_match("3.149", "3.14", precision=3)
    assert mathvista_match(0.125, 0.125) and not mathvista_match(0.129, 0.125)
    # MathVista's int(float(x)) truncates; the reward does not unless asked
    assert not mathvista_match("2.7", "2")
    assert mathvista_match("2.7", "2", truncate=True)
    assert not mathvista_match("many", "12") and not mathvista_match("12", "n/a")


@pytest.mark.parametrize(
    ("answer", "key", "tolerance", "expected"),
    [
        ("105", "100", 0.05, True),  # |105 - 100| / 100 = 0.05 <= 5%
        ("105.01", "100", 0.05, False),
        ("95", "100", 0.05, True),
        ("94.9", "100", 0.05, False),
        ("-10.4", "-10", 0.05, True),
        ("109", "100", 0.1, True),
        ("45%", "0.45", 0.05, True),  # ChartQA: a value with % is divided by 100
        ("0.45", "45%", 0.05, True),
        ("45%", "45", 0.05, False),
        ("Yes", "yes", 0.05, True),  # non-numeric: the same text, any case
        ("No", "yes", 0.05, False),
        ("0", "0", 0.05, True),
        ("0.001", "0", 0.05, False),
        ("1,020", "1000", 0.05, True),
    ],
)
def test_relaxed_match_is_chartqa_relaxed_accuracy(answer, key, tolerance, expected):
    assert relaxed_match(answer, key, tolerance) is expected


def test_a_task_chooses_the_relaxed_rule_per_problem_type():
    relaxed = {"numerical": {"rule": "relaxed"}}
    assert score(wrap("104"), "100", "numerical", scorer_options=relaxed)["correctness"] == 1.0
    assert score(wrap("104"), "100", "numerical")["correctness"] == 0.0
    wide = {"numerical": {"rule": "relaxed", "tolerance": 0.1}}
    assert score(wrap("109"), "100", "numerical", scorer_options=wide)["correctness"] == 1.0
    # options of another problem type leave this one alone
    other = {"regression": {}, "ocr": {"case_sensitive": True}}
    assert score(wrap("104"), "100", "numerical", scorer_options=other)["correctness"] == 0.0
    bad = score(wrap("104"), "100", "numerical", scorer_options={"numerical": {"rule": "x"}})
    assert bad["correctness"] == 0.0 and "rule: 'x' is unknown" in bad["error"]


def test_the_old_tolerance_keys_are_refused_with_what_replaced_them():
    with pytest.raises(ValueError, match=r"reward.numeric_rel_tol was removed: .*MathVista"):
        RewardConfig.from_dict({"numeric_rel_tol": 0.05})


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
