"""Image grounding: spatial grounding (box IoU) and segmentation (box + point prompts)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from openvlthinker.rewards.geometry import (
    matched_mean_iou,
    matched_point_similarity,
    parse_boxes,
    parse_points,
    prediction_scale,
    well_formed,
)
from openvlthinker.rewards.parsing import load_json
from openvlthinker.rewards.registry import ScoreContext, Verdict, register_scorer


@register_scorer("spatial_grounding")
def score_spatial_grounding(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """Mean IoU of Hungarian-matched boxes over max(N_pred, N_gt), in ground-truth pixels."""
    max_boxes = ctx.config.max_boxes
    try:
        gt = parse_boxes(load_json(ground_truth), max_boxes)
    except ValueError as e:
        return Verdict(0.0, 0.0, f"ground truth: {e}")
    scale = np.tile(prediction_scale(ctx), 2)
    try:
        pred = parse_boxes(load_json(answer), max_boxes) * scale
    except ValueError as e:
        return Verdict(0.0, 0.0, f"answer: {e}")
    return Verdict(matched_mean_iou(pred, gt), 1.0 if well_formed(pred) else 0.0)


def _segmentation_parts(obj: Any, ctx: ScoreContext, video: bool) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object with boxes, positive_points, negative_points")
    limit = ctx.config.max_boxes
    parts: dict[str, Any] = {
        "boxes": parse_boxes(obj.get("boxes"), limit),
        "positive_points": parse_points(obj.get("positive_points"), limit, "positive_points"),
        "negative_points": parse_points(obj.get("negative_points"), limit, "negative_points"),
    }
    if video:
        time = obj.get("time")
        if isinstance(time, bool) or not isinstance(time, (int, float)) or not math.isfinite(time):
            raise ValueError("'time' must be a finite number (seconds)")
        parts["time"] = float(time)
    return parts


@register_scorer("segmentation")
def score_segmentation(answer: str, ground_truth: Any, ctx: ScoreContext) -> Verdict:
    """Released weighting: image 0.5 IoU + 0.25 pos + 0.25 neg point similarity; video
    (ground truth has "time") 0.3 IoU + 0.3 exp(-|dt|/tau) + 0.2 pos + 0.2 neg."""
    cfg = ctx.config
    try:
        gt_obj = load_json(ground_truth)
        video = isinstance(gt_obj, dict) and "time" in gt_obj
        gt = _segmentation_parts(gt_obj, ctx, video)
    except ValueError as e:
        return Verdict(0.0, 0.0, f"ground truth: {e}")
    sx, sy = prediction_scale(ctx)
    try:
        pred = _segmentation_parts(load_json(answer), ctx, video)
    except ValueError as e:
        return Verdict(0.0, 0.0, f"answer: {e}")
    iou = matched_mean_iou(pred["boxes"] * np.array([sx, sy, sx, sy]), gt["boxes"])
    pos = matched_point_similarity(
        pred["positive_points"] * np.array([sx, sy]), gt["positive_points"], cfg.point_sigma
    )
    neg = matched_point_similarity(
        pred["negative_points"] * np.array([sx, sy]), gt["negative_points"], cfg.point_sigma
    )
    structure = 1.0 if well_formed(pred["boxes"]) else 0.0
    if not video:
        return Verdict(0.5 * iou + 0.25 * pos + 0.25 * neg, structure)
    time_sim = math.exp(-abs(pred["time"] - gt["time"]) / cfg.time_tau)
    return Verdict(0.3 * iou + 0.3 * time_sim + 0.2 * pos + 0.2 * neg, structure)
