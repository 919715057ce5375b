"""Math: symbolic equivalence through math-verify, with a time limit that really bounds."""

import pytest

from openvlthinker.rewards import RewardConfig, score
from openvlthinker.rewards.registry import ScoreContext
from openvlthinker.rewards.symbolic import math_equal, score_math
from tests.rewards.helpers import wrap


@pytest.mark.parametrize(
    ("answer", "key", "expected"),
    [
        ("\\frac{1}{2}", "0.5", 1.0),
        ("0.5", "\\frac{1}{2}", 1.0),
        ("1/2", "\\frac12", 1.0),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", 1.0),
        ("(x+1)^2", "x^2+2x+1", 1.0),
        ("[1, 2)", "[1,2)", 1.0),
        ("(1,2]", "[1,2)", 0.0),
        ("\\{2,1\\}", "\\{1,2\\}", 1.0),
        ("\\{1,3\\}", "\\{1,2\\}", 0.0),
        ("\\sqrt 2", "\\sqrt{2}", 1.0),
        ("1.41421356", "\\sqrt{2}", 1.0),
        ("y=1+2x", "y=2x+1", 1.0),
        ("\\boxed{7}", "7", 1.0),
        ("2+3", "5", 1.0),
        ("1/3", "\\frac{1}{2}", 0.0),
        ("\\infty", "\\infty", 1.0),
        ("\\frac{\\pi}{3}", "\\frac{\\pi}{3}", 1.0),
        ("x^2", "x^3", 0.0),
    ],
)
def test_known_answers(answer, key, expected):
    result = score(wrap(answer), key, "math")
    assert result["correctness"] == expected, result
    assert result["error"] is None


def test_math_answer_is_not_rewritten():
    # Released defect: a whitespace regex turned "a < b" into "a<b" and "1 / 2" into "1/2"
    # before scoring; the extracted answer must reach the scorer unchanged.
    seen = []

    def spy(answer, ground_truth, ctx):
        seen.append(answer)
        return 1.0

    from openvlthinker.rewards import register_scorer

    register_scorer("answer_spy")(spy)
    score("<think>t</think><answer>  a < b / c  </answer>", "x", "answer_spy")
    assert seen == ["a < b / c"]


def test_too_long_math_answer_is_refused():
    result = score(wrap("1+" * 5000 + "1"), "1", "math")
    assert result["correctness"] == 0.0 and "too long" in result["error"]


def test_timeout_bounds_an_exploding_expression(monkeypatch):
    def slow_equal(answer, ground_truth):
        while True:  # stands in for a symbolic simplification that never ends
            pass

    monkeypatch.setattr("openvlthinker.rewards.symbolic.math_equal", slow_equal)
    ctx = ScoreContext(config=RewardConfig(math_timeout=0.2))
    verdict = score_math("x^(x^(x^x))", "y", ctx)
    assert verdict.correctness == 0.0
    assert verdict.error == "math verification timed out after 0.2s"


def test_timeout_bounds_a_real_tower_of_powers():
    # sympy tries to evaluate 9^(9^(9^(9^9))); the limit stops it.
    cfg = RewardConfig(math_timeout=0.2)
    result = score(wrap("9^{9^{9^{9^{9}}}}"), "3", "math", config=cfg)
    assert result["correctness"] == 0.0
    assert result["error"] == "math verification timed out after 0.2s"


def test_math_equal_is_cached():
    math_equal.cache_clear()
    assert math_equal("(a+b)^2", "a^2+2ab+b^2")
    assert math_equal("(a+b)^2", "a^2+2ab+b^2")
    assert math_equal.cache_info().hits == 1
