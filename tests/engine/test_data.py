"""engine/data.py: the seeded, resumable record order and the prompt encoding of records."""

from __future__ import annotations

import pytest
import torch

from openvlthinker.data import Record
from openvlthinker.engine.data import RecordSampler, encode_records
from openvlthinker.engine.modeling import build_tiny_processor, build_tiny_tokenizer
from tests.engine.conftest import random_image

# Qwen3-VL: 16-pixel patches merged 2 x 2, so sizes snap to multiples of 32
FACTOR, MIN_PIXELS, MAX_PIXELS = 32, 32 * 32, 128 * 128
OPTIONS = {"think_tag": "think", "answer_tag": "answer", "coordinate_frame": "qwen_1000"}


def record(i: int, *, images=(), videos=(), problem: str = "<image>Read it.") -> Record:
    return Record(
        id=f"r{i}",
        problem=problem,
        answer="x",
        problem_type="ocr",
        task="t",
        data_type="image" if images else "text",
        images=tuple(images),
        videos=tuple(videos),
        image_sizes=tuple(img.size for img in images),
        source=f"train.jsonl:{i}",
    )


def records(n: int) -> list[Record]:
    return [record(i, problem=f"question {i}") for i in range(n)]


def ids(batch: list[Record]) -> list[str]:
    return [r.id for r in batch]


@pytest.fixture(scope="module")
def processor():
    return build_tiny_processor(
        "qwen3_vl", build_tiny_tokenizer(), min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS
    )


def encode(recs, processor, max_prompt_length: int = 512, **overrides):
    kwargs = {
        "template": None,
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "factor": FACTOR,
        "max_prompt_length": max_prompt_length,
        "message_options": OPTIONS,
    } | overrides
    return encode_records(recs, processor, **kwargs)


# ---------------------------------------------------------------- RecordSampler


def test_each_epoch_is_the_seeded_permutation_of_all_records():
    data = records(5)
    sampler = RecordSampler(data, seed=7)
    drawn = ids(sampler.next(12))  # two full epochs and two of the third
    for epoch, chunk in enumerate((drawn[:5], drawn[5:10], drawn[10:])):
        order = torch.randperm(5, generator=torch.Generator().manual_seed(7 + epoch)).tolist()
        assert chunk == [f"r{i}" for i in order][: len(chunk)]
    assert sorted(drawn[:5]) == sorted(drawn[5:10]) == ids(data)
    assert drawn[:5] != drawn[5:10]  # a new permutation each epoch
    assert sampler.state_dict() == {"epoch": 2, "cursor": 2, "size": 5}


def test_the_order_depends_on_the_seed_only():
    first, again = RecordSampler(records(6), seed=1), RecordSampler(records(6), seed=1)
    assert ids(first.next(3) + first.next(9)) == ids(again.next(12))
    assert ids(RecordSampler(records(6), seed=2).next(6)) != ids(
        RecordSampler(records(6), 1).next(6)
    )


def test_without_shuffling_it_is_file_order_every_epoch():
    sampler = RecordSampler(records(3), seed=0, shuffle=False)
    assert ids(sampler.next(7)) == ["r0", "r1", "r2", "r0", "r1", "r2", "r0"]


def test_state_dict_round_trip_draws_what_the_uninterrupted_sampler_draws():
    data = records(5)
    uninterrupted = RecordSampler(data, seed=3)
    uninterrupted.next(7)
    state = uninterrupted.state_dict()
    resumed = RecordSampler(data, seed=3)
    resumed.load_state_dict(state)
    assert resumed.state_dict() == state == {"epoch": 1, "cursor": 2, "size": 5}
    assert ids(resumed.next(9)) == ids(uninterrupted.next(9))


def test_a_state_of_other_data_is_refused_naming_both_sizes():
    state = RecordSampler(records(5), seed=0).state_dict()
    with pytest.raises(
        ValueError, match="the checkpoint saw 5 training records, the data now has 4"
    ):
        RecordSampler(records(4), seed=0).load_state_dict(state)


def test_no_records_is_an_error_naming_the_key():
    with pytest.raises(ValueError, match=r"data: no training records \(check the train files of"):
        RecordSampler([], seed=0)


# ---------------------------------------------------------------- encode_records


def test_images_are_resized_encoded_and_prompts_left_padded(processor):
    wide, square = random_image(0, 70, 40), random_image(1, 100, 100)
    recs = [
        record(0, images=[wide]),
        record(1, images=[square]),
        record(2, problem="What is 2 + 2? A question without an image, and a longer one."),
    ]
    out = encode(recs, processor)
    # the sizes the model sees: snapped to multiples of 32 inside the pixel budget
    assert out.model_image_sizes == [(64, 32), (96, 96), None]
    batch = out.batch
    assert batch.image_count.tolist() == [1, 1, 0]
    assert batch.image_grid_thw.tolist() == [[1, 2, 4], [1, 6, 6]]  # (t, h, w) in 16-px patches
    # one image token per 2 x 2 merged patches, in the prompt of its own record only
    pad_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    assert (batch.input_ids == pad_id).sum(-1).tolist() == [2, 9, 0]
    assert batch.mm_token_type_ids.sum(-1).tolist() == [2, 9, 0]
    mask = batch.attention_mask
    lengths = mask.sum(-1)
    assert int(lengths.max()) == mask.shape[1]  # the longest prompt is unpadded
    for row, n in zip(mask, lengths.tolist()):  # padding on the left
        assert row.tolist() == [0] * (mask.shape[1] - n) + [1] * n


def test_message_options_and_the_template_reach_the_prompt(processor, tmp_path):
    template = tmp_path / "short.jinja"
    template.write_text("Q: {{ problem }} Use <{{ think_tag }}> then <{{ answer_tag }}>.")
    rec = record(0, problem="What is 2 + 2?")
    options = OPTIONS | {"think_tag": "reason", "answer_tag": "final"}
    out = encode([rec], processor, template=str(template), message_options=options)
    text = processor.tokenizer.decode(out.batch.input_ids[0])
    assert text == (
        "<|im_start|>user\nQ: What is 2 + 2? Use <reason> then <final>.<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_a_prompt_over_max_prompt_length_is_refused_naming_record_and_keys(processor):
    recs = [record(0, problem="short"), record(1, images=[random_image(1, 100, 100)])]
    length = int(encode(recs, processor).batch.attention_mask[1].sum())
    with pytest.raises(ValueError) as info:
        encode(recs, processor, max_prompt_length=length - 1)
    assert str(info.value) == (
        f"data.max_prompt_length={length - 1}: record r1 (train.jsonl:1) encodes to {length} "
        "tokens; raise data.max_prompt_length or model.max_pixels"
    )
    assert encode(recs, processor, max_prompt_length=length).model_image_sizes[1] == (96, 96)


def test_a_video_record_is_refused_naming_it(processor):
    video = record(4, videos=["clip.mp4"], problem="<video>What happens?")
    with pytest.raises(ValueError, match=r"^record r4 \(train.jsonl:4\) has videos"):
        encode([record(0, problem="fine"), video], processor)
