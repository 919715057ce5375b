"""Our estimators that verl 0.9.1 also has give verl's numbers with their defaults.

Each is checked against verl's own function from ``verl.trainer.ppo.core_algos`` on random
batches with uneven prompt groups, one-response groups, tied rewards and ragged response
lengths, token by token; each option that departs from verl is named and shown to differ.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl.trainer.ppo import core_algos

from openvlthinker.advantage import compute_advantage

TOL = 1e-5
SEEDS = range(200)
COMPONENTS = ("correctness", "format", "structure")


def random_batch(seed: int, max_len: int = 7) -> dict:
    """Uneven groups (always one lone response), rewards with ties (a coarse grid) or
    without (uniform), lengths 1..max_len; verl's outcome reward on the last token."""
    g = torch.Generator().manual_seed(seed)
    more = int(torch.randint(2, 7, (1,), generator=g))
    sizes = [1, *torch.randint(1, 9, (more,), generator=g).tolist()]
    b = sum(sizes)
    uid = np.array([f"p{i}" for i, n in enumerate(sizes) for _ in range(n)], dtype=object)
    uid = uid[torch.randperm(b, generator=g).numpy()]
    if seed % 2:
        comps = {k: torch.randint(0, 5, (b,), generator=g).double() / 4 for k in COMPONENTS}
    else:
        comps = {k: torch.rand(b, generator=g, dtype=torch.float64) for k in COMPONENTS}
    rewards = sum(comps.values())
    lengths = torch.randint(1, max_len + 1, (b,), generator=g)
    mask = (torch.arange(max_len) < lengths.unsqueeze(1)).float()
    token_rewards = torch.zeros(b, max_len)
    token_rewards[torch.arange(b), lengths - 1] = rewards.float()
    return {
        "uid": uid,
        "rewards": token_rewards.sum(-1).double(),  # what our engines read: the float32 sum
        "comps": {k: v.float().double() for k, v in comps.items()},
        "lengths": lengths,
        "mask": mask,
        "token_rewards": token_rewards,
    }


def ours(name: str, batch: dict, components: bool = False, **options) -> torch.Tensor:
    """Our (B,) advantage broadcast over the response tokens, as both engines do."""
    scalar = compute_advantage(
        name,
        batch["rewards"],
        list(batch["uid"]),
        components=batch["comps"] if components else None,
        lengths=batch["lengths"],
        **options,
    )
    return scalar.unsqueeze(-1) * batch["mask"].double()


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max())


def verl_gdpo(batch: dict, weights: list[float] | None, norm: bool = True) -> torch.Tensor:
    """verl's gdpo as its trainer calls it, components read from the reward columns."""
    b = batch["mask"].shape[0]
    config = OmegaConf.create(
        {
            "gdpo_reward_keys": list(COMPONENTS),
            "gdpo_reward_weights": weights,
            "norm_adv_by_std_in_grpo": norm,
        }
    )
    tensors = {
        "prompts": torch.zeros(b, 2, dtype=torch.long),
        "attention_mask": torch.cat([torch.ones(b, 2), batch["mask"]], 1).long(),
    }
    non_tensor = {"uid": batch["uid"], **{k: v.numpy() for k, v in batch["comps"].items()}}
    adv, _ = core_algos.compute_gdpo_outcome_advantage(
        batch["token_rewards"],
        batch["mask"],
        index=batch["uid"],
        norm_adv_by_std_in_grpo=norm,
        config=config,
        non_tensor_batch=non_tensor,
        batch=tensors,
    )
    return adv


@pytest.mark.parametrize("norm", [True, False])
def test_grpo_is_verls(norm):
    worst = 0.0
    for seed in SEEDS:
        batch = random_batch(seed)
        theirs, _ = core_algos.compute_grpo_outcome_advantage(
            batch["token_rewards"], batch["mask"], batch["uid"], norm_adv_by_std_in_grpo=norm
        )
        worst = max(worst, max_diff(ours("grpo", batch, norm_adv_by_std_in_grpo=norm), theirs))
    assert worst < TOL


def test_rloo_is_verls():
    worst = 0.0
    for seed in SEEDS:
        batch = random_batch(seed)
        theirs, _ = core_algos.compute_rloo_outcome_advantage(
            batch["token_rewards"], batch["mask"], batch["uid"]
        )
        worst = max(worst, max_diff(ours("rloo", batch), theirs))
    assert worst < TOL


def test_reinforce_plus_plus_and_its_group_baseline_are_verls():
    config = OmegaConf.create({"gamma": 1.0})
    worst = 0.0
    for seed in SEEDS:
        batch = random_batch(seed)
        plain, _ = core_algos.compute_reinforce_plus_plus_outcome_advantage(
            batch["token_rewards"], batch["mask"], config=config
        )
        based, _ = core_algos.compute_reinforce_plus_plus_baseline_outcome_advantage(
            batch["token_rewards"], batch["mask"], batch["uid"], config=config
        )
        worst = max(
            worst,
            max_diff(ours("reinforce_plus_plus", batch), plain),
            max_diff(ours("reinforce_plus_plus", batch, baseline="group"), based),
        )
    assert worst < TOL


@pytest.mark.parametrize("weights", [None, [0.9, 0.1, 1.0]])
def test_gdpo_is_verls_with_and_without_weights(weights):
    options = {} if weights is None else {"component_weights": dict(zip(COMPONENTS, weights))}
    worst = 0.0
    for seed in SEEDS:
        batch = random_batch(seed)
        worst = max(
            worst,
            max_diff(ours("gdpo", batch, components=True, **options), verl_gdpo(batch, weights)),
        )
    assert worst < TOL


def test_gdpo_without_components_is_verls_config_none_fallback():
    # verl's gdpo with config=None normalises the one total reward: our gdpo of one component
    worst = 0.0
    for seed in SEEDS:
        batch = random_batch(seed)
        theirs, _ = core_algos.compute_gdpo_outcome_advantage(
            batch["token_rewards"], batch["mask"], index=batch["uid"], config=None
        )
        scalar = compute_advantage(
            "gdpo",
            batch["rewards"],
            list(batch["uid"]),
            components={"overall": batch["rewards"]},
            lengths=batch["lengths"],
        )
        worst = max(worst, max_diff(scalar.unsqueeze(-1) * batch["mask"], theirs))
    assert worst < TOL


def test_remax_is_verls():
    worst = 0.0
    for seed in SEEDS:
        batch = random_batch(seed)
        base = torch.rand(batch["rewards"].numel(), generator=torch.Generator().manual_seed(seed))
        theirs, _ = core_algos.compute_remax_outcome_advantage(
            batch["token_rewards"], base, batch["mask"]
        )
        worst = max(worst, max_diff(ours("remax", batch, baselines=base.double()), theirs))
    assert worst < TOL


@pytest.mark.parametrize(
    ("name", "option", "components"),
    [
        ("grpo", {"std": "population"}, False),
        ("grpo", {"singleton": "zero"}, False),
        ("rloo", {"singleton": "zero"}, False),
        ("reinforce_plus_plus", {"whiten": "response"}, False),
        ("gdpo", {"std": "population"}, True),
        ("gdpo", {"whiten": "response"}, True),
        ("gdpo", {"singleton": "zero"}, True),
    ],
)
def test_each_option_that_departs_from_verl_does(name, option, components):
    batch = random_batch(1)
    default = ours(name, batch, components=components)
    departed = ours(name, batch, components=components, **option)
    assert max_diff(default, departed) > 1e-3
