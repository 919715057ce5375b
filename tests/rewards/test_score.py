"""score(): components, weights, length, released-scorer defects, hostile inputs."""

import re

import pytest

from openvlthinker.rewards import RewardConfig, score
from tests.rewards.helpers import assert_in_range, wrap


def test_released_weighting():
    result = score(wrap("B"), "B", "multiple_choice")
    assert result == {
        "overall": pytest.approx(0.9 + 0.1 + 0.5),
        "correctness": 1.0,
        "format": 1.0,
        "structure": 0.5,
        "length": 0.0,
        "acc": 1.0,
        "error": None,
    }


def test_weights_per_call_override_config():
    result = score(wrap("B"), "B", "multiple_choice", weights={"structure": 0.0, "format": 1.0})
    assert result["overall"] == pytest.approx(0.9 + 1.0)


def test_length_trapezoid_in_tokens():
    kwargs = {"length_envelope": (10, 20, 40, 60), "weights": {"length": 1.0}}
    assert score(wrap("B"), "B", "multiple_choice", response_tokens=15, **kwargs)[
        "length"
    ] == pytest.approx(0.5)
    result = score(wrap("B"), "B", "multiple_choice", response_tokens=50, **kwargs)
    assert result["length"] == pytest.approx(0.5)
    assert result["overall"] == pytest.approx(0.9 + 0.1 + 0.5 + 0.5)
    assert score(wrap("B"), "B", "multiple_choice", response_tokens=15)["length"] == 0.0


def test_bad_envelope_is_an_error_result():
    result = score(
        wrap("B"), "B", "multiple_choice", response_tokens=5, length_envelope=(10, 5, 1, 0)
    )
    assert result["overall"] == 0.0 and "length_envelope" in result["error"]


def test_no_answer_tag_gets_no_correctness_by_default():
    # Released defect: with no answer tag the whole response was scored.
    result = score("The answer is 42", "42", "numerical")
    assert result["correctness"] == 0.0 and result["error"] == "no <answer> tag"
    lenient = score(
        "<think>t</think> 42", "42", "numerical", config=RewardConfig(require_answer_tag=False)
    )
    assert (
        lenient["correctness"] == 1.0 and lenient["format"] == 0.0 and lenient["structure"] == 0.0
    )


def test_thinking_tag_config():
    cfg = RewardConfig(think_tag="thinking")
    result = score("<thinking>t</thinking><answer>B</answer>", "B", "multiple_choice", config=cfg)
    assert result["format"] == 1.0
    assert (
        score("<thinking>t</thinking><answer>B</answer>", "B", "multiple_choice")["format"] == 0.0
    )


@pytest.mark.parametrize(
    ("item_kwargs", "match"),
    [
        ({"response": None}, "response must be a string, got NoneType"),
        ({"response": b"bytes"}, "response must be a string, got bytes"),
        ({"problem_type": None}, "unknown problem type 'None'"),
        ({"weights": {"bogus": 1}}, "weights: unknown component 'bogus'"),
        (
            {"image_size": (0, 10), "problem_type": "spatial_grounding"},
            "image_size: expected \\(width, height\\) > 0",
        ),
    ],
)
def test_bad_arguments_become_errors(item_kwargs, match):
    kwargs = {
        "response": wrap('{"boxes": [0, 0, 1, 1]}'),
        "ground_truth": '{"boxes": [0, 0, 1, 1]}',
        "problem_type": "numerical",
    }
    kwargs.update(item_kwargs)
    response = kwargs.pop("response")
    result = score(response, **kwargs)
    assert result["error"] is not None and re.search(match, result["error"]), result
    assert_in_range(result)


def test_answer_length_cap():
    result = score(wrap("a " * 20_000), "a", "ocr")
    assert (
        result["correctness"] == 0.0 and result["error"] == "answer too long (39999 > 20000 chars)"
    )


def test_call_timeout_bounds_a_python_hang():
    from pathlib import Path

    from openvlthinker.rewards import load_reward_function

    load_reward_function(
        f"{Path(__file__).with_name('user_scorers.py')}:hang", problem_type="hang_type"
    )
    result = score(wrap("hang"), "x", "hang_type", config=RewardConfig(call_timeout=0.2))
    assert result["error"] == "timed out after 0.2s" and result["overall"] == 0.0
