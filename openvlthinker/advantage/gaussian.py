"""The rank -> N(0, 1) map of G2RPO (method.md section 1): 1-D optimal transport.

    p_i = (rank(x_i) - 0.5) / N,   A_i = Phi^-1(p_i)

Exactly equal values share the mean of the target quantiles of the rank slots they
occupy, so each segment's output sums to zero and an all-equal segment maps to 0.
"""

from __future__ import annotations

import torch

from openvlthinker.advantage.segments import segment_count, segment_sum, sort_within_segments

# Keys of the one-sort path: segment id in the high bits, the value on a 1e-9 grid
# (offset to be non-negative) in the low 42 bits.
_VALUE_BITS = 42
_VALUE_LIMIT = 2.0 ** (_VALUE_BITS - 1)


def _as_segments(segments: torch.Tensor | None, n: int) -> tuple[torch.Tensor, int]:
    if segments is None:
        return torch.zeros(n, dtype=torch.long), 1
    seg = segments.to(torch.long)
    return seg, int(seg.max()) + 1


def _tie_averaged_quantiles(
    order: torch.Tensor, seg: torch.Tensor, num_seg: int, starts_run: torch.Tensor
) -> torch.Tensor:
    """Quantiles by rank, averaged over tie runs, scattered back to input order.

    order: permutation sorting rows by (segment, value); starts_run: (B,) bool in sorted
    order, True where a new (segment, value) run begins.
    """
    n = order.numel()
    sorted_seg = seg[order]
    seg_size = segment_count(seg, num_seg, torch.float64)
    seg_start = torch.cumsum(seg_size, 0) - seg_size
    row_seg_size = seg_size[sorted_seg]
    position = torch.arange(n, dtype=torch.float64) - seg_start[sorted_seg]
    quantile = torch.special.ndtri((position + 0.5) / row_seg_size)

    run = torch.cumsum(starts_run, 0) - 1
    num_runs = int(run[-1]) + 1
    run_size = segment_count(run, num_runs, torch.float64)
    run_mean = segment_sum(quantile, run, num_runs) / run_size
    # A run that fills its segment is an all-equal segment: exactly 0, not rounding noise.
    run_mean = torch.where(run_size == row_seg_size[starts_run], 0.0, run_mean)

    out = torch.empty(n, dtype=torch.float64)
    out[order] = run_mean[run]
    return out


def _is_equal_blocks(seg: torch.Tensor, num_seg: int) -> bool:
    """Whether segment s is exactly rows [s*m, (s+1)*m): the usual rollout layout of
    n samples per prompt, stored prompt after prompt."""
    n = seg.numel()
    if n % num_seg:
        return False
    blocks = seg.view(num_seg, n // num_seg)
    return bool((blocks == torch.arange(num_seg).unsqueeze(1)).all())


def _map_equal_blocks(values: torch.Tensor) -> torch.Tensor:
    """The map for (S, m) rows of equal segments: one batched sort along each row."""
    num_seg, m = values.shape
    sorted_val, order = torch.sort(values, dim=-1)
    quantile = torch.special.ndtri((torch.arange(m, dtype=torch.float64) + 0.5) / m)
    starts_run = torch.ones(num_seg, m, dtype=torch.bool)
    starts_run[:, 1:] = sorted_val[:, 1:] != sorted_val[:, :-1]
    run = torch.cumsum(starts_run.view(-1), 0) - 1
    num_runs = int(run[-1]) + 1
    run_size = segment_count(run, num_runs, torch.float64)
    run_mean = segment_sum(quantile.repeat(num_seg), run, num_runs) / run_size
    run_mean = torch.where(run_size == m, 0.0, run_mean)
    out = torch.empty_like(values)
    out.scatter_(1, order, run_mean[run].view(num_seg, m))
    return out.view(-1)


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
    seg, num_seg = _as_segments(segments, n)
    if _is_equal_blocks(seg, num_seg):
        out = _map_equal_blocks(values.view(num_seg, n // num_seg))
        return out.to(x.dtype) if x.is_floating_point() else out
    order = sort_within_segments(values, seg)
    sorted_seg, sorted_val = seg[order], values[order]
    starts_run = torch.ones(n, dtype=torch.bool)
    starts_run[1:] = (sorted_seg[1:] != sorted_seg[:-1]) | (sorted_val[1:] != sorted_val[:-1])
    out = _tie_averaged_quantiles(order, seg, num_seg, starts_run)
    return out.to(x.dtype) if x.is_floating_point() else out


@torch.no_grad()
def gaussian_quantile_map_on_grid(
    x: torch.Tensor, segments: torch.Tensor | None = None, decimals: int = 9
) -> torch.Tensor:
    """:func:`gaussian_quantile_map` of ``x`` rounded to ``decimals`` places.

    Values equal after rounding tie. When the rounded values fit the packed key (the
    case for G2RPO's stage 2, whose inputs are bounded quantiles), one integer sort
    orders by (segment, value); otherwise it falls back to the two-sort path.
    """
    n = x.numel()
    if n == 0:
        return x.clone()
    scaled = torch.round(x.to(torch.float64) * 10.0**decimals)
    seg, num_seg = _as_segments(segments, n)
    if float(scaled.abs().max()) >= _VALUE_LIMIT or num_seg >= 2 ** (62 - _VALUE_BITS):
        return gaussian_quantile_map(scaled / 10.0**decimals, segments).to(x.dtype)
    key = (seg << _VALUE_BITS) + (scaled + _VALUE_LIMIT).to(torch.long)
    order = torch.sort(key).indices
    sorted_key = key[order]
    starts_run = torch.ones(n, dtype=torch.bool)
    starts_run[1:] = sorted_key[1:] != sorted_key[:-1]
    return _tie_averaged_quantiles(order, seg, num_seg, starts_run).to(x.dtype)
