"""step.bands: the side of its band each task is on, and verl's per-row band weights."""

from __future__ import annotations

import pytest
import torch

from openvlthinker.shaping import entropy_band_loss
from openvlthinker.step import TaskBands, band_side, band_weights

BANDS = TaskBands(
    names=("low", "inside", "high", "absent"),
    h_min=torch.tensor([0.5, 0.5, 0.5, 0.5]),
    h_max=torch.tensor([1.0, 1.0, 1.0, 1.0]),
    coef=torch.tensor([0.1, 0.2, 0.3, 0.4]),
)


def batch():
    entropy = torch.tensor([[0.2, 0.4, 9.0], [0.7, 0.8, 0.9], [1.5, 1.5, 1.5], [1.1, 1.3, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 1, 1], [1, 1, 0]])
    return entropy, mask, torch.tensor([0, 1, 2, 2])


def test_side_mean_direction_and_penalty_by_hand():
    entropy, mask, index = batch()
    side = band_side(entropy, mask, index, BANDS)
    torch.testing.assert_close(side.mean, torch.tensor([0.3, 0.8, 1.38, 0.0]))
    assert side.count.tolist() == [2, 3, 5, 0]
    assert side.present.tolist() == [True, True, True, False]
    assert side.direction.tolist() == [-1.0, 0.0, 1.0, 0.0]
    # 0.1 * (0.5 - 0.3) + 0.3 * (1.38 - 1.0)
    assert side.penalty == pytest.approx(0.1 * 0.2 + 0.3 * 0.38, rel=1e-6)
    loss, _, _ = entropy_band_loss(entropy, mask, index, BANDS.h_min, BANDS.h_max, BANDS.coef)
    assert side.penalty == pytest.approx(float(loss), rel=1e-6)


def test_side_keeps_the_entropy_dtype():
    entropy, mask, index = batch()
    assert band_side(entropy.double(), mask, index, BANDS).mean.dtype == torch.float64
    assert band_side(entropy, mask, index, BANDS).mean.dtype == torch.float32


def test_weights_scale_direction_by_the_task_share_of_tokens():
    entropy, mask, index = batch()
    weight, side = band_weights(entropy, mask, index, BANDS)
    n = 10.0  # response tokens in the batch
    assert weight.tolist() == pytest.approx([-0.1 * n / 2, 0.0, 0.3 * n / 5, 0.3 * n / 5])
    assert side.penalty > 0
