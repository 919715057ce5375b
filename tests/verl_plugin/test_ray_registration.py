"""VERL_USE_EXTERNAL_MODULES registers our pieces inside a real Ray worker process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray

from openvlthinker.advantage import compute_advantage

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def ray_cluster():
    """A 1-CPU local Ray whose workers get the plugin variable, as openvlthinker-verl sets it."""
    env = {
        "VERL_USE_EXTERNAL_MODULES": "openvlthinker.verl_plugin",
        "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    ray.init(
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
        namespace="openvlthinker-test",
    )
    yield
    ray.shutdown()


@ray.remote(num_cpus=1)
def registered_in_worker() -> dict:
    """Runs in a fresh worker: imports only verl, never openvlthinker."""
    import sys

    import torch
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls
    from verl.trainer.ppo import core_algos

    fn = core_algos.get_adv_estimator_fn("gs_grpo")
    mask = torch.ones(4, 2)
    rewards = torch.zeros(4, 2)
    rewards[:, -1] = torch.tensor([0.0, 1.0, 1.0, 1.0])
    adv, _ = fn(rewards, mask, index=["a"] * 4, task=["math"] * 4)
    return {
        "pid": os.getpid(),
        "estimators": sorted(
            n for n in ("gs_grpo", "gs_gdpo", "gdpo") if n in core_algos.ADV_ESTIMATOR_REGISTRY
        ),
        "gdpo": core_algos.get_adv_estimator_fn("gdpo").__name__,
        "reward_manager": get_reward_manager_cls("openvlthinker").__name__,
        "plugin_imported_by_verl": "openvlthinker.verl_plugin" in sys.modules,
        "advantage": adv[:, 0].tolist(),
    }


def test_plugin_variable_registers_everything_in_a_ray_worker(ray_cluster):
    out = ray.get(registered_in_worker.remote(), timeout=120)
    assert out["pid"] != os.getpid()
    assert out["estimators"] == ["gdpo", "gs_gdpo", "gs_grpo"]
    assert out["gdpo"] == "openvlthinker_gdpo"
    assert out["reward_manager"] == "OpenVLThinkerRewardManager"
    assert out["plugin_imported_by_verl"]
    expected = compute_advantage(
        "gs_grpo", [0.0, 1.0, 1.0, 1.0], group=["a"] * 4, task=["math"] * 4
    )
    assert out["advantage"] == pytest.approx(expected.tolist())
