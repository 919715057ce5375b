"""Typed configuration of the single-process engine: YAML + OmegaConf dotted overrides.

Field checks run once at load (:func:`load_config`); checks that need runtime facts
(task registry, batch arithmetic against the data) run in the trainer before step 1.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from openvlthinker.engine.lora import EXCLUDE_VISION_TOWER
from openvlthinker.engine.loss import KL_PENALTIES, LOSS_AGG_MODES
from openvlthinker.engine.modeling import known_architectures


@dataclass
class TinyModelConfig:
    architecture: str = field(
        default="qwen3_vl",
        metadata={"help": "Tiny model family: qwen3_vl, qwen2_5_vl or qwen2_vl."},
    )
    hidden_size: int = field(default=64, metadata={"help": "Text hidden size."})
    num_layers: int = field(default=2, metadata={"help": "Text decoder layers."})
    num_heads: int = field(
        default=4, metadata={"help": "Attention heads (head_dim = hidden_size / num_heads)."}
    )
    num_kv_heads: int = field(
        default=2, metadata={"help": "Key/value heads (grouped-query attention)."}
    )
    intermediate_size: int = field(default=128, metadata={"help": "Text MLP width."})
    vision_depth: int = field(default=2, metadata={"help": "Vision transformer blocks."})
    vision_hidden_size: int = field(default=32, metadata={"help": "Vision hidden size."})
    vision_heads: int = field(default=2, metadata={"help": "Vision attention heads."})
    tokenizer_vocab_size: int = field(
        default=400, metadata={"help": "Byte-level BPE size before the Qwen special tokens."}
    )
    vocab_size: int = field(
        default=0,
        metadata={
            "help": "Embedding/LM-head rows; 0 = the tokenizer's size. Larger (e.g. 151936) gives "
            "a real-size LM head; rows past the tokenizer are never sampled."
        },
    )
    tokenizer: str = field(
        default="tiny", metadata={"help": "Tokenizer of the tiny model: tiny (trained locally)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random initial weights."})


@dataclass
class ModelConfig:
    path: str | None = field(
        default=None,
        metadata={
            "help": "HF checkpoint folder (e.g. Qwen3-VL-8B-Instruct); null builds the tiny model."
        },
    )
    tiny: TinyModelConfig = field(
        default_factory=TinyModelConfig, metadata={"help": "Sizes of the random-init tiny model."}
    )
    cache_dir: str = field(
        default="~/.cache/openvlthinker",
        metadata={"help": "Where the tiny checkpoint is saved once."},
    )
    dtype: str = field(
        default="float32", metadata={"help": "Parameter dtype: float32, bfloat16 or float16."}
    )
    device: str = field(
        default="auto", metadata={"help": "auto (cuda when available), cpu or cuda[:i]."}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "Recompute activations in backward (saves memory)."}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "HF attention backend (sdpa, eager, ...); null = default."}
    )
    min_pixels: int = field(
        default=32 * 32, metadata={"help": "Smallest image area after resizing (pixels)."}
    )
    max_pixels: int = field(
        default=128 * 128, metadata={"help": "Largest image area after resizing (pixels)."}
    )
    # LoRA and vision-tower keys are verl's (actor_rollout_ref.model.*), same meaning.
    lora_rank: int = field(
        default=0, metadata={"help": "LoRA rank (peft); 0 = off (full fine-tuning)."}
    )
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling factor alpha."})
    target_modules: Any = field(
        default="all-linear",
        metadata={
            "help": "Layers given adapters: all-linear (every linear layer but the LM head), a "
            "list of module-name suffixes or a regex (peft's target_modules)."
        },
    )
    exclude_modules: Any = field(
        default=EXCLUDE_VISION_TOWER,
        metadata={
            "help": "Layers never given adapters (peft regex or list); the default keeps them out "
            "of the vision tower, so LoRA adapts the language model only."
        },
    )
    lora_adapter_path: str | None = field(
        default=None,
        metadata={
            "help": "Continue from this peft adapter folder (e.g. a checkpoint's model/); its "
            "adapter_config.json sets rank, alpha and targets. Needs lora_rank > 0."
        },
    )
    freeze_vision_tower: bool = field(
        default=False,
        metadata={
            "help": "No gradient to the vision encoder and merger (model.visual); with or without "
            "LoRA (verl: actor_rollout_ref.actor.freeze_vision_tower)."
        },
    )


@dataclass
class DataConfig:
    tasks: str = field(
        default="configs/tasks.yaml",
        metadata={"help": "Task registry file (tasks, data files, envelopes, bands)."},
    )
    template: str | None = field(
        default=None,
        metadata={"help": "Prompt template (Jinja file or name); null = the data default."},
    )
    rollout_batch_size: int = field(
        default=4, metadata={"help": "Prompts sampled per step (each gets rollout.n responses)."}
    )
    max_prompt_length: int = field(
        default=512, metadata={"help": "Prompts longer than this many tokens are an error."}
    )
    shuffle: bool = field(
        default=True, metadata={"help": "Shuffle the training records every epoch."}
    )
    seed: int = field(default=1, metadata={"help": "Seed of the epoch shuffles."})
    max_train_records: int | None = field(
        default=None, metadata={"help": "Use at most this many records of each training file."}
    )
    max_val_records: int | None = field(
        default=None, metadata={"help": "Use at most this many records per validation set."}
    )
    only_tasks: list[str] = field(
        default_factory=lambda: [],
        metadata={"help": "Train and validate on these task keys only; empty = all."},
    )
    on_error: str = field(
        default="fail", metadata={"help": "Bad record: fail (raise) or skip (log and drop)."}
    )


@dataclass
class RolloutConfig:
    n: int = field(default=4, metadata={"help": "Responses sampled per prompt (the prompt group)."})
    temperature: float = field(
        default=1.0,
        metadata={"help": "Sampling temperature (also applied when scoring log-probs)."},
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling threshold (1 = off)."})
    top_k: int = field(default=0, metadata={"help": "Top-k sampling (0 = off)."})
    max_new_tokens: int = field(default=32, metadata={"help": "Maximum response length in tokens."})
    val_n: int = field(default=1, metadata={"help": "Responses per validation prompt."})
    val_temperature: float = field(
        default=0.0, metadata={"help": "Validation temperature (0 = greedy)."}
    )
    check_log_probs: bool = field(
        default=False,
        metadata={
            "help": "Keep generation's scores and log debug/log_prob_gap: the largest gap between "
            "them and the re-scored old log-probs (should be < 1e-4)."
        },
    )
    val_batch_size: int = field(
        default=16, metadata={"help": "Validation prompts per generate call."}
    )


@dataclass
class DynamicSamplingConfig:
    enable: bool = field(
        default=False,
        metadata={"help": "Drop prompt groups whose metric is all equal (all-0 / all-1)."},
    )
    metric: str = field(
        default="acc", metadata={"help": "Reward field judged per group: acc or overall."}
    )
    max_num_gen_batches: int = field(
        default=4, metadata={"help": "Rollout batches generated at most per step to refill."}
    )


@dataclass
class AlgorithmConfig:
    adv_estimator: str = field(
        default="gs_grpo",
        metadata={"help": "Advantage estimator: gs_grpo, gs_gdpo, grpo, gdpo, ..."},
    )
    estimator_options: dict[str, Any] = field(
        default_factory=lambda: {},
        metadata={"help": "Keyword options of the estimator (e.g. stages)."},
    )
    advantage_key: str | None = field(
        default=None,
        metadata={
            "help": "Record field that keys G2RPO stage 2: task or problem_type; null = the registry's."
        },
    )
    components: list[str] = field(
        default_factory=lambda: ["correctness", "format", "structure", "length"],
        metadata={
            "help": "Reward components the multi-reward estimators (gs_gdpo, gdpo) normalise; "
            "'length' counts only for tasks whose length_weight > 0."
        },
    )
    use_kl_loss: bool = field(
        default=False, metadata={"help": "Add a KL(pi || reference) term to the actor loss."}
    )
    kl_coef: float = field(default=0.01, metadata={"help": "Weight of the KL term."})
    kl_penalty: str = field(
        default="low_var_kl",
        metadata={"help": "KL estimator: low_var_kl (k3), kl (k1), mse (k2), abs."},
    )
    dynamic_sampling: DynamicSamplingConfig = field(
        default_factory=DynamicSamplingConfig, metadata={"help": "DAPO group filter."}
    )


@dataclass
class EntropyBandConfig:
    enable: bool = field(
        default=True,
        metadata={"help": "Add the per-task entropy band (method.md section 3) to the loss."},
    )
    estimator: str = field(
        default="sampled",
        metadata={
            "help": "Token entropy: sampled (-log pi of the sampled token) or full (over vocab)."
        },
    )


@dataclass
class ActorConfig:
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay."})
    betas: list[float] = field(
        default_factory=lambda: [0.9, 0.999], metadata={"help": "AdamW betas."}
    )
    warmup_steps: int = field(
        default=0, metadata={"help": "Linear learning-rate warm-up over this many optimizer steps."}
    )
    mini_batch_size: int = field(
        default=4, metadata={"help": "Prompts per optimizer step (x rollout.n responses)."}
    )
    micro_batch_size: int = field(
        default=8, metadata={"help": "Responses per forward/backward (gradient accumulation)."}
    )
    ppo_epochs: int = field(default=1, metadata={"help": "Passes over the rollout batch per step."})
    shuffle: bool = field(
        default=True, metadata={"help": "Shuffle responses before splitting into mini-batches."}
    )
    clip_ratio_low: float = field(default=0.2, metadata={"help": "PPO clip: ratio floor 1 - low."})
    clip_ratio_high: float = field(
        default=0.3, metadata={"help": "PPO clip: ratio ceiling 1 + high (decoupled, DAPO)."}
    )
    clip_ratio_dual: float | None = field(
        default=3.0, metadata={"help": "Dual clip constant for A < 0 (> 1); null = off."}
    )
    loss_agg_mode: str = field(
        default="token-mean", metadata={"help": f"Token aggregation: {', '.join(LOSS_AGG_MODES)}."}
    )
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "Clip the gradient norm to this value."}
    )
    entropy_band: EntropyBandConfig = field(
        default_factory=EntropyBandConfig, metadata={"help": "Per-task entropy band."}
    )


@dataclass
class TrainerConfig:
    total_steps: int = field(
        default=20, metadata={"help": "Training steps (one rollout batch each)."}
    )
    seed: int = field(default=42, metadata={"help": "Seed of sampling and mini-batch shuffles."})
    out_dir: str = field(
        default="outputs/${trainer.experiment_name}",
        metadata={
            "help": "Run folder: metrics, checkpoints, plot; default outputs/<experiment_name>."
        },
    )
    experiment_name: str = field(
        default="tiny_cpu",
        metadata={
            "help": "Run name (as verl's): names the default run folder and the loggers' run; "
            "a new name is a new run."
        },
    )
    val_before_train: bool = field(
        default=True,
        metadata={"help": "Validate before the first step (also when val_freq is 0, as in verl)."},
    )
    val_freq: int = field(
        default=10,
        metadata={
            "help": "Validate every this many steps (and after the last); 0 = no periodic validation."
        },
    )
    save_freq: int = field(
        default=10,
        metadata={"help": "Checkpoint every this many steps (and after the last); 0 = never."},
    )
    save_limit: int = field(
        default=2, metadata={"help": "Keep at most this many checkpoints (0 = all)."}
    )
    resume: str = field(
        default="auto",
        metadata={"help": "auto (latest checkpoint in out_dir), disable, or a checkpoint path."},
    )
    logger: list[str] = field(
        default_factory=lambda: ["console", "jsonl", "tensorboard"],
        metadata={"help": "console, jsonl, tensorboard, wandb."},
    )
    progress_bar: bool = field(
        default=True, metadata={"help": "Show a progress bar with live reward/entropy."}
    )
    plot: bool = field(
        default=True,
        metadata={"help": "Write a per-task PNG (reward, length, entropy vs step) at the end."},
    )
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads; null = the cores this process may use "
            "(os.sched_getaffinity) less those other jobs keep busy (1-minute load), at least 1."
        },
    )
    save_merged: bool = field(
        default=False,
        metadata={
            "help": "With LoRA: also write <out_dir>/merged, the adapters merged into a Hugging "
            "Face model (from_pretrained, model.path), after the last step."
        },
    )


@dataclass
class CalibrationConfig:
    batches: int = field(
        default=4,
        metadata={
            "help": "Rollout batches per task (data.rollout_batch_size prompts x rollout.n) that "
            "`openvlthinker calibrate` and 'auto' task-file bounds measure (method.md section 7)."
        },
    )


@dataclass
class EvalConfig:
    n: int = field(
        default=1, metadata={"help": "openvlthinker eval: responses per record (avg@n, pass@n)."}
    )
    temperature: float = field(
        default=0.0, metadata={"help": "openvlthinker eval: sampling temperature (0 = greedy)."}
    )
    batch_size: int = field(
        default=16, metadata={"help": "openvlthinker eval: records per generate call."}
    )
    max_records: int | None = field(
        default=None,
        metadata={"help": "openvlthinker eval: at most this many records per set; null = all."},
    )


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "Policy model."})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Tasks and records."})
    rollout: RolloutConfig = field(default_factory=RolloutConfig, metadata={"help": "Sampling."})
    algorithm: AlgorithmConfig = field(
        default_factory=AlgorithmConfig, metadata={"help": "Advantage, KL, dynamic sampling."}
    )
    actor: ActorConfig = field(
        default_factory=ActorConfig, metadata={"help": "Optimisation and policy loss."}
    )
    reward: dict[str, Any] = field(
        default_factory=lambda: {},
        metadata={
            "help": "Fields of openvlthinker.rewards.RewardConfig (tags, workers, user_scorers; "
            "weights come from the task file)."
        },
    )
    trainer: TrainerConfig = field(
        default_factory=TrainerConfig, metadata={"help": "Loop, logging, checkpoints."}
    )
    calibration: CalibrationConfig = field(
        default_factory=CalibrationConfig,
        metadata={"help": "Shaping bounds measured from the policy (auto)."},
    )
    eval: EvalConfig = field(
        default_factory=EvalConfig, metadata={"help": "openvlthinker eval (not training)."}
    )


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key, the value and the fix."""


def _check(ok: bool, key: str, value: Any, why: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r}: {why}")


def validate(cfg: TrainConfig) -> TrainConfig:
    """Field checks that need no runtime facts. Raises ConfigError naming the key."""
    m, d, r, a, act, t = cfg.model, cfg.data, cfg.rollout, cfg.algorithm, cfg.actor, cfg.trainer
    _check(
        m.tiny.architecture in known_architectures(),
        "model.tiny.architecture",
        m.tiny.architecture,
        f"known: {', '.join(known_architectures())}",
    )
    _check(
        m.dtype in ("float32", "bfloat16", "float16"),
        "model.dtype",
        m.dtype,
        "use float32, bfloat16 or float16",
    )
    _check(
        m.device == "auto" or m.device == "cpu" or m.device.startswith("cuda"),
        "model.device",
        m.device,
        "use auto, cpu or cuda[:i]",
    )
    _check(
        0 < m.min_pixels <= m.max_pixels,
        "model.min_pixels",
        m.min_pixels,
        "needs 0 < min_pixels <= max_pixels",
    )
    _check(
        m.tiny.hidden_size % m.tiny.num_heads == 0,
        "model.tiny.hidden_size",
        m.tiny.hidden_size,
        "must be a multiple of num_heads",
    )
    _check_lora(cfg)
    if m.path is not None:
        _check(
            os.path.isfile(os.path.join(os.path.expanduser(m.path), "config.json")),
            "model.path",
            m.path,
            "not a Hugging Face checkpoint folder (no config.json there; the hub is never used: "
            "give a local folder, or null for the tiny model)",
        )
    _check(d.rollout_batch_size > 0, "data.rollout_batch_size", d.rollout_batch_size, "must be > 0")
    _check(d.on_error in ("fail", "skip"), "data.on_error", d.on_error, "use fail or skip")
    if d.template is not None:
        from openvlthinker.data.prompts import template_path

        try:
            template_path(d.template)
        except FileNotFoundError as e:
            raise ConfigError(f"data.template={d.template!r}: {e}") from e
    _check(r.n >= 1, "rollout.n", r.n, "must be >= 1")
    _check(
        r.temperature > 0,
        "rollout.temperature",
        r.temperature,
        "must be > 0 (log-probs divide by it)",
    )
    _check(0 < r.top_p <= 1, "rollout.top_p", r.top_p, "must be in (0, 1]")
    _check(r.top_k >= 0, "rollout.top_k", r.top_k, "must be >= 0")
    _check(r.max_new_tokens >= 1, "rollout.max_new_tokens", r.max_new_tokens, "must be >= 1")
    _check(r.val_temperature >= 0, "rollout.val_temperature", r.val_temperature, "must be >= 0")
    _check(
        r.val_n >= 1 and r.val_batch_size >= 1,
        "rollout.val_n",
        r.val_n,
        "val_n and val_batch_size must be >= 1",
    )
    from openvlthinker.advantage import ESTIMATORS, estimator_options

    _check(
        a.adv_estimator in ESTIMATORS,
        "algorithm.adv_estimator",
        a.adv_estimator,
        f"unknown; known: {', '.join(sorted(ESTIMATORS))}",
    )
    unknown = sorted(set(a.estimator_options) - set(estimator_options(a.adv_estimator)))
    _check(
        not unknown,
        "algorithm.estimator_options",
        dict(a.estimator_options),
        f"{a.adv_estimator} does not accept {unknown}; it accepts: "
        f"{', '.join(estimator_options(a.adv_estimator)) or 'none'}",
    )
    if r.n == 1:
        _check_one_response_learns(a)
    _check(
        a.advantage_key in (None, "task", "problem_type"),
        "algorithm.advantage_key",
        a.advantage_key,
        "use task, problem_type or null",
    )
    from openvlthinker.rewards.config import COMPONENTS, RewardConfig
    from openvlthinker.tasks.registry import WEIGHTS_FROM_TASKS

    bad = [c for c in a.components if c not in COMPONENTS]
    _check(
        not bad,
        "algorithm.components",
        list(a.components),
        f"unknown {bad}; known: {', '.join(COMPONENTS)}",
    )
    from openvlthinker.advantage import missing_inputs

    # this engine makes greedy baselines, counts tokens and keys tasks; components only if named
    provided = ["task", "baselines", "lengths"] + (["components"] if a.components else [])
    _check(
        not missing_inputs(a.adv_estimator, provided),
        "algorithm.components",
        list(a.components),
        f"{a.adv_estimator} needs the reward components; name them "
        f"(e.g. [{', '.join(COMPONENTS)}])",
    )
    _check(
        "weights" not in cfg.reward,
        "reward.weights",
        dict(cfg.reward.get("weights") or {}),
        f"unused: {WEIGHTS_FROM_TASKS}",
    )
    try:
        RewardConfig.from_dict(cfg.reward)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"reward={dict(cfg.reward)!r}: {e}") from e
    _check(
        a.kl_penalty in KL_PENALTIES,
        "algorithm.kl_penalty",
        a.kl_penalty,
        f"known: {', '.join(KL_PENALTIES)}",
    )
    _check(a.kl_coef >= 0, "algorithm.kl_coef", a.kl_coef, "must be >= 0")
    ds = a.dynamic_sampling
    _check(
        ds.metric in ("acc", "overall"),
        "algorithm.dynamic_sampling.metric",
        ds.metric,
        "use acc or overall",
    )
    _check(
        ds.max_num_gen_batches >= 1,
        "algorithm.dynamic_sampling.max_num_gen_batches",
        ds.max_num_gen_batches,
        "must be >= 1",
    )
    _check(act.lr > 0, "actor.lr", act.lr, "must be > 0")
    _check(act.warmup_steps >= 0, "actor.warmup_steps", act.warmup_steps, "must be >= 0")
    _check(len(act.betas) == 2, "actor.betas", list(act.betas), "needs two values")
    _check(act.mini_batch_size >= 1, "actor.mini_batch_size", act.mini_batch_size, "must be >= 1")
    _check(
        act.micro_batch_size >= 1, "actor.micro_batch_size", act.micro_batch_size, "must be >= 1"
    )
    _check(
        d.rollout_batch_size % act.mini_batch_size == 0,
        "actor.mini_batch_size",
        act.mini_batch_size,
        f"must divide data.rollout_batch_size={d.rollout_batch_size}",
    )
    _check(act.ppo_epochs >= 1, "actor.ppo_epochs", act.ppo_epochs, "must be >= 1")
    _check(
        0 <= act.clip_ratio_low < 1, "actor.clip_ratio_low", act.clip_ratio_low, "must be in [0, 1)"
    )
    _check(act.clip_ratio_high >= 0, "actor.clip_ratio_high", act.clip_ratio_high, "must be >= 0")
    _check(
        act.clip_ratio_dual is None or act.clip_ratio_dual > 1,
        "actor.clip_ratio_dual",
        act.clip_ratio_dual,
        "must be > 1 or null",
    )
    _check(
        act.loss_agg_mode in LOSS_AGG_MODES,
        "actor.loss_agg_mode",
        act.loss_agg_mode,
        f"known: {', '.join(LOSS_AGG_MODES)}",
    )
    _check(act.max_grad_norm > 0, "actor.max_grad_norm", act.max_grad_norm, "must be > 0")
    _check(
        act.entropy_band.estimator in ("sampled", "full"),
        "actor.entropy_band.estimator",
        act.entropy_band.estimator,
        "use sampled or full",
    )
    _check(t.total_steps >= 1, "trainer.total_steps", t.total_steps, "must be >= 1")
    _check(
        cfg.calibration.batches >= 1,
        "calibration.batches",
        cfg.calibration.batches,
        "must be >= 1",
    )
    _check(
        t.val_freq >= 0 and t.save_freq >= 0,
        "trainer.val_freq",
        t.val_freq,
        "val_freq and save_freq must be >= 0",
    )
    _check(
        t.num_threads is None or t.num_threads >= 1,
        "trainer.num_threads",
        t.num_threads,
        "must be >= 1 or null",
    )
    known_loggers = {"console", "jsonl", "tensorboard", "wandb"}
    bad = sorted(set(t.logger) - known_loggers)
    _check(
        not bad,
        "trainer.logger",
        list(t.logger),
        f"unknown {bad}; known: {', '.join(sorted(known_loggers))}",
    )
    _check(
        t.resume in ("auto", "disable") or os.path.isdir(t.resume),
        "trainer.resume",
        t.resume,
        "use auto, disable, or an existing checkpoint folder",
    )
    e = cfg.eval
    _check(e.n >= 1, "eval.n", e.n, "must be >= 1")
    _check(e.temperature >= 0, "eval.temperature", e.temperature, "must be >= 0 (0 = greedy)")
    _check(e.batch_size >= 1, "eval.batch_size", e.batch_size, "must be >= 1")
    _check(
        e.max_records is None or e.max_records >= 1,
        "eval.max_records",
        e.max_records,
        "must be >= 1 or null",
    )
    return cfg


def _is_names(value: Any, allow_none: bool) -> bool:
    """A peft module selector: a string (regex or all-linear) or a list of strings."""
    if value is None:
        return allow_none
    if isinstance(value, str):
        return bool(value)
    return isinstance(value, list | tuple) and all(isinstance(x, str) and x for x in value)


def _check_lora(cfg: TrainConfig) -> None:
    m = cfg.model
    _check(m.lora_rank >= 0, "model.lora_rank", m.lora_rank, "must be >= 0 (0 = off)")
    _check(m.lora_alpha > 0, "model.lora_alpha", m.lora_alpha, "must be > 0")
    _check(
        _is_names(m.target_modules, allow_none=False),
        "model.target_modules",
        m.target_modules,
        "use all-linear, a regex string or a list of module names",
    )
    _check(
        _is_names(m.exclude_modules, allow_none=True),
        "model.exclude_modules",
        m.exclude_modules,
        "use a regex string, a list of module names or null",
    )
    if m.lora_adapter_path is not None:
        _check(
            m.lora_rank > 0,
            "model.lora_adapter_path",
            m.lora_adapter_path,
            "needs model.lora_rank > 0 (as in verl, the adapter is read only with LoRA on)",
        )
        _check(
            os.path.isfile(
                os.path.join(os.path.expanduser(m.lora_adapter_path), "adapter_config.json")
            ),
            "model.lora_adapter_path",
            m.lora_adapter_path,
            "is not a peft adapter folder (no adapter_config.json)",
        )
    _check(
        not cfg.trainer.save_merged or m.lora_rank > 0,
        "trainer.save_merged",
        cfg.trainer.save_merged,
        "needs model.lora_rank > 0 (without LoRA every checkpoint's model/ is a full model)",
    )


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


def load_config(
    path: str | os.PathLike | None = None, overrides: list[str] | None = None
) -> TrainConfig:
    """Defaults <- YAML file <- dotted ``key=value`` overrides, type-checked, then validated."""
    base = OmegaConf.structured(TrainConfig)
    layers = [base]
    try:
        if path is not None:
            layers.append(OmegaConf.load(path))
        if overrides:
            layers.append(OmegaConf.from_dotlist(list(overrides)))
        merged = OmegaConf.merge(*layers)
        cfg = OmegaConf.to_object(merged)
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} not found") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"config file {path}: YAML syntax error at{at} {problem}") from e
    except OmegaConfBaseException as e:
        where = f" ({path})" if path else ""
        key = getattr(e, "full_key", None)
        # OmegaConf appends full_key/object_type lines: the first line is the message.
        msg = str(getattr(e, "msg", e)).splitlines()[0]
        hint = _nearest_key(key, overrides or []) if isinstance(e, ConfigKeyError) else ""
        raise ConfigError(f"config{where}: key {key!r}: {msg}{hint}") from e
    return validate(cfg)


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


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dict of a config (for logging and checkpoints)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def help_table(cls: type = TrainConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) for every field: the reference table of docs/engine.md."""
    rows = []
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        sub = f.default_factory() if f.default_factory is not MISSING else None
        if sub is not None and is_dataclass(sub):
            rows.extend(help_table(type(sub), key + "."))
        else:
            default = sub if sub is not None else f.default
            rows.append((key, repr(default), f.metadata.get("help", "")))
    return rows


#: What a resumed run may change: how long it runs, how often it validates, saves and logs,
#: and where it writes. Anything else must equal the checkpoint's config (a different
#: estimator, learning rate or task file would silently continue another experiment).
RESUME_FREE_KEYS = (
    "trainer.total_steps",
    "trainer.val_freq",
    "trainer.save_freq",
    "trainer.save_limit",
    "trainer.logger",
    "trainer.progress_bar",
    "trainer.plot",
    "trainer.num_threads",
    "trainer.resume",
    "trainer.out_dir",
    "trainer.experiment_name",
    "model.cache_dir",
    # read by openvlthinker eval only, never by training
    "eval.n",
    "eval.temperature",
    "eval.batch_size",
    "eval.max_records",
)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys; an empty mapping has no leaves."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def resume_conflicts(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``key: saved -> now`` for every key outside :data:`RESUME_FREE_KEYS` whose value differs
    between a checkpoint's config and ``cfg``. A key the checkpoint lacks (written before the
    key existed) counts as its default."""
    now = _flatten(to_dict(cfg))
    before = {**_flatten(to_dict(TrainConfig())), **_flatten(saved)}
    free = set(RESUME_FREE_KEYS)
    return [
        f"{key}: {before.get(key)!r} -> {now.get(key)!r}"
        for key in sorted(set(now) | set(before))
        if key not in free and before.get(key) != now.get(key)
    ]
