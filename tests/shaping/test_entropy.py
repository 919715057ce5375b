"""The per-task entropy band of method.md section 3: values, gradients, micro-batching."""

import torch
from torch.testing import assert_close

from openvlthinker.shaping import (
    entropy_band_direction,
    entropy_band_loss,
    entropy_band_surrogate,
    task_token_sums,
)

H_MIN = torch.tensor([0.2, 0.2, 0.5])
H_MAX = torch.tensor([0.6, 0.6, 0.9])
COEF = torch.tensor([0.02, 0.5, 1.0])


def _batch(values, mask, tasks):
    ent = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    return ent, torch.tensor(mask, dtype=torch.bool), torch.tensor(tasks)


def test_value_is_the_hinge_on_the_token_mean_per_task():
    # Task 0 mean = (1.0 + 0.6) / 2 = 0.8 (> 0.6); task 1 mean = 0.1 (< 0.2); task 2 absent.
    # The masked 99.0 proves that padding never enters the mean.
    ent, mask, tasks = _batch(
        [[1.0, 99.0], [0.6, 0.0], [0.1, 0.1]], [[1, 0], [1, 0], [1, 1]], [0, 0, 1]
    )
    loss, mean, present = entropy_band_loss(
        ent, mask, tasks, H_MIN.double(), H_MAX.double(), COEF.double()
    )
    assert_close(mean[:2], torch.tensor([0.8, 0.1], dtype=torch.float64))
    assert present.tolist() == [True, True, False]
    assert_close(loss, torch.tensor(0.02 * 0.2 + 0.5 * 0.1, dtype=torch.float64))


def test_gradient_is_zero_inside_the_band():
    ent, mask, tasks = _batch([[0.3, 0.5], [0.4, 0.4]], [[1, 1], [1, 1]], [0, 1])
    loss, _, _ = entropy_band_loss(ent, mask, tasks, H_MIN.double(), H_MAX.double(), COEF.double())
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(ent.grad) == 0


def test_gradient_pushes_back_toward_the_band():
    ent, mask, tasks = _batch([[0.9, 0.9, 7.0], [0.05, 0.05, 7.0]], [[1, 1, 0], [1, 1, 0]], [0, 1])
    loss, _, _ = entropy_band_loss(ent, mask, tasks, H_MIN.double(), H_MAX.double(), COEF.double())
    loss.backward()
    # Minimising the loss lowers task 0's entropy (gradient > 0) and raises task 1's (< 0).
    assert_close(ent.grad[0, :2], torch.full((2,), 0.02 / 2, dtype=torch.float64))
    assert_close(ent.grad[1, :2], torch.full((2,), -0.5 / 2, dtype=torch.float64))
    assert ent.grad[:, 2].tolist() == [0.0, 0.0]


def test_absent_tasks_add_nothing_and_never_nan():
    ent, mask, tasks = _batch([[0.7]], [[1]], [2])
    loss, mean, present = entropy_band_loss(
        ent, mask, tasks, H_MIN.double(), H_MAX.double(), COEF.double()
    )
    assert present.tolist() == [False, False, True]
    assert torch.isfinite(mean).all()
    assert loss.item() == 0.0


def test_direction_signs():
    mean = torch.tensor([0.8, 0.1, 0.7])
    assert entropy_band_direction(mean, H_MIN, H_MAX).tolist() == [1.0, -1.0, 0.0]


def test_micro_batch_surrogates_sum_to_the_minibatch_gradient():
    torch.manual_seed(0)
    logits = torch.randn(6, 5, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor(
        [
            [1, 1, 1, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 0, 0, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 0, 0, 0],
            [1, 1, 1, 1, 1],
        ],
        dtype=torch.bool,
    )
    tasks = torch.tensor([0, 1, 0, 2, 1, 0])
    h_min = torch.tensor([2.0, 0.1, 0.1], dtype=torch.float64)
    h_max = torch.tensor([3.0, 0.2, 5.0], dtype=torch.float64)
    coef = torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64)

    def token_entropy(x):
        return torch.nn.functional.softplus(x)

    full, mean, _ = entropy_band_loss(token_entropy(logits), mask, tasks, h_min, h_max, coef)
    (expected,) = torch.autograd.grad(full, logits)

    with torch.no_grad():
        _, count = task_token_sums(token_entropy(logits), mask, tasks, 3)
    direction = entropy_band_direction(mean, h_min, h_max)
    total = torch.zeros_like(logits)
    for rows in (slice(0, 2), slice(2, 3), slice(3, 6)):
        part = entropy_band_surrogate(
            token_entropy(logits[rows]), mask[rows], tasks[rows], direction, coef, count
        )
        total += torch.autograd.grad(part, logits)[0]
    assert direction.tolist() == [-1.0, 1.0, 0.0]
    assert_close(total, expected)
