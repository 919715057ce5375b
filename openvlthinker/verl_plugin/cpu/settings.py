"""What ``openvlthinker.cpu: true`` changes in a verl config and in the environment.

The launcher imports this module only when ``openvlthinker.cpu`` is true; importing it
registers the CPU backend in the launcher's process too (the package ``__init__``).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

logger = logging.getLogger(__name__)

CPU_MODULE = "openvlthinker.verl_plugin.cpu"
#: ``data.custom_cls``: verl's dataset with images loaded without torchvision.
DATASET_CLS = {"path": f"pkg://{CPU_MODULE}.vision", "name": "ImageDataset"}
#: verl's logical CPU count for a local Ray: each GPU worker's bundle asks 3 CPUs and
#: TransferQueue's controller and each storage unit 1 (otherwise the job waits forever on
#: "No available node types can fulfill resource request").
LOCAL_RAY_CPUS = 16

#: Environment of every process: verl's platform, the FSDP engine (registered for cuda
#: and npu only; it runs unchanged on gloo), our backend module.
ENV = {
    "VERL_PLATFORM": "cpu",
    "VERL_ENGINE_DEVICE": "cuda",
    "TOKENIZERS_PARALLELISM": "false",
}

#: Config values the CPU run needs (flash-attn, remove-padding kernels and torch.compile
#: are GPU-only); applied over whatever the config says.
FORCED = {
    "trainer.device": "cpu",
    "actor_rollout_ref.rollout.name": "hf",
    "actor_rollout_ref.rollout.mode": "async",
    "actor_rollout_ref.actor.strategy": "fsdp2",
    "actor_rollout_ref.ref.strategy": "fsdp2",
    "actor_rollout_ref.model.use_remove_padding": False,
    "actor_rollout_ref.model.override_config.attn_implementation": "sdpa",
    "actor_rollout_ref.actor.use_torch_compile": False,
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile": False,
    "actor_rollout_ref.ref.fsdp_config.use_torch_compile": False,
}


def external_modules(existing: str | None) -> str:
    """VERL_USE_EXTERNAL_MODULES with the CPU backend added once (after our plugin)."""
    modules = [m for m in (existing or "").split(",") if m]
    if CPU_MODULE not in modules:
        modules.append(CPU_MODULE)
    return ",".join(modules)


def apply_config(cfg: DictConfig) -> list[str]:
    """Set :data:`FORCED` and the dataset class verl's agent loop uses for images; returns
    the keys whose value changed (logged)."""
    changed = []
    with open_dict(cfg):
        for key, value in FORCED.items():
            if OmegaConf.select(cfg, key) != value:
                changed.append(f"{key}={value}")
                OmegaConf.update(cfg, key, value, force_add=True)
        if OmegaConf.select(cfg, "data.custom_cls.path") is None:
            OmegaConf.update(cfg, "data.custom_cls", dict(DATASET_CLS), force_add=True)
            changed.append(f"data.custom_cls={DATASET_CLS['path']}:{DATASET_CLS['name']}")
    if changed:
        logger.info("openvlthinker.cpu: %s", ", ".join(changed))
    return changed


def apply_environment(cfg: DictConfig) -> dict[str, str]:
    """Export :data:`ENV` and the backend module here and into Ray's runtime env, and give a
    local Ray (no ``ray_init.address``: a new one, ``address=local``) one logical GPU per
    worker and enough logical CPUs; a cluster named by ``ray_init.address`` brings its own."""
    env = dict(ENV)
    env["VERL_USE_EXTERNAL_MODULES"] = external_modules(os.environ.get("VERL_USE_EXTERNAL_MODULES"))
    os.environ.update(env)
    with open_dict(cfg):
        ray_init = cfg.ray_kwargs.ray_init
        if ray_init.runtime_env.get("env_vars") is None:
            ray_init.runtime_env.env_vars = {}
        for key, value in env.items():
            ray_init.runtime_env.env_vars[key] = value
        if ray_init.get("address") in (None, "local"):
            # a new local Ray: ray.init() without an address would join any `ray start`
            # cluster on the machine, which has no logical GPUs to give
            ray_init.address = "local"
            gpus = int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)
            if ray_init.get("num_gpus") is None:
                ray_init.num_gpus = gpus
            if ray_init.get("num_cpus") is None:
                ray_init.num_cpus = LOCAL_RAY_CPUS
    return env


def summary(cfg: DictConfig) -> dict[str, Any]:
    """The CPU-relevant values of a prepared config (for logs and tests)."""
    keys = [*FORCED, "data.custom_cls.path", "ray_kwargs.ray_init.num_gpus"]
    return {k: OmegaConf.select(cfg, k) for k in keys}
