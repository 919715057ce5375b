import pytest

from openvlthinker.data import Record, build_messages, render_prompt
from openvlthinker.data.prompts import letter_options


def rec(**kw):
    base = {
        "id": "r1",
        "problem": "<image>Which fruit sold the most?",
        "answer": "B",
        "problem_type": "multiple_choice",
        "task": "chart",
        "data_type": "image",
        "images": ("/data/a.png",),
        "options": ("apples", "pears", "plums"),
    }
    return Record(**(base | kw))


def test_options_come_once_before_the_instructions():
    text = render_prompt(rec())
    assert text.splitlines() == [
        "<image>Which fruit sold the most?",
        "Options:",
        "A. apples",
        "B. pears",
        "C. plums",
        "First think step by step inside <think> </think> tags, then give the final answer "
        "inside <answer> </answer> tags.",
        "Answer with the letter of the correct option only, e.g. <answer>A</answer>.",
    ]
    assert text.count("apples") == 1


def test_image_first_message_in_qwen_vl_format():
    messages = build_messages(rec())
    assert messages == [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": "/data/a.png"},
                {"type": "text", "text": render_prompt(rec()).removeprefix("<image>")},
            ],
        }
    ]


def test_placeholders_interleave_and_missing_placeholders_put_media_first():
    r = rec(problem="Compare <image> with <image>.", images=("/a.png", "/b.png"), options=())
    content = build_messages(r, min_pixels=100, max_pixels=200)[0]["content"]
    assert [c["type"] for c in content] == ["text", "image", "text", "image", "text"]
    assert content[0]["text"] == "Compare"
    assert content[1] == {"type": "image", "image": "/a.png", "min_pixels": 100, "max_pixels": 200}
    assert content[3]["image"] == "/b.png"
    assert content[4]["text"].startswith(".\nFirst think")
    r = rec(problem="What is shown?", images=("/a.png",), videos=("/v.mp4",), options=())
    content = build_messages(r)[0]["content"]
    assert [c["type"] for c in content] == ["image", "video", "text"]
    assert content[1] == {"type": "video", "video": "/v.mp4"}


def test_text_only_record_is_one_text_entry_without_placeholders():
    r = rec(problem="What is 2 + 3?", images=(), data_type="text", problem_type="math", options=())
    messages = build_messages(r, system_prompt="You are helpful.")
    assert messages[0] == {
        "role": "system",
        "content": [{"type": "text", "text": "You are helpful."}],
    }
    assert len(messages[1]["content"]) == 1
    text = messages[1]["content"][0]["text"]
    assert "Options" not in text and "<image>" not in text
    assert text.endswith(
        "Answer with the final value or expression only, e.g. <answer>12</answer>."
    )


@pytest.mark.parametrize(
    ("ptype", "tail"),
    [
        ("numerical", "Answer with a single number only"),
        ("counting", "Answer with a single whole number only"),
        ("ocr", "Answer with the exact text, nothing else."),
        (
            "spatial_grounding",
            'coordinates normalised to 0-1000, e.g. <answer>{"boxes": [x1, y1, x2, y2]}</answer>',
        ),
        ("open_ended", "Answer briefly."),
    ],
)
def test_tail_per_problem_type(ptype, tail):
    assert tail in render_prompt(rec(problem_type=ptype, options=()))


def test_tag_names_and_coordinate_frame_are_settings():
    text = render_prompt(
        rec(problem_type="spatial_grounding", options=()),
        think_tag="thinking",
        answer_tag="ans",
        coordinate_frame="absolute",
    )
    assert "<thinking> </thinking>" in text and "<ans>" in text and "<answer>" not in text
    assert "pixel coordinates of the image" in text


def test_letter_options_keeps_lettered_options():
    assert letter_options(["A. x", "B. y"]) == ["A. x", "B. y"]
    assert letter_options(["x", "y"]) == ["A. x", "B. y"]


def test_errors_are_named(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"prompt template 'nope' not found.*known: \['default'\]"
    ):
        build_messages(rec(), template="nope")
    with pytest.raises(ValueError, match=r"r1: 2 images given for 1 in the record"):
        build_messages(rec(), images=["x", "y"])
    custom = tmp_path / "mine.jinja"
    custom.write_text("{{ problem }} [{{ task }}]")
    assert (
        build_messages(rec(), template=custom)[0]["content"][1]["text"]
        == "Which fruit sold the most? [chart]"
    )
