"""Helpers shared by the reward tests."""

from __future__ import annotations

import math

from openvlthinker.rewards import SCORED_COMPONENTS


def wrap(answer: str, think: str = "reasoning") -> str:
    """A well-formatted response around ``answer``."""
    return f"<think>{think}</think><answer>{answer}</answer>"


def assert_in_range(result: dict) -> None:
    """Every component finite and in [0, 1]; overall finite; error None or a short string."""
    for key in SCORED_COMPONENTS:
        assert math.isfinite(result[key]) and 0.0 <= result[key] <= 1.0, (key, result)
    assert math.isfinite(result["overall"]), result
    assert result["acc"] == result["correctness"]
    assert result["error"] is None or (
        isinstance(result["error"], str) and len(result["error"]) <= 200
    )
