"""``openvlthinker-verl``: verl's PPO entry point with our config section and trainer.

    openvlthinker-verl --config-path configs --config-name g2rpo_qwen3vl_8b [key=value ...]

Hydra composes verl's ``ppo_trainer`` config with ours (the YAML lists it in ``defaults``),
so every verl switch works as in ``python -m verl.trainer.main_ppo``; ``--cfg job`` prints
the composed config and ``openvlthinker.check_only=true`` validates it, prints it resolved
and exits, both without Ray or a GPU.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from openvlthinker.verl_plugin.config import (
    PLUGIN_MODULE,
    SECTION,
    image_geometry,
    load_registry,
    plugin_env,
    prompt_options,
    tiny_model_path,
    validate,
)

logger = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> DictConfig:
    """Validate, export the task file's data where ``data.*_files`` are null, and make every
    Ray process import the plugin."""
    cpu = _apply_cpu_config(cfg)
    settings = validate(cfg)
    # Ray workers on other nodes do not share the driver's working directory
    with open_dict(cfg):
        cfg[SECTION].tasks = settings.tasks = str(Path(settings.tasks).resolve())
        cfg[SECTION].export_dir = settings.export_dir = str(Path(settings.export_dir).resolve())
        if settings.tiny_model is not None:
            cfg.actor_rollout_ref.model.path = tiny_model_path(settings)
    if not cfg.data.train_files or not cfg.data.val_files:
        from openvlthinker.verl_plugin.dataset import export_tasks

        registry, _ = load_registry(settings)
        train, val = export_tasks(
            registry,
            settings.export_dir,
            geometry=image_geometry(cfg, settings),
            **prompt_options(settings),
        )
        with open_dict(cfg):
            cfg.data.train_files = cfg.data.train_files or train
            cfg.data.val_files = cfg.data.val_files or val
    os.environ["VERL_USE_EXTERNAL_MODULES"] = plugin_env(
        os.environ.get("VERL_USE_EXTERNAL_MODULES")
    )
    with open_dict(cfg):
        runtime_env = cfg.ray_kwargs.ray_init.runtime_env
        if runtime_env.get("env_vars") is None:
            runtime_env.env_vars = {}
        runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES = os.environ["VERL_USE_EXTERNAL_MODULES"]
    if cpu:
        from openvlthinker.verl_plugin.cpu.settings import apply_environment

        apply_environment(cfg)
    return cfg


def _apply_cpu_config(cfg: DictConfig) -> bool:
    """``openvlthinker.cpu: true``: the CPU backend's config values (before validation);
    the backend is imported only then."""
    if not cfg.get(SECTION, {}).get("cpu", False):
        return False
    from openvlthinker.verl_plugin.cpu.settings import apply_config

    apply_config(cfg)
    return True


@hydra.main(config_path=None, config_name=None, version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    import openvlthinker.verl_plugin  # noqa: F401  (registers estimators and reward manager)

    if cfg.get(SECTION, {}).get("check_only", False):
        # keep stdout for the config alone: Hydra's log handler and verl's validate_config
        # both write there
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):
            _apply_cpu_config(cfg)
            validate(cfg)
        # the resolved config is this command's output, not a log line
        sys.stdout.write(OmegaConf.to_yaml(cfg, resolve=True))
        return
    prepare(cfg)
    from verl.trainer.main_ppo import run_ppo

    from openvlthinker.verl_plugin.trainer import G2RPOTaskRunner

    logger.info("launching G2RPOTaskRunner; plugin %s in every Ray process", PLUGIN_MODULE)
    run_ppo(cfg, task_runner_class=G2RPOTaskRunner)


if __name__ == "__main__":
    main()
