"""LoRA and a frozen vision tower on verl 0.9.1: the configs, the key mapping, verl's
ref-in-actor placement, the vision-tower freeze hook and the band loss on a LoRA policy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from omegaconf import OmegaConf

from openvlthinker.engine import lora
from openvlthinker.engine.config import TrainConfig
from openvlthinker.engine.modeling import TinySpec, build_tiny_model, build_tiny_tokenizer
from openvlthinker.verl_plugin import vision
from openvlthinker.verl_plugin.config import LORA_KEYS, compose_config, validate, verl_defaults

REPO = Path(__file__).resolve().parents[2]
TASKS = f"openvlthinker.tasks={REPO / 'configs' / 'tasks.yaml'}"
LORA_8B = REPO / "configs" / "g2rpo_qwen3vl_8b_lora.yaml"
ONE_GPU = REPO / "configs" / "g2rpo_qwen3vl_2b_1gpu.yaml"


def flat(node, prefix: str = "") -> dict:
    out = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        out.update(flat(value, path + ".") if isinstance(value, dict) else {path: value})
    return out


@pytest.mark.parametrize("config", [LORA_8B, ONE_GPU], ids=lambda p: p.stem)
def test_lora_configs_pass_check_only(config):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "openvlthinker.verl_plugin.main",
            "--config-path",
            str(config.parent),
            "--config-name",
            config.stem,
            TASKS,
            "openvlthinker.check_only=true",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    cfg = yaml.safe_load(out.stdout)
    model, actor = cfg["actor_rollout_ref"]["model"], cfg["actor_rollout_ref"]["actor"]
    assert (model["lora_rank"], model["lora_alpha"]) == (64, 32)
    assert model["target_modules"] == "all-linear"
    assert model["exclude_modules"] == lora.EXCLUDE_VISION_TOWER  # the engine's default
    assert actor["freeze_vision_tower"] is True
    if config == ONE_GPU:
        assert model["path"] == "Qwen/Qwen3-VL-2B-Instruct"
        assert cfg["trainer"]["n_gpus_per_node"] * cfg["trainer"]["nnodes"] == 1
        assert cfg["actor_rollout_ref"]["rollout"]["tensor_model_parallel_size"] == 1
        assert cfg["actor_rollout_ref"]["hybrid_engine"] is True  # rollout and actor colocated


def test_the_8b_lora_config_is_the_8b_config_plus_lora():
    full = flat(OmegaConf.to_container(compose_config(REPO / "configs/g2rpo_qwen3vl_8b.yaml")))
    with_lora = flat(OmegaConf.to_container(compose_config(LORA_8B)))
    changed = {k for k in full.keys() | with_lora.keys() if full.get(k) != with_lora.get(k)}
    assert changed == {
        "actor_rollout_ref.model.lora_rank",
        "actor_rollout_ref.model.lora_alpha",
        "actor_rollout_ref.model.exclude_modules",
        "actor_rollout_ref.actor.optim.lr",
        "actor_rollout_ref.actor.freeze_vision_tower",
        "actor_rollout_ref.rollout.load_format",
        "actor_rollout_ref.rollout.layered_summon",
        "trainer.experiment_name",
    }


def test_engine_keys_map_to_verl_keys_with_the_same_defaults_where_verl_has_one():
    engine = OmegaConf.structured(TrainConfig)
    defaults = verl_defaults()
    for engine_key, verl_key in LORA_KEYS.items():
        assert OmegaConf.select(engine, engine_key, default="missing") != "missing", engine_key
        assert OmegaConf.select(defaults, verl_key, default="missing") != "missing", verl_key
    same = ["lora_rank", "lora_alpha", "target_modules", "lora_adapter_path"]
    for key in [f"model.{k}" for k in same] + ["model.freeze_vision_tower"]:
        assert OmegaConf.select(engine, key) == OmegaConf.select(defaults, LORA_KEYS[key]), key


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["actor_rollout_ref.model.lora_rank=0", "actor_rollout_ref.model.lora_adapter_path=/a"],
            r"lora_adapter_path needs actor_rollout_ref.model.lora_rank > 0",
        ),
        (
            ["actor_rollout_ref.model.exclude_modules=null"],
            r"freeze_vision_tower=true with target_modules=all-linear and no exclude_modules",
        ),
        (
            ["actor_rollout_ref.model.lora_rank=0"],
            r"freeze_vision_tower=true without LoRA on FSDP1 needs .*use_orig_params=true",
        ),
    ],
)
def test_lora_and_freeze_settings_verl_would_train_wrongly_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        validate(compose_config(LORA_8B, [TASKS, *overrides]))


def test_a_frozen_tower_without_lora_passes_on_fsdp2_or_with_orig_params():
    for extra in (
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.actor.fsdp_config.use_orig_params=true",
    ):
        validate(compose_config(LORA_8B, [TASKS, "actor_rollout_ref.model.lora_rank=0", extra]))


def test_with_lora_verl_puts_the_reference_in_the_actor():
    """verl's own V1 worker mapping: no reference worker (no second model copy) with LoRA."""
    from verl.trainer.ppo.utils import Role

    from openvlthinker.verl_plugin.trainer import G2RPOTrainer

    roles = {}
    for rank in (64, 0):
        cfg = compose_config(
            LORA_8B,
            [
                TASKS,
                "actor_rollout_ref.actor.use_kl_loss=true",
                f"actor_rollout_ref.model.lora_rank={rank}",
            ],
        )
        trainer = object.__new__(G2RPOTrainer)
        trainer.config = cfg
        trainer._init_resource_pool_mgr()
        roles[rank] = set(trainer.role_worker_mapping)
    assert roles[64] == {Role.ActorRollout}
    assert roles[0] == {Role.ActorRolloutRef}


@pytest.fixture
def tiny_qwen3_model():
    return build_tiny_model(TinySpec(), build_tiny_tokenizer())


def test_freeze_hook_freezes_the_actors_vision_tower_only(monkeypatch, tiny_qwen3_model):
    from types import SimpleNamespace

    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    monkeypatch.setattr(FSDPEngine, "_build_module", lambda self: tiny_qwen3_model)
    vision.install_vision_freeze()
    vision.install_vision_freeze()  # idempotent: one wrapper

    def engine(forward_only=False, model_type="language_model"):
        return SimpleNamespace(
            engine_config=SimpleNamespace(forward_only=forward_only),
            model_config=SimpleNamespace(model_type=model_type),
        )

    def frozen_after(env: str | None, **kind) -> bool:
        tiny_qwen3_model.requires_grad_(True)
        if env is None:
            monkeypatch.delenv(vision.FREEZE_ENV, raising=False)
        else:
            monkeypatch.setenv(vision.FREEZE_ENV, env)
        module = FSDPEngine._build_module(engine(**kind))
        tower = lora.vision_tower(module)
        assert all(p.requires_grad for n, p in module.named_parameters() if "visual" not in n)
        return not any(p.requires_grad for p in tower.parameters())

    assert frozen_after("1")
    assert not frozen_after(None)
    assert not frozen_after("1", forward_only=True)  # the reference engine
    assert not frozen_after("1", model_type="value_model")  # a critic


def test_prepare_sends_the_freeze_to_every_ray_process(tmp_path, monkeypatch):
    from openvlthinker.verl_plugin.main import prepare

    monkeypatch.delenv(vision.FREEZE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    cfg = compose_config(LORA_8B, [TASKS, f"openvlthinker.export_dir={tmp_path}"])
    prepare(cfg)
    assert os.environ[vision.FREEZE_ENV] == "1"
    assert cfg.ray_kwargs.ray_init.runtime_env.env_vars[vision.FREEZE_ENV] == "1"


def test_band_loss_on_a_lora_policy_trains_adapters_only(tiny_qwen3_model):
    """verl's real ppo_loss + our band term on log-probs of a peft model built with the
    config's LoRA keys: gradients reach the adapters and nothing else, and the KL reference
    (adapters disabled, verl's no_lora_adapter) scores exactly as the base model."""
    from verl.utils import tensordict_utils as tu
    from verl.workers.config import FSDPActorConfig

    from openvlthinker.verl_plugin.loss import BAND_WEIGHT_KEY, band_ppo_loss

    model_cfg = compose_config(LORA_8B, [TASKS]).actor_rollout_ref.model
    torch.manual_seed(0)
    base = build_tiny_model(TinySpec(), build_tiny_tokenizer())
    policy = lora.apply_lora(tiny_qwen3_model, model_cfg)  # verl's keys are the engine's
    with torch.no_grad():  # move the adapters off zero so the policy differs from the base
        for n, p in policy.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    prompts, responses = [[5, 6, 7], [8, 9]], [[10, 11, 12, 13], [14, 15]]

    def full_log_probs(model) -> list[torch.Tensor]:
        out = []
        for p, r in zip(prompts, responses):
            ids = torch.tensor([p + r])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].double(), -1)
            token = logp.gather(-1, ids[0, 1:, None])[:, 0]
            out.append(torch.cat([token, token.new_zeros(1)]))  # response j at p - 1 + j
        return out

    def response_part(rows: list[torch.Tensor]) -> list[torch.Tensor]:
        return [x[len(p) - 1 : len(p) - 1 + len(r)] for x, p, r in zip(rows, prompts, responses)]

    with torch.no_grad(), lora.reference(policy):
        ref = response_part(full_log_probs(policy))
    with torch.no_grad():
        expected = response_part(full_log_probs(base.requires_grad_(False)))
    for a, b in zip(ref, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)

    logp = full_log_probs(policy)
    nested = lambda rows: torch.nested.as_nested_tensor(rows, layout=torch.jagged)  # noqa: E731
    old = [x.detach() - 0.05 for x in response_part(logp)]
    data = tu.get_tensordict(
        {
            "prompts": nested([torch.tensor(p) for p in prompts]),
            "responses": nested([torch.tensor(r) for r in responses]),
            "response_mask": nested([torch.ones(len(r), dtype=torch.int64) for r in responses]),
            "old_log_probs": nested(old),
            "advantages": nested(
                [torch.full((len(r),), a) for r, a in zip(responses, (1.0, -1.0))]
            ),
            "ref_log_prob": nested(ref),
            BAND_WEIGHT_KEY: nested([torch.full((len(r),), 0.5) for r in responses]),
        },
        non_tensor_dict={"dp_size": 1, "batch_num_tokens": 6, "global_batch_size": None},
    )
    config = FSDPActorConfig(
        strategy="fsdp",
        ppo_mini_batch_size=2,
        ppo_micro_batch_size_per_gpu=2,
        rollout_n=1,
        use_kl_loss=True,
        kl_loss_coef=0.1,
        kl_loss_type="low_var_kl",
    )
    offsets = torch.tensor([0] + [len(p) + len(r) for p, r in zip(prompts, responses)]).cumsum(0)
    output = {"log_probs": torch.nested.nested_tensor_from_jagged(torch.cat(logp), offsets)}
    loss, metrics = band_ppo_loss(config, output, data)
    loss.backward()
    assert float(torch.as_tensor(metrics["actor/entropy_band_surrogate"].values[0])) != 0.0
    grads = {n: p.grad for n, p in policy.named_parameters()}
    assert all(g is None for n, g in grads.items() if "lora_" not in n)
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items() if "lora_B" in n)
