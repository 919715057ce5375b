"""Actor loss = verl's ``ppo_loss`` (policy, entropy bonus, KL) + the task entropy band.

The band term is method.md section 3. A micro-batch cannot see a task's entropy over the
whole mini-batch, so the trainer judges each task's side of the band on the batch's
old-policy token entropy (the estimator of ``openvlthinker.entropy_band.estimator``) and
writes a per-token weight (``BAND_WEIGHT_KEY``, see :func:`openvlthinker.step.band_weights`);
here the term is the
token mean of ``weight * entropy`` with verl's global-batch normalisation, so micro-batch
terms add up to the mini-batch's. It is added after ``ppo_loss``: KL is untouched.
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict

#: Per-token field the trainer writes into TransferQueue next to ``advantages``.
BAND_WEIGHT_KEY = "entropy_band_weight"


def entropy_band_term(
    entropy: torch.Tensor,
    weight: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    dp_size: int = 1,
    batch_num_tokens: int | None = None,
) -> torch.Tensor:
    """sum(weight * entropy over response tokens) / batch_num_tokens * dp_size (verl's
    token-mean). entropy, weight, response_mask: (B, T). Returns a scalar."""
    from verl.trainer.ppo.core_algos import agg_loss

    return agg_loss(
        loss_mat=entropy * weight.to(entropy.dtype),
        loss_mask=response_mask.to(torch.bool),
        loss_agg_mode="token-mean",
        dp_size=dp_size,
        batch_num_tokens=batch_num_tokens,
    )


def token_entropy(model_output: dict, estimator: str) -> torch.Tensor:
    """The band's token entropy from verl's model output (nested, per sample): ``sampled`` =
    -log pi of the sampled token (method.md section 3), ``full`` = the vocabulary entropy."""
    from openvlthinker.verl_plugin.settings import check_entropy_estimator

    check_entropy_estimator(estimator)
    if estimator == "sampled":
        return -model_output["log_probs"]
    if model_output.get("entropy", None) is None:
        raise ValueError(
            "openvlthinker.entropy_band.estimator=full needs token entropy from the actor: set "
            "actor_rollout_ref.actor.calculate_entropy=True"
        )
    return model_output["entropy"]


def band_ppo_loss(
    config: Any,
    model_output: dict,
    data: TensorDict,
    dp_group: Any = None,
    *,
    estimator: str = "sampled",
) -> tuple[torch.Tensor, dict]:
    """verl loss-function signature (``set_loss_fn``): ``ppo_loss`` plus the band term.

    model_output["log_probs"] / ["entropy"] and data[BAND_WEIGHT_KEY] are nested (per
    sample); ``estimator`` picks the band's token entropy (:func:`token_entropy`). The metric
    ``actor/entropy_band_surrogate`` is the band term of this micro-batch, whose gradient is
    the band loss's; the band loss itself, ``actor/entropy_band_loss``, is logged by the
    trainer's advantage step, as in the single-process engine.
    """
    from verl.utils.metric import AggregationType, Metric
    from verl.workers.utils.losses import ppo_loss
    from verl.workers.utils.padding import no_padding_2_padding

    loss, metrics = ppo_loss(config, model_output, data, dp_group)
    if BAND_WEIGHT_KEY not in data.keys():
        raise KeyError(
            f"the actor batch has no {BAND_WEIGHT_KEY!r}: the entropy-band loss needs "
            "G2RPOTrainer's advantage step (launch with openvlthinker-verl)"
        )
    entropy = no_padding_2_padding(token_entropy(model_output, estimator), data)
    padded = data.select("response_mask", BAND_WEIGHT_KEY).to_padded_tensor()
    width = entropy.shape[-1]
    band = entropy_band_term(
        entropy,
        padded[BAND_WEIGHT_KEY][..., :width],
        padded["response_mask"][..., :width],
        dp_size=data["dp_size"],
        batch_num_tokens=data["batch_num_tokens"],
    )
    aggregation = (
        AggregationType.SUM
        if data["dp_size"] > 1 or data["batch_num_tokens"] is not None
        else AggregationType.MEAN
    )
    metrics["actor/entropy_band_surrogate"] = Metric(value=band, aggregation=aggregation)
    return loss + band, metrics
