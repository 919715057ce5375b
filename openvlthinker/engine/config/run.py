"""The run's sections: ``trainer`` (loop length, validation and checkpoint cadence, resume,
logging), ``calibration`` and ``eval`` (read by ``openvlthinker calibrate`` / ``eval``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from openvlthinker.engine.config.base import RESUME_FREE, Section

LOGGERS = ("console", "jsonl", "tensorboard", "wandb")
RESUME_MODES = ("auto", "disable", "resume_path")


@dataclass
class TrainerConfig(Section):
    SECTION = "trainer"

    total_steps: int = field(
        default=20,
        metadata={"help": "Training steps (one rollout batch each).", **RESUME_FREE},
    )
    seed: int = field(default=42, metadata={"help": "Seed of sampling and mini-batch shuffles."})
    out_dir: str = field(
        default="outputs/${trainer.experiment_name}",
        metadata={
            "help": "Run folder: metrics, checkpoints, plot; default outputs/<experiment_name>.",
            **RESUME_FREE,
        },
    )
    experiment_name: str = field(
        default="tiny_cpu",
        metadata={
            "help": "Run name (as verl's): names the default run folder and the loggers' run; "
            "a new name is a new run.",
            **RESUME_FREE,
        },
    )
    val_before_train: bool = field(
        default=True,
        metadata={"help": "Validate before the first step (also when test_freq is 0, as in verl)."},
    )
    test_freq: int = field(
        default=10,
        metadata={
            "help": "Validate every this many steps (and after the last); 0 = no periodic "
            "validation.",
            **RESUME_FREE,
        },
    )
    save_freq: int = field(
        default=10,
        metadata={
            "help": "Checkpoint every this many steps (and after the last); 0 = never.",
            **RESUME_FREE,
        },
    )
    save_limit: int = field(
        default=2,
        metadata={
            "help": "Keep at most this many newest checkpoints (0 = all); with save_best the "
            "best one is kept besides them.",
            **RESUME_FREE,
        },
    )
    save_best: bool = field(
        default=False,
        metadata={
            "help": "Keep the checkpoint of the best val/score (never rotated out by save_limit) "
            "and name it in checkpoints/best_checkpoint.json; needs save_freq a multiple of "
            "test_freq.",
            **RESUME_FREE,
        },
    )
    resume_mode: str = field(
        default="auto",
        metadata={
            "help": "auto (latest checkpoint in out_dir), disable, or resume_path "
            "(trainer.resume_from_path).",
            **RESUME_FREE,
        },
    )
    resume_from_path: str | None = field(
        default=None,
        metadata={
            "help": "Checkpoint folder (global_step_<N>) to resume from; read with "
            "resume_mode=resume_path only.",
            **RESUME_FREE,
        },
    )
    logger: list[str] = field(
        default_factory=lambda: ["console", "jsonl", "tensorboard"],
        metadata={"help": "console, jsonl, tensorboard, wandb.", **RESUME_FREE},
    )
    progress_bar: bool = field(
        default=True,
        metadata={"help": "Show a progress bar with live reward/entropy.", **RESUME_FREE},
    )
    plot: bool = field(
        default=True,
        metadata={
            "help": "Write a per-task PNG (reward, length, entropy vs step) at the end.",
            **RESUME_FREE,
        },
    )
    num_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads; null = the cores this process may use "
            "(os.sched_getaffinity) less those other jobs keep busy (1-minute load), at least 1.",
            **RESUME_FREE,
        },
    )
    save_merged: bool = field(
        default=False,
        metadata={
            "help": "With LoRA: also write <out_dir>/merged, the adapters merged into a Hugging "
            "Face model (from_pretrained, model.path), after the last step."
        },
    )

    def __post_init__(self) -> None:
        self._check(self.total_steps >= 1, "total_steps", "must be >= 1")
        self._check(self.test_freq >= 0, "test_freq", "must be >= 0 (0 = no periodic validation)")
        self._check(self.save_freq >= 0, "save_freq", "must be >= 0 (0 = never)")
        self._check(self.save_limit >= 0, "save_limit", "must be >= 0 (0 = keep all)")
        if self.save_best:
            self._check(
                self.save_freq > 0 and self.test_freq > 0 and self.save_freq % self.test_freq == 0,
                "save_best",
                f"needs trainer.save_freq (now {self.save_freq}) a positive multiple of "
                f"trainer.test_freq (now {self.test_freq}), so that every checkpoint has a "
                "val/score",
            )
        self._check(
            self.num_threads is None or self.num_threads >= 1, "num_threads", "must be >= 1 or null"
        )
        bad = sorted(set(self.logger) - set(LOGGERS))
        self._check(
            not bad,
            "logger",
            f"unknown {bad}; known: {', '.join(sorted(LOGGERS))}",
            list(self.logger),
        )
        self._check(
            self.resume_mode in RESUME_MODES,
            "resume_mode",
            "use auto, disable, or resume_path (with trainer.resume_from_path)",
        )
        if self.resume_mode == "resume_path":
            self._check(
                self.resume_from_path is not None
                and os.path.isdir(os.path.expanduser(self.resume_from_path)),
                "resume_from_path",
                "trainer.resume_mode=resume_path needs an existing checkpoint folder here",
            )
        else:
            self._check(
                self.resume_from_path is None,
                "resume_from_path",
                f"read only with trainer.resume_mode=resume_path (now {self.resume_mode!r})",
            )


@dataclass
class CalibrationConfig(Section):
    SECTION = "calibration"

    batches: int = field(
        default=4,
        metadata={
            "help": "Rollout batches per task (data.rollout_batch_size prompts x rollout.n) that "
            "`openvlthinker calibrate` and 'auto' task-file bounds measure (method.md section 7)."
        },
    )

    def __post_init__(self) -> None:
        self._check(self.batches >= 1, "batches", "must be >= 1")


@dataclass
class EvalConfig(Section):
    SECTION = "eval"

    # read by openvlthinker eval only, never by training: free on resume
    n: int = field(
        default=1,
        metadata={
            "help": "openvlthinker eval: responses per record (avg@n, pass@n).",
            **RESUME_FREE,
        },
    )
    temperature: float = field(
        default=0.0,
        metadata={"help": "openvlthinker eval: sampling temperature (0 = greedy).", **RESUME_FREE},
    )
    batch_size: int = field(
        default=16,
        metadata={"help": "openvlthinker eval: records per generate call.", **RESUME_FREE},
    )
    max_records: int | None = field(
        default=None,
        metadata={
            "help": "openvlthinker eval: at most this many records per set; null = all.",
            **RESUME_FREE,
        },
    )

    def __post_init__(self) -> None:
        self._check(self.n >= 1, "n", "must be >= 1")
        self._check(self.temperature >= 0, "temperature", "must be >= 0 (0 = greedy)")
        self._check(self.batch_size >= 1, "batch_size", "must be >= 1")
        self._check(
            self.max_records is None or self.max_records >= 1, "max_records", "must be >= 1 or null"
        )
