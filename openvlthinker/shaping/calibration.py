"""Shaping bounds from measurements of the policy: the rule of method.md section 7.

Pure: one task's calibration responses in (arrays), its length envelope and entropy band
out, each bound with a note naming the measurement it came from. No model, no engine.

Envelope: the plateau [L_low, L_high] spans correctness-weighted quantiles of the lengths
of the responses that finished inside the budget, at levels set by the task's length
intent; the ramps scale with the plateau (L_min = L_low // 4, L_max = min(budget, 2 L_high)).
Band: [m / 2, 3 m / 2] around the task's token-mean entropy m, the shape of the released
band (0.2, 0.6) = (c / 2, 3 c / 2) at c = 0.4.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

#: Quantile levels of the plateau [L_low, L_high] per length intent (method.md section 7).
PLATEAU_LEVELS = {"short": (0.10, 0.50), "medium": (0.25, 0.75), "long": (0.50, 0.90)}
#: Weight of a response beyond its correctness: a fully correct response counts 11 times a
#: wrong one, and a task the policy cannot solve yet falls back to the plain length quantiles.
CORRECTNESS_PRIOR = 0.1
#: L_min = L_low // RAMP_DOWN; L_max = min(budget, RAMP_UP * L_high).
RAMP_DOWN = 4
RAMP_UP = 2
#: Length quantiles are rounded to this many decimals before floor / ceil.
QUANTILE_DECIMALS = 6
#: The band is [BAND_LOW * m, BAND_HIGH * m] around the token-mean entropy m.
BAND_LOW = 0.5
BAND_HIGH = 1.5
#: Band bounds are rounded outward (h_min down, h_max up) to this many decimals.
BAND_DECIMALS = 3


class CalibrationError(ValueError):
    """The measurements cannot give a bound; the message names the task and what to change."""


@dataclass(frozen=True)
class TaskMeasurements:
    """One task's N calibration responses (the policy sampled, no update).

    lengths: (N,) response tokens; entropy: (N,) per-response mean token entropy (the
    band's estimator; 0 for an empty response); correctness, reward: (N,) of the reward
    suite; max_new_tokens: the budget (a response this long hit it).
    """

    lengths: np.ndarray
    entropy: np.ndarray
    correctness: np.ndarray
    reward: np.ndarray
    max_new_tokens: int

    def __post_init__(self) -> None:
        n = len(self.lengths)
        for name in ("entropy", "correctness", "reward"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: {len(getattr(self, name))} values for {n} lengths")

    @property
    def truncated(self) -> np.ndarray:
        """(N,) bool: the response hit the length limit (no true length, usually no answer)."""
        return np.asarray(self.lengths) >= self.max_new_tokens

    def token_mean_entropy(self) -> float:
        """Mean over all response tokens, the statistic H_t the band judges (method.md 3)."""
        lengths = np.asarray(self.lengths, dtype=np.float64)
        return float((np.asarray(self.entropy, dtype=np.float64) * lengths).sum() / lengths.sum())


@dataclass(frozen=True)
class TaskBounds:
    """A task's derived bounds; ``notes`` (bound -> how) cites ``evidence`` (name -> value)."""

    length_envelope: tuple[int, int, int, int]
    h_min: float
    h_max: float
    notes: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, float] = field(default_factory=dict)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, levels: list[float]) -> np.ndarray:
    """Quantiles of ``values`` (N,) under positive ``weights`` (N,) at ``levels`` (L,) -> (L,).

    Sample k sits at cumulative level (W_k - w_k / 2) / W, linearly interpolated between
    samples and clamped at both ends (with equal weights: the Hazen quantile, (k - 0.5) / N).
    Continuous in values and weights; each quantile is non-decreasing in every value.
    """
    x = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if x.size == 0 or not (w > 0).all():
        raise ValueError("weighted_quantile needs at least one value and positive weights")
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cum = np.cumsum(w)
    return np.interp(np.asarray(levels, dtype=np.float64), (cum - w / 2) / cum[-1], x)


def derive_envelope(
    m: TaskMeasurements, intent: str, *, task: str = "task"
) -> tuple[tuple[int, int, int, int], str, dict[str, float]]:
    """(L_min, L_low, L_high, L_max), the note, and the evidence it cites."""
    if intent not in PLATEAU_LEVELS:
        raise ValueError(f"length_intent {intent!r} is unknown; known: {list(PLATEAU_LEVELS)}")
    lengths = np.asarray(m.lengths)
    finished = ~m.truncated
    budget = int(m.max_new_tokens)
    if not finished.any():
        raise CalibrationError(
            f"task {task!r}: all {lengths.size} calibration responses hit the "
            f"{budget}-token limit (rollout.max_new_tokens), so no finished length exists to "
            "calibrate the envelope on: raise rollout.max_new_tokens, measure more batches "
            "(--batches / calibration.batches) or set length_envelope by hand"
        )
    x = lengths[finished]
    correct = np.asarray(m.correctness, dtype=np.float64)[finished]
    lo, hi = PLATEAU_LEVELS[intent]
    quantiles = weighted_quantile(x, correct + CORRECTNESS_PRIOR, [lo, 0.5, hi])
    # Rounded before floor/ceil: interpolation noise must not move a bound by a whole token.
    q_lo, q_med, q_hi = (round(float(q), QUANTILE_DECIMALS) for q in quantiles)
    l_low = max(1, math.floor(q_lo))
    l_high = max(l_low, math.ceil(q_hi))
    l_min = l_low // RAMP_DOWN
    l_max = max(l_high + 1, min(budget, RAMP_UP * l_high))
    evidence = {
        "responses": float(lengths.size),
        "finished": float(x.size),
        "hit_limit_share": float(1 - x.size / lengths.size),
        "max_new_tokens": float(budget),
        "finished_median_length": float(np.median(x)),
        "weighted_median_length": float(q_med),
        f"weighted_q{lo:.2f}_length": float(q_lo),
        f"weighted_q{hi:.2f}_length": float(q_hi),
        "finished_mean_correctness": float(correct.mean()),
    }
    note = (
        f"intent {intent}: {x.size} of {lengths.size} responses finished under the "
        f"{budget}-token limit ({evidence['hit_limit_share']:.1%} hit it), mean correctness "
        f"{correct.mean():.2f}; L_low = floor(q{lo:.2f} = {q_lo:.2f}), L_high = "
        f"ceil(q{hi:.2f} = {q_hi:.2f}) of their correctness-weighted lengths (median "
        f"{q_med:.2f}); L_min = L_low // {RAMP_DOWN}, L_max = min({budget}, {RAMP_UP} L_high)"
    )
    return (l_min, l_low, l_high, l_max), note, evidence


def derive_band(
    m: TaskMeasurements, *, task: str = "task"
) -> tuple[float, float, str, dict[str, float]]:
    """(h_min, h_max), the note, and the evidence it cites."""
    lengths = np.asarray(m.lengths)
    tokens = int(lengths.sum())
    if tokens == 0:
        raise CalibrationError(f"task {task!r}: the calibration responses hold no token")
    mean = m.token_mean_entropy()
    if not (math.isfinite(mean) and mean > 0):
        raise CalibrationError(
            f"task {task!r}: token-mean entropy {mean!r}: a band needs a policy that samples "
            "(rollout.temperature > 0, no collapsed model); set entropy_band by hand"
        )
    scale = 10**BAND_DECIMALS
    h_min = math.floor(BAND_LOW * mean * scale) / scale
    h_max = max(math.ceil(BAND_HIGH * mean * scale) / scale, h_min + 1 / scale)
    h_min, h_max = round(h_min, BAND_DECIMALS), round(h_max, BAND_DECIMALS)
    nonempty = np.asarray(m.entropy, dtype=np.float64)[lengths > 0]
    q10, q90 = np.quantile(nonempty, [0.1, 0.9])
    evidence = {
        "token_mean_entropy": mean,
        "tokens": float(tokens),
        "response_entropy_q0.10": float(q10),
        "response_entropy_q0.90": float(q90),
    }
    note = (
        f"token-mean entropy m = {mean:.4f} over {tokens} tokens of {lengths.size} responses; "
        f"h_min = {BAND_LOW:g} m, h_max = {BAND_HIGH:g} m, rounded outward to "
        f"{1 / scale:g} (per-response entropy q0.10 {q10:.4f}, q0.90 {q90:.4f})"
    )
    return h_min, h_max, note, evidence


def derive_bounds(m: TaskMeasurements, intent: str, *, task: str = "task") -> TaskBounds:
    """Envelope and band of one task from its measurements and its length intent."""
    envelope, length_note, length_evidence = derive_envelope(m, intent, task=task)
    h_min, h_max, band_note, band_evidence = derive_band(m, task=task)
    return TaskBounds(
        length_envelope=envelope,
        h_min=h_min,
        h_max=h_max,
        notes={"length_envelope": length_note, "entropy_band": band_note},
        evidence={**length_evidence, **band_evidence},
    )


def length_buckets(
    m: TaskMeasurements, envelope: tuple[int, int, int, int]
) -> list[tuple[str, int, float, float]]:
    """Correctness and reward by length bucket of the envelope (for the report):
    rows (bucket, responses, mean correctness, mean reward); empty buckets report NaN."""
    lengths = np.asarray(m.lengths)
    l_min, l_low, l_high, _ = envelope
    budget = m.max_new_tokens
    finished = ~m.truncated
    buckets = [
        (f"< {l_min}", finished & (lengths < l_min)),
        (f"[{l_min}, {l_low})", finished & (lengths >= l_min) & (lengths < l_low)),
        (f"[{l_low}, {l_high}]", finished & (lengths >= l_low) & (lengths <= l_high)),
        (f"({l_high}, {budget})", finished & (lengths > l_high)),
        (f"hit the {budget}-token limit", ~finished),
    ]
    correctness = np.asarray(m.correctness, dtype=np.float64)
    reward = np.asarray(m.reward, dtype=np.float64)
    rows = []
    for label, sel in buckets:
        n = int(sel.sum())
        rows.append(
            (
                label,
                n,
                float(correctness[sel].mean()) if n else math.nan,
                float(reward[sel].mean()) if n else math.nan,
            )
        )
    return rows


#: The calibration kept in a checkpoint folder (plain JSON: resume reads it, never re-measures).
CALIBRATION_FILE = "calibration.json"
FORMAT = 1


@dataclass
class Calibration:
    """Derived bounds of the tasks named in ``fields`` (task -> the bounds it derives).

    ``measurements`` is empty when read back from a checkpoint (only bounds are kept there).
    """

    task_file: str
    settings: dict[str, Any]
    fields: dict[str, tuple[str, ...]]
    bounds: dict[str, TaskBounds]
    measurements: dict[str, TaskMeasurements] = field(default_factory=dict)

    def overrides(self) -> dict[str, dict[str, Any]]:
        """Task -> {bound: value} for the derived bounds only (for TaskRegistry.with_bounds)."""
        out = {}
        for task, names in self.fields.items():
            b = self.bounds[task]
            values = {
                "length_envelope": list(b.length_envelope),
                "h_min": b.h_min,
                "h_max": b.h_max,
            }
            out[task] = {name: values[name] for name in names}
        return out

    def to_json(self, *, with_measurements: bool = False) -> str:
        doc: dict[str, Any] = {
            "format": FORMAT,
            "task_file": self.task_file,
            "settings": self.settings,
            "tasks": {
                task: {"fields": list(names), **asdict(self.bounds[task])}
                for task, names in self.fields.items()
            },
        }
        if with_measurements:
            doc["measurements"] = {
                task: {
                    "max_new_tokens": m.max_new_tokens,
                    **{
                        k: np.asarray(getattr(m, k)).tolist()
                        for k in ("lengths", "entropy", "correctness", "reward")
                    },
                }
                for task, m in self.measurements.items()
            }
        # Compact with the per-response arrays (they can run to 10^5 numbers), readable without.
        return json.dumps(doc, indent=None if with_measurements else 1) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: str = CALIBRATION_FILE) -> Calibration:
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            fields, bounds = {}, {}
            for task, row in doc["tasks"].items():
                fields[task] = tuple(row["fields"])
                bounds[task] = TaskBounds(
                    length_envelope=tuple(row["length_envelope"]),
                    h_min=float(row["h_min"]),
                    h_max=float(row["h_max"]),
                    notes=dict(row.get("notes", {})),
                    evidence=dict(row.get("evidence", {})),
                )
            measurements = {
                task: TaskMeasurements(
                    lengths=np.asarray(row["lengths"], dtype=np.int64),
                    entropy=np.asarray(row["entropy"], dtype=np.float64),
                    correctness=np.asarray(row["correctness"], dtype=np.float64),
                    reward=np.asarray(row["reward"], dtype=np.float64),
                    max_new_tokens=int(row["max_new_tokens"]),
                )
                for task, row in doc.get("measurements", {}).items()
            }
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{where}: not a calibration file: {e}") from e
        return cls(doc["task_file"], dict(doc["settings"]), fields, bounds, measurements)
