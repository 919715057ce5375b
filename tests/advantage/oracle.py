"""Slow, obviously-correct loop implementations of every estimator: the test oracle.

Plain Python lists and scipy's normal quantile; one loop per group, one per sample.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

from scipy.stats import norm


def quantile_map(values: Sequence[float]) -> list[float]:
    """Rank -> N(0,1) quantile with tie-averaging, for one segment."""
    n = len(values)
    order = sorted(range(n), key=lambda i: values[i])
    out = [0.0] * n
    start = 0
    while start < n:
        end = start
        while end + 1 < n and values[order[end + 1]] == values[order[start]]:
            end += 1
        slots = [norm.ppf((k + 0.5) / n) for k in range(start, end + 1)]
        shared = 0.0 if end - start + 1 == n else sum(slots) / len(slots)
        for k in range(start, end + 1):
            out[order[k]] = shared
        start = end + 1
    return out


def per_segment(fn, values: Sequence[float], keys: Sequence[Hashable]) -> list[float]:
    """Apply ``fn`` (list -> list) to each segment's values, written back in place."""
    out = [0.0] * len(values)
    for key in dict.fromkeys(keys):
        rows = [i for i, k in enumerate(keys) if k == key]
        for i, v in zip(rows, fn([values[i] for i in rows])):
            out[i] = v
    return out


def _all_equal_rows(values: Sequence[float], group: Sequence[Hashable]) -> list[bool]:
    return [
        len({values[j] for j, g in enumerate(group) if g == group[i]}) == 1
        for i in range(len(values))
    ]


def gs_grpo(rewards, group, task=None, stages=("group", "task"), pin_equal_groups=False):
    task = task if task is not None else [0] * len(rewards)
    x = list(rewards)
    if "group" in stages:
        x = per_segment(quantile_map, x, group)
    if "task" in stages:
        x = per_segment(quantile_map, [round(v, 9) for v in x], task)
    if pin_equal_groups:
        x = [0.0 if eq else v for v, eq in zip(x, _all_equal_rows(rewards, group))]
    return x


def gs_gdpo(
    components, group, task=None, stages=("group", "task"), pin_equal_groups=False, weights=None
):
    """weights: component -> per-row list (or None for 1.0)."""
    n = len(group)
    task = task if task is not None else [0] * n
    total = [0.0] * n
    for key, values in components.items():
        mapped = (
            per_segment(quantile_map, list(values), group) if "group" in stages else list(values)
        )
        w = (weights or {}).get(key, [1.0] * n)
        total = [a + wi * b for a, wi, b in zip(total, w, mapped)]
    if "task" in stages:
        total = per_segment(quantile_map, [round(v, 9) for v in total], task)
    if pin_equal_groups:
        flags = [
            all(f) for f in zip(*(_all_equal_rows(list(v), group) for v in components.values()))
        ]
        total = [0.0 if eq else v for v, eq in zip(total, flags)]
    return total


def _zscore(values, unbiased=False, eps=1e-6, scale=True, singleton="zero"):
    n = len(values)
    if n == 1 and singleton == "keep":
        return [values[0] / (1 + eps) if scale else values[0]]
    mean = sum(values) / n
    denom = n - 1 if unbiased else n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / denom) if denom > 0 else 0.0
    return [(v - mean) / (std + eps) if scale else v - mean for v in values]


def grpo(rewards, group, std="unbiased", eps=1e-6, singleton="keep", scale=True):
    return per_segment(
        lambda v: _zscore(v, std == "unbiased", eps, scale, singleton), list(rewards), group
    )


def _whiten(values, eps=1e-6, kind="response", lengths=None):
    if kind == "response":
        if len(values) < 2:
            return [0.0] * len(values)
        return _zscore(values, unbiased=True, eps=eps)
    tokens = sum(lengths)
    if tokens < 2:
        return [0.0] * len(values)
    mean = sum(w * v for w, v in zip(lengths, values)) / (tokens + 1e-8)
    var = sum(w * (v - mean) ** 2 for w, v in zip(lengths, values)) / (tokens + 1e-8)
    var *= tokens / (tokens - 1)
    return [(v - mean) / math.sqrt(var + 1e-8) for v in values]


def gdpo(
    components,
    group,
    std="unbiased",
    eps=1e-6,
    singleton="keep",
    whiten="token",
    lengths=None,
    weights=None,
):
    """weights: component -> per-row list (or None for 1.0)."""
    n = len(group)
    total = [0.0] * n
    for key, values in components.items():
        z = grpo(values, group, std, eps, singleton)
        w = (weights or {}).get(key, [1.0] * n)
        total = [a + wi * b for a, wi, b in zip(total, w, z)]
    return _whiten(total, eps, whiten, lengths)


def rloo(rewards, group, singleton="keep"):
    def leave_one_out(values):
        n = len(values)
        if n == 1:
            return [values[0] if singleton == "keep" else 0.0]
        return [v - (sum(values) - v) / (n - 1) for v in values]

    return per_segment(leave_one_out, list(rewards), group)


def reinforce_plus_plus(
    rewards, group, baseline="none", eps=1e-6, whiten="token", lengths=None, singleton="keep"
):
    x = list(rewards)
    if baseline == "group":

        def centre(v):
            if len(v) == 1 and singleton == "keep":
                return list(v)
            return [a - sum(v) / len(v) for a in v]

        x = per_segment(centre, x, group)
    return _whiten(x, eps, whiten, lengths)


def remax(rewards, baselines):
    return [r - b for r, b in zip(rewards, baselines)]
