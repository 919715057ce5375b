"""Spatial grounding (frames, several boxes, Hungarian matching) and segmentation."""

import json
import math

import numpy as np
import pytest

from openvlthinker.rewards import RewardConfig, score
from openvlthinker.rewards.geometry import iou_matrix, matched_mean_iou
from tests.rewards.helpers import wrap

ABS = RewardConfig(coordinate_frame="absolute")


def box_answer(boxes) -> str:
    return wrap(json.dumps({"boxes": boxes}))


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),
        ([0, 0, 10, 10], [0, 0, 20, 20], 0.25),
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([10, 10, 0, 0], [0, 0, 10, 10], 0.0),  # reversed box has no area
        ([[0, 0, 10, 10]], [0, 0, 10, 10], 1.0),  # list of one box
        ([[0, 0, 10, 10], [20, 20, 30, 30]], [[20, 20, 30, 30], [0, 0, 10, 10]], 1.0),  # order-free
        ([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0, 10, 10], 0.5),  # extra box counts 0
        ([0, 0, 10, 10], [[0, 0, 10, 10], [20, 20, 30, 30]], 0.5),  # missing box counts 0
        ([[0, 0, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10]], (1 + 1 / 3) / 2),
        ([0.5, 0.5, 10.5, 10.5], [0, 0, 10, 10], 100 / 110.5 * 0 + (9.5 * 9.5) / (200 - 9.5 * 9.5)),
    ],
)
def test_absolute_frame_known_answers(pred, gt, expected):
    result = score(box_answer(pred), json.dumps({"boxes": gt}), "spatial_grounding", config=ABS)
    assert result["correctness"] == pytest.approx(expected), result


def test_qwen_1000_frame_is_rescaled_to_pixels():
    # Image 640 x 480; the model answers in 0..1000 normalised coordinates.
    gt = json.dumps({"boxes": [64, 48, 320, 240]})
    result = score(box_answer([100, 100, 500, 500]), gt, "grounding", image_size=(640, 480))
    assert result["correctness"] == pytest.approx(1.0)
    # Without the image size, both are taken to be in the same frame.
    assert score(box_answer([100, 100, 500, 500]), gt, "grounding")["correctness"] < 0.5


def test_absolute_frame_rescales_a_resized_image():
    # The model saw a 320 x 240 resize of a 640 x 480 image; the key is in original pixels.
    gt = json.dumps({"boxes": [64, 48, 320, 240]})
    result = score(
        box_answer([32, 24, 160, 120]),
        gt,
        "spatial_grounding",
        image_size=(640, 480),
        model_image_size=(320, 240),
        config=ABS,
    )
    assert result["correctness"] == pytest.approx(1.0)


def test_anisotropic_rescale_matters():
    gt = json.dumps({"boxes": [0, 0, 100, 100]})
    kwargs = {"image_size": (1000, 500), "config": ABS}
    right = score(
        box_answer([0, 0, 100, 100]),
        gt,
        "spatial_grounding",
        model_image_size=(1000, 500),
        **kwargs,
    )
    squashed = score(
        box_answer([0, 0, 100, 100]), gt, "spatial_grounding", model_image_size=(500, 500), **kwargs
    )
    assert right["correctness"] == 1.0 and squashed["correctness"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "answer",
    [
        '{"boxes": [1, 2, 3]}',
        '{"boxes": [1, 2, 3, "4"]}',
        '{"boxes": [1, 2, 3, NaN]}',
        '{"boxes": [1, 2, 3, Infinity]}',
        '{"box": [1, 2, 3, 4]}',
        '{"boxes": [1, 2, 3, 4}',
        '{"boxes": [true, 2, 3, 4]}',
        "[[[[[[[[[[]]]]]]]]]]",
        "",
    ],
)
def test_invalid_boxes_score_zero_with_error(answer):
    result = score(wrap(answer), '{"boxes": [1, 2, 3, 4]}', "spatial_grounding")
    assert result["correctness"] == 0.0 and result["structure"] == 0.0
    assert result["error"].startswith("answer:")


def test_qwen_bbox_2d_and_code_fence_are_read():
    gt = '{"boxes": [0, 0, 10, 10]}'
    fenced = wrap('```json\n[{"bbox_2d": [0, 0, 10, 10], "label": "cat"}]\n```')
    assert score(fenced, gt, "spatial_grounding", config=ABS)["correctness"] == 1.0


def test_structure_bonus_needs_valid_boxes_and_format():
    gt = '{"boxes": [0, 0, 10, 10]}'
    good = score(box_answer([0, 0, 5, 5]), gt, "spatial_grounding", config=ABS)
    assert good["structure"] == 0.5 and good["overall"] == pytest.approx(0.9 * 0.25 + 0.1 + 0.5)
    reversed_box = score(box_answer([5, 5, 0, 0]), gt, "spatial_grounding", config=ABS)
    assert reversed_box["structure"] == 0.0
    no_format = score(
        '<answer>{"boxes": [0, 0, 10, 10]}</answer>', gt, "spatial_grounding", config=ABS
    )
    assert no_format["format"] == 0.0 and no_format["structure"] == 0.0
    assert no_format["correctness"] == 1.0


def test_too_many_boxes_is_an_error():
    many = [[0, 0, 1, 1]] * 101
    result = score(box_answer(many), '{"boxes": [0, 0, 1, 1]}', "spatial_grounding")
    assert result["correctness"] == 0.0 and "limit" in result["error"]


def test_iou_matrix_against_a_loop():
    rng = np.random.default_rng(0)
    a = (
        np.sort(rng.uniform(0, 100, (5, 2, 2)), axis=1)
        .transpose(0, 2, 1)
        .reshape(5, 4)[:, [0, 2, 1, 3]]
    )
    b = (
        np.sort(rng.uniform(0, 100, (4, 2, 2)), axis=1)
        .transpose(0, 2, 1)
        .reshape(4, 4)[:, [0, 2, 1, 3]]
    )
    got = iou_matrix(a, b)
    for i in range(5):
        for j in range(4):
            x1, y1 = max(a[i, 0], b[j, 0]), max(a[i, 1], b[j, 1])
            x2, y2 = min(a[i, 2], b[j, 2]), min(a[i, 3], b[j, 3])
            inter = max(0, x2 - x1) * max(0, y2 - y1)
            area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
            assert got[i, j] == pytest.approx(inter / (area(a[i]) + area(b[j]) - inter))
    assert matched_mean_iou(np.zeros((0, 4)), np.zeros((0, 4))) == 1.0


SEG_GT = {
    "boxes": [0, 0, 100, 100],
    "positive_points": [[0, 0], [500, 0], [0, 500]],
    "negative_points": [[200, 200], [300, 300], [400, 400]],
}


def test_segmentation_image():
    exact = score(wrap(json.dumps(SEG_GT)), json.dumps(SEG_GT), "segmentation", config=ABS)
    assert exact["correctness"] == pytest.approx(1.0)
    shifted = dict(SEG_GT, positive_points=[[500, 0], [0, 0], [0, 550]])  # one point 50 px off
    result = score(wrap(json.dumps(shifted)), json.dumps(SEG_GT), "segmentation", config=ABS)
    pos = (2 + math.exp(-(50**2) / (2 * 50**2))) / 3
    assert result["correctness"] == pytest.approx(0.5 + 0.25 * pos + 0.25)


def test_segmentation_video_uses_time():
    gt = dict(SEG_GT, time=4.0)
    pred = dict(SEG_GT, time=6.0)
    result = score(wrap(json.dumps(pred)), json.dumps(gt), "video segmentation", config=ABS)
    assert result["correctness"] == pytest.approx(0.3 + 0.3 * math.exp(-1.0) + 0.4)
    missing_time = score(wrap(json.dumps(SEG_GT)), json.dumps(gt), "segmentation", config=ABS)
    assert missing_time["correctness"] == 0.0 and "time" in missing_time["error"]
