"""A real verl run for the end-to-end tests, with what verl trained on written to disk.

    python -m tests.verl_plugin.verl_run CONFIG.yaml [key=value ...]

It is ``openvlthinker-verl`` (compose, :func:`prepare`, verl's ``run_ppo``) with a task
runner whose trainer subclass records, at every advantage step, the rows verl's TransferQueue
holds after our step wrote them: advantages, rewards, tasks, uids, reward components, band
weights, the exported records' indices; and once, the actor workers (process, world size,
backend, one parameter's local shard). Files go to ``$OVT_VERL_RECORD`` (``step_<n>.pt``,
``workers.pt``). Test code only: the library has no recording hook.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ray
import torch
import transfer_queue as tq

from openvlthinker.verl_plugin.trainer import G2RPOTaskRunnerBase, G2RPOTrainer, column

RECORD_ENV = "OVT_VERL_RECORD"
FIELDS = [
    "uid",
    "data_source",
    "extra_info",
    "extra_fields",
    "rm_scores",
    "response_mask",
    "advantages",
    "entropy_band_weight",
]


def _rows(value: torch.Tensor) -> list[list[float]]:
    return [row.tolist() for row in value.unbind()] if value.is_nested else value.tolist()


def worker_info(worker) -> dict:
    """Runs inside an actor worker process (``__ray_call__``): who it is and how the
    FSDP2 parameters are sharded there."""
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    actor = worker.worker_dict["actor_rollout"].actor
    module = actor.engine.module
    sharded = [p for p in module.parameters() if isinstance(p, DTensor)]
    biggest = max(sharded, key=lambda p: p.numel()) if sharded else None
    return {
        "pid": os.getpid(),
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": str(dist.get_backend()),
        "sharded_params": len(sharded),
        "params": sum(1 for _ in module.parameters()),
        "full_numel": biggest.numel() if biggest is not None else 0,
        "local_numel": biggest.to_local().numel() if biggest is not None else 0,
    }


class RecordingTrainer(G2RPOTrainer):
    """G2RPOTrainer that writes what its advantage step left in TransferQueue."""

    def _record_dir(self) -> Path:
        out = Path(os.environ[RECORD_ENV])
        out.mkdir(parents=True, exist_ok=True)
        return out

    def _setup(self) -> None:
        super()._setup()
        workers = ray.get(
            [w.__ray_call__.remote(worker_info) for w in self.actor_rollout_wg.workers]
        )
        torch.save({"workers": workers}, self._record_dir() / "workers.pt")

    def _compute_advantage(self, batch, metrics):
        out = super()._compute_advantage(batch, metrics)
        fields = [f for f in FIELDS if f in out.fields or f not in ("entropy_band_weight",)]
        data = tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=fields
        )
        servers = ray.get(
            [r.server_handle.stats.remote() for r in self.llm_server_manager.get_replicas()]
        )
        record = {
            "step": self.global_steps,
            "estimator": self.config.algorithm.adv_estimator,
            "padding": [bool(t.get("is_padding", False)) for t in batch.tags],
            "uid": column(data, "uid"),
            "task": [str(s) for s in column(data, "data_source")],
            "extra_info": column(data, "extra_info"),
            "reward_extra_info": [
                (e or {}).get("reward_extra_info", {}) for e in column(data, "extra_fields")
            ],
            "rm_scores": _rows(data["rm_scores"]),
            "response_mask": _rows(data["response_mask"]),
            "advantages": _rows(data["advantages"]),
            "band_weight": _rows(data["entropy_band_weight"])
            if "entropy_band_weight" in fields
            else None,
            "metrics": {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)},
            "servers": servers,
        }
        torch.save(record, self._record_dir() / f"step_{self.global_steps}.pt")
        return out


class RecordingTaskRunnerBase(G2RPOTaskRunnerBase):
    trainer_cls = RecordingTrainer


RecordingTaskRunner = ray.remote(num_cpus=1)(RecordingTaskRunnerBase)


def main(argv: list[str]) -> int:
    from verl.trainer.main_ppo import run_ppo

    import openvlthinker.verl_plugin  # noqa: F401
    from openvlthinker.verl_plugin.config import compose_config
    from openvlthinker.verl_plugin.main import prepare

    config_file, *overrides = argv
    cfg = prepare(compose_config(config_file, overrides))
    run_ppo(cfg, task_runner_class=RecordingTaskRunner)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
