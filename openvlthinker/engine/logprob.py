"""Log-probs (and token entropy) of sampled response tokens under a policy: one forward pass.

The same suppression mask and temperature that sampling used are applied before the
log-softmax, so old and new log-probs describe the same (sampling) policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from openvlthinker.engine.rollout import Rollout
from openvlthinker.method_config import ENTROPY_ESTIMATORS

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class TokenLogProbs:
    """log_probs, entropy: (B, T) over response tokens (entropy None when not asked for)."""

    log_probs: torch.Tensor
    entropy: torch.Tensor | None


def suppress_and_scale(
    logits: torch.Tensor, suppress_ids: list[int], temperature: float
) -> torch.Tensor:
    """Vision ids to -inf, divided by temperature: (..., V) -> (..., V) float32."""
    logits = logits.float()
    if suppress_ids:
        logits = logits.index_fill(-1, torch.tensor(suppress_ids, device=logits.device), -torch.inf)
    return logits / temperature


def token_log_probs(
    model: PreTrainedModel,
    rollout: Rollout,
    *,
    suppress_ids: list[int],
    temperature: float,
    entropy: str | None = None,
) -> TokenLogProbs:
    """Log-prob of each response token (B, T) given prompt and earlier tokens, and its
    token entropy by the ``entropy`` estimator (:data:`ENTROPY_ESTIMATORS`; None: none).

    Builds input = prompt ++ response, attention = prompt mask ++ response mask, and
    keeps only the T + 1 last logits (``logits_to_keep``): never prompt x vocab logits.
    Both outputs keep the graph when gradients are on (the band's surrogate needs it).
    """
    if entropy is not None and entropy not in ENTROPY_ESTIMATORS:
        raise ValueError(f"entropy={entropy!r}: unknown; known: {', '.join(ENTROPY_ESTIMATORS)}")
    prompts = rollout.prompts
    t = rollout.responses.shape[1]
    input_ids = torch.cat([prompts.input_ids, rollout.responses], dim=1)
    attention_mask = torch.cat([prompts.attention_mask, rollout.response_mask], dim=1)
    mm_token_type_ids = torch.cat(
        [prompts.mm_token_type_ids, torch.zeros_like(rollout.responses)], dim=1
    )
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        mm_token_type_ids=mm_token_type_ids,
        **prompts.vision_inputs(),
        logits_to_keep=t + 1,
        use_cache=False,
    )
    logits = suppress_and_scale(out.logits[:, :-1], suppress_ids, temperature)
    log_softmax = torch.log_softmax(logits, dim=-1)
    log_probs = log_softmax.gather(-1, rollout.responses[..., None])[..., 0]
    token_entropy = None
    if entropy == "full":
        probs = log_softmax.exp()
        token_entropy = -(probs * torch.where(probs > 0, log_softmax, 0.0)).sum(-1)
    elif entropy == "sampled":
        token_entropy = -log_probs
    return TokenLogProbs(log_probs=log_probs, entropy=token_entropy)
