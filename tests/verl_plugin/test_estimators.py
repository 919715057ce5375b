"""Our estimators inside verl's advantage registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
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
