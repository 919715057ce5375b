"""The training sections of the engine's config (``data``, ``rollout``, ``algorithm``,
``actor``) and the root :class:`TrainConfig` that holds every section. Each section is a
dataclass whose fields carry their help text and whose ``__post_init__`` checks its own
fields (as TRL's and verl's configs do), so the checks run whenever a section is built and
name the full dotted key; checks that span sections run once after construction
(:func:`openvlthinker.engine.config.loading.validate`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openvlthinker.engine.config.base import ConfigError, Section
from openvlthinker.engine.config.model import ModelConfig
from openvlthinker.engine.config.run import CalibrationConfig, EvalConfig, TrainerConfig
from openvlthinker.engine.loss import KL_PENALTIES, LOSS_AGG_MODES
from openvlthinker.method_config import EntropyBandConfig as SharedEntropyBandConfig
from openvlthinker.rewards.config import RewardConfig


@dataclass
class DataConfig(Section):
    SECTION = "data"

    tasks: str = field(
        default="configs/tasks.yaml",
        metadata={
            "help": "Task registry file (tasks, data files, envelopes, bands; its data.on_error "
            "says what a bad record does)."
        },
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

    def __post_init__(self) -> None:
        self._check(self.rollout_batch_size > 0, "rollout_batch_size", "must be > 0")
        if self.template is not None:
            from openvlthinker.data.prompts import template_path

            try:
                template_path(self.template)
            except FileNotFoundError as e:
                self._check(False, "template", str(e))


@dataclass
class RolloutConfig(Section):
    SECTION = "rollout"

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

    def __post_init__(self) -> None:
        self._check(self.n >= 1, "n", "must be >= 1")
        self._check(self.temperature > 0, "temperature", "must be > 0 (log-probs divide by it)")
        self._check(0 < self.top_p <= 1, "top_p", "must be in (0, 1]")
        self._check(self.top_k >= 0, "top_k", "must be >= 0")
        self._check(self.max_new_tokens >= 1, "max_new_tokens", "must be >= 1")
        self._check(self.val_temperature >= 0, "val_temperature", "must be >= 0")
        self._check(self.val_n >= 1, "val_n", "must be >= 1")
        self._check(self.val_batch_size >= 1, "val_batch_size", "must be >= 1")


@dataclass
class FilterGroupsConfig(Section):
    """DAPO's group filter under verl's name and keys (``algorithm.filter_groups``)."""

    SECTION = "algorithm.filter_groups"

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

    def __post_init__(self) -> None:
        self._check(self.metric in ("acc", "overall"), "metric", "use acc or overall")
        self._check(self.max_num_gen_batches >= 1, "max_num_gen_batches", "must be >= 1")


@dataclass
class AlgorithmConfig(Section):
    SECTION = "algorithm"

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
    filter_groups: FilterGroupsConfig = field(
        default_factory=FilterGroupsConfig, metadata={"help": "DAPO group filter."}
    )

    def __post_init__(self) -> None:
        from openvlthinker.advantage import ESTIMATORS, estimator_options, missing_inputs
        from openvlthinker.rewards.config import SCORED_COMPONENTS

        self._check(
            self.adv_estimator in ESTIMATORS,
            "adv_estimator",
            f"unknown; known: {', '.join(sorted(ESTIMATORS))}",
        )
        accepted = estimator_options(self.adv_estimator)
        unknown = sorted(set(self.estimator_options) - set(accepted))
        self._check(
            not unknown,
            "estimator_options",
            f"{self.adv_estimator} does not accept {unknown}; it accepts: "
            f"{', '.join(accepted) or 'none'}",
            dict(self.estimator_options),
        )
        self._check(
            self.advantage_key in (None, "task", "problem_type"),
            "advantage_key",
            "use task, problem_type or null",
        )
        bad = [c for c in self.components if c not in SCORED_COMPONENTS]
        self._check(
            not bad,
            "components",
            f"unknown {bad}; known: {', '.join(SCORED_COMPONENTS)}",
            list(self.components),
        )
        # this engine makes greedy baselines, counts tokens and keys tasks; components only if named
        provided = ["task", "baselines", "lengths"] + (["components"] if self.components else [])
        self._check(
            not missing_inputs(self.adv_estimator, provided),
            "components",
            f"{self.adv_estimator} needs the reward components; name them "
            f"(e.g. [{', '.join(SCORED_COMPONENTS)}])",
            list(self.components),
        )


@dataclass
class EntropyBandConfig(SharedEntropyBandConfig, Section):
    """The band config both engines share (``method_config``), at ``actor.entropy_band``."""

    SECTION = "actor.entropy_band"

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except ValueError as e:
            raise ConfigError(f"actor.{e}") from None


@dataclass
class ActorConfig(Section):
    SECTION = "actor"

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
    clip_ratio_c: float | None = field(
        default=3.0,
        metadata={"help": "Dual-clip constant C for A < 0 (> 1; verl's default 3); null = off."},
    )
    loss_agg_mode: str = field(
        default="token-mean", metadata={"help": f"Token aggregation: {', '.join(LOSS_AGG_MODES)}."}
    )
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "Clip the gradient norm to this value."}
    )
    use_kl_loss: bool = field(
        default=False, metadata={"help": "Add a KL(pi || reference) term to the actor loss."}
    )
    kl_loss_coef: float = field(default=0.01, metadata={"help": "Weight of the KL term."})
    kl_loss_type: str = field(
        default="low_var_kl",
        metadata={"help": "KL estimator: low_var_kl (k3), kl (k1), mse (k2), abs."},
    )
    entropy_band: EntropyBandConfig = field(
        default_factory=EntropyBandConfig, metadata={"help": "Per-task entropy band."}
    )

    def __post_init__(self) -> None:
        self._check(self.lr > 0, "lr", "must be > 0")
        self._check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        self._check(len(self.betas) == 2, "betas", "needs two values", list(self.betas))
        self._check(self.mini_batch_size >= 1, "mini_batch_size", "must be >= 1")
        self._check(self.micro_batch_size >= 1, "micro_batch_size", "must be >= 1")
        self._check(self.ppo_epochs >= 1, "ppo_epochs", "must be >= 1")
        self._check(0 <= self.clip_ratio_low < 1, "clip_ratio_low", "must be in [0, 1)")
        self._check(self.clip_ratio_high >= 0, "clip_ratio_high", "must be >= 0")
        self._check(
            self.clip_ratio_c is None or self.clip_ratio_c > 1,
            "clip_ratio_c",
            "must be > 1 or null",
        )
        self._check(
            self.loss_agg_mode in LOSS_AGG_MODES,
            "loss_agg_mode",
            f"known: {', '.join(LOSS_AGG_MODES)}",
        )
        self._check(self.max_grad_norm > 0, "max_grad_norm", "must be > 0")
        self._check(
            self.kl_loss_type in KL_PENALTIES, "kl_loss_type", f"known: {', '.join(KL_PENALTIES)}"
        )
        self._check(self.kl_loss_coef >= 0, "kl_loss_coef", "must be >= 0")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"help": "Policy model."})
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Tasks and records."})
    rollout: RolloutConfig = field(default_factory=RolloutConfig, metadata={"help": "Sampling."})
    algorithm: AlgorithmConfig = field(
        default_factory=AlgorithmConfig, metadata={"help": "Advantage estimator, group filter."}
    )
    actor: ActorConfig = field(
        default_factory=ActorConfig, metadata={"help": "Optimisation, policy loss, KL loss."}
    )
    reward: RewardConfig = field(
        default_factory=RewardConfig,
        metadata={
            "help": "openvlthinker.rewards.RewardConfig (tags, workers, user_scorers; the "
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
