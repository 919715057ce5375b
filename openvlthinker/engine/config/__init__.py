"""Typed configuration of the single-process engine: YAML + OmegaConf dotted overrides.

One concept per module: :mod:`.base` (the error and the check that names the dotted key),
:mod:`.tiny`, :mod:`.model`, :mod:`.sections` and :mod:`.run` (the sections, each checking
its own fields when built), :mod:`.renames` (old key names, refused at load),
:mod:`.loading` (files + overrides -> a validated :class:`TrainConfig`) and :mod:`.reference`
(the key table, the plain dict, the resume comparison). Import from here.
"""

from openvlthinker.engine.config.base import ConfigError, check
from openvlthinker.engine.config.loading import load_config, validate
from openvlthinker.engine.config.model import ModelConfig
from openvlthinker.engine.config.reference import (
    help_table,
    resume_conflicts,
    resume_free_keys,
    to_dict,
)
from openvlthinker.engine.config.renames import REMOVED, RENAMED
from openvlthinker.engine.config.run import CalibrationConfig, EvalConfig, TrainerConfig
from openvlthinker.engine.config.sections import (
    ActorConfig,
    AlgorithmConfig,
    DataConfig,
    EntropyBandConfig,
    FilterGroupsConfig,
    RolloutConfig,
    TrainConfig,
)
from openvlthinker.engine.config.tiny import TINY_ARCHITECTURES, TinySpec

__all__ = [
    "REMOVED",
    "RENAMED",
    "TINY_ARCHITECTURES",
    "ActorConfig",
    "AlgorithmConfig",
    "CalibrationConfig",
    "ConfigError",
    "DataConfig",
    "EntropyBandConfig",
    "EvalConfig",
    "FilterGroupsConfig",
    "ModelConfig",
    "RolloutConfig",
    "TinySpec",
    "TrainConfig",
    "TrainerConfig",
    "check",
    "help_table",
    "load_config",
    "resume_conflicts",
    "resume_free_keys",
    "to_dict",
    "validate",
]
