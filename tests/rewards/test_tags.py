"""Format check and answer extraction: tag layout, tag names, hostile tag soup."""

import pytest

from openvlthinker.rewards.tags import answer_without_tag, extract_answer, format_ok


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>a</think><answer>b</answer>", True),
        ("  \n<think>a</think>\n\n<answer>b</answer>\n ", True),
        ("<think></think><answer></answer>", True),
        ("<think>a</think>x<answer>b</answer>", False),  # text between the blocks
        ("<answer>b</answer>", False),
        ("<think>a</think>", False),
        ("<think>a</think><answer>b</answer> trailing", False),
        ("<think>a<think>b</think></think><answer>c</answer>", False),  # nested
        ("<think>a</think><answer>b</answer><answer>c</answer>", False),  # repeated
        ("<answer>b</answer><think>a</think>", False),  # order
        ("<think>a</answer><answer>b</think>", False),
        ("<think>a</think><answer>b", False),  # unbalanced
    ],
)
def test_format(response, expected):
    assert format_ok(response) is expected


def test_thinking_tag_is_selectable():
    response = "<thinking>a</thinking><answer>b</answer>"
    assert format_ok(response, think_tag="thinking")
    assert not format_ok(response)


def test_extract_last_complete_answer_without_rewriting():
    assert extract_answer("<answer>  a < b / c \n</answer>") == "a < b / c"
    assert extract_answer("<answer>1</answer> then <answer>2</answer>") == "2"
    assert extract_answer("<answer>1</answer><answer>2") == "1"
    assert extract_answer("no tags") is None
    assert extract_answer("</answer><answer>") is None
    assert answer_without_tag("<think>x</think> 42 ") == "42"
    assert answer_without_tag("42") == "42"


def test_megabytes_of_tag_soup():
    soup = "<think></think><answer>" * 200_000 + "</answer>" * 200_000
    assert not format_ok(soup)
    assert extract_answer(soup) == ""
