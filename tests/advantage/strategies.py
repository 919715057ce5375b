"""Hypothesis strategies for multi-task rollout batches: uneven groups, heavy ties."""

from __future__ import annotations

from hypothesis import strategies as st

# Rewards on a coarse grid: plenty of exact ties, and every strictly increasing
# transform used in the tests keeps distinct grid values distinct in float64.
REWARD_GRID = st.integers(min_value=-8, max_value=8).map(lambda k: k / 4)


@st.composite
def rollout_batches(draw, max_tasks: int = 4, max_groups: int = 5, max_group_size: int = 8):
    """(rewards, group ids, task keys) with several tasks and uneven prompt groups."""
    rewards: list[float] = []
    group: list[int] = []
    task: list[str] = []
    binary = draw(st.booleans())
    values = st.sampled_from([0.0, 1.0]) if binary else REWARD_GRID
    next_group = 0
    for t in range(draw(st.integers(1, max_tasks))):
        for _ in range(draw(st.integers(1, max_groups))):
            size = draw(st.integers(1, max_group_size))
            rewards += draw(st.lists(values, min_size=size, max_size=size))
            group += [next_group] * size
            task += [f"task{t}"] * size
            next_group += 1
    return rewards, group, task
