"""Never crash, never hang: hypothesis fuzzing and a corpus of nasty responses."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openvlthinker.problem_types import BUILTIN_PROBLEM_TYPES
from openvlthinker.rewards import score, score_batch
from tests.rewards.helpers import assert_in_range

KEYS = {
    "multiple_choice": "B",
    "numerical": "12.5",
    "regression": "0",
    "math": "\\frac{1}{2}",
    "ocr": "total due 42",
    "open_ended": "a cat sat on the mat",
    "spatial_grounding": '{"boxes": [10, 10, 50, 50]}',
    "counting": "3",
    "temporal_grounding": '{"time": [1, 5]}',
    "spatial_temporal_grounding": '{"time": [0, 2], "boxes": {"0": [0, 0, 5, 5]}}',
    "tracking": '{"boxes": {"0": [0, 0, 5, 5], "1": [1, 1, 6, 6]}}',
    "segmentation": json.dumps(
        {"boxes": [0, 0, 9, 9], "positive_points": [[1, 1]], "negative_points": [[20, 20]]}
    ),
}

NASTY = [
    "",
    " ",
    "\x00\x01\x02",
    "<think>",
    "</answer><answer>",
    "<answer><answer><answer>",
    "<think><answer>1</think></answer>",
    "<answer>" + "(" * 10_000 + "</answer>",
    "<answer>" + "[" * 100_000 + "]" * 100_000 + "</answer>",
    "<answer>" + '{"boxes": ' * 5_000 + "</answer>",
    "<answer>NaN</answer>",
    "<answer>Infinity</answer>",
    "<answer>-inf</answer>",
    "<answer>1e309</answer>",
    "<answer>" + "9" * 5_000 + "</answer>",
    '<answer>{"boxes": [1e308, 1e308, -1e308, -1e308]}</answer>',
    '<answer>{"boxes": [0, 0, 1e308, 1e308]}</answer>',
    '<answer>{"boxes": [[0, 0, 1, 1]], "positive_points": [[1e308, -1e308]], "negative_points": [[0, 0]]}</answer>',
    '<answer>{"time": [NaN, 1]}</answer>',
    '<answer>{"boxes": {"0": null}}</answer>',
    "<answer>\\frac{\\frac{\\frac{\\frac{1}{2}}{3}}{4}}{5}</answer>",
    "<answer>x^{x^{x^{x^{x^{x^{x^{x^{99}}}}}}}}</answer>",
    "<answer>9^{9^{9^{9^{9}}}}</answer>",
    "<answer>\\int_0^\\infty e^{-x^{x}} dx</answer>",
    "<answer>((((((((((((((((((((a))))))))))))))))))))</answer>",
    "<answer>" + "a" * 1_000 + "!" + "</answer>",
    "<answer>" + "aaaa," * 2_000 + "</answer>",
    "<answer>" + "A and " * 1_000 + "</answer>",
    "<answer>" + "1," * 100 + "</answer>",
    "<answer>🙂 Ω ∑ 中文 \u202e\u200b</answer>",
    "<answer>\ud800</answer>",
    "<think>" + "x" * 3_000_000 + "</think><answer>B</answer>",
    "<answer>" + "x " * 2_000_000 + "</answer>",
    "<answer>```json\n" + "{" * 1000 + "```</answer>",
]


@pytest.mark.parametrize("problem_type", BUILTIN_PROBLEM_TYPES)
def test_nasty_corpus(problem_type):
    for response in NASTY:
        result = score(response, KEYS[problem_type], problem_type)
        assert_in_range(result)


@pytest.mark.parametrize("problem_type", BUILTIN_PROBLEM_TYPES)
def test_nasty_ground_truths(problem_type):
    for ground_truth in [
        None,
        "",
        3,
        -1.5,
        float("nan"),
        [],
        {},
        {"boxes": "x"},
        "<answer></answer>",
        "\\frac{",
    ]:
        assert_in_range(score("<think>t</think><answer>B</answer>", ground_truth, problem_type))


texts = st.text(max_size=300)
tag_soup = st.lists(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "{",
            "}",
            "[",
            "]",
            '"boxes"',
            ":",
            ",",
            "1",
            "-2.5",
            "NaN",
            "B",
            "\\frac{",
            "x",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    response=st.one_of(
        texts, tag_soup, texts.map(lambda t: f"<think>x</think><answer>{t}</answer>")
    ),
    problem_type=st.sampled_from(BUILTIN_PROBLEM_TYPES),
    tokens=st.one_of(st.none(), st.integers(-5, 10_000), st.floats(allow_nan=True)),
)
def test_fuzz_any_response(response, problem_type, tokens):
    result = score(
        response,
        KEYS[problem_type],
        problem_type,
        response_tokens=tokens,
        length_envelope=(10, 20, 40, 60),
    )
    assert_in_range(result)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(10**20), 10**20) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["boxes", "time", "positive_points", "negative_points", "0"]),
            children,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(
    value=json_values,
    problem_type=st.sampled_from(BUILTIN_PROBLEM_TYPES),
    size=st.none() | st.tuples(st.floats(), st.floats()),
)
def test_fuzz_structured_answers(value, problem_type, size):
    answer = json.dumps(value)
    result = score(
        f"<think>t</think><answer>{answer}</answer>",
        KEYS[problem_type],
        problem_type,
        image_size=size,
    )
    assert_in_range(result)


def test_batch_of_nasty_items_keeps_order():
    items = [
        {"response": r, "ground_truth": KEYS["numerical"], "problem_type": "numerical"}
        for r in NASTY
    ]
    results = score_batch(items, workers=0)
    assert [r["error"] for r in results] == [
        score(r, KEYS["numerical"], "numerical")["error"] for r in NASTY
    ]
