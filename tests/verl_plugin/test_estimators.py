"""Our estimators inside verl's advantage registry."""

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


def test_our_gdpo_replaces_verls_and_reads_legacy_reward_columns():
    fmt = np.array([1.0, 0, 1, 1, 1, 0, 1, 1])
    data = DataProto.from_dict(
        tensors={
            "token_level_rewards": token_rewards(),
            "response_mask": MASK,
            "prompts": torch.zeros(8, 2, dtype=torch.long),
            "attention_mask": torch.cat([torch.ones(8, 2), MASK], dim=1),
        },
        non_tensors={"uid": UID, "correctness": REWARDS.numpy(), "format": fmt},
    )
    config = OmegaConf.create({"gdpo_reward_keys": ["correctness", "format"]})
    out = verl_compute_advantage(data, adv_estimator="gdpo", config=config)
    expected = compute_advantage(
        "gdpo",
        REWARDS,
        group=list(UID),
        components={"correctness": REWARDS, "format": torch.tensor(fmt)},
    )
    torch.testing.assert_close(out.batch["advantages"][:, 0], expected)
