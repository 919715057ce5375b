"""The rank -> N(0,1) map: exact values, ties, and the properties of method.md section 1."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri
from torch.testing import assert_close

from openvlthinker.advantage import gaussian_quantile_map
from tests.advantage import oracle
from tests.advantage.strategies import REWARD_GRID


def test_worked_example_of_method_md():
    out = gaussian_quantile_map(torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    low = (ndtri(0.1) + ndtri(0.3)) / 2
    high = (ndtri(0.5) + ndtri(0.7) + ndtri(0.9)) / 3
    assert_close(out, torch.tensor([low, low, high, high, high], dtype=torch.float64))
    assert_close(
        out,
        torch.tensor([-0.903, -0.903, 0.602, 0.602, 0.602], dtype=torch.float64),
        atol=5e-4,
        rtol=0,
    )


def test_hand_computed_ties_share_the_mean_of_their_slots():
    out = gaussian_quantile_map(torch.tensor([3.0, 2.0, 1.0, 2.0], dtype=torch.float64))
    q = [ndtri((k + 0.5) / 4) for k in range(4)]
    expected = torch.tensor([q[3], (q[1] + q[2]) / 2, q[0], (q[1] + q[2]) / 2], dtype=torch.float64)
    assert_close(out, expected)
    assert out[1].item() == pytest.approx(0.0, abs=1e-12)


def test_distinct_values_get_the_plain_quantiles():
    x = torch.tensor([10.0, -3.0, 7.5], dtype=torch.float64)
    expected = torch.tensor([ndtri(5 / 6), ndtri(1 / 6), ndtri(3 / 6)], dtype=torch.float64)
    assert_close(gaussian_quantile_map(x), expected)


def test_single_element_and_all_equal_segments_are_exactly_zero():
    x = torch.tensor([5.0, 0.3, 0.3, 0.3, 2.0, 1.0])
    seg = torch.tensor([0, 1, 1, 1, 2, 2])
    out = gaussian_quantile_map(x, seg)
    assert out[:4].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert_close(out[4:], torch.tensor([ndtri(0.75), ndtri(0.25)], dtype=torch.float32))


def test_dtype_is_preserved():
    for dtype in (torch.float32, torch.float64):
        assert gaussian_quantile_map(torch.tensor([1.0, 2.0], dtype=dtype)).dtype == dtype


def test_empty_input():
    assert gaussian_quantile_map(torch.zeros(0)).numel() == 0


@st.composite
def segmented(draw):
    sizes = draw(st.lists(st.integers(1, 9), min_size=1, max_size=6))
    seg = [i for i, s in enumerate(sizes) for _ in range(s)]
    perm = draw(st.permutations(range(len(seg))))
    seg = [seg[p] for p in perm]
    values = draw(st.lists(REWARD_GRID, min_size=len(seg), max_size=len(seg)))
    return values, seg


@settings(max_examples=150, deadline=None)
@given(segmented())
def test_matches_the_loop_oracle(case):
    values, seg = case
    out = gaussian_quantile_map(torch.tensor(values, dtype=torch.float64), torch.tensor(seg))
    assert_close(
        out, torch.tensor(oracle.per_segment(oracle.quantile_map, values, seg), dtype=torch.float64)
    )


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 9), st.data())
def test_equal_contiguous_groups_take_the_batched_path_with_the_same_result(groups, size, data):
    n = groups * size
    values = data.draw(st.lists(REWARD_GRID, min_size=n, max_size=n))
    seg = torch.arange(groups).repeat_interleave(size)
    x = torch.tensor(values, dtype=torch.float64)
    expected = torch.tensor(
        oracle.per_segment(oracle.quantile_map, values, seg.tolist()), dtype=torch.float64
    )
    assert_close(gaussian_quantile_map(x, seg), expected)
    # The same rows shuffled are no longer contiguous blocks: the general path must agree.
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    assert_close(gaussian_quantile_map(x[perm], seg[perm]), expected[perm])


@settings(max_examples=150, deadline=None)
@given(segmented())
def test_segment_sums_are_zero_and_magnitude_is_bounded(case):
    values, seg = case
    seg_t = torch.tensor(seg)
    out = gaussian_quantile_map(torch.tensor(values, dtype=torch.float64), seg_t)
    for s in set(seg):
        part = out[seg_t == s]
        n = part.numel()
        assert abs(part.sum().item()) < 1e-9
        assert part.abs().max().item() <= ndtri(1 - 1 / (2 * n)) + 1e-12
        # Variance (1/N) sum q^2 of the map never exceeds that of distinct values, itself < 1.
        distinct_var = sum(ndtri((k + 0.5) / n) ** 2 for k in range(n)) / n
        assert (part**2).mean().item() <= distinct_var + 1e-12 < 1.0


@settings(max_examples=100, deadline=None)
@given(segmented(), st.sampled_from(["affine", "cube", "exp", "tanh"]))
def test_invariant_to_strictly_increasing_transforms(case, kind):
    values, seg = case
    x = torch.tensor(values, dtype=torch.float64)
    transform = {
        "affine": lambda v: 3.0 * v - 7.0,
        "cube": lambda v: v**3 + v,
        "exp": torch.exp,
        "tanh": lambda v: torch.tanh(v / 4),
    }[kind]
    seg_t = torch.tensor(seg)
    assert_close(
        gaussian_quantile_map(transform(x), seg_t), gaussian_quantile_map(x, seg_t), rtol=0, atol=0
    )


@settings(max_examples=100, deadline=None)
@given(segmented(), st.randoms(use_true_random=False))
def test_segments_never_leak(case, rnd):
    values, seg = case
    seg_t = torch.tensor(seg)
    x = torch.tensor(values, dtype=torch.float64)
    target = rnd.choice(seg)
    changed = x.clone()
    changed[seg_t == target] = torch.tensor(
        [rnd.uniform(-100, 100) for _ in range(int((seg_t == target).sum()))], dtype=torch.float64
    )
    others = seg_t != target
    assert_close(
        gaussian_quantile_map(changed, seg_t)[others],
        gaussian_quantile_map(x, seg_t)[others],
        rtol=0,
        atol=0,
    )


def test_non_1d_input_is_rejected():
    with pytest.raises(ValueError, match="1-D"):
        gaussian_quantile_map(torch.zeros(2, 2))


def test_bound_is_reached_by_the_extremes():
    n = 7
    out = gaussian_quantile_map(torch.arange(n, dtype=torch.float64))
    assert out.max().item() == pytest.approx(ndtri(1 - 1 / (2 * n)))
    assert out.min().item() == pytest.approx(-ndtri(1 - 1 / (2 * n)))
    assert math.isclose(out.sum().item(), 0.0, abs_tol=1e-12)
