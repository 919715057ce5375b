"""The phases of one training step of the single-process engine, each a function that
returns what it makes:

collect (rollout -> score, refilled by dynamic sampling) -> :class:`RolloutBatch`;
advantage -> (B,) advantages; old/ref log-probs -> :class:`OldLogProbs`;
update (``engine/update.py``) -> actor statistics; metrics -> the step's metric dict.

Reward results become tensors once, as they are scored (``openvlthinker.step.scores``);
every later phase reads those tensors. The phases' settings are read from the config
once (``*Settings.from_config``) and passed in.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from openvlthinker.advantage import estimator_requirements
from openvlthinker.data import Record
from openvlthinker.engine import lora
from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.data import RecordSampler
from openvlthinker.engine.policy import PolicyIO
from openvlthinker.engine.rollout import Rollout, concat_rollouts
from openvlthinker.rewards import RewardConfig, score_batch
from openvlthinker.step import (
    StepInputs,
    StepTasks,
    advantage_step,
    record_reward_items,
    score_row,
    score_tensors,
    training_metrics,
)
from openvlthinker.tasks import TaskRegistry

#: ``score(rollout, records, model_image_sizes)``: the reward results of a rollout's rows.
Scorer = Callable[[Rollout, list[Record], list[Any]], list[dict]]


def score_rollout(
    io: PolicyIO,
    rollout: Rollout,
    records: list[Record],
    model_image_sizes: list[Any],
    registry: TaskRegistry,
    reward_config: RewardConfig,
) -> list[dict]:
    """The reward suite on a rollout's decoded responses: length counted in tokens, each
    row's task envelope, weights and scorer options from ``registry``."""
    lengths = rollout.response_lengths().cpu().tolist()
    items = record_reward_items(io.decode(rollout), lengths, records, model_image_sizes, registry)
    return score_batch(items, config=reward_config)


def scores_of(results: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Reward results as score key -> (B,) float64 (``step.score_row`` / ``score_tensors``)."""
    return score_tensors([score_row(r) for r in results])


@contextmanager
def timed(metrics: dict[str, float], key: str) -> Iterator[None]:
    """Adds the block's wall time in seconds to ``metrics[key]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        metrics[key] = metrics.get(key, 0.0) + time.perf_counter() - t0


# ---------------------------------------------------------------------------- collect
@dataclass(frozen=True)
class CollectSettings:
    """prompts: per rollout batch (``data.rollout_batch_size``), each sampled ``n`` times at
    ``temperature``; keep_metric: the score dynamic sampling judges each group by (None:
    every group is kept); max_gen_batches: rollout batches drawn at most (1 without dynamic
    sampling); baselines: the estimator takes the greedy response's reward (ReMax);
    check_log_probs: keep generation's own log-probs (``debug/log_prob_gap``)."""

    prompts: int
    n: int
    temperature: float
    keep_metric: str | None
    max_gen_batches: int
    baselines: bool
    check_log_probs: bool

    @classmethod
    def from_config(cls, cfg: TrainConfig) -> CollectSettings:
        ds = cfg.algorithm.filter_groups
        return cls(
            prompts=cfg.data.rollout_batch_size,
            n=cfg.rollout.n,
            temperature=cfg.rollout.temperature,
            keep_metric=ds.metric if ds.enable else None,
            max_gen_batches=ds.max_num_gen_batches if ds.enable else 1,
            baselines=estimator_requirements(cfg.algorithm.adv_estimator).baselines,
            check_log_probs=cfg.rollout.check_log_probs,
        )


@dataclass(frozen=True)
class RolloutBatch:
    """The step's rollout batch: B responses in prompt groups of ``n`` rows in a row.

    records: per row; group: (B,) prompt-group id; task_index: (B,) long into the task
    file; scores: score key -> (B,) float64 (``step.scores``); baselines: (B,) float64,
    the overall reward of the row's prompt's greedy response (ReMax), else None.
    """

    rollout: Rollout
    records: tuple[Record, ...]
    group: torch.Tensor
    task_index: torch.Tensor
    scores: dict[str, torch.Tensor]
    baselines: torch.Tensor | None

    @property
    def size(self) -> int:
        return self.rollout.size


def kept_groups(metric: torch.Tensor, n: int, room: int) -> torch.Tensor:
    """Dynamic sampling: (G,) bool, the groups whose ``metric`` (G * n,) is not all equal,
    at most the first ``room`` of them."""
    per_group = metric.view(-1, n)
    keep = (per_group.max(dim=1).values - per_group.min(dim=1).values) > 0
    keep[torch.cumsum(keep.long(), 0) > room] = False
    return keep


def collect(
    sampler: RecordSampler,
    io: PolicyIO,
    policy: torch.nn.Module,
    score: Scorer,
    registry: TaskRegistry,
    settings: CollectSettings,
) -> tuple[RolloutBatch | None, dict[str, float]]:
    """Rollout + score of ``settings.prompts`` groups, refilled by dynamic sampling; None
    when it kept no group. Metrics: timing/{generate,reward,baseline}, batch/kept_groups,
    batch/gen_batches."""
    s, n, want = settings, settings.n, settings.prompts
    parts: list[Rollout] = []
    records: list[Record] = []
    score_parts: list[dict[str, torch.Tensor]] = []
    baseline_parts: list[torch.Tensor] = []
    metrics: dict[str, float] = defaultdict(float)
    kept = gen_batches = 0
    while kept < want and gen_batches < s.max_gen_batches:
        gen_batches += 1
        prompt_records = sampler.next(want)
        with timed(metrics, "timing/generate"):
            encoded = io.encode(prompt_records)
            rollout = io.generate(
                policy,
                encoded.batch.repeat(n),
                temperature=s.temperature,
                greedy=False,
                return_log_probs=s.check_log_probs,
            )
        row_records = [r for r in prompt_records for _ in range(n)]
        row_sizes = [size for size in encoded.model_image_sizes for _ in range(n)]
        with timed(metrics, "timing/reward"):
            scores = scores_of(score(rollout, row_records, row_sizes))
        if s.baselines:
            with timed(metrics, "timing/baseline"):
                greedy = io.generate(policy, encoded.batch, temperature=1.0, greedy=True)
                greedy_scores = scores_of(score(greedy, prompt_records, encoded.model_image_sizes))
                baselines = greedy_scores["overall"].repeat_interleave(n)
        keep = torch.ones(want, dtype=torch.bool)
        if s.keep_metric is not None:
            keep = kept_groups(scores[s.keep_metric], n, want - kept)
        rows = torch.nonzero(keep.repeat_interleave(n)).flatten()
        if rows.numel():
            parts.append(rollout.select(rows))
            records += [row_records[i] for i in rows.tolist()]
            score_parts.append({k: v[rows] for k, v in scores.items()})
            if s.baselines:
                baseline_parts.append(baselines[rows])
        kept += int(keep.sum())
    metrics["batch/kept_groups"] = float(kept)
    metrics["batch/gen_batches"] = float(gen_batches)
    metrics = dict(metrics)
    if not parts:
        return None, metrics
    batch = RolloutBatch(
        rollout=concat_rollouts(parts, io.pad_id),
        records=tuple(records),
        group=torch.arange(kept).repeat_interleave(n),
        task_index=registry.indices([r.task for r in records]),
        scores={k: torch.cat([p[k] for p in score_parts]) for k in score_parts[0]},
        baselines=torch.cat(baseline_parts) if s.baselines else None,
    )
    return batch, metrics


# ---------------------------------------------------------------------------- advantage
@dataclass(frozen=True)
class AdvantageSettings:
    """estimator: ``algorithm.adv_estimator`` with its ``options``; components: the reward
    components GS-GDPO / GDPO normalise; key: the record field stage 2 splits on (the
    registry's ``advantage_key`` unless ``algorithm.advantage_key`` overrides it)."""

    estimator: str
    components: tuple[str, ...]
    options: Mapping[str, Any]
    key: str

    @classmethod
    def from_config(cls, cfg: TrainConfig, registry: TaskRegistry) -> AdvantageSettings:
        a = cfg.algorithm
        return cls(
            estimator=a.adv_estimator,
            components=tuple(a.components),
            options=dict(a.estimator_options),
            key=a.advantage_key or registry.advantage_key,
        )


def advantage(batch: RolloutBatch, tasks: StepTasks, settings: AdvantageSettings) -> torch.Tensor:
    """(B,) one scalar per response from the estimator, keyed per task (``step.advantage_step``)."""
    baselines = batch.baselines
    out = advantage_step(
        StepInputs(
            group=batch.group,
            task_index=batch.task_index,
            advantage_key=[getattr(r, settings.key) for r in batch.records],
            # float32, as the engine has always fed the estimator
            rewards=batch.scores["overall"].float(),
            scores=batch.scores,
            response_mask=batch.rollout.response_mask.cpu(),
            baselines=None if baselines is None else baselines.float(),
        ),
        settings.estimator,
        tasks,
        components=settings.components,
        options=settings.options,
    )
    return out.advantages


# ---------------------------------------------------------------------------- old log-probs
@dataclass(frozen=True)
class OldLogProbs:
    """Before any update, all (B, T): log_probs of the sampled tokens under the policy,
    entropy: their token entropy (``actor.entropy_band.estimator``), ref_log_probs: under
    the reference policy (None without the KL loss)."""

    log_probs: torch.Tensor
    entropy: torch.Tensor
    ref_log_probs: torch.Tensor | None


@torch.no_grad()
def old_log_probs(
    io: PolicyIO,
    policy: torch.nn.Module,
    rollout: Rollout,
    micro_batch_size: int,
    reference: torch.nn.Module | None = None,
) -> OldLogProbs:
    """One no-grad pass per micro-batch of ``micro_batch_size`` rows; ``reference``: the
    KL loss's reference model (with LoRA the policy itself, its adapters disabled), or None."""
    policy.eval()
    old, entropy, ref = [], [], []
    for micro_index in torch.arange(rollout.size).split(micro_batch_size):
        micro = rollout.select(micro_index)
        out = io.log_probs(policy, micro)
        old.append(out.log_probs)
        entropy.append(out.entropy)
        if reference is not None:
            with lora.reference(reference):
                ref.append(io.log_probs(reference, micro, entropy=False).log_probs)
    return OldLogProbs(
        log_probs=torch.cat(old),
        entropy=torch.cat(entropy),
        ref_log_probs=torch.cat(ref) if ref else None,
    )


def log_prob_gap(rollout: Rollout, old: OldLogProbs) -> dict[str, float]:
    """``debug/log_prob_gap``: the largest |recomputed - generation| log-prob over response
    tokens (only when generation kept its own, ``rollout.check_log_probs``)."""
    if rollout.gen_log_probs is None:
        return {}
    gap = (old.log_probs - rollout.gen_log_probs).abs()
    return {"debug/log_prob_gap": float(gap[rollout.response_mask.bool()].max())}


# ---------------------------------------------------------------------------- metrics
def batch_metrics(
    batch: RolloutBatch,
    advantages: torch.Tensor,
    token_entropy: torch.Tensor,
    task_names: Sequence[str],
    max_new_tokens: int,
) -> dict[str, float]:
    """train/<metric> and train/<task>/<metric> (``step.metrics``), and the batch's size and
    share of responses cut at ``max_new_tokens`` (batch/responses, batch/clip_ratio)."""
    mask = batch.rollout.response_mask
    out = training_metrics(
        task_names, batch.task_index, batch.scores, mask, advantages, token_entropy
    )
    lengths = mask.sum(-1).cpu()
    out["batch/responses"] = float(batch.size)
    out["batch/clip_ratio"] = float((lengths >= max_new_tokens).float().mean())
    return out


def throughput(rollout: Rollout, metrics: Mapping[str, float], ppo_epochs: int) -> dict[str, float]:
    """perf/response_tokens and tokens per second of generation and of the update."""
    response_tokens = float(rollout.response_mask.sum())
    prompt_tokens = float(rollout.prompts.attention_mask.sum())
    return {
        "perf/response_tokens": response_tokens,
        "perf/generate_tokens_per_s": response_tokens / max(metrics["timing/generate"], 1e-9),
        "perf/update_tokens_per_s": (prompt_tokens + response_tokens)
        * ppo_epochs
        / max(metrics["timing/update"], 1e-9),
    }


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory, or the process's peak RSS on CPU, in MiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
