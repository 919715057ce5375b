"""Command line: ``openvlthinker train --config configs/tiny_cpu.yaml key=value ...``."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="openvlthinker", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="Run G2RPO training with the single-process engine.")
    train.add_argument("--config", default=None, help="YAML config (e.g. configs/tiny_cpu.yaml).")
    train.add_argument("overrides", nargs="*", help="Dotted overrides, e.g. actor.lr=1e-5.")
    train.add_argument("--log-level", default="INFO", help="Python logging level.")
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
    cal.add_argument("--log-level", default="INFO", help="Python logging level.")
    return parser


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
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # No hub: a tiny model is built locally, a real one is read from model.path.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from openvlthinker.data import RecordError
    from openvlthinker.engine.trainer import Trainer
    from openvlthinker.shaping.calibration import CalibrationError
    from openvlthinker.tasks import TaskFileError

    try:
        trainer = Trainer(cfg)
        if args.command == "calibrate":
            from openvlthinker.engine.calibrate import run_calibrate

            run_calibrate(trainer, args.out)
            return 0
    except (TaskFileError, RecordError, CalibrationError) as e:  # the message names file and key
        sys.stderr.write(f"openvlthinker: {e}\n")
        return 2
    history = trainer.fit()
    if history:
        last = history[-1]
        shown = {
            k: v for k, v in last.items() if k in ("train/reward", "val/macro/reward", "val/score")
        }
        logging.getLogger("openvlthinker").info("finished step %s: %s", last["step"], shown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
