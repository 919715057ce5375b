"""Segmented tensor operations: reductions and ranks inside groups, without Python loops.

A *segment* is a set of batch rows sharing an id (a prompt group, a task). Ids are dense
``int64`` in ``[0, S)``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import torch

Keys = Sequence[Hashable] | torch.Tensor | np.ndarray


def factorize(keys: Keys, *, where: str) -> torch.Tensor:
    """Dense segment ids (B,) int64 in [0, S) for per-row keys (S distinct keys)."""
    if isinstance(keys, torch.Tensor):
        if keys.dim() != 1:
            raise ValueError(f"{where}: expected a 1-D tensor, got shape {tuple(keys.shape)}")
        if keys.is_floating_point():
            raise TypeError(f"{where}: ids must be integers or hashables, got {keys.dtype}")
        ids = keys.to(torch.long)
        # Ids that already are 0..S-1 (the engines' prompt index) need no relabelling.
        if ids.numel() and int(ids.min()) == 0 and int(ids.max()) < ids.numel():
            if bool((torch.bincount(ids) > 0).all()):
                return ids
        return torch.unique(ids, return_inverse=True)[1]
    keys = list(keys)
    try:
        lookup = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    except TypeError as e:
        raise TypeError(f"{where}: every id must be hashable ({e})") from e
    codes = np.fromiter(map(lookup.__getitem__, keys), dtype=np.int64, count=len(keys))
    return torch.from_numpy(codes)


def segment_sum(x: torch.Tensor, seg: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Sum of ``x`` (B,) per segment -> (S,)."""
    return x.new_zeros(num_segments).index_add_(0, seg, x)


def segment_count(seg: torch.Tensor, num_segments: int, dtype: torch.dtype) -> torch.Tensor:
    """Rows per segment -> (S,) in ``dtype``."""
    return torch.bincount(seg, minlength=num_segments).to(dtype)


def segment_mean(x: torch.Tensor, seg: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Mean of ``x`` (B,) per segment, broadcast back to rows -> (B,)."""
    count = segment_count(seg, num_segments, x.dtype).clamp_min(1)
    return (segment_sum(x, seg, num_segments) / count)[seg]


def segment_std(
    x: torch.Tensor, seg: torch.Tensor, num_segments: int, *, unbiased: bool
) -> torch.Tensor:
    """Standard deviation of ``x`` (B,) per segment, broadcast to rows -> (B,).

    Segments too small for the estimate (1 row, or 1 row when unbiased) give 0.
    """
    count = segment_count(seg, num_segments, x.dtype)
    centred = x - segment_mean(x, seg, num_segments)
    denom = (count - 1.0) if unbiased else count
    var = segment_sum(centred * centred, seg, num_segments) / denom.clamp_min(1)
    var = torch.where(denom > 0, var, torch.zeros_like(var))
    return var.sqrt()[seg]


def sort_within_segments(x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """Permutation (B,) that orders rows by segment, then by ``x`` ascending.

    Two stable sorts (value, then segment) give the lexicographic order in O(B log B).
    """
    # Equal values may come out in any order: ties are averaged later anyway.
    by_value = torch.sort(x).indices
    by_segment = torch.sort(seg[by_value], stable=True).indices
    return by_value[by_segment]


def is_constant_within_segments(
    x: torch.Tensor, seg: torch.Tensor, num_segments: int
) -> torch.Tensor:
    """(B,) bool: whether every row of the row's segment holds the same value."""
    lo = x.new_full((num_segments,), float("inf")).scatter_reduce(0, seg, x, "amin")
    hi = x.new_full((num_segments,), float("-inf")).scatter_reduce(0, seg, x, "amax")
    return (lo == hi)[seg]
