"""Task-level response-length reward: the trapezoid of method.md section 2."""

from __future__ import annotations

from collections.abc import Sequence

import torch

Envelope = Sequence[float]


def check_envelope(envelope: Envelope, *, where: str = "length_envelope") -> tuple[float, ...]:
    """Return ``(l_min, l_low, l_high, l_max)`` or raise naming ``where`` and the values."""
    if len(envelope) != 4:
        raise ValueError(
            f"{where}: expected 4 thresholds (l_min, l_low, l_high, l_max), got {list(envelope)!r}"
        )
    l_min, l_low, l_high, l_max = (float(v) for v in envelope)
    if not (0 <= l_min < l_low <= l_high < l_max):
        raise ValueError(
            f"{where}: thresholds must satisfy 0 <= l_min < l_low <= l_high < l_max, "
            f"got {list(envelope)!r}"
        )
    return l_min, l_low, l_high, l_max


def length_trapezoid(lengths: torch.Tensor | float, envelope: Envelope) -> torch.Tensor | float:
    """Trapezoid reward in [0, 1] of a response length in tokens.

    0 outside [l_min, l_max], a linear ramp up on [l_min, l_low), 1 on [l_low, l_high],
    a linear ramp down on (l_high, l_max]. ``lengths`` is a tensor of any shape (result
    has its shape, float) or a Python number (result is a float).
    """
    l_min, l_low, l_high, l_max = check_envelope(envelope)
    scalar = not isinstance(lengths, torch.Tensor)
    x = torch.as_tensor(lengths, dtype=torch.float64)
    rise = (x - l_min) / (l_low - l_min)
    fall = (l_max - x) / (l_max - l_high)
    reward = torch.minimum(rise, fall).clamp(0.0, 1.0)
    if scalar:
        return float(reward)
    return reward.to(lengths.dtype if lengths.is_floating_point() else torch.get_default_dtype())
