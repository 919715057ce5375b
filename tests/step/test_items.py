"""step.items and rewards.items: the reward item of a response, built in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from openvlthinker.rewards.item import ITEM_KEYS, reward_item
from openvlthinker.rewards.score import score, score_reward_item
from openvlthinker.step import task_reward_item
from openvlthinker.tasks import load_tasks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry():
    return load_tasks(REPO / "configs" / "tasks_tiny.yaml")


def test_item_carries_the_task_file_fields(registry):
    name = next(t for t in registry if registry[t].length_envelope is not None)
    spec = registry[name]
    item = task_reward_item(spec, "<answer>1</answer>", 12, "1", options=[])
    assert set(item) == ITEM_KEYS
    assert item["task"] == spec.key and item["problem_type"] == spec.problem_types[0]
    assert item["length_envelope"] == tuple(spec.length_envelope)
    assert item["weights"] == dict(spec.reward_weights)
    assert item["scorer_options"] == {k: dict(v) for k, v in spec.scorer_options.items()}
    # no options (None or empty) is not multiple choice
    assert item["options"] is None
    assert task_reward_item(spec, "x", 1, "A", options=("A", "B"))["options"] == ["A", "B"]


def test_sizes_are_int_pairs_and_a_malformed_one_is_named():
    item = reward_item("r", "g", "ocr", image_size=[640.0, 480.0])
    assert item["image_size"] == (640, 480) and item["model_image_size"] is None
    with pytest.raises(ValueError, match=r"model_image_size: expected \(width, height\), got"):
        reward_item("r", "g", "ocr", model_image_size=(3, 4, 5))
    # score() never raises: the malformed size is the result's error
    assert "model_image_size" in score("r", "g", "ocr", model_image_size=(3, 4, 5))["error"]


def test_score_is_score_reward_item_of_the_same_item(registry):
    spec = registry[next(iter(registry))]
    args = ("<think>t</think><answer>2</answer>", "2", spec.problem_types[0])
    kwargs = {"task": spec.key, "response_tokens": 9, "weights": dict(spec.reward_weights)}
    assert score(*args, **kwargs) == score_reward_item(reward_item(*args, **kwargs))
