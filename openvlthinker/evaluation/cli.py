"""``openvlthinker eval``: the command's body (``openvlthinker.cli`` only parses)."""

from __future__ import annotations

import argparse
import logging
import sys

from openvlthinker.engine.config import TrainConfig
from openvlthinker.evaluation.runner import EvalInputError, plan_eval, run_eval

logger = logging.getLogger("openvlthinker")


def run_eval_command(cfg: TrainConfig, args: argparse.Namespace) -> int:
    """Plan (all checks, nothing written), run, print the table; bad input: one line, 2."""
    sets = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
    try:
        plan = plan_eval(cfg, list(args.checkpoint), args.out, sets)
    except EvalInputError as e:
        sys.stderr.write(f"openvlthinker eval: {e}\n")
        return 2
    result = run_eval(plan, progress=cfg.trainer.progress_bar)
    logger.info(
        "evaluated %d (checkpoint, set) pairs, skipped %d already in %s/results.json",
        len(result["evaluated"]),
        len(result["skipped"]),
        plan.out,
    )
    sys.stdout.write((plan.out / "results.md").read_text(encoding="utf-8"))
    return 0
