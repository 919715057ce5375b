"""The length trapezoid of method.md section 2, value by value."""

import pytest
import torch
from torch.testing import assert_close

from openvlthinker.shaping import check_envelope, length_trapezoid

ENV = (10, 20, 40, 60)


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (0, 0.0),
        (9, 0.0),
        (10, 0.0),
        (15, 0.5),
        (19, 0.9),
        (20, 1.0),
        (30, 1.0),
        (40, 1.0),
        (50, 0.5),
        (59, 0.05),
        (60, 0.0),
        (61, 0.0),
        (10_000, 0.0),
    ],
)
def test_scalar_values_follow_the_formula(length, expected):
    assert length_trapezoid(length, ENV) == pytest.approx(expected)


def test_tensor_input_is_vectorised_and_keeps_shape_and_dtype():
    lengths = torch.tensor([[5, 15], [30, 50]])
    out = length_trapezoid(lengths, ENV)
    assert out.shape == (2, 2) and out.dtype == torch.get_default_dtype()
    assert_close(out, torch.tensor([[0.0, 0.5], [1.0, 0.5]]))
    assert length_trapezoid(torch.tensor([15.0], dtype=torch.float64), ENV).dtype == torch.float64


def test_plateau_may_be_a_single_point():
    assert length_trapezoid(20, (10, 20, 20, 30)) == 1.0
    assert length_trapezoid(25, (10, 20, 20, 30)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "bad", [(20, 10, 40, 60), (10, 20, 40, 40), (10, 30, 20, 60), (-1, 2, 3, 4), (1, 2, 3)]
)
def test_bad_envelopes_name_the_values(bad):
    with pytest.raises(ValueError, match=r"tasks.math.length_envelope: .*"):
        check_envelope(bad, where="tasks.math.length_envelope")
    with pytest.raises(ValueError, match="length_envelope"):
        length_trapezoid(10, bad)
