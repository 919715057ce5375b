"""The calibration rule (method.md section 7): exact values, ordering, direction, monotonicity."""

import numpy as np
import pytest

from openvlthinker.shaping.calibration import (
    PLATEAU_LEVELS,
    CalibrationError,
    TaskMeasurements,
    derive_band,
    derive_bounds,
    derive_envelope,
    length_buckets,
    weighted_quantile,
)
from openvlthinker.tasks.registry import LENGTH_INTENTS, TaskRegistry, TaskSpec


def measurements(lengths, correctness=None, entropy=None, budget=100) -> TaskMeasurements:
    lengths = np.asarray(lengths)
    n = lengths.size
    return TaskMeasurements(
        lengths=lengths,
        entropy=np.full(n, 0.4) if entropy is None else np.asarray(entropy, dtype=float),
        correctness=np.zeros(n) if correctness is None else np.asarray(correctness, dtype=float),
        reward=np.zeros(n),
        max_new_tokens=budget,
    )


def random_measurements(seed: int) -> TaskMeasurements:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 200))
    budget = int(rng.integers(2, 4096))
    lengths = np.minimum(rng.integers(1, 2 * budget, n), budget)
    lengths[0] = rng.integers(1, budget)  # at least one finished response
    return measurements(
        lengths,
        correctness=rng.random(n) * (rng.random() < 0.7),
        entropy=rng.random(n) * 3 + 1e-3,
        budget=budget,
    )


def registry_of(**spec) -> TaskRegistry:
    base = dict(
        key="t",
        domain="d",
        problem_types=("ocr",),
        length_envelope=None,
        length_weight=0.1,
        entropy_band=(None, None, 0.02),
        reward_weights={},
    )
    return TaskRegistry(tasks={"t": TaskSpec(**{**base, **spec})})


def test_weighted_quantile_is_hazens_with_equal_weights_and_clamps_at_the_ends():
    x = np.array([4.0, 1.0, 3.0, 2.0])
    # sample k of 4 sits at (k - 0.5) / 4: 1 at 0.125, 2 at 0.375, 3 at 0.625, 4 at 0.875
    q = weighted_quantile(x, np.ones(4), [0.0, 0.125, 0.25, 0.5, 0.875, 1.0])
    np.testing.assert_allclose(q, [1.0, 1.0, 1.5, 2.5, 4.0, 4.0])
    # weight 3 on the 4: cumulative midpoints 0.5/6, 1.5/6, 2.5/6, 4.5/6
    q = weighted_quantile(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1, 1, 1, 3]), [0.5])
    np.testing.assert_allclose(q, [3 + (0.5 - 2.5 / 6) / (2 / 6)])
    with pytest.raises(ValueError, match="positive weights"):
        weighted_quantile(x, np.zeros(4), [0.5])


def test_envelope_hand_computed_for_a_medium_task_leaves_truncated_responses_out():
    # 8 finished lengths 10..80 and 2 that hit the 100-token limit; nobody correct
    m = measurements([10, 20, 30, 40, 50, 60, 70, 80, 100, 100])
    envelope, note, evidence = derive_envelope(m, "medium")
    # q0.25 sits between samples 2 and 3 (levels 0.1875, 0.3125): 25; q0.75: 65
    assert envelope == (25 // 4, 25, 65, 100)  # L_max = min(100, 2 * 65)
    assert evidence["finished"] == 8 and evidence["hit_limit_share"] == pytest.approx(0.2)
    assert evidence["weighted_q0.25_length"] == 25 and evidence["weighted_q0.75_length"] == 65
    assert "8 of 10 responses finished" in note and "q0.25 = 25.00" in note


def test_interpolation_noise_never_moves_a_bound_by_a_token():
    # weights 0.1 each: the interpolated quantiles are 41 and 17 up to float noise
    m = measurements([17, 17, 17, 41, 41, 41, 41, 41], budget=48)
    (_, low, high, _), _, _ = derive_envelope(m, "medium")
    assert (low, high) == (17, 41)


@pytest.mark.parametrize("seed", range(40))
def test_bounds_are_ordered_and_valid_for_the_task_registry(seed):
    m = random_measurements(seed)
    for intent in LENGTH_INTENTS:
        b = derive_bounds(m, intent)
        l_min, l_low, l_high, l_max = b.length_envelope
        assert 0 <= l_min < l_low <= l_high < l_max <= m.max_new_tokens
        assert 0 <= b.h_min < b.h_max
        assert all(isinstance(v, int) for v in b.length_envelope)
        # the registry's own checks (the ones load_tasks runs) accept them
        spec = registry_of().with_bounds(
            {"t": {"length_envelope": b.length_envelope, "h_min": b.h_min, "h_max": b.h_max}}
        )["t"]
        assert spec.length_envelope == b.length_envelope
        assert spec.entropy_band == (b.h_min, b.h_max, 0.02)


@pytest.mark.parametrize("seed", range(40))
def test_a_medium_plateau_contains_the_median_and_intents_move_it_as_declared(seed):
    m = random_measurements(seed)
    flat = measurements(m.lengths, entropy=m.entropy, budget=m.max_new_tokens)
    finished = flat.lengths[~flat.truncated]
    _, low, high, _ = derive_envelope(flat, "medium")[0]
    assert low <= np.median(finished) <= high
    short, medium, long_ = (derive_envelope(m, i)[0] for i in ("short", "medium", "long"))
    for k in range(4):
        assert short[k] <= medium[k] <= long_[k]


def test_intents_shift_a_spread_distribution_strictly():
    m = measurements(np.arange(1, 201), budget=400)
    short, medium, long_ = (derive_envelope(m, i)[0] for i in ("short", "medium", "long"))
    assert short[1] < medium[1] < long_[1] and short[2] < medium[2] < long_[2]
    # of 1..200 the quantile at level p is 200 p + 0.5: L_low = floor, L_high = ceil of it
    assert (short[1], short[2]) == (20, 101)  # q0.10 = 20.5, q0.50 = 100.5
    assert (medium[1], medium[2]) == (50, 151)  # q0.25 = 50.5, q0.75 = 150.5
    assert (long_[1], long_[2]) == (100, 181)  # q0.50 = 100.5, q0.90 = 180.5


def test_correct_lengths_pull_the_plateau():
    lengths = np.arange(1, 101)
    none = derive_envelope(measurements(lengths, budget=200), "medium")[0]
    long_right = derive_envelope(
        measurements(lengths, correctness=(lengths > 60).astype(float), budget=200), "medium"
    )[0]
    assert long_right[1] > none[1] and long_right[2] > none[2]
    # only differences in correctness tilt the weights: all right is as flat as all wrong
    all_right = derive_envelope(
        measurements(lengths, correctness=np.ones(100), budget=200), "medium"
    )[0]
    assert all_right == none


@pytest.mark.parametrize("seed", range(20))
def test_more_data_moves_bounds_monotonely(seed):
    m = random_measurements(seed)
    b = derive_bounds(m, "medium")
    twice = TaskMeasurements(
        *(np.concatenate([x, x]) for x in (m.lengths, m.entropy, m.correctness, m.reward)),
        max_new_tokens=m.max_new_tokens,
    )
    # the band's token mean does not change when the same data is seen twice
    again = derive_bounds(twice, "medium")
    assert (again.h_min, again.h_max) == (b.h_min, b.h_max)
    # one more finished response, longer than any: no bound of the envelope goes down
    finished = m.lengths[~m.truncated]
    longer = int(min(finished.max() + 1, m.max_new_tokens - 1))
    more = TaskMeasurements(
        np.append(m.lengths, longer),
        np.append(m.entropy, 1.0),
        np.append(m.correctness, 0.0),
        np.append(m.reward, 0.0),
        m.max_new_tokens,
    )
    grown = derive_bounds(more, "medium").length_envelope
    assert all(g >= o for g, o in zip(grown, b.length_envelope))


def test_band_hand_computed_from_the_token_mean_entropy_rounded_outward():
    # token mean = (1.0 * 1 + 2.0 * 3) / 4 = 1.75 -> [0.875, 2.625]
    m = measurements([1, 3], entropy=[1.0, 2.0])
    h_min, h_max, note, evidence = derive_band(m)
    assert (h_min, h_max) == (0.875, 2.625)
    assert evidence["token_mean_entropy"] == pytest.approx(1.75) and evidence["tokens"] == 4
    assert "m = 1.7500 over 4 tokens" in note
    # 0.1234567 -> [0.0617..., 0.1851...] rounded outward
    assert derive_band(measurements([5], entropy=[0.1234567]))[:2] == (0.061, 0.186)
    # linear in the entropy: the band of twice the entropy is twice the band
    assert derive_band(measurements([1, 3], entropy=[2.0, 4.0]))[:2] == (1.75, 5.25)


def test_unusable_measurements_fail_naming_the_task_and_the_fix():
    with pytest.raises(CalibrationError, match=r"task 'ocr': all 3 calibration .* 8-token limit"):
        derive_envelope(measurements([8, 8, 8], budget=8), "short", task="ocr")
    with pytest.raises(CalibrationError, match=r"task 'ocr': token-mean entropy 0.0"):
        derive_band(measurements([3, 4], entropy=[0.0, 0.0]), task="ocr")
    with pytest.raises(ValueError, match=r"length_intent 'tiny' is unknown"):
        derive_envelope(measurements([3]), "tiny")


def test_length_buckets_report_correctness_by_envelope_zone():
    m = measurements([1, 5, 6, 30, 100], correctness=[0, 1, 0.5, 0.25, 0])
    rows = length_buckets(m, (2, 5, 10, 100))
    assert [(label, n) for label, n, _, _ in rows] == [
        ("< 2", 1),
        ("[2, 5)", 0),
        ("[5, 10]", 2),
        ("(10, 100)", 1),
        ("hit the 100-token limit", 1),
    ]
    assert rows[2][2] == 0.75 and np.isnan(rows[1][2])


def test_every_length_intent_of_the_task_file_has_plateau_levels():
    assert set(PLATEAU_LEVELS) == set(LENGTH_INTENTS)
    assert all(0 < lo < hi < 1 for lo, hi in PLATEAU_LEVELS.values())
