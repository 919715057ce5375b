"""Task-level entropy band: the two-sided hinge of method.md section 3.

    L_band = sum_t coef_t * [ relu(H_t - h_max_t) + relu(h_min_t - H_t) ]

H_t is the token mean of the per-token entropy estimate over task t's response tokens
in the whole mini-batch. Tasks absent from the mini-batch add nothing.

With gradient accumulation a micro-batch cannot see H_t of the whole mini-batch, so the
engines use :func:`entropy_band_surrogate`: given the direction of each task's hinge and
its token count over the mini-batch, the surrogates of all micro-batches sum to a loss
whose gradient equals that of :func:`entropy_band_loss` on the whole mini-batch.
"""

from __future__ import annotations

import torch


def task_token_sums(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    task_index: torch.Tensor,
    num_tasks: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-task sum of masked token entropy and per-task token count.

    token_entropy: (B, T); response_mask: (B, T) bool/0-1; task_index: (B,) long in [0, K).
    Returns (sum[K], count[K]) in token_entropy's dtype; ``sum`` keeps the graph.
    """
    mask = response_mask.to(token_entropy.dtype)
    per_seq_sum = (token_entropy * mask).sum(dim=-1)
    per_seq_count = mask.sum(dim=-1)
    zeros = token_entropy.new_zeros(num_tasks)
    return zeros.index_add(0, task_index, per_seq_sum), zeros.index_add(
        0, task_index, per_seq_count
    )


def entropy_band_penalty(
    mean_entropy: torch.Tensor, h_min: torch.Tensor, h_max: torch.Tensor, coef: torch.Tensor
) -> torch.Tensor:
    """Per-task hinge ``coef * (relu(H - h_max) + relu(h_min - H))``; all arguments (K,)."""
    return coef * (torch.relu(mean_entropy - h_max) + torch.relu(h_min - mean_entropy))


def entropy_band_loss(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    task_index: torch.Tensor,
    h_min: torch.Tensor,
    h_max: torch.Tensor,
    coef: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Band loss over one whole mini-batch.

    token_entropy: (B, T); response_mask: (B, T); task_index: (B,) long; h_min, h_max,
    coef: (K,). Returns (loss scalar, per-task mean entropy (K,) detached, present (K,) bool).
    """
    total, count = task_token_sums(token_entropy, response_mask, task_index, h_min.numel())
    present = count > 0
    mean_entropy = total / count.clamp_min(1)
    penalty = entropy_band_penalty(mean_entropy, h_min, h_max, coef)
    loss = torch.where(present, penalty, torch.zeros_like(penalty)).sum()
    return loss, mean_entropy.detach(), present


def entropy_band_direction(
    mean_entropy: torch.Tensor, h_min: torch.Tensor, h_max: torch.Tensor
) -> torch.Tensor:
    """Sign of the band's gradient w.r.t. H_t: +1 above h_max (push entropy down when the
    loss is minimised), -1 below h_min, 0 inside. All arguments (K,)."""
    above = (mean_entropy > h_max).to(mean_entropy.dtype)
    below = (mean_entropy < h_min).to(mean_entropy.dtype)
    return above - below


def entropy_band_surrogate(
    token_entropy: torch.Tensor,
    response_mask: torch.Tensor,
    task_index: torch.Tensor,
    direction: torch.Tensor,
    coef: torch.Tensor,
    minibatch_token_count: torch.Tensor,
) -> torch.Tensor:
    """Micro-batch term whose gradients, summed over a mini-batch's micro-batches, equal
    the gradient of :func:`entropy_band_loss` on that mini-batch.

    direction, coef, minibatch_token_count: (K,), from the whole mini-batch (see
    :func:`entropy_band_direction`, :func:`task_token_sums`).
    """
    total, _ = task_token_sums(token_entropy, response_mask, task_index, direction.numel())
    scale = direction * coef / minibatch_token_count.clamp_min(1)
    return (scale * total).sum()
