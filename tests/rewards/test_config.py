"""RewardConfig validation: errors name the key, the value and what is allowed."""

import pytest

from openvlthinker.rewards import RewardConfig


def test_defaults_are_the_released_weighting():
    cfg = RewardConfig()
    assert cfg.weights == {"correctness": 0.9, "format": 0.1, "structure": 1.0, "length": 0.0}
    assert cfg.structure_bonus == 0.5 and cfg.think_tag == "think"


def test_partial_weights_merge_with_defaults():
    assert RewardConfig(weights={"length": 0.2}).weights["correctness"] == 0.9


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"weights": {"acuracy": 1.0}},
            r"reward\.weights: unknown component 'acuracy'; known: correctness",
        ),
        ({"weights": {"format": -1}}, r"reward\.weights.format: expected a finite weight >= 0"),
        ({"weights": {"format": float("nan")}}, r"reward\.weights.format"),
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
