"""Video grounding: temporal grounding (1-D IoU), tracking and spatial-temporal grounding
(per-frame box IoU keyed by frame id)."""

from __future__ import annotations

from typing import Any

import numpy as np

from openvlthinker.rewards.geometry import iou_matrix, prediction_scale, span_iou
from openvlthinker.rewards.parsing import finite_numbers, load_json
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer

MAX_FRAMES = 10_000


def parse_span(obj: Any) -> tuple[float, float]:
    """``{"time": [start, end]}`` or a bare ``[start, end]`` with start <= end."""
    span = finite_numbers(obj.get("time") if isinstance(obj, dict) else obj, 2)
    if span is None:
        raise ValueError("'time' must be [start, end], two finite numbers")
    if span[0] > span[1]:
        raise ValueError("'time' start is after end")
    return span[0], span[1]


def parse_frame_boxes(obj: Any) -> dict[str, np.ndarray]:
    """``{"boxes": {frame_id: [x1, y1, x2, y2], ...}}`` -> frame id -> box (4,)."""
    boxes = obj.get("boxes") if isinstance(obj, dict) else None
    if not isinstance(boxes, dict):
        raise ValueError("'boxes' must be an object {frame_id: [x1, y1, x2, y2]}")
    if len(boxes) > MAX_FRAMES:
        raise ValueError(f"{len(boxes)} frames > limit {MAX_FRAMES}")
    out = {}
    for key, value in boxes.items():
        box = finite_numbers(value, 4)
        if box is None:
            raise ValueError(f"frame {str(key)[:20]!r}: expected one box [x1, y1, x2, y2]")
        out[str(key).strip()] = np.asarray(box, dtype=np.float64)
    return out


def _frames_iou(
    pred: dict[str, np.ndarray], gt: dict[str, np.ndarray], keys: list[str]
) -> np.ndarray:
    if not keys:
        return np.zeros(0)
    a = np.stack([pred[k] for k in keys])
    b = np.stack([gt[k] for k in keys])
    return np.diagonal(iou_matrix(a, b)).copy()


def _frame_parts(answer: str, ground_truth: Any, ctx: ScoreContext, with_time: bool):
    try:
        gt_obj = load_json(ground_truth)
        gt = parse_frame_boxes(gt_obj)
        gt_span = parse_span(gt_obj) if with_time else None
    except ValueError as e:
        return Verdict(0.0, 0.0, f"ground truth: {e}")
    try:
        pred_obj = load_json(answer)
        pred = parse_frame_boxes(pred_obj)
        pred_span = parse_span(pred_obj) if with_time else None
    except ValueError as e:
        return Verdict(0.0, 0.0, f"answer: {e}")
    scale = np.tile(prediction_scale(ctx), 2)
    pred = {k: v * scale for k, v in pred.items()}
    overlap = len(pred.keys() & gt.keys()) / len(gt) if gt else 0.0
    structure = 0.5 + 0.5 * overlap
    return pred, gt, pred_span, gt_span, structure


@register_scorer("temporal_grounding")
def score_temporal_grounding(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """1-D IoU of the predicted and true [start, end] spans."""
    try:
        gt = parse_span(load_json(ground_truth))
    except ValueError as e:
        return Verdict(0.0, 0.0, f"ground truth: {e}")
    try:
        pred = parse_span(load_json(answer))
    except ValueError as e:
        return Verdict(0.0, 0.0, f"answer: {e}")
    return Verdict(span_iou(pred, gt))


@register_scorer("tracking")
def score_tracking(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """Mean box IoU over the ground-truth frames (a missing frame counts 0).

    structure = 0.5 for a valid answer + 0.5 * fraction of ground-truth frames answered.
    """
    parts = _frame_parts(answer, ground_truth, ctx, with_time=False)
    if isinstance(parts, Verdict):
        return parts
    pred, gt, _, _, structure = parts
    if not gt:
        return Verdict(0.0, 0.0, "ground truth: no frames")
    ious = _frames_iou(pred, gt, [k for k in gt if k in pred])
    return Verdict(float(ious.sum()) / len(gt), structure)


@register_scorer("spatial_temporal_grounding")
def score_spatial_temporal_grounding(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """0.5 temporal IoU + 0.5 vIoU (sum of IoU over shared frames / size of the frame union)."""
    parts = _frame_parts(answer, ground_truth, ctx, with_time=True)
    if isinstance(parts, Verdict):
        return parts
    pred, gt, pred_span, gt_span, structure = parts
    union = pred.keys() | gt.keys()
    ious = _frames_iou(pred, gt, [k for k in gt if k in pred])
    viou = float(ious.sum()) / len(union) if union else 0.0
    return Verdict(0.5 * span_iou(pred_span, gt_span) + 0.5 * viou, structure)
