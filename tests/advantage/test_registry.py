"""Every estimator: exact values, the loop oracle, properties and failure messages."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri
from torch.testing import assert_close

from openvlthinker.advantage import (
    ESTIMATORS,
    compute_advantage,
    missing_inputs,
    register_estimator,
)
from tests.advantage import oracle
from tests.advantage.strategies import rollout_batches

F64 = torch.float64


def _t(values):
    return torch.tensor(values, dtype=F64)


def _components(rewards, rnd_seed=0):
    g = torch.Generator().manual_seed(rnd_seed)
    fmt = (torch.rand(len(rewards), generator=g) > 0.3).to(F64)
    return {"correctness": _t(rewards), "format": fmt}


def test_registry_lists_every_estimator_of_the_spec():
    expected = {"gs_grpo", "gs_gdpo", "grpo", "gdpo", "rloo", "reinforce_plus_plus", "remax"}
    assert expected <= set(ESTIMATORS)


def test_gs_grpo_worked_example_single_group():
    out = compute_advantage("gs_grpo", _t([0, 0, 1, 1, 1]), [7] * 5)
    assert_close(out, _t([-0.903, -0.903, 0.602, 0.602, 0.602]), atol=5e-4, rtol=0)


def test_grpo_worked_example_unbiased_by_default_population_as_option():
    r = _t([0, 0, 1, 1, 1])
    population = compute_advantage("grpo", r, [0] * 5, std="population")
    assert_close(population, _t([-1.2247] * 2 + [0.8165] * 3), atol=1e-4, rtol=0)
    std = (0.3) ** 0.5  # unbiased: sum of squares 1.2 over n - 1 = 4
    expected = _t([-0.6 / (std + 1e-6)] * 2 + [0.4 / (std + 1e-6)] * 3)
    assert_close(compute_advantage("grpo", r, [0] * 5), expected)
    centred = compute_advantage("grpo", r, [0] * 5, norm_adv_by_std_in_grpo=False)
    assert_close(centred, _t([-0.6] * 2 + [0.4] * 3))


def test_gs_grpo_two_stages_hand_computed():
    # Two groups of one task: stage 1 gives each group its own quantiles, stage 2 ranks
    # the 6 stage-1 values over the task, with ties averaged.
    rewards = _t([0, 1, 1, 0, 0, 1])
    group = ["a", "a", "a", "b", "b", "b"]
    g_low, g_high = ndtri(1 / 6), (ndtri(3 / 6) + ndtri(5 / 6)) / 2  # group a: [0 | 1, 1]
    h_low, h_high = (ndtri(1 / 6) + ndtri(3 / 6)) / 2, ndtri(5 / 6)  # group b: [0, 0 | 1]
    assert g_low < h_low < g_high < h_high
    slots = [ndtri((k + 0.5) / 6) for k in range(6)]
    # Sorted stage-1 values: g_low, h_low, h_low, g_high, g_high, h_high.
    expected_stage2 = {
        "g_low": slots[0],
        "h_low": (slots[1] + slots[2]) / 2,
        "g_high": (slots[3] + slots[4]) / 2,
        "h_high": slots[5],
    }
    expected = _t(
        [
            expected_stage2["g_low"],
            expected_stage2["g_high"],
            expected_stage2["g_high"],
            expected_stage2["h_low"],
            expected_stage2["h_low"],
            expected_stage2["h_high"],
        ]
    )
    assert_close(compute_advantage("gs_grpo", rewards, group, ["math"] * 6), expected)


def test_lone_responses_keep_their_reward_as_in_verl_or_get_zero_as_option():
    rewards = _t([0.7, 1, 1, 1, 0.2])
    group = [0, 1, 1, 1, 2]
    # verl: a one-response group has mean 0 and std 1
    assert_close(
        compute_advantage("grpo", rewards, group), _t([0.7 / (1 + 1e-6), 0, 0, 0, 0.2 / (1 + 1e-6)])
    )
    assert_close(compute_advantage("rloo", rewards, group), _t([0.7, 0, 0, 0, 0.2]))
    for name in ("grpo", "rloo"):
        assert compute_advantage(name, rewards, group, singleton="zero").tolist() == [0.0] * 5
    assert compute_advantage("gs_grpo", rewards, group, stages=["group"]).tolist() == [0.0] * 5
    assert compute_advantage("gs_grpo", rewards, group).tolist() == [0.0] * 5


def test_pinning_returns_constant_groups_to_zero_after_stage_two():
    # Group 1 is all-equal; group 0 is skewed, so stage 2 moves group 1 off zero.
    rewards = _t([0, 0, 0, 1, 1, 1, 1])
    group = [0, 0, 0, 0, 1, 1, 1]
    free = compute_advantage("gs_grpo", rewards, group)
    pinned = compute_advantage("gs_grpo", rewards, group, pin_equal_groups=True)
    assert (free[4:] != 0).all()
    assert pinned[4:].tolist() == [0.0, 0.0, 0.0]
    assert_close(pinned[:4], free[:4])


def test_rloo_exact_values():
    assert_close(compute_advantage("rloo", _t([1, 2, 3]), [0, 0, 0]), _t([-1.5, 0.0, 1.5]))


def test_remax_subtracts_the_greedy_baseline():
    out = compute_advantage("remax", _t([1, 0, 0.5]), [0, 1, 2], baselines=_t([0.5, 0.5, 0.5]))
    assert_close(out, _t([0.5, -0.5, 0.0]))


def test_reinforce_plus_plus_whitens_over_tokens_by_default_responses_as_option():
    r = _t([1, 2, 3, 4])
    lengths = _t([1, 1, 1, 3])  # 6 tokens: values 1, 2, 3, 4, 4, 4
    tokens = _t([1, 2, 3, 4, 4, 4])
    out = compute_advantage("reinforce_plus_plus", r, [0, 0, 1, 1], lengths=lengths)
    expected = (r - tokens.mean()) / torch.sqrt(tokens.var(unbiased=True) + 1e-8)
    assert_close(out, expected, rtol=1e-7, atol=1e-8)
    per_response = compute_advantage("reinforce_plus_plus", r, [0, 0, 1, 1], whiten="response")
    assert_close(per_response, (r - 2.5) / (r.std() + 1e-6))
    grouped = compute_advantage(
        "reinforce_plus_plus", r, [0, 0, 1, 1], baseline="group", whiten="response"
    )
    centred = _t([-0.5, 0.5, -0.5, 0.5])
    assert_close(grouped, centred / (centred.std() + 1e-6))
    with pytest.raises(ValueError, match=r"whiten='token' \(verl's\) .* pass lengths="):
        compute_advantage("reinforce_plus_plus", r, [0, 0, 1, 1])


@settings(max_examples=80, deadline=None)
@given(
    rollout_batches(), st.sampled_from([("group", "task"), ("group",), ("task",)]), st.booleans()
)
def test_gs_grpo_matches_oracle(batch, stages, pin):
    rewards, group, task = batch
    out = compute_advantage(
        "gs_grpo", _t(rewards), group, task, stages=stages, pin_equal_groups=pin
    )
    assert_close(out, _t(oracle.gs_grpo(rewards, group, task, stages, pin)))


@settings(max_examples=60, deadline=None)
@given(rollout_batches(), st.booleans())
def test_gs_gdpo_matches_oracle(batch, pin):
    rewards, group, task = batch
    comps = _components(rewards)
    out = compute_advantage("gs_gdpo", _t(rewards), group, task, comps, pin_equal_groups=pin)
    expected = oracle.gs_gdpo(
        {k: v.tolist() for k, v in comps.items()}, group, task, pin_equal_groups=pin
    )
    assert_close(out, _t(expected))


@settings(max_examples=60, deadline=None)
@given(
    rollout_batches(),
    st.sampled_from(["population", "unbiased"]),
    st.sampled_from(["keep", "zero"]),
    st.sampled_from(["token", "response"]),
    st.integers(0, 2**16),
)
def test_linear_estimators_match_oracle(batch, std, singleton, whiten, seed):
    rewards, group, task = batch
    r = _t(rewards)
    lengths = torch.randint(0, 9, (len(rewards),), generator=torch.Generator().manual_seed(seed))
    lens = lengths.tolist()
    assert_close(
        compute_advantage("grpo", r, group, task, std=std, singleton=singleton),
        _t(oracle.grpo(rewards, group, std, singleton=singleton)),
    )
    assert_close(
        compute_advantage("rloo", r, group, task, singleton=singleton),
        _t(oracle.rloo(rewards, group, singleton)),
    )
    for baseline in ("none", "group"):
        got = compute_advantage(
            "reinforce_plus_plus",
            r,
            group,
            task,
            baseline=baseline,
            whiten=whiten,
            singleton=singleton,
            lengths=lengths,
        )
        want = oracle.reinforce_plus_plus(
            rewards, group, baseline, whiten=whiten, lengths=lens, singleton=singleton
        )
        assert_close(got, _t(want))
    comps = _components(rewards, 1)
    weights = {"correctness": [0.9 if t == "task0" else 0.5 for t in task]}
    got = compute_advantage(
        "gdpo",
        r,
        group,
        task,
        comps,
        std=std,
        singleton=singleton,
        whiten=whiten,
        lengths=lengths,
        reward_weights=weights,
    )
    want = oracle.gdpo(
        {k: v.tolist() for k, v in comps.items()},
        group,
        std,
        singleton=singleton,
        whiten=whiten,
        lengths=lens,
        weights=weights,
    )
    assert_close(got, _t(want))
    base = [0.5] * len(rewards)
    assert_close(
        compute_advantage("remax", r, group, task, baselines=_t(base)),
        _t(oracle.remax(rewards, base)),
    )


@settings(max_examples=80, deadline=None)
@given(rollout_batches())
def test_g2rpo_per_task_mean_zero_and_bounded(batch):
    rewards, group, task = batch
    task_t = torch.tensor([int(t[4:]) for t in task])
    for name, comps in (("gs_grpo", None), ("gs_gdpo", _components(rewards))):
        out = compute_advantage(name, _t(rewards), group, task, comps)
        for t in task_t.unique():
            part = out[task_t == t]
            n = part.numel()
            assert abs(part.mean().item()) < 1e-12
            assert part.abs().max().item() <= ndtri(1 - 1 / (2 * n)) + 1e-12


@settings(max_examples=60, deadline=None)
@given(rollout_batches(), st.sampled_from(["affine", "cube", "exp"]))
def test_gs_grpo_invariant_to_strictly_increasing_transforms(batch, kind):
    rewards, group, task = batch
    r = _t(rewards)
    f = {"affine": lambda v: 0.5 * v + 3, "cube": lambda v: v**3, "exp": torch.exp}[kind]
    assert_close(
        compute_advantage("gs_grpo", f(r), group, task),
        compute_advantage("gs_grpo", r, group, task),
        rtol=0,
        atol=0,
    )


@settings(max_examples=60, deadline=None)
@given(rollout_batches(), st.randoms(use_true_random=False))
def test_every_estimator_is_permutation_equivariant(batch, rnd):
    rewards, group, task = batch
    perm = list(range(len(rewards)))
    rnd.shuffle(perm)
    comps = _components(rewards)
    base = _t([0.25] * len(rewards))
    for name in ESTIMATORS:
        if name not in (
            "gs_grpo",
            "gs_gdpo",
            "grpo",
            "gdpo",
            "rloo",
            "reinforce_plus_plus",
            "remax",
        ):
            continue
        extra = {"baselines": base} if name == "remax" else {}
        lengths = _t([1 + i % 5 for i in range(len(rewards))])
        out = compute_advantage(name, _t(rewards), group, task, comps, lengths=lengths, **extra)
        shuffled = compute_advantage(
            name,
            _t([rewards[p] for p in perm]),
            [group[p] for p in perm],
            [task[p] for p in perm],
            {k: v[perm] for k, v in comps.items()},
            lengths=lengths[perm],
            **({"baselines": base[perm]} if extra else {}),
        )
        assert_close(shuffled, out[perm], msg=name)


@settings(max_examples=60, deadline=None)
@given(rollout_batches(max_tasks=3), st.randoms(use_true_random=False))
def test_tasks_never_leak_into_each_other(batch, rnd):
    rewards, group, task = batch
    target = rnd.choice(task)
    changed = [rnd.uniform(-50, 50) if t == target else r for r, t in zip(rewards, task)]
    keep = torch.tensor([t != target for t in task])
    a = compute_advantage("gs_grpo", _t(rewards), group, task)
    b = compute_advantage("gs_grpo", _t(changed), group, task)
    assert_close(b[keep], a[keep], rtol=0, atol=0)


def test_outlier_changes_g2rpo_by_rank_only_but_shrinks_grpo():
    base = _t([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    outlier = base.clone()
    outlier[-1] = 1e6
    group = [0] * 8
    g2 = compute_advantage("gs_grpo", base, group), compute_advantage("gs_grpo", outlier, group)
    assert_close(g2[1][:-1], g2[0][:-1], rtol=0, atol=0)
    z = compute_advantage("grpo", base, group), compute_advantage("grpo", outlier, group)
    # The z-score squeezes the seven ordinary responses together: their spread collapses.
    spread = [float(a[:-1].max() - a[:-1].min()) for a in z]
    assert spread[0] > 2.0 and spread[1] < 1e-5


def test_dtypes_follow_the_input():
    r = [0.0, 1.0, 1.0]
    for dtype in (torch.float32, torch.float64):
        for name in ("gs_grpo", "grpo", "rloo"):
            assert compute_advantage(name, torch.tensor(r, dtype=dtype), [0, 0, 0]).dtype == dtype
    assert (
        compute_advantage("grpo", torch.tensor([0, 1, 1]), [0, 0, 0]).dtype
        == torch.get_default_dtype()
    )


def test_group_ids_may_be_tensors_or_any_hashable():
    r = _t([0, 1, 0, 1])
    a = compute_advantage("gs_grpo", r, torch.tensor([3, 3, 9, 9]))
    b = compute_advantage("gs_grpo", r, [("p", 1), ("p", 1), "q", "q"])
    assert_close(a, b)


def test_nan_rewards_name_the_rows():
    with pytest.raises(
        ValueError, match=r"rewards: non-finite values \(NaN/inf\) at rows \[1, 3\]"
    ):
        compute_advantage("gs_grpo", _t([0, float("nan"), 1, float("inf")]), [0, 0, 0, 0])
    with pytest.raises(ValueError, match=r"components\['format'\]: non-finite .* rows \[0\]"):
        compute_advantage(
            "gs_gdpo", _t([0, 1]), [0, 0], components={"format": _t([float("nan"), 1])}
        )


def test_unknown_estimator_lists_the_known_ones():
    with pytest.raises(
        ValueError, match=r"algorithm.adv_estimator 'gs_grp' is unknown; known: .*gs_gdpo, gs_grpo"
    ):
        compute_advantage("gs_grp", _t([0, 1]), [0, 0])


def test_unknown_option_lists_accepted_options():
    with pytest.raises(
        TypeError, match=r"unknown options \['stage'\]; it accepts: stages, pin_equal_groups"
    ):
        compute_advantage("gs_grpo", _t([0, 1]), [0, 0], stage=["group"])


def test_bad_option_values_are_named():
    where = (
        r"\(algorithm.estimator_options in the engine, openvlthinker.estimator_options on verl\)"
    )
    with pytest.raises(ValueError, match=rf"^estimator_options.stages \['prompt'\] .*{where}$"):
        compute_advantage("gs_grpo", _t([0, 1]), [0, 0], stages=["prompt"])
    with pytest.raises(ValueError, match=rf"^estimator_options.std 'sample' is invalid.*{where}$"):
        compute_advantage("grpo", _t([0, 1]), [0, 0], std="sample")
    with pytest.raises(ValueError, match="remax needs baselines"):
        compute_advantage("remax", _t([0, 1]), [0, 0])
    with pytest.raises(ValueError, match="gs_gdpo needs reward components"):
        compute_advantage("gs_gdpo", _t([0, 1]), [0, 0])
    with pytest.raises(ValueError, match=r"component_weights names \['length'\]"):
        compute_advantage(
            "gs_gdpo",
            _t([0, 1]),
            [0, 0],
            components={"format": _t([0, 1])},
            component_weights={"length": 1.0},
        )


def test_shape_mismatches_are_errors():
    with pytest.raises(ValueError, match="group: 3 entries for 2 rewards"):
        compute_advantage("grpo", _t([0, 1]), [0, 0, 0])
    with pytest.raises(ValueError, match=r"rewards: expected shape \(B,\)"):
        compute_advantage("grpo", torch.zeros(2, 2), [0, 0])


def test_a_group_spanning_two_tasks_is_an_error():
    with pytest.raises(ValueError, match=r"a prompt group spans several tasks \(rows \[0, 1\]\)"):
        compute_advantage("gs_grpo", _t([0, 1]), [0, 0], ["math", "ocr"])


def test_user_estimators_register_by_name():
    @register_estimator("test_constant_baseline")
    def constant_baseline(batch, value: float = 0.5):
        return batch.rewards - value

    try:
        assert_close(
            compute_advantage("test_constant_baseline", _t([1, 0]), [0, 0], value=0.25),
            _t([0.75, -0.25]),
        )
        with pytest.raises(ValueError, match="already registered"):
            register_estimator("test_constant_baseline")(lambda batch: batch.rewards)
    finally:
        ESTIMATORS.pop("test_constant_baseline")


def test_unhashable_or_float_ids_are_named_errors():
    with pytest.raises(TypeError, match=r"group: every id must be hashable"):
        compute_advantage("grpo", _t([0, 1]), [[1], [2]])
    with pytest.raises(
        TypeError, match=r"task: ids must be integers or hashables, got torch.float32"
    ):
        compute_advantage("grpo", _t([0, 1]), [0, 0], torch.tensor([0.0, 0.0]))


def test_sparse_and_negative_int_ids_are_relabelled():
    r = _t([0, 1, 1, 0, 2, 2])
    dense = compute_advantage("gs_grpo", r, torch.tensor([0, 0, 1, 1, 2, 2]))
    for ids in ([7, 7, -3, -3, 100, 100], [2, 2, 0, 0, 1, 1]):
        assert_close(compute_advantage("gs_grpo", r, torch.tensor(ids)), dense)


def test_requirements_say_what_each_estimator_reads():
    from openvlthinker.advantage import estimator_requirements

    assert (
        estimator_requirements("gs_grpo").task and not estimator_requirements("gs_grpo").components
    )
    assert estimator_requirements("gs_gdpo").task and estimator_requirements("gs_gdpo").components
    assert estimator_requirements("gdpo").components and not estimator_requirements("gdpo").task
    assert estimator_requirements("remax").inputs() == ("baselines",)
    assert estimator_requirements("gdpo").inputs() == ("components", "lengths")
    assert estimator_requirements("reinforce_plus_plus").inputs() == ("lengths",)
    assert estimator_requirements("gs_gdpo").inputs() == ("task", "components")
    for name in ("grpo", "rloo"):
        assert estimator_requirements(name).inputs() == ()
    assert missing_inputs("remax", ["task", "components", "lengths"]) == ["baselines"]
    assert missing_inputs("gs_gdpo", ["task"]) == ["components"]
    assert missing_inputs("grpo", []) == []
    with pytest.raises(ValueError, match="is unknown; known"):
        estimator_requirements("nope")
    with pytest.raises(ValueError, match="gdpo needs reward components"):
        compute_advantage("gdpo", _t([0, 1]), [0, 0])


def test_list_inputs_keep_float64_precision():
    # a Python list of weights must not pass through torch's float32 default (0.9 -> 0.89999998)
    rewards = _t([0.0, 0.25, 1.0, 0.5])
    comps = {"correctness": rewards.clone()}
    common = dict(group=[0, 0, 1, 1], task=["a"] * 4, components=comps, whiten="response")
    from_list = compute_advantage(
        "gdpo", rewards, reward_weights={"correctness": [0.9] * 4}, **common
    )
    from_f64 = compute_advantage(
        "gdpo", rewards, reward_weights={"correctness": _t([0.9] * 4)}, **common
    )
    assert torch.equal(from_list, from_f64)
