"""Validation: the loop shared by training (:func:`validate`) and ``openvlthinker eval``.

Each named set is encoded, generated and scored in batches; every response becomes one
sample dict that :func:`openvlthinker.tasks.compute_validation_metrics` reads (task, set,
problem type, reward scores, length, benchmark metric) and that ``eval`` writes to its
samples file (record, response, extracted answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from openvlthinker.benchmarks import compute_metric, metric_input
from openvlthinker.data import Record
from openvlthinker.engine.data import EncodedPrompts
from openvlthinker.engine.policy import PolicyIO
from openvlthinker.engine.rollout import PromptBatch, Rollout
from openvlthinker.rewards import RewardConfig
from openvlthinker.tasks import TaskRegistry, compute_validation_metrics


@dataclass(frozen=True)
class EvalSet:
    """One validation set to run: its name, task, benchmark metric (or None) and records."""

    name: str
    task: str
    metric: str | None
    records: Sequence[Record]


@dataclass(frozen=True)
class PolicyCalls:
    """What the loop needs from an engine: encode records, generate from a prompt batch,
    score a rollout (the reward suite) and decode its responses."""

    encode: Callable[[list[Record]], EncodedPrompts]
    generate: Callable[[PromptBatch], Rollout]
    score: Callable[[Rollout, list[Record], list[Any]], list[dict]]
    decode: Callable[[Rollout], list[str]]


def policy_calls(
    io: PolicyIO,
    model: torch.nn.Module,
    temperature: float,
    score: Callable[[Rollout, list[Record], list[Any]], list[dict]],
) -> PolicyCalls:
    """encode / generate (greedy at temperature 0) / score / decode of ``model``."""
    greedy = temperature == 0
    return PolicyCalls(
        encode=io.encode,
        generate=lambda batch: io.generate(
            model, batch, temperature=temperature or 1.0, greedy=greedy
        ),
        score=score,
        decode=io.decode,
    )


def eval_sets(registry: TaskRegistry, records: Mapping[str, Sequence[Record]]) -> list[EvalSet]:
    """The loaded validation sets (name -> records) with their task and benchmark metric."""
    named = registry.validation_sets()
    return [
        EvalSet(name, named[name][0], named[name][1].metric, recs) for name, recs in records.items()
    ]


@torch.no_grad()
def validate(
    sets: Sequence[EvalSet],
    calls: PolicyCalls,
    tasks: Sequence[str],
    reward_config: RewardConfig,
    *,
    seed: int,
    device: torch.device,
    n: int,
    batch_size: int,
    max_new_tokens: int,
) -> dict[str, float]:
    """Every set: per-set, per-task (of ``tasks``, registry order) and macro metrics, and
    timing/validation. Draws from its own stream seeded ``seed``: the caller's RNG state is
    left as it was, so validation never shifts the training samples."""
    samples: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for spec in sets:
            samples += run_set(
                spec,
                calls,
                n=n,
                batch_size=batch_size,
                max_new_tokens=max_new_tokens,
                answer_tag=reward_config.answer_tag,
                think_tag=reward_config.think_tag,
                coordinate_frame=reward_config.coordinate_frame,
            )
    present = [t for t in tasks if any(s["task"] == t for s in samples)]
    metrics = compute_validation_metrics(samples, tasks=present)
    metrics["timing/validation"] = time.perf_counter() - t0
    return metrics


def run_set(
    spec: EvalSet,
    calls: PolicyCalls,
    *,
    n: int,
    batch_size: int,
    max_new_tokens: int,
    answer_tag: str = "answer",
    think_tag: str = "think",
    coordinate_frame: str = "qwen_1000",
    on_batch: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """Samples of one set: ``n`` responses per record, ``batch_size`` records per generate
    call; ``on_batch(k)`` is told after each batch of k records (a progress bar)."""
    samples: list[dict[str, Any]] = []
    records = list(spec.records)
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        encoded = calls.encode(chunk)
        rollout = calls.generate(encoded.batch.repeat(n))
        recs = [r for r in chunk for _ in range(n)]
        sizes = [s for s in encoded.model_image_sizes for _ in range(n)]
        scores = calls.score(rollout, recs, sizes)
        texts = calls.decode(rollout)
        lengths = rollout.response_lengths().cpu().tolist()
        for i, (rec, sc, text, n_tok, size) in enumerate(zip(recs, scores, texts, lengths, sizes)):
            sample: dict[str, Any] = {
                "task": rec.task,
                "set": spec.name,
                "problem_type": rec.problem_type,
                "scores": sc,
                "response_length": int(n_tok),
                "max_response_length": max_new_tokens,
                "record": rec,
                "response": text,
                "draw": i % n,
            }
            inp = metric_input(
                rec,
                text,
                model_image_size=size,
                answer_tag=answer_tag,
                think_tag=think_tag,
                coordinate_frame=coordinate_frame,
            )
            sample["extracted"] = inp.prediction
            if spec.metric is not None:
                result = compute_metric(spec.metric, inp)
                sample["metrics"] = {spec.metric: result.value}
                sample["metric_extracted"] = result.extracted
                sample["metric_error"] = result.error
            samples.append(sample)
        if on_batch is not None:
            on_batch(len(chunk))
    return samples
