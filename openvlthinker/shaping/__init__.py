"""Per-task shaping of method.md sections 2 (response length) and 3 (entropy band); the
calibration rule of section 7 lives in :mod:`openvlthinker.shaping.calibration`."""

from openvlthinker.shaping.entropy import (
    entropy_band_direction,
    entropy_band_loss,
    entropy_band_penalty,
    entropy_band_surrogate,
    task_token_sums,
)
from openvlthinker.shaping.length import check_envelope, length_trapezoid

__all__ = [
    "check_envelope",
    "entropy_band_direction",
    "entropy_band_loss",
    "entropy_band_penalty",
    "entropy_band_surrogate",
    "length_trapezoid",
    "task_token_sums",
]
