"""Building a run from its validated config: torch threads and device, the task file and
reward config, the policy model (base or checkpoint, LoRA, frozen vision tower) and its
reference, the optimiser, the training and validation records.

Each builder takes the config sections it needs and returns what it builds; the
:class:`~openvlthinker.engine.trainer.Trainer` calls them once (the policy and optimiser
again on resume).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from openvlthinker.data import Record, load_task_data
from openvlthinker.engine import lora
from openvlthinker.engine.config import ActorConfig, ConfigError, DataConfig, TrainConfig, to_dict
from openvlthinker.engine.modeling import TinySpec, ensure_tiny_checkpoint, load_policy
from openvlthinker.rewards import RewardConfig, validate_problem_types
from openvlthinker.rewards.user import load_user_scorers
from openvlthinker.tasks import TaskRegistry, load_tasks

logger = logging.getLogger(__name__)

#: ``model.dtype`` -> torch dtype.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def default_num_threads(cores: int | None = None, load: float | None = None) -> int:
    """torch CPU threads when ``trainer.num_threads`` is null: the cores this process may run
    on (its affinity mask, ``os.sched_getaffinity``) less those other processes keep busy
    (the whole part of the 1-minute load average), at least 1.

    Why the load: torch's threads meet at a barrier in every parallel op, so a thread
    waiting for a core held by another job stalls them all. On 2 cores at load 8 the tiny
    run took 64-137 s per step with 2 threads and 7-12 s with 1 (docs/engine.md).
    An ``OMP_NUM_THREADS`` set in the environment is the user's choice and wins.
    """
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        return int(omp)
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # no affinity call (macOS, Windows)
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    return max(1, cores - int(load))


def resolve_device(name: str) -> torch.device:
    """``model.device``: ``auto`` is CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class RunTasks:
    """The reward config, the task file (``auto`` bounds still unresolved) and the tasks
    ``data.only_tasks`` selects (all when empty), in registry order."""

    reward_config: RewardConfig
    registry: TaskRegistry
    tasks: tuple[str, ...]


def load_run_tasks(cfg: TrainConfig) -> RunTasks:
    """Rewards first: user scorers register their problem types before the task file loads;
    'auto' bounds are measured from the policy before step 1 (``Trainer.resolve_auto_bounds``)."""
    reward_config = cfg.reward
    load_user_scorers(reward_config)
    registry = load_tasks(cfg.data.tasks, allow_auto=True)
    only = cfg.data.only_tasks
    unknown = sorted(set(only) - set(registry))
    if unknown:
        raise ConfigError(
            f"data.only_tasks={list(only)}: unknown task(s) {unknown} in "
            f"{cfg.data.tasks}; known: {', '.join(registry)}"
        )
    validate_problem_types(registry.problem_types(), where=f"{cfg.data.tasks}: problem_types")
    tasks = tuple(t for t in registry if not only or t in only)
    return RunTasks(reward_config=reward_config, registry=registry, tasks=tasks)


@dataclass(frozen=True)
class RunData:
    """all_train_records: every task's training records (calibration also measures tasks
    that ``data.only_tasks`` leaves out); train_records: the selected tasks' ones;
    val_sets: validation set name -> its selected records (sets left empty are dropped)."""

    all_train_records: list[Record]
    train_records: list[Record]
    val_sets: dict[str, list[Record]]


def load_run_data(data: DataConfig, registry: TaskRegistry, tasks: Sequence[str]) -> RunData:
    """Records selected by each record's own task: a file listed under one task may hold others."""
    train = load_task_data(registry, "train")
    cap = data.max_train_records
    all_train = [r for recs in train.values() for r in (recs[:cap] if cap else recs)]
    val = load_task_data(registry, "validation") if registry.validation_sets() else {}
    cap = data.max_val_records
    val_sets: dict[str, list[Record]] = {}
    for name, recs in val.items():
        kept = [r for r in (recs[:cap] if cap else recs) if r.task in tasks]
        if kept:
            val_sets[name] = kept
    return RunData(
        all_train_records=all_train,
        train_records=[r for r in all_train if r.task in tasks],
        val_sets=val_sets,
    )


def base_model_path(cfg: TrainConfig) -> str:
    """``model.path``, or the tiny model built once under ``model.cache_dir``."""
    if cfg.model.path is not None:
        return cfg.model.path
    spec = TinySpec(**to_dict(cfg)["model"]["tiny"])
    return str(ensure_tiny_checkpoint(spec, os.path.expanduser(cfg.model.cache_dir)))


def load_policy_model(
    cfg: TrainConfig,
    path: str,
    base_path: str,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.nn.Module:
    """The policy from ``path``: the base model (``base_path``), or a checkpoint's
    ``model/`` folder, which with LoRA holds the adapter (the base is then ``base_path``)."""
    m = cfg.model
    adapter = None
    if m.lora_rank > 0:
        adapter = m.lora_adapter_path if path == base_path else path
        path = base_path
    model = load_policy(path, dtype, device, m.attn_implementation)
    if m.freeze_vision_tower:
        lora.freeze_vision_tower(model)
    if m.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
        if m.lora_rank > 0 or m.freeze_vision_tower:
            # frozen inputs to a checkpointed block would otherwise cut the graph
            model.enable_input_require_grads()
    if m.lora_rank > 0:
        model = lora.apply_lora(model, m, adapter, seed=cfg.trainer.seed)
        if m.freeze_vision_tower:
            lora.check_frozen_tower_has_no_adapter(model)
    return model


def reference_model(cfg: TrainConfig, policy: torch.nn.Module) -> torch.nn.Module | None:
    """A frozen copy of the initial policy for the KL loss; None without KL or with LoRA,
    whose reference is the policy with its adapters disabled (``lora.reference``)."""
    if cfg.actor.use_kl_loss and cfg.model.lora_rank == 0:
        return copy.deepcopy(policy).eval().requires_grad_(False)
    return None


def log_parameter_counts(cfg: TrainConfig, policy: torch.nn.Module) -> None:
    trainable, total = lora.parameter_counts(policy)
    logger.info(
        "trainable parameters: %d of %d (%.4f%%)%s%s",
        trainable,
        total,
        100 * trainable / total,
        f"; LoRA rank {cfg.model.lora_rank} on {len(lora.adapted_modules(policy))} layers"
        if cfg.model.lora_rank > 0
        else "",
        "; vision tower frozen" if cfg.model.freeze_vision_tower else "",
    )


def make_optimizer(
    policy: torch.nn.Module, actor: ActorConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the policy's trainable parameters and a linear warm-up of
    ``actor.warmup_steps`` updates."""
    optimizer = torch.optim.AdamW(
        lora.trainable_parameters(policy),
        lr=actor.lr,
        betas=tuple(actor.betas),
        weight_decay=actor.weight_decay,
    )
    warmup = actor.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0
    )
    return optimizer, scheduler
