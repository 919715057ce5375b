"""One response -> format, correctness, structure, length and their weighted overall."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from openvlthinker.problem_types import canonical_problem_type
from openvlthinker.rewards.config import (
    DEFAULT_WEIGHTS,
    RESULT_KEYS,
    SCORED_COMPONENTS,
    RewardConfig,
    merge_weights,
)
from openvlthinker.rewards.registry import (
    REWARD_FUNCTIONS,
    ScoreContext,
    as_verdict,
    scorer_options,
)
from openvlthinker.rewards.tags import answer_without_tag, extract_answer, format_ok
from openvlthinker.rewards.timeouts import ScoreTimeout, can_interrupt, time_limit
from openvlthinker.rewards.user import load_user_scorers
from openvlthinker.shaping import length_trapezoid

logger = logging.getLogger(__name__)

ITEM_KEYS: frozenset[str] = frozenset(
    {
        "response",
        "ground_truth",
        "problem_type",
        "task",
        "response_tokens",
        "length_envelope",
        "weights",
        "options",
        "image_size",
        "model_image_size",
        "scorer_options",
    }
)
_DEFAULT_CONFIG: list[RewardConfig] = []


def default_config() -> RewardConfig:
    """The shared default :class:`RewardConfig` (built once)."""
    if not _DEFAULT_CONFIG:
        _DEFAULT_CONFIG.append(RewardConfig())
    return _DEFAULT_CONFIG[0]


def error_result(error: str, **components: float) -> dict[str, Any]:
    """A result whose unlisted components are 0, with ``error`` set."""
    result: dict[str, Any] = dict.fromkeys(RESULT_KEYS, 0.0)
    result.update(components)
    result["acc"] = result["correctness"]
    result["error"] = error
    return result


def score(
    response: str,
    ground_truth: Any,
    problem_type: str,
    *,
    task: str | None = None,
    response_tokens: int | None = None,
    length_envelope: tuple[int, int, int, int] | None = None,
    weights: Mapping[str, float] | None = None,
    options: list[str] | None = None,
    image_size: tuple[int, int] | None = None,
    model_image_size: tuple[int, int] | None = None,
    scorer_options: Mapping[str, Mapping[str, Any]] | None = None,
    config: RewardConfig | None = None,
) -> dict[str, Any]:
    """Score one response; never raises and never runs past ``config.call_timeout`` (+ grace).

    scorer_options: problem type -> options of its scorer (a task's ``scorer_options``,
    e.g. ``{"numerical": {"rule": "relaxed"}}``).

    Returns overall, format, correctness, structure, length (finite floats; components in
    [0, 1]), acc (= correctness) and error (None or a short reason).
    """
    item = {
        "response": response,
        "ground_truth": ground_truth,
        "problem_type": problem_type,
        "task": task,
        "response_tokens": response_tokens,
        "length_envelope": length_envelope,
        "weights": weights,
        "options": options,
        "image_size": image_size,
        "model_image_size": model_image_size,
        "scorer_options": scorer_options,
    }
    cfg = config if config is not None else default_config()
    try:
        load_user_scorers(cfg)
    except Exception as e:
        return error_result(f"user scorer: {type(e).__name__}: {str(e)[:160]}")
    if not can_interrupt():
        # Off the main thread no signal can stop a stuck parser: a worker process can.
        from openvlthinker.rewards.pool import shared_pool

        return shared_pool(max(1, cfg.workers), cfg).map([item], cfg)[0]
    return score_item(item, cfg)


def score_item(item: Any, config: RewardConfig) -> dict[str, Any]:
    """:func:`score` of one item dict, in this thread, bounded by ``config.call_timeout``."""
    try:
        with time_limit(config.call_timeout):
            return _score(item, config)
    except ScoreTimeout:
        return error_result(f"timed out after {config.call_timeout:g}s")
    except (Exception, SystemExit) as e:  # a user scorer calling sys.exit must not end the run
        logger.debug("reward scoring failed", exc_info=True)
        return error_result(f"{type(e).__name__}: {str(e)[:160]}")


def _score(item: Any, cfg: RewardConfig) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        return error_result(f"item must be a dict, got {type(item).__name__}")
    unknown = sorted(set(item) - ITEM_KEYS)
    if unknown:
        return error_result(f"unknown item key(s) {', '.join(map(str, unknown))}")
    response = item.get("response")
    if not isinstance(response, str):
        return error_result(f"response must be a string, got {type(response).__name__}")
    try:
        name = canonical_problem_type(str(item.get("problem_type")))
        scorer = REWARD_FUNCTIONS[name]
        weights = merge_weights(DEFAULT_WEIGHTS, item.get("weights"), where="weights")
        length = _length(item.get("response_tokens"), item.get("length_envelope"))
        options_of_type = (item.get("scorer_options") or {}).get(name)
        type_options = scorer_options(name, options_of_type)
    except (ValueError, KeyError, TypeError) as e:
        return error_result(f"{type(e).__name__}: {str(e)[:160]}")

    fmt = 1.0 if format_ok(response, cfg.think_tag, cfg.answer_tag) else 0.0
    answer = extract_answer(response, cfg.answer_tag)
    ground_truth = item.get("ground_truth")
    if isinstance(ground_truth, str):
        inner = extract_answer(ground_truth, cfg.answer_tag)
        ground_truth = inner if inner is not None else ground_truth.strip()

    if answer is None and not cfg.require_answer_tag:
        answer = answer_without_tag(response, cfg.think_tag)
    if answer is None:
        correctness, structure, error = 0.0, 0.0, f"no <{cfg.answer_tag}> tag"
    elif len(answer) > cfg.max_answer_chars:
        correctness, structure = 0.0, 0.0
        error = f"answer too long ({len(answer)} > {cfg.max_answer_chars} chars)"
    else:
        options = item.get("options")
        ctx = ScoreContext(
            config=cfg,
            options=tuple(str(o) for o in options) if options is not None else None,
            image_size=item.get("image_size"),
            model_image_size=item.get("model_image_size"),
            task=item.get("task"),
            scorer_options=type_options,
        )
        try:
            verdict = as_verdict(scorer(answer, ground_truth, ctx))
            correctness, structure, error = verdict.correctness, verdict.structure, verdict.error
        except (Exception, SystemExit) as e:
            logger.debug("scorer for %s failed", name, exc_info=True)
            correctness, structure = 0.0, 0.0
            error = f"{type(e).__name__}: {str(e)[:160]}"

    structure *= cfg.structure_bonus
    if cfg.structure_requires_format and fmt == 0.0:
        structure = 0.0
    components = {
        "correctness": correctness,
        "format": fmt,
        "structure": structure,
        "length": length,
    }
    overall = sum(weights[k] * components[k] for k in SCORED_COMPONENTS)
    if not math.isfinite(overall):
        return error_result("non-finite overall score")
    return {"overall": overall, **components, "acc": correctness, "error": error}


def _length(tokens: Any, envelope: Any) -> float:
    """The trapezoid of method.md section 2; 0 unless both tokens and envelope are given."""
    if tokens is None or envelope is None:
        return 0.0
    if isinstance(tokens, bool) or not isinstance(tokens, (int, float)) or not tokens >= 0:
        raise ValueError(f"response_tokens: expected a count >= 0, got {tokens!r}")
    return float(length_trapezoid(float(tokens), tuple(envelope)))
