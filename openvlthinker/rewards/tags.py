"""The tag layout ``<think>...</think><answer>...</answer>``: format check and answer extraction.

Plain ``str`` scanning, no regular expression: linear time on responses of megabytes, and no
backtracking on unbalanced or repeated tags.
"""

from __future__ import annotations


def format_ok(response: str, think_tag: str = "think", answer_tag: str = "answer") -> bool:
    """True when the whole response is one think block then one answer block.

    Whitespace is allowed around and between the blocks; each of the four tags appears
    exactly once, so nested, repeated or unbalanced tags fail.
    """
    text = response.strip()
    t_open, t_close = f"<{think_tag}>", f"</{think_tag}>"
    a_open, a_close = f"<{answer_tag}>", f"</{answer_tag}>"
    if not (text.startswith(t_open) and text.endswith(a_close)):
        return False
    if any(text.count(tag) != 1 for tag in (t_open, t_close, a_open, a_close)):
        return False
    close_think = text.find(t_close)
    open_answer = text.find(a_open)
    if not (len(t_open) <= close_think < open_answer):
        return False
    return not text[close_think + len(t_close) : open_answer].strip()


def extract_answer(response: str, answer_tag: str = "answer") -> str | None:
    """Text inside the last complete answer block, outer whitespace removed; None if absent.

    The answer text itself is never rewritten.
    """
    a_open, a_close = f"<{answer_tag}>", f"</{answer_tag}>"
    end = response.rfind(a_close)
    if end < 0:
        return None
    start = response.rfind(a_open, 0, end)
    if start < 0:
        return None
    # The first close after that open, so the answer holds no answer tag of its own.
    end = response.find(a_close, start)
    return response[start + len(a_open) : end].strip()


def answer_without_tag(response: str, think_tag: str = "think") -> str:
    """The fallback answer when tags are optional: the text after the last think block."""
    close = f"</{think_tag}>"
    end = response.rfind(close)
    return (response[end + len(close) :] if end >= 0 else response).strip()
