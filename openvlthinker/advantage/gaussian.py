"""The rank -> N(0, 1) map of G2RPO (method.md section 1): 1-D optimal transport.

    p_i = (rank(x_i) - 0.5) / N,   A_i = Phi^-1(p_i)

Exactly equal values share the mean of the target quantiles of the rank slots they
occupy, so each segment's output sums to zero and an all-equal segment maps to 0.
"""

from __future__ import annotations

import torch

from openvlthinker.advantage.segments import segment_count, segment_sum, sort_within_segments


@torch.no_grad()
def gaussian_quantile_map(x: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
    """Map ``x`` (B,) to standard-normal quantiles by rank, independently per segment.

    segments: (B,) int64 dense ids, or None for one segment. Returns (B,) in x's dtype
    (computed in float64).
    """
    if x.dim() != 1:
        raise ValueError(
            f"gaussian_quantile_map: expected a 1-D tensor, got shape {tuple(x.shape)}"
        )
    n = x.numel()
    if n == 0:
        return x.clone()
    values = x.to(torch.float64)
    seg = torch.zeros(n, dtype=torch.long) if segments is None else segments.to(torch.long)
    num_seg = int(seg.max()) + 1

    order = sort_within_segments(values, seg)
    sorted_seg = seg[order]
    sorted_val = values[order]
    seg_size = segment_count(seg, num_seg, torch.float64)
    seg_start = torch.cumsum(seg_size, 0) - seg_size
    position = torch.arange(n, dtype=torch.float64) - seg_start[sorted_seg]
    quantile = torch.special.ndtri((position + 0.5) / seg_size[sorted_seg])

    # A tie run is a maximal stretch of equal (segment, value) in sorted order.
    starts_run = torch.ones(n, dtype=torch.bool)
    starts_run[1:] = (sorted_seg[1:] != sorted_seg[:-1]) | (sorted_val[1:] != sorted_val[:-1])
    run = torch.cumsum(starts_run.to(torch.long), 0) - 1
    num_runs = int(run[-1]) + 1
    run_size = segment_count(run, num_runs, torch.float64)
    run_mean = segment_sum(quantile, run, num_runs) / run_size
    # A run that fills its segment is an all-equal segment: exactly 0, not rounding noise.
    run_mean = torch.where(run_size == seg_size[sorted_seg[starts_run]], 0.0, run_mean)

    out = torch.empty(n, dtype=torch.float64)
    out[order] = run_mean[run]
    return out.to(x.dtype) if x.is_floating_point() else out
