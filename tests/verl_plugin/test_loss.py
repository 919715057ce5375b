"""The band-term loss wrapper on synthetic nested micro-batches, against verl's ppo_loss."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.workers.config import FSDPActorConfig
from verl.workers.utils.losses import ppo_loss

from openvlthinker.shaping import entropy_band_loss
from openvlthinker.step import TaskBands, band_weights
from openvlthinker.verl_plugin.loss import BAND_WEIGHT_KEY, band_ppo_loss

PROMPT_LENS = [3, 2, 4, 2, 3, 2]
RESPONSE_LENS = [4, 2, 3, 5, 1, 3]
TASK = torch.tensor([0, 0, 1, 1, 2, 2])  # grounding, math, ocr
BANDS = TaskBands(
    names=("grounding", "math", "ocr"),
    h_min=torch.tensor([0.2, 0.2, 0.2]),
    h_max=torch.tensor([0.6, 0.6, 0.6]),
    coef=torch.tensor([0.02, 0.05, 0.03]),
)


def actor_config(use_kl: bool = True) -> FSDPActorConfig:
    return FSDPActorConfig(
        strategy="fsdp",
        ppo_mini_batch_size=2,
        ppo_micro_batch_size_per_gpu=2,
        rollout_n=1,
        use_kl_loss=use_kl,
        kl_loss_coef=0.1,
        kl_loss_type="low_var_kl",
    )


def nested(rows: list[torch.Tensor]) -> torch.Tensor:
    return torch.nested.as_nested_tensor(rows, layout=torch.jagged)


def response_entropy(level: list[float]) -> list[torch.Tensor]:
    """Token entropies per response: row i holds values around level[task_i]."""
    g = torch.Generator().manual_seed(0)
    return [
        level[int(TASK[i])] + 0.01 * torch.rand(n, generator=g, dtype=torch.float64)
        for i, n in enumerate(RESPONSE_LENS)
    ]


def make_batch(
    resp_entropy: list[torch.Tensor], rows: list[int], num_tokens: int, *, leaf: str = "entropy"
):
    """A micro-batch of ``rows`` in verl's no-padding layout; model entropy is a leaf so its
    gradient can be read per token. ``leaf="sampled"``: the response tokens' log-probs are
    ``-resp_entropy`` and -log_probs is the leaf returned instead."""
    sampled = [] if leaf == "sampled" else None
    g = torch.Generator().manual_seed(1)
    full_entropy, full_logp, fields = [], [], {k: [] for k in ("prompts", "responses")}
    extra = {k: [] for k in ("response_mask", "old_log_probs", "advantages", "ref_log_prob")}
    weights_all, _ = band_weights(
        torch.nn.utils.rnn.pad_sequence(resp_entropy, batch_first=True),
        torch.nn.utils.rnn.pad_sequence([torch.ones(n) for n in RESPONSE_LENS], batch_first=True),
        TASK,
        BANDS,
    )
    band = []
    for i in rows:
        p, r = PROMPT_LENS[i], RESPONSE_LENS[i]
        fields["prompts"].append(torch.arange(p))
        fields["responses"].append(torch.arange(r))
        logp = -torch.rand(p + r, generator=g, dtype=torch.float64)
        full_logp.append(logp)
        if sampled is not None:
            minus = torch.rand(p + r, generator=g, dtype=torch.float64)
            minus[p - 1 : p - 1 + r] = resp_entropy[i]
            sampled.append(minus)
        # model outputs are shifted left by one: response token j sits at position p - 1 + j
        ent = torch.zeros(p + r, dtype=torch.float64)
        ent[p - 1 : p - 1 + r] = resp_entropy[i]
        full_entropy.append(ent)
        extra["response_mask"].append(torch.ones(r, dtype=torch.int64))
        extra["old_log_probs"].append(logp[p - 1 : p - 1 + r] - 0.05)
        extra["advantages"].append(torch.full((r,), float(i % 3) - 1.0, dtype=torch.float64))
        extra["ref_log_prob"].append(logp[p - 1 : p - 1 + r] + 0.1)
        band.append(torch.full((r,), float(weights_all[i]), dtype=torch.float64))
    entropy_values = torch.cat(full_entropy).requires_grad_(True)
    logp_values = torch.cat(full_logp)
    if sampled is not None:
        # the sampled-token entropy -log pi(y) is the band's estimate: log-probs are the leaf
        minus_logp = torch.cat(sampled).requires_grad_(True)
        logp_values = -minus_logp
    offsets = torch.tensor([0] + [PROMPT_LENS[i] + RESPONSE_LENS[i] for i in rows]).cumsum(0)
    model_output = {
        "log_probs": torch.nested.nested_tensor_from_jagged(logp_values, offsets),
        "entropy": torch.nested.nested_tensor_from_jagged(entropy_values, offsets),
    }
    data = tu.get_tensordict(
        {k: nested(v) for k, v in {**fields, **extra}.items()} | {BAND_WEIGHT_KEY: nested(band)},
        non_tensor_dict={"dp_size": 1, "batch_num_tokens": num_tokens, "global_batch_size": None},
    )
    if sampled is not None:
        return model_output, data, minus_logp
    return model_output, data, entropy_values


def response_grad(grad: torch.Tensor, rows: list[int]) -> list[torch.Tensor]:
    out, start = [], 0
    for i in rows:
        p, r = PROMPT_LENS[i], RESPONSE_LENS[i]
        out.append(grad[start + p - 1 : start + p - 1 + r])
        start += p + r
    return out


ALL = list(range(len(RESPONSE_LENS)))
N = sum(RESPONSE_LENS)


def test_only_out_of_band_tasks_get_gradient_with_the_right_sign():
    # grounding above its band (0.9 > 0.6), math inside (0.4), ocr below (0.05 < 0.2)
    ent = response_entropy([0.9, 0.4, 0.05])
    model_output, data, leaf = make_batch(ent, ALL, N)
    band_loss, _ = band_ppo_loss(actor_config(), model_output, data, estimator="full")
    base_loss, _ = ppo_loss(actor_config(), model_output, data.clone())
    (band_loss - base_loss).backward()
    grads = response_grad(leaf.grad, ALL)
    n_task = [6, 8, 4]
    expected = [0.02 * N / n_task[0] / N, 0.0, -0.03 * N / n_task[2] / N]
    for i in ALL:
        want = torch.full((RESPONSE_LENS[i],), expected[int(TASK[i])], dtype=torch.float64)
        torch.testing.assert_close(grads[i], want)
    assert all(g.item() > 0 for g in grads[0]) and all(g.item() < 0 for g in grads[4])


def whole_batch_hinge_gradient(ent: list[torch.Tensor]) -> torch.Tensor:
    """Per-token gradient of the exact band (shaping.entropy_band_loss) over the whole batch."""
    token = [e.clone().requires_grad_(True) for e in ent]
    padded = torch.nn.utils.rnn.pad_sequence(token, batch_first=True)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(n) for n in RESPONSE_LENS], batch_first=True)
    loss, _, _ = entropy_band_loss(padded, mask, TASK, BANDS.h_min, BANDS.h_max, BANDS.coef)
    loss.backward()
    return torch.cat([t.grad for t in token])


def test_gradient_matches_the_whole_batch_hinge():
    ent = response_entropy([0.9, 0.4, 0.05])
    model_output, data, leaf = make_batch(ent, ALL, N)
    band_loss, _ = band_ppo_loss(actor_config(), model_output, data, estimator="full")
    base_loss, _ = ppo_loss(actor_config(), model_output, data.clone())
    (band_loss - base_loss).backward()
    ours = torch.cat(response_grad(leaf.grad, ALL))

    torch.testing.assert_close(ours, whole_batch_hinge_gradient(ent))


def test_zero_when_every_task_is_inside_its_band():
    ent = response_entropy([0.3, 0.4, 0.5])
    model_output, data, leaf = make_batch(ent, ALL, N)
    band_loss, metrics = band_ppo_loss(actor_config(), model_output, data, estimator="full")
    base_loss, _ = ppo_loss(actor_config(), model_output, data.clone())
    torch.testing.assert_close(band_loss, base_loss)
    assert float(metrics["actor/entropy_band_surrogate"].values[0]) == 0.0
    band_loss.backward()
    assert torch.count_nonzero(leaf.grad) == 0  # entropy_coeff is 0: no entropy gradient at all


def test_kl_term_and_policy_metrics_unchanged():
    ent = response_entropy([0.9, 0.4, 0.05])
    model_output, data, _ = make_batch(ent, ALL, N)
    _, ours = band_ppo_loss(actor_config(use_kl=True), model_output, data, estimator="full")
    _, base = ppo_loss(actor_config(use_kl=True), model_output, data.clone())
    assert float(base["kl_loss"].values[0]) > 0
    for key in ("kl_loss", "actor/pg_loss"):
        torch.testing.assert_close(
            torch.as_tensor(ours[key].values[0]), torch.as_tensor(base[key].values[0])
        )
    assert ours["kl_coef"] == base["kl_coef"] == 0.1


def test_micro_batch_split_gives_the_same_total():
    ent = response_entropy([0.9, 0.4, 0.05])
    whole_out, whole, _ = make_batch(ent, ALL, N)
    total, _ = band_ppo_loss(actor_config(), whole_out, whole, estimator="full")
    base, _ = ppo_loss(actor_config(), whole_out, whole.clone())
    parts = 0.0
    for rows in ([0, 3, 4], [1, 2, 5]):
        out, data, _ = make_batch(ent, rows, N)
        loss, _ = band_ppo_loss(actor_config(), out, data, estimator="full")
        b, _ = ppo_loss(actor_config(), out, data.clone())
        parts = parts + (loss - b)
    torch.testing.assert_close(parts, total - base)


def test_missing_weight_or_entropy_fails_with_the_fix():
    ent = response_entropy([0.9, 0.4, 0.05])
    model_output, data, _ = make_batch(ent, ALL, N)
    with pytest.raises(KeyError, match="entropy_band_weight"):
        band_ppo_loss(actor_config(), model_output, data.exclude(BAND_WEIGHT_KEY), estimator="full")
    with pytest.raises(ValueError, match="calculate_entropy=True"):
        band_ppo_loss(
            actor_config(), {"log_probs": model_output["log_probs"]}, data, estimator="full"
        )
    assert isinstance(data, TensorDict)


def test_sampled_estimator_puts_the_band_on_minus_log_probs():
    # method.md section 3: the band's H_t is the token mean of -log pi(y) of the sampled tokens
    ent = response_entropy([0.9, 0.4, 0.05])
    model_output, data, minus_logp = make_batch(ent, ALL, N, leaf="sampled")
    band_loss, metrics = band_ppo_loss(actor_config(), model_output, data)
    base_loss, _ = ppo_loss(actor_config(), model_output, data.clone())
    (band_loss - base_loss).backward()
    ours = torch.cat(response_grad(minus_logp.grad, ALL))

    torch.testing.assert_close(ours, whole_batch_hinge_gradient(ent))
    # the full-vocabulary entropy is not read: a model output without it is fine
    no_entropy = {"log_probs": model_output["log_probs"]}
    again, _ = band_ppo_loss(actor_config(), no_entropy, data)
    torch.testing.assert_close(again, band_loss)
    band = torch.cat([w * e for w, e in zip(data[BAND_WEIGHT_KEY].unbind(), ent)]).sum() / N
    got = float(torch.as_tensor(metrics["actor/entropy_band_surrogate"].values[0]))
    assert got == pytest.approx(float(band), rel=1e-6) and got != 0


def test_unknown_estimator_fails_naming_it():
    ent = response_entropy([0.9, 0.4, 0.05])
    model_output, data, _ = make_batch(ent, ALL, N)
    with pytest.raises(ValueError, match=r"openvlthinker\.entropy_band\.estimator 'vocab'"):
        band_ppo_loss(actor_config(), model_output, data, estimator="vocab")
