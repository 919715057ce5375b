"""Temporal grounding, tracking and spatial-temporal grounding."""

import json

import pytest

from openvlthinker.rewards import RewardConfig, score
from tests.rewards.helpers import wrap

ABS = RewardConfig(coordinate_frame="absolute")


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ([0, 10], [0, 10], 1.0),
        ([0, 10], [5, 15], 5 / 15),
        ([0, 5], [5, 10], 0.0),
        ([2, 2], [2, 2], 1.0),
        ([0, 20], [5, 10], 0.25),
    ],
)
def test_temporal_iou(pred, gt, expected):
    result = score(wrap(json.dumps({"time": pred})), json.dumps({"time": gt}), "temporal grounding")
    assert result["correctness"] == pytest.approx(expected)


def test_temporal_reversed_span_is_an_error():
    result = score(wrap('{"time": [10, 0]}'), '{"time": [0, 10]}', "temporal_grounding")
    assert result["correctness"] == 0.0 and result["error"] == "answer: 'time' start is after end"


GT_FRAMES = {"0": [0, 0, 10, 10], "1": [0, 0, 10, 10], "2": [0, 0, 10, 10], "3": [0, 0, 10, 10]}


def test_tracking_counts_missing_frames_as_zero():
    pred = {"boxes": {"0": [0, 0, 10, 10], "1": [0, 0, 10, 10]}}
    result = score(wrap(json.dumps(pred)), json.dumps({"boxes": GT_FRAMES}), "tracking", config=ABS)
    assert result["correctness"] == pytest.approx(0.5)
    assert result["structure"] == pytest.approx(0.5 * (0.5 + 0.5 * 0.5))


def test_spatial_temporal_grounding_viou():
    gt = {"time": [0, 4], "boxes": GT_FRAMES}
    pred = {"time": [0, 2], "boxes": {"0": [0, 0, 10, 10], "1": [0, 0, 5, 10], "9": [0, 0, 1, 1]}}
    result = score(wrap(json.dumps(pred)), json.dumps(gt), "spatial-temporal grounding", config=ABS)
    viou = (1.0 + 0.5) / 5  # union of frame ids {0, 1, 2, 3, 9}
    assert result["correctness"] == pytest.approx(0.5 * 0.5 + 0.5 * viou)


def test_frame_boxes_must_be_boxes():
    pred = {"boxes": {"0": [0, 0, 10]}}
    result = score(wrap(json.dumps(pred)), json.dumps({"boxes": GT_FRAMES}), "tracking")
    assert result["correctness"] == 0.0 and result["error"].startswith("answer: frame '0'")
