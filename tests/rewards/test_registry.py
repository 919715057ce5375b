"""register_scorer, validate_problem_types and load_reward_function."""

from pathlib import Path

import pytest

from openvlthinker.problem_types import known_problem_types
from openvlthinker.rewards import (
    REWARD_FUNCTIONS,
    RewardConfig,
    Verdict,
    load_reward_function,
    load_user_scorers,
    register_scorer,
    score,
    validate_problem_types,
)
from tests.rewards.helpers import assert_in_range, wrap

USER_FILE = Path(__file__).with_name("user_scorers.py")


def test_builtin_types_all_have_scorers():
    assert set(REWARD_FUNCTIONS) >= set(known_problem_types()[:12])
    assert validate_problem_types(["multiple choice", "OCR", "grounding", "math"]) == [
        "multiple_choice",
        "ocr",
        "spatial_grounding",
        "math",
    ]


def test_unknown_type_fails_at_configuration_time():
    with pytest.raises(
        ValueError, match=r"problem_types\[1\]: unknown problem type 'caption'; known: "
    ):
        validate_problem_types(["math", "caption"])


def test_a_problem_type_without_scorer_fails_validation():
    from openvlthinker.problem_types import register_problem_type

    register_problem_type("type_without_scorer")
    with pytest.raises(
        ValueError, match=r"problem_types\[0\]: problem type 'type_without_scorer' has no scorer"
    ):
        validate_problem_types(["type_without_scorer"])


def test_unknown_type_mid_run_is_an_error_result_not_a_crash():
    # Released defect: unknown task types crashed the reward worker.
    result = score(wrap("x"), "x", "caption")
    assert result["overall"] == 0.0 and "unknown problem type 'caption'" in result["error"]


def test_register_scorer_adds_a_problem_type():
    @register_scorer("palindrome")
    def palindrome(answer, ground_truth, ctx):
        return Verdict(1.0 if answer == answer[::-1] else 0.0, structure=1.0)

    assert "palindrome" in known_problem_types()
    assert validate_problem_types(["palindrome"]) == ["palindrome"]
    assert score(wrap("abba"), None, "palindrome")["correctness"] == 1.0
    with pytest.raises(ValueError, match=r"problem type 'palindrome' already has the scorer"):
        register_scorer("palindrome")(lambda a, g, c: 0.0)


def test_load_reward_function_by_path():
    fn = load_reward_function(f"{USER_FILE}:half", problem_type="half_type")
    assert fn.__name__ == "half"
    result = score(wrap("x"), "y", "half_type")
    assert result["correctness"] == 0.5 and result["structure"] == 0.0
    # Decorators inside the file ran once on load.
    assert score(wrap("k"), "k", "decorated_in_file")["correctness"] == 1.0


def test_user_scorers_from_config():
    cfg = RewardConfig(user_scorers={"nan_type": f"{USER_FILE}:nan"})
    load_user_scorers(cfg)
    assert validate_problem_types(["nan_type"]) == ["nan_type"]
    result = score(wrap("x"), "y", "nan_type", config=cfg)
    assert result["correctness"] == 0.0 and result["error"] == "scorer returned a non-finite score"
    assert_in_range(result)


def test_a_raising_scorer_keeps_format_credit():
    load_reward_function(f"{USER_FILE}:explode", problem_type="explode_type")
    result = score(wrap("x"), "y", "explode_type")
    assert result["error"] == "RuntimeError: scorer bug"
    assert (
        result["format"] == 1.0
        and result["correctness"] == 0.0
        and result["overall"] == pytest.approx(0.1)
    )


def test_a_scorer_calling_sys_exit_does_not_end_the_run():
    load_reward_function(f"{USER_FILE}:exits", problem_type="exit_type")
    assert score(wrap("x"), "y", "exit_type")["error"] == "SystemExit: 2"


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("no_colon.py", ValueError, r"expected 'path/to/file.py:function'"),
        (
            "/nonexistent/x.py:f",
            FileNotFoundError,
            r"reward function '/nonexistent/x.py:f': no file",
        ),
        (f"{USER_FILE}:missing", AttributeError, r"defines no 'missing'; it defines: .*crash"),
    ],
)
def test_load_errors_name_the_spec(spec, error, match):
    with pytest.raises(error, match=match):
        load_reward_function(spec)


def test_broken_user_file(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise SystemError('boom')\n")
    with pytest.raises(ImportError, match=r"importing .*bad.py failed: boom"):
        load_reward_function(f"{bad}:f")
