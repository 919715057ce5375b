"""Loading the engine's config: defaults <- YAML file <- dotted ``key=value`` overrides
(OmegaConf), old key names refused, the sections built (their own checks run there), then
the checks that span sections (:func:`validate`); plus the nearest-key hint for a misspelt
key and the plain-dict form of a config."""

from __future__ import annotations

import difflib
import os
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from openvlthinker.engine.config.base import ConfigError, check
from openvlthinker.engine.config.reference import help_table
from openvlthinker.engine.config.renames import dotted_keys, refuse_old_keys
from openvlthinker.engine.config.sections import AlgorithmConfig, TrainConfig


def load_config(
    path: str | os.PathLike | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Defaults <- YAML file <- dotted ``key=value`` overrides, type-checked, then validated."""
    layers = [OmegaConf.structured(TrainConfig)]
    try:
        if path is not None:
            layer = OmegaConf.load(path)
            refuse_old_keys(dotted_keys(OmegaConf.to_container(layer)), where=f"{path}: ")
            layers.append(layer)
        if overrides:
            layer = OmegaConf.from_dotlist(list(overrides))
            refuse_old_keys(dotted_keys(OmegaConf.to_container(layer)))
            layers.append(layer)
        cfg = OmegaConf.to_object(OmegaConf.merge(*layers))
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} not found") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {path}: YAML syntax error at{at} {problem}") from e
    except ConfigError:
        raise
    except OmegaConfBaseException as e:
        where = f" ({path})" if path else ""
        key = getattr(e, "full_key", None)
        # OmegaConf appends full_key/object_type lines: the first line is the message.
        msg = str(getattr(e, "msg", e)).splitlines()[0]
        hint = _nearest_key(key, overrides or []) if isinstance(e, ConfigKeyError) else ""
        raise ConfigError(f"config{where}: key {key!r}: {msg}{hint}") from e
    except ValueError as e:
        # RewardConfig's own checks: their messages name the reward.<key>
        raise ConfigError(str(e)) from e
    return validate(cfg)


def validate(cfg: TrainConfig) -> TrainConfig:
    """The checks that span sections (each section checked its own fields when built).
    Checks that need runtime facts (task registry, data) run in the trainer before step 1."""
    d, a, act = cfg.data, cfg.algorithm, cfg.actor
    check(
        d.rollout_batch_size % act.mini_batch_size == 0,
        "actor.mini_batch_size",
        act.mini_batch_size,
        f"must divide data.rollout_batch_size={d.rollout_batch_size}",
    )
    if cfg.rollout.n == 1:
        _check_one_response_learns(a)
    check(
        not cfg.trainer.save_merged or cfg.model.lora_rank > 0,
        "trainer.save_merged",
        cfg.trainer.save_merged,
        "needs model.lora_rank > 0 (without LoRA every checkpoint's model/ is a full model)",
    )
    return cfg


def _learns_from_one_response(estimator: str, options: dict[str, Any], components: list) -> bool:
    """Whether ``estimator`` gives any non-zero advantage when every prompt has one response
    (distinct rewards, one task): group-relative estimators give all zeros."""
    import torch

    from openvlthinker.advantage import compute_advantage, estimator_requirements

    rewards = torch.tensor([0.0, 1.0, 3.0, 7.0])
    kwargs = dict(options)
    needs = estimator_requirements(estimator)
    if needs.baselines and kwargs.get("baselines") is None:
        kwargs["baselines"] = torch.zeros_like(rewards)
    adv = compute_advantage(
        estimator,
        rewards,
        group=torch.arange(4),
        task=[0] * 4,
        components={c: rewards.roll(i) for i, c in enumerate(components)},
        lengths=torch.full_like(rewards, 4.0) if needs.lengths else None,
        **kwargs,
    )
    return bool(adv.abs().max() > 0)


def _check_one_response_learns(a: AlgorithmConfig) -> None:
    """rollout.n = 1 under a group-relative estimator trains on zero advantages: refuse."""
    from openvlthinker.advantage import ESTIMATORS

    try:
        learns = _learns_from_one_response(
            a.adv_estimator, dict(a.estimator_options), list(a.components)
        )
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"algorithm.estimator_options={dict(a.estimator_options)!r}: {a.adv_estimator}: {e}"
        ) from e
    if not learns:
        others = [
            name
            for name in sorted(ESTIMATORS)
            if _learns_from_one_response(name, {}, list(a.components))
        ]
        raise ConfigError(
            f"rollout.n=1: algorithm.adv_estimator={a.adv_estimator!r} compares the responses "
            "to one prompt, so one response per prompt gives every advantage 0 and nothing "
            f"trains; use rollout.n >= 2, or an estimator that needs no group: {', '.join(others)}"
        )


def _nearest_key(key: str | None, overrides: list[str]) -> str:
    """'; did you mean algorithm.adv_estimator?' for a misspelt dotted key, else ''.

    OmegaConf names the first unknown level (``rolout`` of ``rolout.n=8``): the override
    typed under it, when there is one, is the key to correct."""
    if not key:
        return ""
    typed = [o.split("=", 1)[0] for o in overrides]
    key = next((t for t in typed if t == key or t.startswith(key + ".")), key)
    leaves = [k for k, _, _ in help_table()]
    known = sorted({*leaves, *(k.rsplit(".", 1)[0] for k in leaves if "." in k)})
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""
