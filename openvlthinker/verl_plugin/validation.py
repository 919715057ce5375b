"""Our validation metric names on verl: ``val/<set>/...``, ``val/<task>/...``, ``val/macro/...``.

verl 0.9.1's V1 trainer groups validation metrics by ``data_source``
(``process_validation_metrics``: ``val-core/<data_source>/acc/mean@N``). The export makes a
validation row's ``data_source`` its *set* name, so verl's own numbers come per set; the
reward manager adds ``task``, ``set``, ``problem_type``, ``response_length`` and
``benchmark`` to each row's ``reward_extra_info``, and :func:`plugin_validation_metrics`
rebuilds the engine's samples from those lists and calls the same
:func:`~openvlthinker.tasks.compute_validation_metrics` the single-process engine does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openvlthinker.rewards.config import RESULT_KEYS
from openvlthinker.tasks import compute_validation_metrics


def plugin_validation_metrics(
    registry: Any,
    data_sources: Sequence[str],
    infos: Mapping[str, Sequence[Any]],
    max_response_length: int | None = None,
) -> dict[str, float]:
    """Engine-named validation metrics from verl's per-sample lists (``data_sources`` and
    ``reward_extra_infos_dict`` of ``_validate``). Empty when the rows carry no ``set``
    (another reward manager, or data exported before per-set metrics)."""
    sets = infos.get("set")
    if not sets or all(s is None for s in sets):
        return {}
    named = registry.validation_sets()
    samples = []
    for i, source in enumerate(data_sources):
        name = sets[i] if sets[i] is not None else str(source)
        if name not in named:
            continue
        task, vset = named[name]
        scores: dict[str, Any] = {
            k: float(infos[k][i]) for k in RESULT_KEYS if k in infos and infos[k][i] is not None
        }
        errors = infos.get("reward_error")
        scores["error"] = "reward error" if errors and errors[i] else None
        sample: dict[str, Any] = {
            "task": task,
            "set": name,
            "problem_type": (infos.get("problem_type") or [None] * len(sets))[i] or "unknown",
            "scores": scores,
        }
        lengths = infos.get("response_length")
        if lengths and lengths[i] is not None:
            sample["response_length"] = int(lengths[i])
            if max_response_length:
                sample["max_response_length"] = int(max_response_length)
        bench = infos.get("benchmark")
        if vset.metric is not None and bench and bench[i] is not None:
            sample["metrics"] = {vset.metric: float(bench[i])}
        samples.append(sample)
    if not samples:
        return {}
    tasks = [t for t in registry if any(s["task"] == t for s in samples)]
    return compute_validation_metrics(samples, tasks=tasks)
