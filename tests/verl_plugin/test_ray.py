"""VERL_USE_EXTERNAL_MODULES registers our pieces inside a real Ray worker process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import ray
import torch

from openvlthinker.advantage import compute_advantage

REPO = str(Path(__file__).resolve().parents[2])


@pytest.fixture(scope="module")
def ray_cluster():
    """A 2-CPU local Ray whose workers get the plugin variable, as openvlthinker-verl sets it.
    TransferQueue's controller and its storage unit each hold one CPU while they live."""
    env = {
        "VERL_USE_EXTERNAL_MODULES": "openvlthinker.verl_plugin",
        "PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
    }
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
        namespace="openvlthinker-test",
    )
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
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
    assert out["gdpo"] == "compute_gdpo_outcome_advantage"  # verl's own stays in place
    assert out["reward_manager"] == "OpenVLThinkerRewardManager"
    assert out["plugin_imported_by_verl"]
    expected = compute_advantage(
        "gs_grpo", [0.0, 1.0, 1.0, 1.0], group=["a"] * 4, task=["math"] * 4
    )
    assert out["advantage"] == pytest.approx(expected.tolist())


@pytest.fixture(scope="module")
def transfer_queue(ray_cluster):
    """verl's TransferQueue with one storage unit (the default 8 hang a 2-core machine)."""
    import transfer_queue as tq
    from omegaconf import OmegaConf

    tq.init(
        OmegaConf.create(
            {
                "backend": {
                    "storage_backend": "SimpleStorage",
                    "SimpleStorage": {"num_data_storage_units": 1, "total_storage_size": 1000},
                }
            }
        )
    )
    yield tq
    tq.close()


def test_advantage_step_through_the_real_transfer_queue(transfer_queue):
    """The faked-queue test's batch, put the way verl's agent loop puts it, read back after
    G2RPOTrainer's step: same values, under the same keys."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    from tests.verl_plugin.test_trainer import (
        expected_gs_grpo,
        make_batch,
        make_trainer,
        real_rows,
    )

    tq = transfer_queue
    rows = make_batch(seed=3)
    keys = [r[0] for r in rows]
    batch = tq.kv_batch_put(
        keys=keys,
        partition_id="train",
        fields=list_of_dict_to_tensordict([r[2] for r in rows]),
        tags=[r[1] for r in rows],
    )
    trainer = make_trainer(None, "gs_grpo")
    metrics: dict = {}
    out = trainer._compute_advantage(batch, metrics)
    assert "advantages" in out.fields and "entropy_band_weight" in out.fields
    real = real_rows(rows)
    expected = expected_gs_grpo(real)
    got = tq.kv_batch_get(
        keys=[r[0] for r in real], partition_id="train", select_fields=["advantages", "uid"]
    )
    first = torch.stack([a[0] for a in got["advantages"].unbind()])
    torch.testing.assert_close(first, expected.to(first.dtype), rtol=1e-6, atol=1e-6)
    assert list(got["uid"]) == [r[2]["uid"] for r in real]
    assert set(metrics) >= {
        "train/math/reward",
        "train/ocr/entropy",
        "train/grounding/advantage_std",
    }
    tq.kv_clear(keys=keys, partition_id="train")
