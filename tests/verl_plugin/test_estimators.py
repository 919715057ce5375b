"""Our estimators inside verl's advantage registry, and verl's numbers where verl has the
same estimator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl.protocol import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage as verl_compute_advantage

import openvlthinker.verl_plugin  # noqa: F401  (registers)
from openvlthinker.advantage import compute_advantage
from openvlthinker.verl_plugin.estimators import VERL_NAMES, register_verl_estimators

UID = np.array(["a", "a", "a", "b", "b", "b", "c", "c"], dtype=object)
TASK = ["math"] * 6 + ["ocr"] * 2
REWARDS = torch.tensor([0.0, 1.0, 1.0, 0.2, 0.9, 0.4, 0.3, 0.7])
MASK = torch.tensor([[1, 1, 1, 0]] * 4 + [[1, 1, 0, 0]] * 4, dtype=torch.float32)


def token_rewards() -> torch.Tensor:
    """Outcome reward on each response's last token, as verl's reward loop writes it."""
    out = torch.zeros_like(MASK)
    last = MASK.sum(-1).long() - 1
    out[torch.arange(8), last] = REWARDS
    return out


def test_names_are_in_verls_registry_and_registration_is_idempotent():
    register_verl_estimators()
    for name in VERL_NAMES:
        assert core_algos.get_adv_estimator_fn(name).__name__ == f"openvlthinker_{name}"


def test_gs_grpo_through_verl_matches_compute_advantage_and_is_masked():
    fn = core_algos.get_adv_estimator_fn("gs_grpo")
    adv, ret = fn(token_rewards(), MASK, config=None, index=UID, task=TASK)
    expected = compute_advantage("gs_grpo", REWARDS, group=list(UID), task=TASK)
    torch.testing.assert_close(adv, expected.unsqueeze(-1) * MASK)
    torch.testing.assert_close(ret, adv)
    assert adv[:, -1].abs().sum() == 0 and adv[0, 0] != 0


def test_gs_gdpo_uses_components_and_options():
    comps = {"correctness": REWARDS, "format": torch.tensor([1.0, 0, 1, 1, 1, 0, 1, 1])}
    fn = core_algos.get_adv_estimator_fn("gs_gdpo")
    adv, _ = fn(
        token_rewards(),
        MASK,
        index=UID,
        task=TASK,
        components=comps,
        options={"pin_equal_groups": True},
    )
    expected = compute_advantage(
        "gs_gdpo", REWARDS, group=list(UID), task=TASK, components=comps, pin_equal_groups=True
    )
    torch.testing.assert_close(adv[:, 0], expected)


def test_stock_verl_call_path_fails_with_the_fix_for_g2rpo():
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards(), "response_mask": MASK},
        non_tensors={"uid": UID},
    )
    with pytest.raises(ValueError, match="openvlthinker-verl"):
        verl_compute_advantage(data, adv_estimator="gs_grpo")


def test_only_our_names_go_into_verls_registry():
    assert VERL_NAMES == ("gs_grpo", "gs_gdpo")
    for name in ("grpo", "gdpo", "rloo", "reinforce_plus_plus", "remax"):
        assert core_algos.get_adv_estimator_fn(name).__module__ == "verl.trainer.ppo.core_algos"


def test_registering_refuses_to_replace_a_name_verl_already_has(monkeypatch):
    monkeypatch.setitem(
        core_algos.ADV_ESTIMATOR_REGISTRY, "gs_grpo", core_algos.compute_rloo_outcome_advantage
    )
    with pytest.raises(ValueError, match="already has 'gs_grpo'.*does not replace verl's"):
        register_verl_estimators()


# verl's gdpo as its stock trainers call it, in a fresh interpreter: once without the
# plugin and once with it imported; the printed advantages must be identical.
_GDPO_SCRIPT = """
import sys
import numpy as np, torch
from omegaconf import OmegaConf
from verl.trainer.ppo import core_algos
if sys.argv[1] == "with":
    import openvlthinker.verl_plugin  # noqa: F401
g = torch.Generator().manual_seed(0)
b, t, p = 12, 5, 3
mask = (torch.arange(t) < torch.randint(1, t + 1, (b,), generator=g).unsqueeze(1)).float()
last = mask.sum(-1).long() - 1
comps = {k: torch.randint(0, 3, (b,), generator=g).float() / 2 for k in ("acc", "fmt")}
rewards = torch.zeros(b, t)
rewards[torch.arange(b), last] = comps["acc"] + comps["fmt"]
uid = np.array(list("aaabbbbccdde"), dtype=object)
attention = torch.cat([torch.ones(b, p), mask], 1).long()
batch = {"prompts": torch.zeros(b, p, dtype=torch.long), "attention_mask": attention}
nontensor = {"uid": uid, **{k: v.numpy() for k, v in comps.items()}}
fn = core_algos.get_adv_estimator_fn("gdpo")
cfg = OmegaConf.create({"gdpo_reward_keys": ["acc", "fmt"], "gdpo_reward_weights": [0.9, 0.3]})
weighted, _ = fn(rewards, mask, index=uid, config=cfg, non_tensor_batch=nontensor, batch=batch)
fallback, _ = fn(rewards, mask, index=uid, config=None)
print(fn.__module__, fn.__qualname__)
print(repr(weighted.tolist()))
print(repr(fallback.tolist()))
"""


def test_verls_gdpo_is_identical_with_and_without_the_plugin(capsys, monkeypatch):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _GDPO_SCRIPT, "without"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # this process has the plugin imported (module top); run the same script here
    monkeypatch.setattr(sys, "argv", ["-c", "with"])
    exec(compile(_GDPO_SCRIPT, "<gdpo>", "exec"), {})
    with_plugin = capsys.readouterr().out
    assert with_plugin == done.stdout
    head, weighted, fallback = with_plugin.splitlines()
    assert head == "verl.trainer.ppo.core_algos compute_gdpo_outcome_advantage"
    assert weighted != fallback  # the weights were read, and config=None fell back


# Parity: our estimators that verl 0.9.1 also has give verl's numbers with their defaults.
# Each is checked against verl's own function from ``verl.trainer.ppo.core_algos`` on random
# batches with uneven prompt groups, one-response groups, tied rewards and ragged response
# lengths, token by token; each option that departs from verl is named and shown to differ.

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
        # ReMax's greedy-response rewards
        "baselines": torch.rand(b, generator=torch.Generator().manual_seed(seed)),
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


RPP_CONFIG = OmegaConf.create({"gamma": 1.0})
WEIGHTS = [0.9, 0.1, 1.0]


def _grpo(norm: bool):
    return (
        lambda b: ours("grpo", b, norm_adv_by_std_in_grpo=norm),
        lambda b: core_algos.compute_grpo_outcome_advantage(
            b["token_rewards"], b["mask"], b["uid"], norm_adv_by_std_in_grpo=norm
        )[0],
    )


def _gdpo_one_component(b: dict) -> torch.Tensor:
    scalar = compute_advantage(
        "gdpo",
        b["rewards"],
        list(b["uid"]),
        components={"overall": b["rewards"]},
        lengths=b["lengths"],
    )
    return scalar.unsqueeze(-1) * b["mask"]


# case -> (ours, verl's) on one random batch: (B, T) advantages
PARITY = {
    "grpo": _grpo(True),
    "grpo-no-std": _grpo(False),
    "rloo": (
        lambda b: ours("rloo", b),
        lambda b: core_algos.compute_rloo_outcome_advantage(
            b["token_rewards"], b["mask"], b["uid"]
        )[0],
    ),
    "reinforce_plus_plus": (
        lambda b: ours("reinforce_plus_plus", b),
        lambda b: core_algos.compute_reinforce_plus_plus_outcome_advantage(
            b["token_rewards"], b["mask"], config=RPP_CONFIG
        )[0],
    ),
    "reinforce_plus_plus-group-baseline": (
        lambda b: ours("reinforce_plus_plus", b, baseline="group"),
        lambda b: core_algos.compute_reinforce_plus_plus_baseline_outcome_advantage(
            b["token_rewards"], b["mask"], b["uid"], config=RPP_CONFIG
        )[0],
    ),
    "gdpo": (lambda b: ours("gdpo", b, components=True), lambda b: verl_gdpo(b, None)),
    "gdpo-weighted": (
        lambda b: ours(
            "gdpo", b, components=True, component_weights=dict(zip(COMPONENTS, WEIGHTS))
        ),
        lambda b: verl_gdpo(b, WEIGHTS),
    ),
    # verl's gdpo with config=None normalises the one total reward: our gdpo of one component
    "gdpo-config-none": (
        _gdpo_one_component,
        lambda b: core_algos.compute_gdpo_outcome_advantage(
            b["token_rewards"], b["mask"], index=b["uid"], config=None
        )[0],
    ),
    "remax": (
        lambda b: ours("remax", b, baselines=b["baselines"].double()),
        lambda b: core_algos.compute_remax_outcome_advantage(
            b["token_rewards"], b["baselines"], b["mask"]
        )[0],
    ),
}


@pytest.mark.parametrize("case", PARITY)
def test_ours_is_verls_with_verls_defaults(case):
    mine, theirs = PARITY[case]
    diffs = [max_diff(mine(batch), theirs(batch)) for batch in map(random_batch, SEEDS)]
    worst = max(diffs)
    seed = SEEDS[diffs.index(worst)]
    assert worst < TOL, f"seed {seed}: max abs difference {worst}"


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
