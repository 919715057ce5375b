"""LoRA (peft) and a frozen vision tower in the single-process engine, on the tiny Qwen3-VL."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from openvlthinker.engine import lora
from openvlthinker.engine.config import ConfigError
from openvlthinker.engine.modeling import load_policy
from openvlthinker.engine.trainer import Trainer
from tests.engine.conftest import fit_until_killed

LORA = ("model.lora_rank=4", "model.lora_alpha=8", "actor.lr=0.02")


def base_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The base weights of a (peft-wrapped) model under the plain model's parameter names."""
    out = {}
    for name, p in model.named_parameters():
        if "lora_" in name:
            continue
        out[name.removeprefix("base_model.model.").replace(".base_layer", "")] = p.detach()
    return out


def adapter_parameters(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}


def rollout_scores(trainer: Trainer, model: torch.nn.Module, rollout) -> torch.Tensor:
    return trainer.policy_io.log_probs(model, rollout).log_probs


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.lora_rank=-1", r"model.lora_rank=-1: must be >= 0"),
        ("model.lora_alpha=0", r"model.lora_alpha=0: must be > 0"),
        ("model.target_modules=[q_proj,3]", r"model.target_modules=\['q_proj', 3\]"),
        ("model.exclude_modules=7", r"model.exclude_modules=7: use a regex"),
        ("trainer.save_merged=true", r"trainer.save_merged=True: needs model.lora_rank > 0"),
        ("model.lora_adapter_path=/nonexistent", r"needs model.lora_rank > 0"),
    ],
)
def test_bad_lora_keys_name_the_key(engine_config, override, message):
    with pytest.raises(ConfigError, match=message):
        engine_config(override)


def test_adapter_path_must_be_a_peft_folder(engine_config, tmp_path):
    with pytest.raises(ConfigError, match=r"model.lora_adapter_path=.*no adapter_config.json"):
        engine_config("model.lora_rank=4", f"model.lora_adapter_path={tmp_path}")


def test_default_targets_are_the_language_models_linear_layers(engine_config, tiny_cache):
    cfg = engine_config(*LORA)
    trainer = Trainer(cfg)
    adapted = lora.adapted_modules(trainer.policy)
    # 2 decoder layers x (q, k, v, o, gate, up, down); no vision layer, no LM head
    assert len(adapted) == 14
    assert all(n.startswith("model.language_model.layers.") for n in adapted)
    trainable = {n for n, p in trainer.policy.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    # rank x (in + out) per layer: q 64+64, k 64+32, v 64+32, o 64+64, gate/up/down 64+128
    assert lora.parameter_counts(trainer.policy)[0] == 2 * 4 * (128 + 96 + 96 + 128 + 3 * 192)
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert optimised == {id(p) for p in lora.trainable_parameters(trainer.policy)}
    # adapters start from trainer.seed, whatever the global RNG did before
    torch.rand(100)
    again = adapter_parameters(Trainer(cfg).policy)
    assert all(torch.equal(v, again[n]) for n, v in adapter_parameters(trainer.policy).items())


def test_lora_trains_adapters_only_and_the_reference_is_the_base_model(engine_config, caplog):
    cfg = engine_config(*LORA, "actor.use_kl_loss=true", "trainer.total_steps=2")
    with caplog.at_level(logging.INFO, logger="openvlthinker.engine.setup"):
        trainer = Trainer(cfg)
    trainable, total = lora.parameter_counts(trainer.policy)
    assert f"trainable parameters: {trainable} of {total} (" in caplog.text
    assert "LoRA rank 4 on 14 layers" in caplog.text
    assert trainer.ref_policy is None  # no second copy of the model
    start = adapter_parameters(trainer.policy)
    assert all(not p.any() for n, p in start.items() if "lora_B" in n)  # peft: B starts at 0
    trainer.fit()

    base = load_policy(trainer.model_path, torch.float32, "cpu")
    after = base_parameters(trainer.policy)
    assert after.keys() == dict(base.named_parameters()).keys()
    for name, p in base.named_parameters():
        assert torch.equal(p, after[name]), name  # bit-identical after two steps
    end = adapter_parameters(trainer.policy)
    assert all(not torch.equal(start[n], end[n]) for n in end if "lora_B" in n)

    batch, _ = trainer.collect()
    old = trainer.old_log_probs(batch)
    mask = batch.rollout.response_mask.bool()
    reference = rollout_scores(trainer, base, batch.rollout)
    torch.testing.assert_close(old.ref_log_probs[mask], reference[mask], rtol=0, atol=1e-6)
    # the adapters do move the policy away from that reference
    assert (old.log_probs - old.ref_log_probs)[mask].abs().max() > 1e-4


def test_frozen_vision_tower_gets_no_gradient(engine_config):
    trainer = Trainer(engine_config("model.freeze_vision_tower=true", "actor.lr=0.02"))
    tower = lora.vision_tower(trainer.policy)
    tower_ids = {id(p) for p in tower.parameters()}
    optimised = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert tower_ids and not tower_ids & optimised
    before = {n: p.detach().clone() for n, p in trainer.policy.named_parameters()}
    batch, _ = trainer.collect()
    advantages = trainer.advantage(batch)
    old = trainer.old_log_probs(batch)
    micro = batch.rollout.select(torch.arange(batch.rollout.size))
    trainer.policy_io.log_probs(trainer.policy, micro, with_grad=True).log_probs.sum().backward()
    assert all(p.grad is None for p in tower.parameters())
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.update(batch, advantages, old)
    for name, p in trainer.policy.named_parameters():
        changed = not torch.equal(before[name], p)
        if ".visual." in f".{name}":
            assert not changed, name
    lm = [n for n in before if n.startswith("model.language_model.")]
    assert any(not torch.equal(before[n], dict(trainer.policy.named_parameters())[n]) for n in lm)


def test_freezing_a_tower_that_carries_adapters_is_refused(engine_config):
    cfg = engine_config(*LORA, "model.freeze_vision_tower=true", "model.exclude_modules=null")
    with pytest.raises(ValueError, match=r"model.freeze_vision_tower=true but .* vision tower"):
        Trainer(cfg)


def test_merged_model_reproduces_the_adapted_policy_and_loads_as_model_path(
    engine_config, tmp_path
):
    cfg = engine_config(
        *LORA, "trainer.total_steps=1", "trainer.save_freq=1", "trainer.save_merged=true"
    )
    trainer = Trainer(cfg)
    trainer.fit()
    merged_dir = tmp_path / "run" / "merged"
    batch, _ = trainer.collect()
    adapted = rollout_scores(trainer, trainer.policy, batch.rollout)
    mask = batch.rollout.response_mask.bool()

    from transformers import AutoModelForImageTextToText

    merged = AutoModelForImageTextToText.from_pretrained(merged_dir, dtype=torch.float32)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    # float32 merge W + (alpha / r) B A: differences are rounding only
    torch.testing.assert_close(
        rollout_scores(trainer, merged, batch.rollout)[mask], adapted[mask], rtol=0, atol=1e-5
    )
    via_path = Trainer(engine_config(f"model.path={merged_dir}", out="from_merged"))
    torch.testing.assert_close(
        rollout_scores(via_path, via_path.policy, batch.rollout)[mask],
        adapted[mask],
        rtol=0,
        atol=1e-5,
    )

    # a checkpoint's model/ holds the adapter, and model.lora_adapter_path continues from it
    adapter_dir = tmp_path / "run" / "checkpoints" / "global_step_1" / "model"
    assert (adapter_dir / "adapter_model.safetensors").is_file()
    saved = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert (saved["r"], saved["lora_alpha"]) == (4, 8)
    again = Trainer(engine_config(*LORA, f"model.lora_adapter_path={adapter_dir}", out="again"))
    for name, value in adapter_parameters(trainer.policy).items():
        assert torch.equal(value, dict(again.policy.named_parameters())[name]), name
    assert any(p.requires_grad for p in again.policy.parameters())


@pytest.mark.slow
def test_lora_kill_and_resume_continues_exactly(engine_config, tmp_path):
    common = (*LORA, "trainer.total_steps=3", "trainer.save_freq=1", "actor.use_kl_loss=true")
    straight = Trainer(engine_config(*common, out="straight"))
    history = straight.fit()

    fit_until_killed(Trainer(engine_config(*common, out="killed")), step=2)
    resumed = Trainer(engine_config(*common, "trainer.resume_mode=auto", out="killed"))
    again = resumed.fit()
    assert resumed.step == 3
    for a, b in zip(history, again):
        stable = [k for k in a if not k.startswith(("timing/", "perf/"))]
        assert {k: a[k] for k in stable} == {k: b[k] for k in stable}
    for (n, p), (m, q) in zip(
        straight.policy.named_parameters(), resumed.policy.named_parameters()
    ):
        assert n == m and torch.equal(p, q), n
