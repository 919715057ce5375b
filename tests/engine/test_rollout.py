import pytest
import torch

from openvlthinker.engine.logprob import token_log_probs
from openvlthinker.engine.modeling import vision_token_ids
from openvlthinker.engine.rollout import (
    concat_rollouts,
    encode_prompts,
    gather_ranges,
    generate,
    response_mask_from_ids,
)


def test_gather_ranges_concatenates_aranges():
    got = gather_ranges(torch.tensor([5, 0, 2]), torch.tensor([2, 0, 3]))
    assert got.tolist() == [5, 6, 2, 3, 4]
    assert gather_ranges(torch.tensor([1]), torch.tensor([0])).numel() == 0


def test_response_mask_keeps_tokens_up_to_first_eos():
    responses = torch.tensor([[4, 9, 7, 9, 1], [4, 4, 4, 4, 4], [9, 1, 1, 1, 1]])
    mask = response_mask_from_ids(responses, eos_ids=[9], pad_id=1)
    assert mask.tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]


def _prompts(processor, random_image):
    # Mixed image counts and sizes plus a text-only prompt: left padding and uneven
    # patch chunks are exactly where a repeat without reordering goes wrong.
    images = [
        [random_image(0, 64, 80)],
        [random_image(1, 96, 64), random_image(2, 32, 32)],
        [],
    ]
    messages = [
        [
            {
                "role": "user",
                "content": [{"type": "image"}] * len(imgs)
                + [{"type": "text", "text": "what" * (i + 1)}],
            }
        ]
        for i, imgs in enumerate(images)
    ]
    return encode_prompts(processor, messages, images), images


def test_repeat_reorders_pixel_chunks_and_grids_per_prompt(tiny_qwen3, make_image):
    _, processor, _ = tiny_qwen3
    batch, _ = _prompts(processor, make_image)
    rows = batch.image_grid_thw.prod(-1).tolist()
    assert batch.image_count.tolist() == [1, 2, 0]
    rep = batch.repeat(2)
    assert rep.image_count.tolist() == [1, 1, 2, 2, 0, 0]
    grids = batch.image_grid_thw
    assert torch.equal(rep.image_grid_thw, grids[[0, 0, 1, 2, 1, 2]])
    chunk0 = batch.pixel_values[: rows[0]]
    chunk1 = batch.pixel_values[rows[0] :]
    assert torch.equal(rep.pixel_values, torch.cat([chunk0, chunk0, chunk1, chunk1]))
    assert torch.equal(rep.input_ids, batch.input_ids.repeat_interleave(2, 0))
    # Left padding: the shortest prompt has leading zeros in its attention mask.
    assert batch.attention_mask[:, 0].tolist() != [1, 1, 1] and batch.attention_mask[:, -1].all()


def _sampling(tok, temperature: float) -> dict:
    """generate's keywords for plain sampling with the vision tokens suppressed."""
    return dict(
        temperature=temperature,
        top_p=1.0,
        top_k=0,
        do_sample=True,
        suppress_ids=vision_token_ids(tok),
        eos_ids=[tok.eos_token_id],
        pad_id=tok.pad_token_id,
        return_log_probs=True,
    )


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_recomputed_log_probs_match_generation_scores(tiny_qwen3, make_image, temperature):
    _, processor, model = tiny_qwen3
    batch, _ = _prompts(processor, make_image)
    tok = processor.tokenizer
    suppress = vision_token_ids(tok)
    torch.manual_seed(0)
    rollout = generate(model, batch.repeat(3), max_new_tokens=12, **_sampling(tok, temperature))
    assert not torch.isin(rollout.responses, torch.tensor(suppress)).any()
    with torch.no_grad():
        recomputed = token_log_probs(
            model, rollout, suppress_ids=suppress, temperature=temperature, entropy="full"
        )
    mask = rollout.response_mask.bool()
    diff = (recomputed.log_probs - rollout.gen_log_probs)[mask].abs().max()
    assert diff < 1e-4
    assert (recomputed.entropy[mask] > 0).all() and (
        recomputed.entropy[mask] <= torch.log(torch.tensor(len(tok)))
    ).all()
    # The suppression mask matters: without it the re-scored policy is a different one.
    with torch.no_grad():
        unmasked = token_log_probs(model, rollout, suppress_ids=[], temperature=temperature)
    assert (unmasked.log_probs - rollout.gen_log_probs)[mask].abs().max() > 1e-4


def test_concat_rollouts_pads_and_keeps_per_sample_scores(tiny_qwen3, make_image):
    _, processor, model = tiny_qwen3
    batch, _ = _prompts(processor, make_image)
    tok = processor.tokenizer
    suppress = vision_token_ids(tok)
    kw = _sampling(tok, 1.0)
    torch.manual_seed(1)
    a = generate(model, batch.select(torch.tensor([2])), max_new_tokens=4, **kw)
    b = generate(model, batch.select(torch.tensor([0, 1])), max_new_tokens=7, **kw)
    both = concat_rollouts([a, b], pad_id=tok.pad_token_id)
    assert both.responses.shape == (3, 7) and both.prompts.image_count.tolist() == [0, 1, 2]
    with torch.no_grad():
        recomputed = token_log_probs(model, both, suppress_ids=suppress, temperature=1.0)
    mask = both.response_mask.bool()
    assert (recomputed.log_probs - both.gen_log_probs)[mask].abs().max() < 1e-4
