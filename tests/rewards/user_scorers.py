"""Scorers that misbehave on purpose, loaded by file path (as a user's reward file would be)."""

import os
import signal
import time

from openvlthinker.rewards import Verdict, register_scorer


def hang(answer, ground_truth, ctx):
    """Python-level hang: the call_timeout signal interrupts it."""
    if answer == "hang":
        while True:
            time.sleep(0.01)
    return 1.0


def hang_in_c(answer, ground_truth, ctx):
    """A hang that signals cannot reach (like a C extension): only killing the worker helps."""
    if answer == "hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
    return 1.0


def crash(answer, ground_truth, ctx):
    """The worker process dies."""
    if answer == "crash":
        os._exit(3)
    return 1.0


def explode(answer, ground_truth, ctx):
    raise RuntimeError("scorer bug")


def exits(answer, ground_truth, ctx):
    raise SystemExit(2)


def nan(answer, ground_truth, ctx):
    return float("nan")


def half(answer, ground_truth, ctx):
    return {"correctness": 0.5, "structure": 0.0}


@register_scorer("decorated_in_file")
def decorated(answer, ground_truth, ctx):
    return Verdict(1.0 if answer == ground_truth else 0.0)
