"""step.advantage: the one advantage step both engines call."""

from __future__ import annotations

import pytest
import torch

from openvlthinker.advantage import compute_advantage
from openvlthinker.step import StepInputs, StepTasks, TaskBands, advantage_step, band_weights

BANDS = TaskBands(
    names=("a", "b"),
    h_min=torch.tensor([0.2, 0.2]),
    h_max=torch.tensor([0.6, 0.6]),
    coef=torch.tensor([0.02, 0.05]),
)
TASKS = StepTasks(
    bands=BANDS,
    length_on=torch.tensor([True, False]),
    reward_weights={
        "correctness": torch.tensor([0.9, 0.5], dtype=torch.float64),
        "length": torch.tensor([0.1, 0.0], dtype=torch.float64),
    },
)


def inputs(padding=None, entropy=None, dtype=torch.float64) -> StepInputs:
    g = torch.Generator().manual_seed(0)
    b = 8
    task_index = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    rewards = torch.rand(b, generator=g, dtype=torch.float64)
    return StepInputs(
        group=[0, 0, 1, 1, 2, 2, 3, 3],
        task_index=task_index,
        advantage_key=["a"] * 4 + ["b"] * 4,
        rewards=rewards.to(dtype),
        scores={
            "overall": rewards,
            "correctness": torch.rand(b, generator=g, dtype=torch.float64),
            "length": torch.rand(b, generator=g, dtype=torch.float64),
        },
        response_mask=torch.ones(b, 5),
        entropy=entropy,
        padding=padding,
    )


def test_equals_compute_advantage_and_keeps_the_rewards_dtype():
    for dtype in (torch.float32, torch.float64):
        x = inputs(dtype=dtype)
        out = advantage_step(x, "gs_grpo", TASKS)
        want = compute_advantage("gs_grpo", x.rewards, x.group, task=x.advantage_key)
        assert out.advantages.dtype == dtype
        torch.testing.assert_close(out.advantages, want)
        assert out.band is None and not out.band_weight.any()


def test_padding_rows_take_no_part_and_get_zero():
    padding = torch.tensor([False] * 6 + [True] * 2)
    x = inputs(padding=padding)
    out = advantage_step(x, "grpo", TASKS)
    want = compute_advantage("grpo", x.rewards[:6], x.group[:6], task=x.advantage_key[:6])
    torch.testing.assert_close(out.advantages[:6], want)
    assert out.advantages[6:].tolist() == [0.0, 0.0]


def test_components_take_the_task_weights_and_length_only_where_weighted():
    x = inputs()
    out = advantage_step(x, "gs_gdpo", TASKS, components=["correctness", "length"])
    on = TASKS.length_on[x.task_index].double()
    want = compute_advantage(
        "gs_gdpo",
        x.rewards,
        x.group,
        task=x.advantage_key,
        components={"correctness": x.scores["correctness"], "length": x.scores["length"] * on},
        lengths=torch.full((8,), 5),
        reward_weights={k: w[x.task_index] for k, w in TASKS.reward_weights.items()},
    )
    torch.testing.assert_close(out.advantages, want)
    # with equal weights (component_weights) the masked length is what keeps task b's
    # length out: its normalised length would otherwise count
    equal = {"component_weights": {"correctness": 1.0, "length": 1.0}}
    out = advantage_step(x, "gs_gdpo", TASKS, components=["correctness", "length"], options=equal)
    unmasked = compute_advantage(
        "gs_gdpo",
        x.rewards,
        x.group,
        task=x.advantage_key,
        components={"correctness": x.scores["correctness"], "length": x.scores["length"]},
        **equal,
    )
    assert (out.advantages[4:] - unmasked[4:]).abs().max() > 1e-3
    torch.testing.assert_close(out.advantages[:4], unmasked[:4])


def test_band_weights_come_with_entropy_and_skip_padding():
    entropy = torch.cat([torch.full((4, 5), 0.9), torch.full((4, 5), 0.05)])
    padding = torch.tensor([False] * 7 + [True])
    out = advantage_step(inputs(padding=padding, entropy=entropy), "grpo", TASKS)
    want, side = band_weights(entropy[:7], torch.ones(7, 5), inputs().task_index[:7], BANDS)
    torch.testing.assert_close(out.band_weight[:7], want)
    assert out.band_weight[7] == 0
    assert out.band.direction.tolist() == [1.0, -1.0]
    assert out.band.penalty == pytest.approx(side.penalty)
