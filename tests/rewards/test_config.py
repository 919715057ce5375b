"""RewardConfig validation: errors name the key, the value and what is allowed."""

import pytest

from openvlthinker.rewards import RewardConfig


def test_defaults_are_the_released_weighting():
    from openvlthinker.rewards import DEFAULT_WEIGHTS, SCORED_COMPONENTS

    assert dict(DEFAULT_WEIGHTS) == {
        "correctness": 0.9,
        "format": 0.1,
        "structure": 1.0,
        "length": 0.0,
    }
    assert tuple(DEFAULT_WEIGHTS) == SCORED_COMPONENTS
    cfg = RewardConfig()
    assert cfg.structure_bonus == 0.5 and cfg.think_tag == "think"


def test_weights_are_the_task_files_not_a_reward_key():
    with pytest.raises(
        ValueError,
        match=r"^reward\.weights=\{'length': 0\.2\}: unused: .*task file's reward_weights "
        r"and length_weight",
    ):
        RewardConfig.from_dict({"weights": {"length": 0.2}})
    with pytest.raises(TypeError, match="weights"):
        RewardConfig(weights={"length": 0.2})


def test_prompt_options_are_the_tags_and_frame_the_scoring_uses():
    cfg = RewardConfig(think_tag="thinking", answer_tag="ans", coordinate_frame="absolute")
    assert cfg.prompt_options == {
        "think_tag": "thinking",
        "answer_tag": "ans",
        "coordinate_frame": "absolute",
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"coordinate_frame": "pixels"},
            r"reward\.coordinate_frame: 'pixels' is unknown; known: qwen_1000, absolute",
        ),
        ({"think_tag": "<think>"}, r"reward\.think_tag: expected a tag name"),
        ({"think_tag": "answer"}, r"must differ"),
        ({"ocr_metric": "bleu"}, r"reward\.ocr_metric"),
        (
            {"structure_bonus": 2.0},
            r"reward\.structure_bonus: expected a number in \[0.0, 1.0\], got 2.0",
        ),
        ({"math_timeout": 0}, r"reward\.math_timeout: expected a finite number > 0, got 0"),
        ({"regression_thresholds": (0.5, 1.0)}, r"reward\.regression_thresholds"),
        ({"max_boxes": 0}, r"reward\.max_boxes: expected a positive integer"),
        ({"workers": -1}, r"reward\.workers"),
        ({"start_method": "thread"}, r"reward\.start_method"),
        (
            {"user_scorers": {"x": "file.py"}},
            r"reward\.user_scorers.x: expected 'path/to/file.py:function'",
        ),
    ],
)
def test_invalid_values_raise_naming_the_key(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RewardConfig(**kwargs)


def test_from_dict_rejects_unknown_keys():
    assert RewardConfig.from_dict({"think_tag": "thinking"}).think_tag == "thinking"
    with pytest.raises(ValueError, match=r"reward: unknown key\(s\) answer_tags; known: "):
        RewardConfig.from_dict({"answer_tags": "x"})


def test_one_list_of_components_and_weights_for_scores_and_task_files(tmp_path):
    from openvlthinker.rewards import (
        DEFAULT_WEIGHTS,
        RESULT_KEYS,
        SCORED_COMPONENTS,
        TASK_WEIGHTED_COMPONENTS,
        score,
    )
    from openvlthinker.rewards.score import error_result
    from openvlthinker.tasks import TaskFileError, load_tasks

    assert RESULT_KEYS == ("overall", *SCORED_COMPONENTS, "acc")
    assert TASK_WEIGHTED_COMPONENTS == tuple(c for c in SCORED_COMPONENTS if c != "length")
    result = score("<think>x</think><answer>B</answer>", "B", "multiple_choice")
    assert set(result) == set(error_result("x")) == {*RESULT_KEYS, "error"}
    # no per-call weights: the released weighting
    assert result["overall"] == pytest.approx(
        sum(DEFAULT_WEIGHTS[c] * result[c] for c in SCORED_COMPONENTS)
    )
    body = "    domain: text\n    problem_types: [multiple_choice]\n    length_envelope: [1, 2, 8, 16]\n"
    tasks = tmp_path / "tasks.yaml"
    tasks.write_text(f"tasks:\n  quiz:\n{body}    length_weight: 0.3\n")
    weights = load_tasks(tasks)["quiz"].reward_weights
    assert weights == {**{c: DEFAULT_WEIGHTS[c] for c in TASK_WEIGHTED_COMPONENTS}, "length": 0.3}
    tasks.write_text(
        f"tasks:\n  quiz:\n{body}    length_weight: 0.3\n    reward_weights: {{acc: 1}}\n"
    )
    known = r"known: \['correctness', 'format', 'structure'\]"
    with pytest.raises(TaskFileError, match=rf"reward_weights.*unknown reward component.*{known}"):
        load_tasks(tasks)
