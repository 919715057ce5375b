"""Nestable wall-clock limits for scorer calls (SIGALRM; main thread only).

math-verify's own timeout also uses ``signal.alarm`` and would clobber an outer limit, so
we switch it off and bound every call here instead. Off the main thread signals cannot
interrupt anything; :func:`openvlthinker.rewards.score` then runs the call in a worker
process, whose main thread can.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class ScoreTimeout(BaseException):
    """Time is up. A BaseException so that libraries' ``except Exception`` cannot swallow it."""


_REPEAT = 0.05
_deadlines: list[float] = []
_previous_handler: list[object] = []


def can_interrupt() -> bool:
    """True when a time limit can interrupt the running code (main thread with setitimer)."""
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _on_alarm(signum: int, frame: object) -> None:
    if _deadlines:
        raise ScoreTimeout()


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`ScoreTimeout` inside the block after ``seconds`` (or an outer limit).

    A no-op where :func:`can_interrupt` is False.
    """
    if not can_interrupt():
        yield
        return
    now = time.monotonic()
    deadline = now + seconds
    if _deadlines:
        deadline = min(deadline, _deadlines[-1])
    else:
        _previous_handler.append(signal.signal(signal.SIGALRM, _on_alarm))
    _deadlines.append(deadline)
    # The interval re-raises every 50 ms in case some library swallows the first raise.
    signal.setitimer(signal.ITIMER_REAL, max(deadline - now, 1e-4), _REPEAT)
    try:
        yield
    finally:
        _deadlines.pop()
        if _deadlines:
            remaining = max(_deadlines[-1] - time.monotonic(), 1e-4)
            signal.setitimer(signal.ITIMER_REAL, remaining, _REPEAT)
        else:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, _previous_handler.pop())
