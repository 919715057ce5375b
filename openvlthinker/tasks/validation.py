"""Multi-task validation metrics (engine-agnostic).

From the per-sample results of a validation pass this computes, for every task, every
validation set and every (task or set, problem type) pair, the mean of each reward
component, the response length mean and clip ratio, the reward error rate and the mean entropy
when given, plus the macro average over tasks. Names are stable (see docs/data.md):

    val/<task>/<metric>                 e.g. val/math/correctness, val/math/reward (overall)
    val/<task>/<problem_type>/<metric>  e.g. val/grounding/counting/correctness
    val/<set>/<metric>                  the same over one validation set, e.g. val/mathvista/reward,
    val/<set>/<problem_type>/<metric>   plus the set's benchmark metric, e.g. val/docvqa/anls
    val/macro/<metric>                  unweighted mean of val/<task>/<metric> over tasks
    val/score                           val/macro/<select_metric>: trainer.save_best keeps the best checkpoint by it
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import numpy as np

BEST_CHECKPOINT_METRIC = "val/score"
DEFAULT_SELECT_METRIC = "correctness"


class ValidationSample(TypedDict, total=False):
    """One validated response. ``scores`` is the dict returned by ``rewards.score``;
    ``set`` the validation set's name and ``metrics`` its benchmark metric values."""

    task: str
    set: str
    metrics: Mapping[str, float]
    problem_type: str
    scores: Mapping[str, Any]
    response_length: int
    max_response_length: int
    clipped: bool
    entropy: float


def _metrics(group: list[Mapping[str, Any]]) -> dict[str, float]:
    # deferred: the rewards package is heavy, and scoring has imported it by now
    from openvlthinker.rewards.config import RESULT_KEYS

    out: dict[str, float] = {}
    for name in RESULT_KEYS:
        vals = [s["scores"][name] for s in group if s.get("scores", {}).get(name) is not None]
        if vals:
            # the score's "overall" is logged as "reward", the name training uses
            out["reward" if name == "overall" else name] = float(np.mean(vals))
    errors = [s["scores"].get("error") is not None for s in group if "scores" in s]
    if errors:
        out["reward_error_rate"] = float(np.mean(errors))
    lengths = np.array([s["response_length"] for s in group if "response_length" in s], float)
    if lengths.size:
        out["response_length/mean"] = float(lengths.mean())
    clipped = [
        bool(s["clipped"]) if "clipped" in s else s["response_length"] >= s["max_response_length"]
        for s in group
        if "clipped" in s or ("response_length" in s and "max_response_length" in s)
    ]
    if clipped:
        out["response_length/clip_ratio"] = float(np.mean(clipped))
    entropy = [s["entropy"] for s in group if s.get("entropy") is not None]
    if entropy:
        out["entropy"] = float(np.mean(entropy))
    out["count"] = float(len(group))
    return out


def _set_metrics(group: list[Mapping[str, Any]]) -> dict[str, float]:
    """:func:`_metrics` plus the mean of each benchmark metric the samples carry."""
    out = _metrics(group)
    names = dict.fromkeys(k for s in group for k in (s.get("metrics") or {}))
    for name in names:
        vals = [s["metrics"][name] for s in group if name in (s.get("metrics") or {})]
        out[name] = float(np.mean(vals))
    return out


def compute_validation_metrics(
    samples: Iterable[Mapping[str, Any]],
    *,
    select_metric: str = DEFAULT_SELECT_METRIC,
    tasks: Iterable[str] | None = None,
) -> dict[str, float]:
    """Per-task, per-problem-type and macro metrics of a validation pass.

    Each sample is a :class:`ValidationSample`: ``task``, ``problem_type``, ``scores``
    (reward components), ``response_length`` (tokens) and either ``clipped`` or
    ``max_response_length``; ``entropy`` (mean token entropy) is optional. ``tasks``
    (e.g. the registry's keys) fixes the task order and lets a task with no samples
    raise instead of silently leaving the macro average. Samples that name their ``set``
    also give ``val/<set>/...`` (with the set's benchmark ``metrics``); a set name equal to
    a task name is an error (the task registry refuses one at load).
    """
    by_task: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    by_type: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    by_set: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    by_set_type: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    set_task: dict[str, str] = {}
    for i, s in enumerate(samples):
        if "task" not in s or "problem_type" not in s:
            raise ValueError(
                f"validation sample {i}: needs 'task' and 'problem_type', got keys {sorted(s)}"
            )
        by_task[s["task"]].append(s)
        by_type[(s["task"], s["problem_type"])].append(s)
        if s.get("set") is not None:
            name = s["set"]
            if set_task.setdefault(name, s["task"]) != s["task"]:
                raise ValueError(
                    f"validation sample {i}: set {name!r} holds tasks {set_task[name]!r} and "
                    f"{s['task']!r}; a set's metrics belong to one task"
                )
            by_set[name].append(s)
            by_set_type[(name, s["problem_type"])].append(s)
    clash = sorted(set(by_set) & (set(by_task) | {"macro", "score"}))
    if clash:
        raise ValueError(f"validation set name(s) {clash} collide with task or macro metric names")
    order = list(tasks) if tasks is not None else sorted(by_task)
    missing = [t for t in order if t not in by_task]
    if missing:
        raise ValueError(f"validation has no samples for task(s) {missing}")
    extra = sorted(set(by_task) - set(order))
    if extra:
        raise ValueError(f"validation samples of unknown task(s) {extra}; known: {order}")

    out: dict[str, float] = {}
    per_task: dict[str, dict[str, float]] = {}
    for task in order:
        per_task[task] = _metrics(by_task[task])
        out.update({f"val/{task}/{k}": v for k, v in per_task[task].items()})
    for (task, ptype), group in sorted(by_type.items()):
        out.update({f"val/{task}/{ptype}/{k}": v for k, v in _metrics(group).items()})
    for name in sorted(by_set, key=lambda n: (order.index(set_task[n]), n)):
        out.update({f"val/{name}/{k}": v for k, v in _set_metrics(by_set[name]).items()})
    for (name, ptype), group in sorted(by_set_type.items()):
        out.update({f"val/{name}/{ptype}/{k}": v for k, v in _metrics(group).items()})
    names = {k for m in per_task.values() for k in m if k != "count"}
    for name in sorted(names):
        vals = [m[name] for m in per_task.values() if name in m]
        if len(vals) == len(per_task):
            out[f"val/macro/{name}"] = float(np.mean(vals))
    select = f"val/macro/{select_metric}"
    if select not in out:
        raise ValueError(
            f"select_metric {select_metric!r} is not available for every task; "
            f"available: {sorted(k.removeprefix('val/macro/') for k in out if k.startswith('val/macro/'))}"
        )
    out[BEST_CHECKPOINT_METRIC] = out[select]
    return out
