"""Reward results as rows of floats and as tensors, the one form both engines read.

A scored response (``openvlthinker.rewards.score``) becomes a row: ``overall``, every
component, ``acc`` and ``reward_error`` (1.0 when the scorer reported an error), all floats,
which is what verl's reward manager writes as ``reward_extra_info`` and verl averages. A
batch of rows becomes one (B,) tensor per key, once per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from openvlthinker.rewards.config import RESULT_KEYS

#: Keys of a score row: the weighted total, each component, acc (= correctness), the error flag.
SCORE_KEYS: tuple[str, ...] = (*RESULT_KEYS, "reward_error")


def score_row(result: Mapping[str, Any]) -> dict[str, float]:
    """One reward result (with ``error``: None or a reason) as a row of floats."""
    row = {key: float(result.get(key, 0.0) or 0.0) for key in SCORE_KEYS[:-1]}
    row["reward_error"] = float(bool(result.get("error")))
    return row


def score_tensors(rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    """Rows of :data:`SCORE_KEYS` as float64 tensors (B,); a key missing from any row is
    left out (a reward manager other than ours writes none)."""
    keys = [k for k in SCORE_KEYS if rows and all(k in row for row in rows)]
    return {k: torch.tensor([float(row[k]) for row in rows], dtype=torch.float64) for k in keys}


def estimator_components(
    scores: Mapping[str, torch.Tensor],
    names: Sequence[str],
    task_index: torch.Tensor,
    length_on: torch.Tensor,
    dtype: torch.dtype = torch.float64,
) -> dict[str, torch.Tensor]:
    """The components GS-GDPO / GDPO normalise, in ``dtype``; the length component is
    zeroed for tasks that do not weight it (``TaskRegistry.length_enabled``), so it is a
    constant there, as verl's own length penalty is. Empty when the rows carry none."""
    if not all(name in scores for name in names):
        return {}
    out = {name: scores[name].to(dtype) for name in names}
    if "length" in out:
        out["length"] = out["length"] * length_on[task_index].to(dtype)
    return out
