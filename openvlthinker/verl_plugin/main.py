"""``openvlthinker-verl``: verl's PPO entry point with our config section and trainer.

    openvlthinker-verl --config-path configs --config-name g2rpo_qwen3vl_8b [key=value ...]

Hydra composes verl's ``ppo_trainer`` config with ours (the YAML lists it in ``defaults``),
so every verl switch works as in ``python -m verl.trainer.main_ppo``; ``--cfg job`` prints
the composed config and ``openvlthinker.check_only=true`` validates it, prints it resolved
and exits, both without Ray or a GPU. A relative ``--config-path`` is read from the
working directory (Hydra alone would look inside this package).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from openvlthinker.method_config import EntropyBandConfig
from openvlthinker.verl_plugin.config import PLUGIN_MODULE, plugin_env, validate
from openvlthinker.verl_plugin.settings import (
    SECTION,
    PluginSettings,
    image_geometry,
    load_registry,
    load_settings,
    tiny_model_path,
)
from openvlthinker.verl_plugin.vision import FREEZE_ENV

logger = logging.getLogger(__name__)


def prepare(cfg: DictConfig) -> DictConfig:
    """Validate, export the task file's data where ``data.*_files`` are null, and make every
    Ray process import the plugin."""
    cpu = _apply_cpu_config(cfg)
    settings = validate(cfg)
    # Ray workers on other nodes do not share the driver's working directory
    with open_dict(cfg):
        cfg[SECTION].tasks = str(Path(settings.tasks).resolve())
        cfg[SECTION].export_dir = str(Path(settings.export_dir).resolve())
        if settings.tiny_model is not None:
            cfg.actor_rollout_ref.model.path = tiny_model_path(settings)
    settings = load_settings(cfg)  # the section the Ray processes read, paths absolute
    if not cfg.data.train_files or not cfg.data.val_files:
        from openvlthinker.verl_plugin.dataset import export_tasks

        registry, _ = load_registry(settings)
        train, val = export_tasks(
            registry,
            settings.export_dir,
            geometry=image_geometry(cfg, settings),
            **settings.reward.prompt_options,
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
        if cfg.actor_rollout_ref.actor.get("freeze_vision_tower", False):
            # verl 0.9.1 ignores the key; the plugin freezes the tower in each Ray process
            os.environ[FREEZE_ENV] = runtime_env.env_vars[FREEZE_ENV] = "1"
    if cpu:
        from openvlthinker.verl_plugin.cpu.settings import apply_environment

        apply_environment(cfg)
    return cfg


def _apply_cpu_config(cfg: DictConfig) -> bool:
    """``openvlthinker.cpu: true``: the CPU backend's config values (before validation);
    the backend is imported only then."""
    if not load_settings(cfg).cpu:
        return False
    from openvlthinker.verl_plugin.cpu.settings import apply_config

    apply_config(cfg)
    return True


@hydra.main(config_path=None, config_name=None, version_base=None)
def _hydra_main(cfg: DictConfig) -> None:
    """Hydra entry point."""
    import openvlthinker.verl_plugin  # noqa: F401  (registers estimators and reward manager)

    if load_settings(cfg).check_only:
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


_CONFIG_PATH_FLAGS = ("--config-path", "-cp")


def absolute_config_path(args: Sequence[str], cwd: str | os.PathLike | None = None) -> list[str]:
    """``args`` with a relative ``--config-path`` / ``-cp`` made absolute against ``cwd``
    (default: the working directory). Hydra resolves a relative one against the module that
    calls it, so ``--config-path configs`` would look for ``openvlthinker.verl_plugin.configs``."""
    base = Path(cwd) if cwd is not None else Path.cwd()

    def fix(value: str) -> str:
        if "://" in value or Path(value).is_absolute():
            return value
        return str((base / value).resolve())

    out, i = [], 0
    while i < len(args):
        arg = args[i]
        flag, eq, value = arg.partition("=")
        if flag in _CONFIG_PATH_FLAGS and eq:
            out.append(f"{flag}={fix(value)}")
        elif arg in _CONFIG_PATH_FLAGS and i + 1 < len(args):
            out += [arg, fix(args[i + 1])]
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


def help_text() -> str:
    """``openvlthinker-verl --help``: usage, examples and every key of our config section."""
    rows = []
    for f in dataclasses.fields(PluginSettings):
        rows.append((f"{SECTION}.{f.name}", f.metadata.get("help", "")))
        if f.name == "entropy_band":  # a small typed section: list its keys too
            rows += [
                (f"{SECTION}.{f.name}.{sub.name}", sub.metadata.get("help", ""))
                for sub in dataclasses.fields(EntropyBandConfig)
            ]
    width = max(len(key) for key, _ in rows) + 1
    keys = "\n".join(
        textwrap.fill(
            text,
            width=100,
            initial_indent=f"  {key:<{width}}",
            subsequent_indent=" " * (width + 2),
        )
        for key, text in rows
    )
    return (
        "usage: openvlthinker-verl --config-path DIR --config-name NAME [key=value ...]\n"
        "                          [--cfg job] [--hydra-help]\n\n"
        "verl's PPO trainer (verl.trainer.main_ppo) with the G2RPO estimators, entropy band,\n"
        "reward suite and task registry of openvlthinker. Hydra composes verl's ppo_trainer\n"
        "config with the named YAML (listed in its defaults); key=value overrides work as in\n"
        "verl. A relative --config-path is read from the working directory.\n\n"
        "examples:\n"
        "  openvlthinker-verl --config-path configs --config-name g2rpo_qwen3vl_8b\n"
        "  openvlthinker-verl --config-path configs --config-name g2rpo_qwen3vl_8b "
        f"{SECTION}.check_only=true\n"
        "  openvlthinker-verl --config-path configs --config-name g2rpo_qwen3vl_8b --cfg job\n\n"
        f"keys of the {SECTION}: section (verl's keys keep verl's names and meaning):\n"
        f"{keys}\n\n"
        "--cfg job prints the composed config; --hydra-help lists Hydra's own flags.\n"
        "Details: docs/verl.md\n"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """``openvlthinker-verl``: our ``--help``, then Hydra with an absolute ``--config-path``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        sys.stdout.write(help_text())
        return
    sys.argv = [sys.argv[0], *absolute_config_path(args)]
    _hydra_main()


if __name__ == "__main__":
    main()
