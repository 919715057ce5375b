import math

import pytest
import torch
from torch.testing import assert_close

from openvlthinker.engine.loss import (
    aggregate,
    aggregation_denominator,
    kl_penalty,
    ppo_clip_token_loss,
)


def _loss(log_probs, old, adv, mask, dual=None):
    return ppo_clip_token_loss(
        torch.tensor(log_probs),
        torch.tensor(old),
        torch.tensor(adv),
        torch.tensor(mask),
        clip_low=0.2,
        clip_high=0.3,
        clip_dual=dual,
    )


def test_ppo_clip_matches_formula_by_hand():
    # ratios e^0 = 1, e^0.5 = 1.6487 (clipped at 1.3 for A > 0), e^-0.5 = 0.6065 (A < 0: clipped at 0.8)
    out = _loss([[0.0, 0.5, -0.5]], [[0.0, 0.0, 0.0]], [[1.0, 1.0, -1.0]], [[1, 1, 1]])
    r = math.exp(-0.5)
    expected = torch.tensor([[-1.0, -1.3, max(r, 0.8)]])
    assert_close(out.token_loss, expected)
    assert out.clipfrac == pytest.approx(2 / 3)


def test_ppo_clip_masks_tokens_in_diagnostics_and_aggregation():
    # An extreme ratio on a masked position must not leak into the loss or the metrics.
    out = _loss([[0.1, 30.0]], [[0.0, 0.0]], [[2.0, 2.0]], [[1, 0]])
    mask = torch.tensor([[1, 0]])
    loss = aggregate(
        out.token_loss, mask, "token-mean", aggregation_denominator(mask, "token-mean")
    )
    assert_close(loss, torch.tensor(-2.0 * math.exp(0.1)))
    assert out.clipfrac == 0.0 and out.approx_kl == pytest.approx(-0.1)


def test_dual_clip_caps_negative_advantage_loss():
    # ratio e^2 = 7.39 with A = -1: plain PPO loss 7.39, dual clip caps it at 3.
    out = _loss([[2.0, 2.0]], [[0.0, 0.0]], [[-1.0, 1.0]], [[1, 1]], dual=3.0)
    assert_close(out.token_loss, torch.tensor([[3.0, -1.3]]))
    assert out.clipfrac_dual == pytest.approx(0.5)


def test_advantage_vector_broadcasts_over_tokens():
    a = _loss([[0.1, 0.2]], [[0.0, 0.0]], [2.0], [[1, 1]]).token_loss
    b = _loss([[0.1, 0.2]], [[0.0, 0.0]], [[2.0, 2.0]], [[1, 1]]).token_loss
    assert_close(a, b)


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"])
def test_micro_batch_losses_sum_to_the_mini_batch_loss(mode):
    torch.manual_seed(0)
    values = torch.randn(6, 5)
    mask = (torch.rand(6, 5) > 0.3).long()
    mask[:, 0] = 1
    denom = aggregation_denominator(mask, mode)
    whole = aggregate(values, mask, mode, denom)
    parts = sum(aggregate(values[i : i + 2], mask[i : i + 2], mode, denom) for i in (0, 2, 4))
    assert_close(parts, whole)
    m = mask.float()
    oracle = {
        "token-mean": (values * m).sum() / m.sum(),
        "seq-mean-token-mean": ((values * m).sum(1) / m.sum(1)).mean(),
        "seq-mean-token-sum": (values * m).sum(1).mean(),
    }[mode]
    assert_close(whole, oracle)


def test_token_mean_is_not_a_mean_of_micro_batch_means():
    values = torch.tensor([[1.0, 1.0, 1.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    denom = aggregation_denominator(mask, "token-mean")
    total = aggregate(values[:1], mask[:1], "token-mean", denom) + aggregate(
        values[1:], mask[1:], "token-mean", denom
    )
    assert_close(total, torch.tensor(7.0 / 4))  # not (1 + 4) / 2


def test_kl_estimators():
    lp, ref = torch.tensor([0.0, -1.0]), torch.tensor([-0.5, -1.0])
    assert_close(kl_penalty(lp, ref, "kl"), torch.tensor([0.5, 0.0]))
    assert_close(kl_penalty(lp, ref, "mse"), torch.tensor([0.125, 0.0]))
    assert_close(kl_penalty(lp, ref, "low_var_kl"), torch.tensor([math.exp(-0.5) + 0.5 - 1, 0.0]))
    with pytest.raises(ValueError, match=r"actor.kl_loss_type 'k9' is unknown"):
        kl_penalty(lp, ref, "k9")
    with pytest.raises(ValueError, match=r"actor.loss_agg_mode 'mean' is unknown"):
        aggregation_denominator(torch.ones(1, 1), "mean")
