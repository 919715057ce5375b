import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForImageTextToText

from openvlthinker.engine.modeling import (
    QWEN_SPECIAL_TOKENS,
    VISION_SPECIAL_TOKENS,
    TinySpec,
    build_tiny_tokenizer,
    ensure_tiny_checkpoint,
    load_processor,
    vision_token_ids,
)


def test_tokenizer_keeps_qwen_special_tokens_in_order_and_round_trips_text():
    tok = build_tiny_tokenizer(400)
    ids = [tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS]
    assert ids == sorted(ids) and ids[1:] == [ids[0] + i for i in range(1, len(ids))]
    text = "<think> 6 x 7 </think><answer>42</answer> héllo"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.convert_tokens_to_ids("<answer>") == tok("<answer>")["input_ids"][0]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


@pytest.mark.parametrize("arch", ["qwen3_vl", "qwen2_5_vl", "qwen2_vl"])
def test_tiny_checkpoint_loads_through_from_pretrained_with_tokenizer_ids(tiny_cache, arch):
    path = ensure_tiny_checkpoint(TinySpec(architecture=arch), tiny_cache)
    marker = json.loads((path / "COMPLETE").read_text())
    assert marker["architecture"] == arch
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == arch
    processor = load_processor(path, arch, 32 * 32, 128 * 128)
    tok = processor.tokenizer
    assert config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert config.vision_start_token_id == tok.convert_tokens_to_ids("<|vision_start|>")
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert model.config.text_config.vocab_size == len(tok)
    assert getattr(processor, "video_processor", None) is None
    # A second call reuses the saved folder instead of rebuilding it.
    assert ensure_tiny_checkpoint(TinySpec(architecture=arch), tiny_cache) == path


def test_vision_token_ids_are_the_vision_specials(tiny_qwen3):
    _, processor, _ = tiny_qwen3
    ids = vision_token_ids(processor.tokenizer)
    assert processor.tokenizer.convert_ids_to_tokens(ids) == list(VISION_SPECIAL_TOKENS)


def test_load_processor_rejects_unknown_model_type(tiny_qwen3):
    path, _, _ = tiny_qwen3
    with pytest.raises(ValueError, match="model_type 'llama' is not a supported Qwen-VL"):
        load_processor(path, "llama", 1024, 4096)


def test_tiny_spec_rejects_head_dim_that_does_not_fit_mrope():
    from openvlthinker.engine.modeling import build_tiny_model

    tok = build_tiny_tokenizer(300)
    with pytest.raises(ValueError, match="does not fit mrope_section"):
        build_tiny_model(TinySpec(hidden_size=36, num_heads=3), tok)
    assert torch.is_tensor(next(build_tiny_model(TinySpec(), tok).parameters()))


def test_load_policy_drops_checkpoint_sampling_defaults(tiny_cache):
    from openvlthinker.engine.modeling import load_policy

    path = ensure_tiny_checkpoint(TinySpec(), tiny_cache)
    model = AutoModelForImageTextToText.from_pretrained(path)
    model.generation_config.repetition_penalty = 1.05  # as Qwen2.5-VL ships it
    model.generation_config.top_k = 20
    model.generation_config.do_sample = True
    model.save_pretrained(path.parent / "with_defaults")
    loaded = load_policy(path.parent / "with_defaults", torch.float32, "cpu")
    from transformers import GenerationConfig

    fresh = GenerationConfig()
    assert loaded.generation_config.repetition_penalty == fresh.repetition_penalty
    assert loaded.generation_config.top_k == fresh.top_k
    assert loaded.generation_config.do_sample == fresh.do_sample
    assert loaded.generation_config.eos_token_id == model.generation_config.eos_token_id


def test_attn_implementation_reaches_from_pretrained(tiny_cache):
    from openvlthinker.engine.modeling import load_policy

    path = ensure_tiny_checkpoint(TinySpec(), tiny_cache)
    assert load_policy(path, torch.float32, "cpu", "eager").config._attn_implementation == "eager"
    assert load_policy(path, torch.float32, "cpu").config._attn_implementation == "sdpa"
