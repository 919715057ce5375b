"""score_batch and its worker pool: results in input order, whatever a scorer does.

Each worker scores one item at a time in its main thread (so the SIGALRM limit of
``call_timeout`` works there) and sends finished results back every ``FLUSH_S``. The parent
knows which item every worker is on and since when; a worker stuck past
``call_timeout + kill_grace`` (a C extension that ignores signals) or one that dies is
replaced, its item gets an error result and the rest of its chunk is scored by others.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing as mp
import pickle
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from openvlthinker.rewards.config import RewardConfig
from openvlthinker.rewards.item import default_config, error_result, score_item
from openvlthinker.rewards.registry import register_scorer, registry_version, user_scorers
from openvlthinker.rewards.symbolic import math_equal
from openvlthinker.rewards.timeouts import can_interrupt
from openvlthinker.rewards.user import USER_MODULE_PREFIX, load_user_module, loaded_user_files

logger = logging.getLogger(__name__)
# A worker reports finished results at least this often (fewer messages than one per item;
# the parent's "stuck since" clock is then late by at most this much).
FLUSH_S = 0.01
# A new worker has this long to import and warm up before it counts as stuck.
STARTUP_S = 120.0
# After this many workers in a row die before they are ready, the pool gives up on the batch.
MAX_STARTUP_FAILURES = 3
READY = "ready"
#: First element of a worker's log message: ("log", level, logger name, text).
LOG = "log"
# (logger name, text) of worker log lines already shown: every worker meets the same cause
# (e.g. boxes without image_size), and a replaced worker meets it again.
_relayed: set[tuple[str, str]] = set()


class _ParentHandler(logging.Handler):
    """In a worker: send the package's log records to the parent, which shows each once."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.conn.send((LOG, record.levelno, record.name, record.getMessage()))
        except (OSError, ValueError):  # parent gone: nothing to tell
            pass


def _relay(message: tuple) -> None:
    _, level, name, text = message
    if (name, text) not in _relayed:
        _relayed.add((name, text))
        logging.getLogger(name).log(level, "%s", text)


def score_batch(
    items: list[dict], workers: int | None = None, config: RewardConfig | None = None
) -> list[dict]:
    """Score every item (a dict of :func:`score`'s keyword names); results in input order.

    ``workers`` (default ``config.workers``): 0 scores in this process, N >= 1 in a pool of N
    processes that survives scorers that raise, hang or crash. Off the main thread,
    in-process scoring cannot be interrupted, so at least one worker is used. User scorers
    must be loaded (at config load); each worker learns them once when it starts.
    """
    cfg = config if config is not None else default_config()
    n_workers = cfg.workers if workers is None else int(workers)
    if n_workers < 0:
        raise ValueError(f"score_batch: workers must be >= 0, got {workers!r}")
    items = list(items)
    if not items:
        return []
    if n_workers == 0 and can_interrupt():
        return [score_item(item, cfg) for item in items]
    return shared_pool(max(1, n_workers), cfg).map(items, cfg)


def _worker_main(conn: Connection, files: list[str], extra: dict[str, Any]) -> None:
    """A worker process: learn the parent's user scorers once (its files and the scorers
    registered there), then score the chunks it is sent until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C
    package = logging.getLogger("openvlthinker")
    package.addHandler(_ParentHandler(conn))
    package.propagate = False  # the parent's handlers show it, once
    for path in files:
        load_user_module(path)
    for problem_type, scorer in extra.items():
        if isinstance(scorer, tuple):  # (file, function name): a function from a user file
            scorer = getattr(load_user_module(scorer[0]), scorer[1])
        register_scorer(problem_type, replace=True)(scorer)
    # The first symbolic parse builds math-verify's LaTeX grammar (~0.4 s): do it before work.
    math_equal("1", "1")
    conn.send(READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        config, items = message
        done: list[dict[str, Any]] = []
        flushed = time.monotonic()
        for item in items:
            done.append(score_item(item, config))
            # Send every FLUSH_S at least, so the parent always knows how far we got.
            if time.monotonic() - flushed > FLUSH_S:
                conn.send(done)
                done, flushed = [], time.monotonic()
        if done:
            conn.send(done)


def _portable_scorers(start_method: str) -> dict[str, Any]:
    """User scorers in a form a fresh worker can rebuild.

    Functions from user files travel as (file, name) and are loaded again; others by pickle
    reference. With fork the worker inherits everything; otherwise a scorer that cannot be
    pickled (a lambda, a local function) is left out with a warning and its items score as
    an unknown problem type in the pool.
    """
    portable: dict[str, Any] = {}
    for name, fn in user_scorers().items():
        if getattr(fn, "__module__", "").startswith(USER_MODULE_PREFIX):
            portable[name] = (sys.modules[fn.__module__].__file__, fn.__name__)
            continue
        if start_method != "fork":
            try:
                pickle.dumps(fn)
            except Exception:
                logger.warning(
                    "scorer of problem type %r cannot be sent to %s workers (define it at module "
                    "level, load it from a file, or use start_method='fork')",
                    name,
                    start_method,
                )
                continue
        portable[name] = fn
    return portable


@dataclass
class _Worker:
    process: Any
    conn: Connection
    chunk: list[int] = field(default_factory=list)
    done: int = 0
    since: float = 0.0
    ready: bool = False


class ScorerPool:
    """A fixed number of scoring processes, replaced when one hangs or dies."""

    def __init__(self, workers: int, start_method: str = "forkserver") -> None:
        self._ctx = mp.get_context(start_method)
        if start_method == "forkserver":
            self._ctx.set_forkserver_preload(["openvlthinker.rewards"])
        self._files = loaded_user_files()
        self._extra = _portable_scorers(start_method)
        self.version = registry_version[0]
        self.size = workers
        self._workers = [self._spawn() for _ in range(workers)]
        self._lock = threading.Lock()

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main, args=(child, self._files, self._extra), daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _replace(self, i: int) -> None:
        old = self._workers[i]
        if old.process.is_alive():
            old.process.kill()
        old.process.join(timeout=5)
        old.conn.close()
        self._workers[i] = self._spawn()

    def map(self, items: list[Any], config: RewardConfig) -> list[dict[str, Any]]:
        """Results of :func:`score_item` for every item, in input order."""
        with self._lock:
            return self._map(items, config)

    def _map(self, items: list[Any], config: RewardConfig) -> list[dict[str, Any]]:
        results: list[dict[str, Any] | None] = [None] * len(items)
        size = max(1, min(64, len(items) // (4 * self.size) or 1))
        queue = deque(list(range(s, min(s + size, len(items)))) for s in range(0, len(items), size))
        hard_limit = config.call_timeout + config.kill_grace
        self._startup_failures = 0
        while None in results:
            for i, worker in enumerate(self._workers):
                if not worker.chunk and queue:
                    self._dispatch(i, queue, items, config, results)
            busy = {w.conn: i for i, w in enumerate(self._workers) if w.chunk}
            if not busy:
                continue
            limits = [self._limit(self._workers[i], hard_limit) for i in busy.values()]
            for conn in wait(list(busy), timeout=max(0.0, min(limits) - time.monotonic())):
                i = busy[conn]
                worker = self._workers[i]
                try:
                    batch = conn.recv()
                except (EOFError, OSError):
                    self._fail(i, queue, results, "worker process died")
                    continue
                worker.since = time.monotonic()
                if isinstance(batch, tuple) and batch[:1] == (LOG,):
                    _relay(batch)
                    continue
                if batch == READY:
                    worker.ready = True
                    self._startup_failures = 0
                    continue
                for result in batch:
                    results[worker.chunk[worker.done]] = result
                    worker.done += 1
                if worker.done == len(worker.chunk):
                    worker.chunk = []
            now = time.monotonic()
            for i, worker in enumerate(self._workers):
                if worker.chunk and now > self._limit(worker, hard_limit):
                    self._fail(i, queue, results, f"killed after {hard_limit:g}s without finishing")
            if self._startup_failures >= MAX_STARTUP_FAILURES:
                reason = (
                    f"reward workers died during start-up {MAX_STARTUP_FAILURES} times in a row"
                )
                logger.error("%s; giving up on %d items", reason, sum(r is None for r in results))
                self._clear_chunks()
                return [r if r is not None else error_result(reason) for r in results]
        return [r if r is not None else error_result("lost result") for r in results]

    @staticmethod
    def _limit(worker: _Worker, hard_limit: float) -> float:
        return worker.since + (hard_limit if worker.ready else STARTUP_S)

    def _dispatch(
        self, i: int, queue: deque, items: list[Any], config: RewardConfig, results: list
    ) -> None:
        """Send the next chunk to idle worker i; unpicklable items get an error at once."""
        chunk = queue.popleft()
        try:
            payload = pickle.dumps((config, [items[j] for j in chunk]))
        except Exception:
            sendable = []
            for j in chunk:
                try:
                    pickle.dumps(items[j])
                    sendable.append(j)
                except Exception as e:
                    results[j] = error_result(
                        f"item cannot be sent to a worker: {type(e).__name__}"
                    )
            if sendable:
                queue.appendleft(sendable)
            return
        worker = self._workers[i]
        try:
            worker.conn.send_bytes(payload)
        except OSError:  # the worker died while idle: replace it, keep the chunk
            queue.appendleft(chunk)
            self._note_death(worker)
            self._replace(i)
            return
        worker.chunk, worker.done, worker.since = chunk, 0, time.monotonic()

    def _fail(self, i: int, queue: deque, results: list, reason: str) -> None:
        """Give worker i's current item an error, requeue the rest of its chunk, replace it.

        A worker that dies before it is ready has not touched its items: they are all requeued.
        """
        worker = self._workers[i]
        rest = worker.chunk[worker.done :]
        if worker.ready:
            current, rest = rest[0], rest[1:]
            logger.warning("reward worker %d: %s (item %d); replacing it", i, reason, current)
            results[current] = error_result(reason)
        else:
            logger.warning("reward worker %d: %s before it was ready; replacing it", i, reason)
        if rest:
            queue.appendleft(rest)
        self._note_death(worker)
        worker.chunk = []
        self._replace(i)

    def _note_death(self, worker: _Worker) -> None:
        self._startup_failures = 0 if worker.ready else self._startup_failures + 1

    def _clear_chunks(self) -> None:
        for i, worker in enumerate(self._workers):
            if worker.chunk:  # busy with items we no longer wait for: start afresh
                worker.chunk = []
                self._replace(i)

    def pids(self) -> list[int]:
        """Process ids of the current workers."""
        return [w.process.pid for w in self._workers]

    def close(self) -> None:
        """Stop every worker."""
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except Exception:
                logger.debug("worker already gone", exc_info=True)
        for worker in self._workers:
            worker.process.join(timeout=2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout=2)
            worker.conn.close()
        self._workers = []


_pools: dict[tuple[int, str], ScorerPool] = {}
_pools_lock = threading.Lock()


def shared_pool(workers: int, config: RewardConfig) -> ScorerPool:
    """The process-wide pool of ``workers`` processes, rebuilt when scorers were registered."""
    key = (workers, config.start_method)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is not None and pool.version != registry_version[0]:
            pool.close()
            pool = None
        if pool is None:
            pool = _pools[key] = ScorerPool(workers, config.start_method)
        return pool


@atexit.register
def close_pools() -> None:
    """Stop every shared pool (also run at interpreter exit)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
