"""Boxes, points and coordinate frames shared by the image and video grounding scorers."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from openvlthinker.rewards.parsing import finite_numbers
from openvlthinker.rewards.registry import ScoreContext

logger = logging.getLogger(__name__)


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _size(value: Any, name: str) -> np.ndarray | None:
    if value is None:
        return None
    pair = finite_numbers(list(value) if isinstance(value, (list, tuple)) else value, 2)
    if pair is None or min(pair) <= 0:
        raise ValueError(f"{name}: expected (width, height) > 0, got {value!r}")
    return np.asarray(pair, dtype=np.float64)


def prediction_scale(ctx: ScoreContext) -> np.ndarray:
    """(sx, sy) taking predicted x, y into the ground truth's frame (original-image pixels).

    qwen_1000: x * width / 1000 when ``image_size`` is known. absolute: x * width /
    model_width when both ``image_size`` and ``model_image_size`` are known (the model saw a
    resized image). Otherwise 1: prediction and ground truth share a frame.
    """
    size = _size(ctx.image_size, "image_size")
    model = _size(ctx.model_image_size, "model_image_size")
    if ctx.config.coordinate_frame == "qwen_1000":
        if size is None:
            _warn_once(
                "qwen_1000 boxes scored without image_size: the ground truth is taken to be 0..1000 too"
            )
            return np.ones(2)
        return size / 1000.0
    if size is not None and model is not None:
        return size / model
    return np.ones(2)


def parse_boxes(obj: Any, max_boxes: int) -> np.ndarray:
    """Boxes (N, 4) from ``{"boxes": box | [box, ...]}``, a bare box or list of boxes, or
    Qwen's ``[{"bbox_2d": box}, ...]``. Raises ValueError naming what is wrong."""
    if isinstance(obj, dict):
        if "boxes" in obj:
            obj = obj["boxes"]
        elif "bbox_2d" in obj:
            obj = obj["bbox_2d"]
        else:
            raise ValueError("no 'boxes' key")
    if not isinstance(obj, list):
        raise ValueError(f"boxes must be a list, got {type(obj).__name__}")
    single = finite_numbers(obj, 4)
    if single is not None:
        return np.asarray([single], dtype=np.float64)
    if len(obj) > max_boxes:
        raise ValueError(f"{len(obj)} boxes > limit {max_boxes}")
    rows = []
    for item in obj:
        if isinstance(item, dict):
            item = item.get("bbox_2d", item.get("boxes"))
        box = finite_numbers(item, 4)
        if box is None:
            raise ValueError("each box must be 4 finite numbers [x1, y1, x2, y2]")
        rows.append(box)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def parse_points(obj: Any, max_points: int, name: str) -> np.ndarray:
    """Points (N, 2) from ``[[x, y], ...]``; raises ValueError naming ``name``."""
    if not isinstance(obj, list) or not obj:
        raise ValueError(f"{name} must be a non-empty list of [x, y]")
    if len(obj) > max_points:
        raise ValueError(f"{len(obj)} {name} > limit {max_points}")
    rows = [finite_numbers(p, 2) for p in obj]
    if any(r is None for r in rows):
        raise ValueError(f"each of {name} must be 2 finite numbers [x, y]")
    return np.asarray(rows, dtype=np.float64)


def well_formed(boxes: np.ndarray) -> bool:
    """At least one box and every box has x1 <= x2 and y1 <= y2."""
    return len(boxes) > 0 and bool(
        np.all(boxes[:, 0] <= boxes[:, 2]) and np.all(boxes[:, 1] <= boxes[:, 3])
    )


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every pair: a (N, 4), b (M, 4) -> (N, M); reversed boxes have area 0.

    Coordinates near the float limit overflow to inf/nan, which end up as IoU 0.
    """
    a, b = a[:, None, :], b[None, :, :]
    with np.errstate(all="ignore"):
        iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
        ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
        inter = iw * ih
        area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
        area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
        union = area_a + area_b - inter
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(np.clip(iou, 0.0, 1.0), nan=0.0, posinf=0.0)


def matched_mean_iou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Hungarian matching maximising total IoU, summed and divided by max(N_pred, N_gt).

    Extra and missing boxes therefore count as IoU 0. Two empty sets score 1.
    """
    if len(pred) == 0 or len(gt) == 0:
        return 1.0 if len(pred) == len(gt) else 0.0
    iou = iou_matrix(pred, gt)
    if iou.shape == (1, 1):
        return float(iou[0, 0])
    rows, cols = linear_sum_assignment(iou, maximize=True)
    return float(iou[rows, cols].sum() / max(iou.shape))


def matched_point_similarity(pred: np.ndarray, gt: np.ndarray, sigma: float) -> float:
    """Hungarian-matched mean of exp(-d^2 / (2 sigma^2)) over max(N_pred, N_gt) points."""
    with np.errstate(all="ignore"):
        d2 = ((pred[:, None, :] - gt[None, :, :]) ** 2).sum(-1)
        sim = np.nan_to_num(np.exp(-d2 / (2.0 * sigma * sigma)), nan=0.0)
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return float(sim[rows, cols].sum() / max(sim.shape))


def span_iou(pred: tuple[float, float], gt: tuple[float, float]) -> float:
    """1-D IoU of two [start, end] spans (equal zero-length spans score 1)."""
    inter = max(0.0, min(pred[1], gt[1]) - max(pred[0], gt[0]))
    union = max(pred[1], gt[1]) - min(pred[0], gt[0])
    if union <= 0:
        return 1.0 if tuple(pred) == tuple(gt) else 0.0
    value = inter / union
    return value if math.isfinite(value) else 0.0
