"""The CPU backend's pieces without a verl run: backend string, settings, platform, the
image-only processor through verl's own loader, the hf rollout server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from openvlthinker.verl_plugin.config import compose_config

REPO = Path(__file__).resolve().parents[2]
TINY_VERL = REPO / "configs" / "tiny_cpu_verl.yaml"


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        ("cpu:gloo,cpu:gloo", "cpu:gloo"),
        ("cpu:gloo,cuda:nccl", "cpu:gloo,cuda:nccl"),
        ("gloo", "gloo"),
        (None, None),
    ],
)
def test_collapse_backend_keeps_one_entry_per_device_type(backend, expected):
    from openvlthinker.verl_plugin.cpu.distributed import collapse_backend

    assert collapse_backend(backend) == expected


def test_the_gpu_path_never_imports_the_cpu_backend(tmp_path):
    """openvlthinker-verl's preparation of the 8B config leaves the CPU package unloaded."""
    code = f"""
import sys
from openvlthinker.verl_plugin.config import compose_config
from openvlthinker.verl_plugin.main import prepare
cfg = compose_config({str(REPO / "configs" / "g2rpo_qwen3vl_8b.yaml")!r},
    ["openvlthinker.tasks={REPO / "configs" / "tasks.yaml"}", "openvlthinker.export_dir={tmp_path}"])
prepare(cfg)
loaded = sorted(m for m in sys.modules if m.startswith("openvlthinker.verl_plugin.cpu"))
print("LOADED", loaded, cfg.trainer.device, cfg.actor_rollout_ref.rollout.name)
"""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("VERL_USE_EXTERNAL_MODULES", None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "LOADED [] cuda vllm" in out.stdout


def test_cpu_settings_force_the_cpu_keys_env_and_logical_gpus(tmp_path, monkeypatch):
    from openvlthinker.verl_plugin.cpu.settings import (
        DATASET_CLS,
        FORCED,
        apply_config,
        apply_environment,
    )

    monkeypatch.setenv("VERL_USE_EXTERNAL_MODULES", "openvlthinker.verl_plugin")
    for key in ("VERL_PLATFORM", "VERL_ENGINE_DEVICE"):
        monkeypatch.delenv(key, raising=False)
    cfg = compose_config(
        TINY_VERL,
        [
            "actor_rollout_ref.rollout.name=vllm",
            "trainer.nnodes=2",
            "trainer.n_gpus_per_node=3",
        ],
    )
    changed = apply_config(cfg)
    assert "actor_rollout_ref.rollout.name=hf" in changed
    from omegaconf import OmegaConf

    for key, value in FORCED.items():
        assert OmegaConf.select(cfg, key) == value, key
    assert cfg.data.custom_cls.path == DATASET_CLS["path"]
    env = apply_environment(cfg)
    assert os.environ["VERL_PLATFORM"] == "cpu" and os.environ["VERL_ENGINE_DEVICE"] == "cuda"
    expected = "openvlthinker.verl_plugin,openvlthinker.verl_plugin.cpu"
    assert env["VERL_USE_EXTERNAL_MODULES"] == expected
    ray_init = cfg.ray_kwargs.ray_init
    assert ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES == expected
    assert ray_init.runtime_env.env_vars.VERL_PLATFORM == "cpu"
    assert (ray_init.address, ray_init.num_gpus, ray_init.num_cpus) == ("local", 6, 16)

    joined = compose_config(TINY_VERL, ["+ray_kwargs.ray_init.address=10.0.0.1:6379"])
    apply_environment(joined)
    assert "num_gpus" not in joined.ray_kwargs.ray_init, "a joined cluster brings its own GPUs"


def test_cpu_platform_is_what_verl_picks_with_verl_platform_cpu():
    from verl.plugin.platform.platform_manager import PlatformRegistry

    import openvlthinker.verl_plugin.cpu  # noqa: F401

    platform = PlatformRegistry.get("cpu")()
    assert (platform.device_name, platform.communication_backend_name()) == ("cpu", "gloo")
    assert platform.ray_resource_options(1) == {"num_gpus": 1}
    assert torch.zeros(2).to(platform.current_device()).device.type == "cpu"
    free, total = platform.device_module.mem_get_info()
    assert 0 < free <= total
    state = platform.device_module.get_rng_state()
    a = torch.rand(3)
    platform.device_module.set_rng_state(state)
    assert torch.equal(a, torch.rand(3))


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from openvlthinker.engine.modeling import TinySpec, ensure_tiny_checkpoint

    return ensure_tiny_checkpoint(TinySpec(), tmp_path_factory.mktemp("tiny"))


def test_verl_hf_processor_gets_the_image_only_processor_with_rope_index(tiny_checkpoint):
    """verl's own loader (AutoProcessor + its class-name dispatch) on the tiny checkpoint."""
    from verl.utils.tokenizer.tokenizer import hf_processor

    import openvlthinker.verl_plugin.cpu  # noqa: F401

    processor = hf_processor(str(tiny_checkpoint))
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert hasattr(processor, "get_rope_index")
    image = Image.fromarray(np.zeros((40, 70, 3), dtype=np.uint8))
    out = processor(text=["<|vision_start|><|image_pad|><|vision_end|>hi"], images=[image])
    assert out["image_grid_thw"].tolist() == [
        [1, 2, 4]
    ]  # 32 x 64 (h x w) after the resize (factor 32)


def test_dataset_images_resize_into_each_images_pixel_range():
    from io import BytesIO

    from openvlthinker.verl_plugin.cpu.vision import load_message_images

    buf = BytesIO()
    Image.fromarray(np.zeros((300, 500, 3), dtype=np.uint8)).save(buf, format="PNG")
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "bytes": buf.getvalue(), "min_pixels": 1024, "max_pixels": 16384},
                {"type": "text", "text": "what?"},
            ],
        }
    ]
    (image,) = load_message_images(messages, image_patch_size=16)
    w, h = image.size
    assert w % 32 == 0 and h % 32 == 0 and 1024 <= w * h <= 16384
    assert load_message_images([{"role": "user", "content": "text only"}], 16) is None


def test_hf_rollout_server_samples_no_vision_token_and_scores_at_the_temperature(
    tiny_checkpoint,
):
    """The server's log-probs are the policy's at the sampling temperature (a teacher-forced
    forward pass gives the same numbers), images included; weights load by name."""
    from verl.workers.config import HFModelConfig

    import openvlthinker.verl_plugin.cpu  # noqa: F401
    from openvlthinker.engine.modeling import vision_token_ids
    from openvlthinker.verl_plugin.cpu.rollout import HFRolloutServer

    model_config = HFModelConfig(path=str(tiny_checkpoint))
    server = HFRolloutServer(SimpleNamespace(name="hf", response_length=12), model_config, 0)
    processor = model_config.processor
    image = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8"))
    text = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Read it.<|im_end|>\n"
    inputs = processor(text=[text + "<|im_start|>assistant\n"], images=[image], return_tensors="pt")
    prompt = inputs["input_ids"][0].tolist()
    torch.manual_seed(0)
    out = asyncio.run(
        server.generate(
            "r0",
            prompt_ids=prompt,
            sampling_params={"temperature": 0.7, "top_p": 1.0, "top_k": -1, "logprobs": True},
            image_data=[image],
        )
    )
    assert 0 < len(out.token_ids) <= 12 and len(out.log_probs) == len(out.token_ids)
    assert not set(out.token_ids) & set(vision_token_ids(processor.tokenizer))
    ids = torch.tensor([prompt + out.token_ids])
    with torch.no_grad():
        logits = server.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            pixel_values=inputs["pixel_values"],
            image_grid_thw=inputs["image_grid_thw"],
            mm_token_type_ids=torch.tensor(processor.create_mm_token_type_ids(ids.tolist())),
        ).logits[0, len(prompt) - 1 : -1]
    want = torch.log_softmax(logits / 0.7, -1).gather(-1, torch.tensor(out.token_ids)[:, None])
    torch.testing.assert_close(torch.tensor(out.log_probs), want[:, 0], atol=1e-4, rtol=1e-4)

    state = {k: v.clone() for k, v in server.model.state_dict().items()}
    name = next(iter(state))
    state[name] = state[name] + 1.0
    assert asyncio.run(server.update_weights(state, 7)) == len(state)
    assert asyncio.run(server.stats())["global_steps"] == 7
    del state[name]
    with pytest.raises(KeyError, match=r"replica 0: weight sync has 1 missing"):
        asyncio.run(server.update_weights(state, 8))
