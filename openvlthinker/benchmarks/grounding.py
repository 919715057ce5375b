"""RefCOCO's box accuracy at IoU 0.5."""

from __future__ import annotations

import re
from collections.abc import Sequence

from openvlthinker.benchmarks.base import MetricInput, MetricResult, register_metric
from openvlthinker.rewards.config import RewardConfig
from openvlthinker.rewards.geometry import prediction_scale
from openvlthinker.rewards.registry import ScoreContext


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes (lmms-eval ``compute_iou`` in
    ``lmms_eval/tasks/refcoco/utils_rec.py``); 0 when the union is empty."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_FOUR_NUMBERS = re.compile(
    r"\[\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\s*\]"
)


@register_metric("refcoco_acc")
def refcoco_accuracy(inp: MetricInput) -> MetricResult:
    """RefCOCO / RefCOCO+ / RefCOCOg Acc@0.5 (lmms-eval ``utils_rec.py``:
    ``parse_float_sequence_within`` then ``compute_accuracy(..., 0.5)``): the *first*
    ``[a, b, c, d]`` in the prediction is the box; correct when its IoU with the ground
    truth box is >= 0.5. The predicted box is mapped from the model's frame
    (``coordinate_frame``: Qwen's 0..1000, or pixels of the resized image) into the ground
    truth's original-image pixels first, as the grounding reward does; no box scores 0."""
    match = _FOUR_NUMBERS.search(inp.prediction)
    if match is None:
        return MetricResult(0.0, None, "no [x1, y1, x2, y2] box in the prediction")
    ctx = ScoreContext(
        config=RewardConfig(coordinate_frame=inp.coordinate_frame),
        image_size=inp.image_size,
        model_image_size=inp.model_image_size,
    )
    sx, sy = (float(v) for v in prediction_scale(ctx))
    x1, y1, x2, y2 = (float(match.group(i)) for i in range(1, 5))
    pred = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
    gt = [float(v) for v in inp.answer]
    return MetricResult(float(box_iou(gt, pred) >= 0.5), pred)
