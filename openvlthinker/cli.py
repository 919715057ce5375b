"""Command line: ``openvlthinker train|eval|calibrate|config|config-help --config CONFIG ...``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
PACKAGE_LOGGER = "openvlthinker"
#: Exit status after Ctrl-C, as a shell reports a command killed by SIGINT.
INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openvlthinker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="Run G2RPO training with the single-process engine.")
    train.add_argument("--config", default=None, help="YAML config (e.g. configs/tiny_cpu.yaml).")
    train.add_argument("overrides", nargs="*", help="Dotted overrides, e.g. actor.lr=1e-5.")
    train.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help="Console log level."
    )
    show = sub.add_parser("config", help="Print the merged config (defaults <- YAML <- overrides).")
    show.add_argument("--config", default=None)
    show.add_argument("overrides", nargs="*")
    sub.add_parser("config-help", help="List every config key with its default and help.")
    cal = sub.add_parser(
        "calibrate",
        help="Measure the policy (no update) and write a task file with shaping bounds set "
        "from the data (docs/method.md section 7).",
    )
    cal.add_argument("--config", default=None, help="YAML config (e.g. configs/tiny_cpu.yaml).")
    cal.add_argument(
        "--out", required=True, help="Task file to write; it extends the config's data.tasks."
    )
    cal.add_argument(
        "--batches", type=int, default=None, help="Rollout batches per task (calibration.batches)."
    )
    cal.add_argument("overrides", nargs="*", help="Dotted overrides, e.g. rollout.n=8.")
    cal.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help="Console log level."
    )
    ev = sub.add_parser("eval", help="Score checkpoints on the task file's validation sets.")
    ev.add_argument("--config", default=None, help="YAML config: task file, prompts, generation.")
    ev.add_argument(
        "--checkpoint", action="append", required=True, help="global_step_N or HF model folder."
    )
    ev.add_argument("--out", required=True, help="Folder for results.json/csv/md/png, samples/.")
    ev.add_argument("--sets", default=None, help="Comma-separated validation set names.")
    ev.add_argument("overrides", nargs="*", help="Dotted overrides, e.g. eval.n=4.")
    ev.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, help="Console log level."
    )
    return parser


def configure_logging(level: str) -> Callable[[], None]:
    """Send the package's log records to stderr at ``level``; returns a function undoing it.

    The handler sits on the ``openvlthinker`` logger, which stops propagating, so whatever
    configured the root logger first (absl, imported by rouge-score, runs ``basicConfig`` at
    WARNING) can neither silence nor duplicate our lines.
    """
    package = logging.getLogger(PACKAGE_LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    before = (package.level, package.propagate)
    package.addHandler(handler)
    package.setLevel(level)
    package.propagate = False

    def undo() -> None:
        package.removeHandler(handler)
        package.setLevel(before[0])
        package.propagate = before[1]

    return undo


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from openvlthinker.engine.config import ConfigError, help_table, load_config, to_dict

    if args.command == "config-help":
        for key, default, text in help_table():
            sys.stdout.write(f"{key:48s} {default:28s} {text}\n")
        return 0
    overrides = list(args.overrides)
    if getattr(args, "batches", None) is not None:
        overrides.append(f"calibration.batches={args.batches}")
    try:
        cfg = load_config(args.config, overrides)
    except ConfigError as e:
        sys.stderr.write(f"openvlthinker: {e}\n")
        return 2
    if args.command == "config":
        from omegaconf import OmegaConf

        sys.stdout.write(OmegaConf.to_yaml(to_dict(cfg)))
        return 0
    undo = configure_logging(args.log_level)
    try:
        return _run(cfg, args)
    finally:
        undo()


def _run(cfg, args: argparse.Namespace) -> int:
    """Train, calibrate into ``--out`` or evaluate; bad input is one line (exit 2), Ctrl-C
    during training says how to resume."""
    # No hub: a tiny model is built locally, a real one is read from model.path.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "eval":
        from openvlthinker.evaluation.cli import run_eval_command

        return run_eval_command(cfg, args)
    from openvlthinker.data import RecordError
    from openvlthinker.engine.checkpoint import latest_checkpoint
    from openvlthinker.engine.config import ConfigError
    from openvlthinker.engine.trainer import Trainer
    from openvlthinker.shaping.calibration import CalibrationError
    from openvlthinker.tasks import TaskFileError

    trainer = None
    try:
        trainer = Trainer(cfg)
        if args.command == "calibrate":
            from openvlthinker.engine.calibrate import run_calibrate

            run_calibrate(trainer, args.out)
            return 0
        trainer.fit()
    except (ConfigError, TaskFileError, RecordError, CalibrationError) as e:  # one line naming it
        sys.stderr.write(f"openvlthinker: {e}\n")
        return 2
    except KeyboardInterrupt:
        step = trainer.step if trainer is not None else 0
        latest = latest_checkpoint(cfg.trainer.out_dir)
        if latest is None:
            where = "no checkpoint was written yet (trainer.save_freq)"
        elif cfg.trainer.resume_mode == "auto":
            where = f"the last checkpoint is {latest}; the same command resumes from it"
        else:
            where = (
                f"the last checkpoint is {latest}; add trainer.resume_mode=auto to resume from it"
            )
        sys.stderr.write(f"openvlthinker: interrupted at step {step}; {where}\n")
        return INTERRUPTED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
