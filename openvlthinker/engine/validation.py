"""The validation loop shared by training (``Trainer.validate``) and ``openvlthinker eval``.

Each named set is encoded, generated and scored in batches; every response becomes one
sample dict that :func:`openvlthinker.tasks.compute_validation_metrics` reads (task, set,
problem type, reward scores, length, benchmark metric) and that ``eval`` writes to its
samples file (record, response, extracted answer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openvlthinker.benchmarks import compute_metric, metric_input
from openvlthinker.data import Record
from openvlthinker.engine.data import EncodedPrompts
from openvlthinker.engine.rollout import PromptBatch, Rollout


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
