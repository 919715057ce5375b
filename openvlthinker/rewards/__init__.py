"""Rule-based rewards per problem type (method.md section 4) that never crash or hang a run.

``score`` one response or ``score_batch`` many (optionally in a worker pool); each result has
overall, format, correctness, structure, length, acc and error. Add a problem type with
``@register_scorer`` or ``load_reward_function("path/file.py:function", problem_type=...)``;
a config's ``user_scorers`` are loaded once, at config load, by ``load_user_scorers(config)``
(and once by each pool worker when it starts), never by ``score`` itself.
"""

# Importing the scorer modules registers the built-in problem types.
from openvlthinker.rewards import choice, grounding, numeric, symbolic, text, video  # noqa: F401
from openvlthinker.rewards.config import (
    DEFAULT_WEIGHTS,
    RESULT_KEYS,
    SCORED_COMPONENTS,
    TASK_WEIGHTED_COMPONENTS,
    RewardConfig,
)
from openvlthinker.rewards.pool import ScorerPool, close_pools, score_batch
from openvlthinker.rewards.registry import (
    REWARD_FUNCTIONS,
    ScoreContext,
    Verdict,
    register_scorer,
    validate_problem_types,
)
from openvlthinker.rewards.score import score
from openvlthinker.rewards.user import load_reward_function, load_user_scorers

__all__ = [
    "DEFAULT_WEIGHTS",
    "RESULT_KEYS",
    "REWARD_FUNCTIONS",
    "SCORED_COMPONENTS",
    "TASK_WEIGHTED_COMPONENTS",
    "RewardConfig",
    "ScoreContext",
    "ScorerPool",
    "Verdict",
    "close_pools",
    "load_reward_function",
    "load_user_scorers",
    "register_scorer",
    "score",
    "score_batch",
    "validate_problem_types",
]
