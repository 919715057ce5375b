"""The whole verl config: composing it over verl's defaults, the checks run once at load
(:func:`validate`, before Ray starts, naming the key at fault) and the environment every Ray
process needs. Our own section is ``settings.py``."""

from __future__ import annotations

import copy
import functools
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from openvlthinker.verl_plugin.settings import (
    SECTION,
    PluginSettings,
    load_registry,
    load_settings,
)

logger = logging.getLogger(__name__)

#: What VERL_USE_EXTERNAL_MODULES must name so every Ray process registers our pieces.
PLUGIN_MODULE = "openvlthinker.verl_plugin"
REWARD_MANAGER = "openvlthinker"
#: The single-process engine's LoRA / vision-tower keys and the verl keys they are.
LORA_KEYS: dict[str, str] = {
    "model.lora_rank": "actor_rollout_ref.model.lora_rank",
    "model.lora_alpha": "actor_rollout_ref.model.lora_alpha",
    "model.target_modules": "actor_rollout_ref.model.target_modules",
    "model.exclude_modules": "actor_rollout_ref.model.exclude_modules",
    "model.lora_adapter_path": "actor_rollout_ref.model.lora_adapter_path",
    "model.freeze_vision_tower": "actor_rollout_ref.actor.freeze_vision_tower",
}


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node.keys():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, node._get_node(key)
            yield from _walk(node._get_node(key), path)


#: Sections passed on as keyword arguments (``ray.init(**ray_kwargs.ray_init)``): any
#: key of the callee is valid there (``address``, ``num_gpus``, ...).
FREE_FORM = ("ray_kwargs.ray_init",)


def unknown_keys(
    cfg: DictConfig, defaults: DictConfig, skip: Sequence[str] = (SECTION,)
) -> list[str]:
    """Keys of ``cfg`` that verl's default config lacks, under parents that verl fully
    specifies (a parent that is empty or null in the defaults is a free-form map)."""
    out = []
    for path, _ in _walk(cfg, ""):
        if path.split(".")[0] in skip or path.startswith("hydra"):
            continue
        if any(path.startswith(f"{free}.") for free in FREE_FORM):
            continue
        parent, _, key = path.rpartition(".")
        ref_parent = OmegaConf.select(defaults, parent) if parent else defaults
        if not isinstance(ref_parent, DictConfig) or len(ref_parent) == 0:
            continue
        if key not in ref_parent.keys():
            out.append(path)
    return out


@functools.lru_cache(maxsize=1)
def verl_defaults() -> DictConfig:
    """verl's own ``ppo_trainer`` config, composed the way verl's main does (read-only)."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module("verl.trainer.config", version_base=None):
        defaults = compose(config_name="ppo_trainer")
    OmegaConf.set_readonly(defaults, True)
    return defaults


def compose_config(config_file: str | os.PathLike, overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``config_file`` (which lists verl's ``ppo_trainer`` in its defaults) with
    ``overrides``, as ``openvlthinker-verl --config-path DIR --config-name NAME`` does."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    path = Path(config_file).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(str(path.parent), version_base=None):
        return compose(config_name=path.stem, overrides=list(overrides))


#: Why this engine cannot provide an estimator input (advantage.INPUTS), for the load error.
_NOT_PROVIDED = {
    "baselines": "greedy-response reward baselines, which nothing on verl's V1 trainer "
    "generates; use the single-process engine (openvlthinker train) for remax",
    "components": f"the reward components that only the '{REWARD_MANAGER}' reward manager writes",
}


def _provided_inputs(cfg: DictConfig) -> list[str]:
    """The estimator inputs G2RPOTrainer's advantage step passes with this config."""
    provided = ["task", "lengths"]
    if cfg.reward.reward_manager.name == REWARD_MANAGER:
        provided.append("components")
    return provided


def estimator_call_options(cfg: DictConfig, settings: PluginSettings) -> dict[str, Any]:
    """Keyword options of our estimator: ``openvlthinker.estimator_options`` plus verl's own
    ``algorithm.norm_adv_by_std_in_grpo`` where our estimator takes it. A verl value that
    our estimator cannot honour, or that contradicts ``estimator_options``, raises.
    (verl's ``gdpo_reward_keys`` / ``gdpo_reward_weights`` are not in verl's YAML, so
    :func:`validate` refuses them as unknown keys: our gdpo reads ``openvlthinker.components``
    and the task file's weights.)"""
    from openvlthinker.advantage import estimator_options

    algo = cfg.algorithm
    name = algo.adv_estimator
    accepted = estimator_options(name)
    options = dict(settings.estimator_options)
    norm = bool(algo.get("norm_adv_by_std_in_grpo", True))
    if "norm_adv_by_std_in_grpo" in accepted:
        if options.setdefault("norm_adv_by_std_in_grpo", norm) != norm:
            raise ValueError(
                f"algorithm.norm_adv_by_std_in_grpo={norm} contradicts {SECTION}."
                "estimator_options.norm_adv_by_std_in_grpo; set one of them"
            )
    elif not norm:
        raise ValueError(
            f"algorithm.norm_adv_by_std_in_grpo=false has no effect on {name!r}, which does "
            "not divide by a group std; remove it"
        )
    return options


def _check_estimator(cfg: DictConfig, settings: PluginSettings) -> None:
    from verl.trainer.ppo import core_algos

    from openvlthinker.advantage import (
        ESTIMATORS,
        estimator_options,
        estimator_requirements,
        missing_inputs,
    )
    from openvlthinker.verl_plugin.estimators import register_verl_estimators

    register_verl_estimators()
    name = cfg.algorithm.adv_estimator
    known = sorted(set(ESTIMATORS) | set(core_algos.ADV_ESTIMATOR_REGISTRY) | {"gae", "grpo"})
    if name not in known:
        raise ValueError(f"algorithm.adv_estimator {name!r} is unknown; known: {', '.join(known)}")
    if name not in ESTIMATORS:
        if settings.estimator_options:
            raise ValueError(
                f"{SECTION}.estimator_options is for openvlthinker's estimators; "
                f"algorithm.adv_estimator {name!r} is verl's"
            )
        return
    accepted = estimator_options(name)
    for key in settings.estimator_options:
        if key not in accepted:
            raise ValueError(
                f"{SECTION}.estimator_options.{key} is not an option of {name!r}; "
                f"it accepts: {', '.join(accepted) or 'none'}"
            )
    missing = missing_inputs(name, _provided_inputs(cfg))
    if missing:
        manager = cfg.reward.reward_manager.name
        where = f" (reward.reward_manager.name is {manager!r})" if "components" in missing else ""
        raise ValueError(
            f"algorithm.adv_estimator {name!r} needs {_NOT_PROVIDED[missing[0]]}{where}"
        )
    if estimator_requirements(name).components and not settings.components:
        raise ValueError(f"algorithm.adv_estimator {name!r} needs {SECTION}.components")
    algo = cfg.algorithm
    if name == "reinforce_plus_plus" and (algo.gamma != 1.0 or algo.use_kl_in_reward):
        raise ValueError(
            "algorithm.adv_estimator 'reinforce_plus_plus' under openvlthinker-verl is the "
            "outcome form (one return per response, gamma = 1): it differs from verl's "
            f"token-level returns with algorithm.gamma={algo.gamma} / "
            f"algorithm.use_kl_in_reward={algo.use_kl_in_reward}; set gamma=1 and "
            "use_kl_in_reward=false"
        )
    estimator_call_options(cfg, settings)


def refuse_auto_bounds(task_file: str) -> None:
    """verl gets measured bounds, never ``auto``: a calibration must not hide in the Ray job."""
    from openvlthinker.tasks.registry import auto_bounds

    auto = auto_bounds(task_file)
    if auto:
        listed = "; ".join(f"{task}: {', '.join(names)}" for task, names in auto.items())
        raise ValueError(
            f"{SECTION}.tasks: {task_file} sets shaping bounds to 'auto' ({listed}); "
            "openvlthinker-verl does not calibrate inside the Ray job: run `openvlthinker "
            "calibrate --config ENGINE_CONFIG --out TASKS_OUT.yaml` first (same model and "
            f"task file) and pass its output: {SECTION}.tasks=TASKS_OUT.yaml"
        )


def validate(cfg: DictConfig, *, defaults: DictConfig | None = None) -> PluginSettings:
    """All load-time checks: our section, unknown keys in verl's sections, the estimator,
    the trainer mode, the entropy band's needs and verl's own ``validate_config``."""
    settings = load_settings(cfg)
    wrong = unknown_keys(cfg, defaults if defaults is not None else verl_defaults())
    if wrong:
        raise ValueError(
            f"unknown config key {wrong[0]} (not in verl 0.9.1's config); our own keys go "
            f"under '{SECTION}:'"
            + (f"; also unknown: {', '.join(wrong[1:6])}" if len(wrong) > 1 else "")
        )
    if not Path(settings.tasks).is_file():
        raise FileNotFoundError(f"{SECTION}.tasks: task file {settings.tasks} does not exist")
    refuse_auto_bounds(settings.tasks)
    registry, _ = load_registry(settings)
    from openvlthinker.rewards import validate_problem_types

    validate_problem_types(registry.problem_types(), where=f"{settings.tasks}: problem_types")
    if not cfg.trainer.use_v1 or cfg.trainer.v1.trainer_mode != "sync":
        raise ValueError(
            "openvlthinker-verl drives verl's V1 sync trainer: set trainer.use_v1=true and "
            f"trainer.v1.trainer_mode=sync (got use_v1={cfg.trainer.use_v1}, "
            f"trainer_mode={cfg.trainer.v1.trainer_mode!r})"
        )
    _check_estimator(cfg, settings)
    actor = cfg.actor_rollout_ref.actor
    band = settings.entropy_band
    if band.enable and band.estimator == "full" and not actor.calculate_entropy:
        raise ValueError(
            f"{SECTION}.entropy_band.enable with {SECTION}.entropy_band.estimator=full needs the "
            "actor's token entropy: set actor_rollout_ref.actor.calculate_entropy=true"
        )
    if band.enable and cfg.get("distillation", {}).get("enabled", False):
        raise ValueError(
            f"{SECTION}.entropy_band.enable=true does not compose with verl's distillation loss"
        )

    _check_lora(cfg)

    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    validate_config(
        config=_without_vllm_lora_check(cfg),
        use_reference_policy=need_reference_policy(cfg),
        use_critic=need_critic(cfg),
    )
    return settings


def _without_vllm_lora_check(cfg: DictConfig) -> DictConfig:
    """``cfg``, or where vLLM is not installed (CPU machines) a copy with LoRA off: verl's
    ``validate_config`` imports vLLM to check ``lora_rank`` against vLLM's allowed ranks, and
    that one check then runs when verl starts on the GPU node instead."""
    model = cfg.actor_rollout_ref.model
    rank = max(model.get("lora_rank", 0), model.get("lora", {}).get("rank", 0))
    if rank <= 0 or cfg.actor_rollout_ref.rollout.name != "vllm":
        return cfg
    if importlib.util.find_spec("vllm") is not None:
        return cfg
    logger.warning(
        "vllm is not installed here: verl's check of actor_rollout_ref.model.lora_rank=%d "
        "against vLLM's max_lora_rank values is left to verl's start-up on the GPU node",
        rank,
    )
    checked = copy.deepcopy(cfg)
    with open_dict(checked):
        checked.actor_rollout_ref.model.lora_rank = 0
        if "lora" in checked.actor_rollout_ref.model:
            checked.actor_rollout_ref.model.lora.rank = 0
    return checked


def _check_lora(cfg: DictConfig) -> None:
    """LoRA and freeze_vision_tower settings verl 0.9.1 would accept but train wrongly with."""
    model, actor = cfg.actor_rollout_ref.model, cfg.actor_rollout_ref.actor
    rank = model.get("lora_rank", 0)
    if rank < 0:
        raise ValueError(f"actor_rollout_ref.model.lora_rank={rank}: must be >= 0 (0 = off)")
    if model.get("lora_adapter_path") is not None and rank <= 0:
        # verl puts the reference in the actor (adapters off) but never loads the adapter
        raise ValueError(
            "actor_rollout_ref.model.lora_adapter_path needs actor_rollout_ref.model.lora_rank "
            "> 0: verl 0.9.1 reads the adapter only with LoRA on"
        )
    if not actor.get("freeze_vision_tower", False):
        return
    if rank > 0:
        if model.get("exclude_modules") is None and model.get("target_modules") == "all-linear":
            raise ValueError(
                "actor_rollout_ref.actor.freeze_vision_tower=true with target_modules=all-linear "
                "and no exclude_modules puts LoRA adapters in the frozen vision tower: set "
                "actor_rollout_ref.model.exclude_modules='.*visual.*'"
            )
        return
    fsdp = actor.get("fsdp_config", {})
    if actor.strategy == "fsdp" and not fsdp.get("use_orig_params", False):
        raise ValueError(
            "actor_rollout_ref.actor.freeze_vision_tower=true without LoRA on FSDP1 needs "
            "actor_rollout_ref.actor.fsdp_config.use_orig_params=true (a flat parameter mixes "
            "the frozen merger with trainable embeddings), or actor_rollout_ref.actor.strategy"
            "=fsdp2"
        )


def plugin_env(existing: str | None) -> str:
    """VERL_USE_EXTERNAL_MODULES with our module added once."""
    modules = [m for m in (existing or "").split(",") if m]
    if PLUGIN_MODULE not in modules:
        modules.append(PLUGIN_MODULE)
    return ",".join(modules)
