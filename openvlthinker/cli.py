"""Command line: ``openvlthinker train --config configs/tiny_cpu.yaml key=value ...`` and
``openvlthinker eval --config ... --checkpoint PATH --out DIR``."""

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
    ev = sub.add_parser("eval", help="Score checkpoints on the task file's validation sets.")
    ev.add_argument("--config", default=None, help="YAML config: task file, prompts, generation.")
    ev.add_argument(
        "--checkpoint", action="append", required=True, help="global_step_N or HF model folder."
    )
    ev.add_argument("--out", required=True, help="Folder for results.json/csv/md/png, samples/.")
    ev.add_argument("--sets", default=None, help="Comma-separated validation set names.")
    ev.add_argument("overrides", nargs="*", help="Dotted overrides, e.g. eval.n=4.")
    ev.add_argument("--log-level", default="INFO", help="Python logging level.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from openvlthinker.engine.config import ConfigError, help_table, load_config, to_dict

    if args.command == "config-help":
        for key, default, text in help_table():
            sys.stdout.write(f"{key:48s} {default:28s} {text}\n")
        return 0
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        sys.stderr.write(f"openvlthinker: {e}\n")
        return 2
    if args.command == "config":
        from omegaconf import OmegaConf

        sys.stdout.write(OmegaConf.to_yaml(to_dict(cfg)))
        return 0
    # force: rouge-score's absl import already called basicConfig at WARNING level
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    # No hub: a tiny model is built locally, a real one is read from model.path.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.command == "eval":
        from openvlthinker.evaluation.cli import run_eval_command

        return run_eval_command(cfg, args)
    from openvlthinker.data import RecordError
    from openvlthinker.engine.trainer import Trainer
    from openvlthinker.tasks import TaskFileError

    try:
        trainer = Trainer(cfg)
    except (TaskFileError, RecordError) as e:  # bad input: the message names file and key
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
