"""What --checkpoint accepts; a verl FSDP checkpoint merged by verl's own model merger."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from openvlthinker.engine.modeling import TinySpec, ensure_tiny_checkpoint
from openvlthinker.evaluation.checkpoints import (
    CheckpointError,
    checkpoint_name,
    materialize,
    merge_command,
    resolve_checkpoint,
    weights_sha256,
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return ensure_tiny_checkpoint(TinySpec(), tmp_path_factory.mktemp("tiny"))


def fake_verl_checkpoint(root, model_dir):
    """The layout verl's FSDP checkpoint manager writes for world size 1: the rank's state
    dict (plain tensors: with one rank FSDP shards nothing), fsdp_config.json and the
    Hugging Face config/processor in actor/huggingface/."""
    from transformers import AutoModelForImageTextToText

    actor = root / "global_step_3" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 2, "world_size": 1}))
    for f in model_dir.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, actor / "huggingface" / f.name)
    return actor.parent, model


def test_kinds_names_and_bad_folders(tmp_path, tiny_model):
    hf = resolve_checkpoint(tiny_model, tmp_path)
    assert hf.kind == "huggingface" and hf.model_path == tiny_model
    step = tmp_path / "run" / "checkpoints" / "global_step_2"
    shutil.copytree(tiny_model, step / "model")
    engine = resolve_checkpoint(step, tmp_path)
    assert (engine.kind, engine.name, engine.model_path) == (
        "engine",
        "run-global_step_2",
        step / "model",
    )
    assert checkpoint_name(tmp_path / "x" / "global_step_5" / "actor") == "x-global_step_5"
    with pytest.raises(CheckpointError, match=r"--checkpoint .*nope: no such folder"):
        resolve_checkpoint(tmp_path / "nope", tmp_path)
    lora = tmp_path / "lora_run" / "checkpoints" / "global_step_1" / "model"
    lora.mkdir(parents=True)
    (lora / "adapter_config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"holds a LoRA adapter .*trainer.save_merged=true"):
        resolve_checkpoint(lora.parent, tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"empty: not a model folder"):
        resolve_checkpoint(tmp_path / "empty", tmp_path)


def test_weights_hash_changes_with_the_weights_not_the_path(tmp_path, tiny_model):
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    assert weights_sha256(copy) == weights_sha256(tiny_model)
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert weights_sha256(copy) != weights_sha256(tiny_model)


def test_merge_command_is_verls_fsdp_merger(tmp_path):
    cmd = merge_command(tmp_path / "a", tmp_path / "b")
    assert cmd[:6] == [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp"]
    assert cmd[6:] == ["--local_dir", str(tmp_path / "a"), "--target_dir", str(tmp_path / "b")]


@pytest.mark.slow
def test_verl_checkpoint_is_merged_by_verls_merger_into_the_cache(tmp_path, tiny_model):
    step, model = fake_verl_checkpoint(tmp_path / "verl_run", tiny_model)
    ckpt = resolve_checkpoint(step, tmp_path / "cache", merge=False)
    assert ckpt.kind == "verl" and ckpt.name == "verl_run-global_step_3"
    merged = materialize(ckpt, tmp_path / "cache")
    assert merged.model_path.parent == tmp_path / "cache"
    from transformers import AutoModelForImageTextToText

    # verl's merger saves in bfloat16: the merged weights are ours rounded to bfloat16
    back = AutoModelForImageTextToText.from_pretrained(merged.model_path, dtype=torch.float32)
    want = model.state_dict()
    for key, value in back.state_dict().items():
        expected = want[key].to(torch.bfloat16).float()
        torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=key)
    # a second resolve reuses the merge (same folder, same hash)
    again = materialize(
        resolve_checkpoint(step, tmp_path / "cache", merge=False), tmp_path / "cache"
    )
    assert again.model_path == merged.model_path
    assert again.weights_sha256 == merged.weights_sha256
