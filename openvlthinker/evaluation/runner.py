"""``openvlthinker eval``: score checkpoints on the task file's validation sets.

:func:`plan_eval` checks everything (checkpoint folders, set names, empty sets, the task
file and its records) before anything is written, so bad input leaves ``DIR`` untouched.
:func:`run_eval` then generates (greedy by default; ``eval.n`` / ``eval.temperature`` give
avg@n and pass@n), scores each response with the reward suite and the set's benchmark
metric, and writes into ``DIR``:

- ``results.json``: one entry per (checkpoint, set, settings): every metric, the
  generation settings, the checkpoint's path and weights hash;
- ``samples/<checkpoint>/<set>.jsonl``: per response the id, prompt, response, extracted
  answer, ground truth, reward fields and length in tokens;
- ``results.csv`` / ``results.md`` / ``results.png``: the table of :mod:`.report`.

Re-running with the same ``DIR`` skips every (checkpoint weights, set, settings) already in
``results.json``; each finished set is written at once (files renamed into place), so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.validation import EvalSet, run_set
from openvlthinker.evaluation import report
from openvlthinker.evaluation.checkpoints import (
    Checkpoint,
    CheckpointError,
    materialize,
    resolve_checkpoint,
)
from openvlthinker.tasks import TaskRegistry, compute_validation_metrics

logger = logging.getLogger(__name__)

RESULTS = "results.json"
SCORE_FALLBACK = "correctness"


class EvalInputError(ValueError):
    """Bad ``eval`` input (checkpoint, set, data); one line naming it."""


@dataclass
class EvalPlan:
    """Everything checked and loaded before ``DIR`` is touched."""

    cfg: TrainConfig
    registry: TaskRegistry
    reward_config: Any
    sets: list[EvalSet]
    checkpoints: list[Checkpoint]
    out: Path
    settings: dict[str, Any]


def generation_settings(cfg: TrainConfig, reward_config: Any) -> dict[str, Any]:
    """What makes two evaluations of the same weights comparable."""
    r, e = cfg.rollout, cfg.eval
    return {
        "n": e.n,
        "temperature": e.temperature,
        "top_p": r.top_p,
        "top_k": r.top_k,
        "max_new_tokens": r.max_new_tokens,
        "max_records": e.max_records,
        "template": cfg.data.template,
        "max_prompt_length": cfg.data.max_prompt_length,
        "min_pixels": cfg.model.min_pixels,
        "max_pixels": cfg.model.max_pixels,
        "dtype": cfg.model.dtype,
        "seed": cfg.trainer.seed,
        **reward_config.prompt_options,
    }


def _key(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def plan_eval(
    cfg: TrainConfig,
    checkpoints: list[str],
    out: str | os.PathLike,
    sets: list[str] | None = None,
) -> EvalPlan:
    """Check the input and load the sets; raises :class:`EvalInputError` (one line)."""
    from openvlthinker.data import RecordError, load_task_data
    from openvlthinker.rewards import validate_problem_types
    from openvlthinker.rewards.user import load_user_scorers
    from openvlthinker.tasks import TaskFileError, load_tasks

    if not checkpoints:
        raise EvalInputError("--checkpoint: give at least one checkpoint folder")
    cache = Path(os.path.expanduser(cfg.model.cache_dir)) / "merged"
    try:
        resolved = [resolve_checkpoint(p, cache, merge=False) for p in checkpoints]
    except CheckpointError as e:
        raise EvalInputError(str(e)) from e
    names = [c.name for c in resolved]
    for i, c in enumerate(resolved):
        if names.count(c.name) > 1:  # two runs' global_step_N: tell them apart by path
            digest = hashlib.sha256(str(c.path.resolve()).encode()).hexdigest()[:6]
            resolved[i] = Checkpoint(f"{c.name}-{digest}", c.path, c.model_path, c.kind, "")
    reward_config = cfg.reward
    load_user_scorers(reward_config)
    try:
        registry = load_tasks(cfg.data.tasks)
        validate_problem_types(registry.problem_types(), where=f"{cfg.data.tasks}: problem_types")
        named = registry.validation_sets()
        wanted = list(named) if not sets else list(sets)
        unknown = [s for s in wanted if s not in named]
        if unknown:
            raise EvalInputError(
                f"--sets: unknown validation set(s) {unknown} in {cfg.data.tasks}; "
                f"known: {', '.join(named) or 'none'}"
            )
        wanted.sort(key=list(named).index)  # the table groups sets by task, in file order
        if not wanted:
            raise EvalInputError(f"{cfg.data.tasks}: the task file has no validation sets")
        data = load_task_data(registry, "validation")
    except (TaskFileError, RecordError) as e:
        raise EvalInputError(str(e)) from e
    cap = cfg.eval.max_records
    eval_sets = []
    for name in wanted:
        records = list(data[name])[:cap] if cap else list(data[name])
        if not records:
            raise EvalInputError(
                f"validation set {name!r} ({named[name][1].path}) holds no records to evaluate"
            )
        eval_sets.append(EvalSet(name, named[name][0], named[name][1].metric, records))
    return EvalPlan(
        cfg=cfg,
        registry=registry,
        reward_config=reward_config,
        sets=eval_sets,
        checkpoints=resolved,
        out=Path(out),
        settings=generation_settings(cfg, reward_config),
    )


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def read_results(out: Path) -> list[dict[str, Any]]:
    path = out / RESULTS
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as fh:
        return list(json.load(fh).get("runs", []))


def set_metrics(samples: list[dict[str, Any]], spec: EvalSet, n: int) -> dict[str, float]:
    """``val/<set>/...`` of :func:`compute_validation_metrics` without the prefix, plus
    ``pass@n/<score metric>`` (the best of a record's n responses) when n > 1."""
    all_metrics = compute_validation_metrics(samples, tasks=[spec.task])
    prefix = f"val/{spec.name}/"
    out = {k[len(prefix) :]: v for k, v in all_metrics.items() if k.startswith(prefix)}
    if n > 1:
        metric = spec.metric or SCORE_FALLBACK
        best: dict[str, float] = defaultdict(float)
        for s in samples:
            value = s["metrics"][metric] if spec.metric else s["scores"][SCORE_FALLBACK]
            best[s["record"].id] = max(best[s["record"].id], float(value))
        out[f"pass@{n}/{metric}"] = sum(best.values()) / len(best)
    return out


def _sample_line(s: dict[str, Any], prompt: str) -> str:
    rec = s["record"]
    line = {
        "id": rec.id,
        "draw": s["draw"],
        "prompt": prompt,
        "response": s["response"],
        "extracted_answer": s["extracted"],
        "ground_truth": rec.answer,
        "rewards": {k: v for k, v in s["scores"].items()},
        "response_length": s["response_length"],
    }
    if "metrics" in s:
        line["metrics"] = s["metrics"]
        line["metric_extracted"] = s["metric_extracted"]
        line["metric_error"] = s["metric_error"]
    return json.dumps(_jsonable(line), ensure_ascii=False)


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="record", dynamic_ncols=True)


def run_eval(plan: EvalPlan, *, progress: bool = True) -> dict[str, Any]:
    """Evaluate every (checkpoint, set) not already in ``DIR/results.json``; write the
    tables. Returns ``{"evaluated": [...], "skipped": [...], "rows": [...]}``."""
    from openvlthinker.evaluation.policy import EvalPolicy
    from openvlthinker.rewards import close_pools

    cfg, out = plan.cfg, plan.out
    if cfg.trainer.num_threads:
        torch.set_num_threads(cfg.trainer.num_threads)
    out.mkdir(parents=True, exist_ok=True)
    runs = read_results(out)
    settings_key = _key(plan.settings)
    cache = Path(os.path.expanduser(cfg.model.cache_dir)) / "merged"
    evaluated, skipped = [], []
    table_keys: dict[str, tuple[str, str]] = {}
    try:
        for ckpt in plan.checkpoints:
            ckpt = materialize(ckpt, cache)
            if ckpt.kind == "verl":
                logger.info("%s: verl checkpoint merged into %s", ckpt.name, ckpt.model_path)
            table_keys[ckpt.name] = (ckpt.weights_sha256, settings_key)
            todo = []
            for spec in plan.sets:
                data_key = _key([r.id for r in spec.records])
                done = any(
                    e["checkpoint"]["weights_sha256"] == ckpt.weights_sha256
                    and e["set"] == spec.name
                    and e["settings_key"] == settings_key
                    and e["data_key"] == data_key
                    for e in runs
                )
                if done:
                    skipped.append((ckpt.name, spec.name))
                    logger.info(
                        "skip %s on %s: already in %s (same weights, records and settings)",
                        ckpt.name,
                        spec.name,
                        out / RESULTS,
                    )
                else:
                    todo.append((spec, data_key))
            if not todo:
                continue
            policy = EvalPolicy(cfg, ckpt.model_path, plan.registry, plan.reward_config)
            calls = policy.calls(cfg.eval.temperature)
            for spec, data_key in todo:
                bar = _progress(len(spec.records), f"{ckpt.name} {spec.name}", progress)
                torch.manual_seed(cfg.trainer.seed)  # the same draws on every re-run
                t0 = time.perf_counter()
                samples = run_set(
                    spec,
                    calls,
                    n=cfg.eval.n,
                    batch_size=cfg.eval.batch_size,
                    max_new_tokens=cfg.rollout.max_new_tokens,
                    answer_tag=plan.reward_config.answer_tag,
                    think_tag=plan.reward_config.think_tag,
                    coordinate_frame=plan.reward_config.coordinate_frame,
                    on_batch=bar.update if bar is not None else None,
                )
                seconds = time.perf_counter() - t0
                if bar is not None:
                    bar.close()
                rel = Path("samples") / ckpt.name / f"{spec.name}.jsonl"
                prompts = {r.id: policy.prompt_text(r) for r in spec.records}
                _write_atomic(
                    out / rel,
                    "".join(_sample_line(s, prompts[s["record"].id]) + "\n" for s in samples),
                )
                metrics = set_metrics(samples, spec, cfg.eval.n)
                entry = {
                    "checkpoint": {
                        "name": ckpt.name,
                        "path": str(ckpt.path.resolve()),
                        "model_path": str(ckpt.model_path.resolve()),
                        "kind": ckpt.kind,
                        "weights_sha256": ckpt.weights_sha256,
                    },
                    "set": spec.name,
                    "task": spec.task,
                    "metric": spec.metric,
                    "score_metric": spec.metric or SCORE_FALLBACK,
                    "settings": plan.settings,
                    "settings_key": settings_key,
                    "data_key": data_key,
                    "records": len(spec.records),
                    "metrics": metrics,
                    "samples": str(rel),
                    "seconds": seconds,
                    "examples_per_s": len(samples) / max(seconds, 1e-9),
                }
                runs = [
                    e
                    for e in runs
                    if not (
                        e["checkpoint"]["weights_sha256"] == ckpt.weights_sha256
                        and e["set"] == spec.name
                        and e["settings_key"] == settings_key
                    )
                ] + [entry]
                _write_atomic(out / RESULTS, json.dumps({"version": 1, "runs": runs}, indent=1))
                evaluated.append((ckpt.name, spec.name))
                logger.info(
                    "%s on %s: %s = %.4f (%d responses, %.2f/s)",
                    ckpt.name,
                    spec.name,
                    entry["score_metric"],
                    report.score_of(entry),
                    len(samples),
                    entry["examples_per_s"],
                )
            del policy
    finally:
        close_pools()
    rows = write_tables(out, runs, list(table_keys.items()), plan.sets)
    return {"evaluated": evaluated, "skipped": skipped, "rows": rows}


def write_tables(
    out: Path,
    runs: list[dict[str, Any]],
    checkpoints: list[tuple[str, tuple[str, str]]],
    sets: list[EvalSet],
) -> list[report.Row]:
    """results.csv / .md / .png for ``checkpoints`` (name, (weights hash, settings key))."""
    scores = {}
    for name, (sha, skey) in checkpoints:
        for e in runs:
            if e["checkpoint"]["weights_sha256"] == sha and e["settings_key"] == skey:
                scores[(name, e["set"])] = report.score_of(e)
    names = [n for n, _ in checkpoints]
    layout = [(s.task, s.name, s.metric or SCORE_FALLBACK) for s in sets]
    rows = report.build_rows(scores, names, layout)
    _write_atomic(out / "results.csv", report.to_csv(rows, names))
    _write_atomic(out / "results.md", report.to_markdown(rows, names))
    tmp = out / ".results.png.tmp.png"
    report.plot_bars(rows, names, tmp)
    os.replace(tmp, out / "results.png")
    return rows
