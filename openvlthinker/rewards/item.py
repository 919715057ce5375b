"""The reward item: one response and what scoring it needs, built by :func:`reward_item` (the
one place that builds it: a dict of plain values, so it pickles to a worker), and scored into
format, correctness, structure, length and their weighted overall in this thread within
``call_timeout`` by :func:`score_item` (what :func:`~openvlthinker.rewards.score` and every
pool worker call)."""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping, Sequence
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
from openvlthinker.rewards.timeouts import ScoreTimeout, time_limit
from openvlthinker.shaping import length_trapezoid

logger = logging.getLogger(__name__)


def _size(value: Sequence[int] | None, field: str) -> tuple[int, int] | None:
    """A (width, height) pair of ints, or None; anything else is refused naming the field."""
    if value is None:
        return None
    try:
        width, height = value
        return int(width), int(height)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: expected (width, height), got {value!r}") from None


def reward_item(
    response: str,
    ground_truth: Any,
    problem_type: str,
    *,
    task: str | None = None,
    response_tokens: int | None = None,
    length_envelope: Sequence[int] | None = None,
    weights: Mapping[str, float] | None = None,
    options: Sequence[str] | None = None,
    image_size: Sequence[int] | None = None,
    model_image_size: Sequence[int] | None = None,
    scorer_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The item of one response (plain Python values, so it pickles to a worker).

    response_tokens and length_envelope give the length term (none without both); weights:
    component -> weight (the task's); options: a multiple-choice record's options; image_size / model_image_size: (width, height) of the original and
    the resized image (grounding; a malformed size raises ValueError); scorer_options: problem type -> its scorer's options."""
    return {
        "response": response,
        "ground_truth": ground_truth,
        "problem_type": problem_type,
        "task": task,
        "response_tokens": response_tokens,
        "length_envelope": None if length_envelope is None else tuple(length_envelope),
        "weights": None if weights is None else dict(weights),
        "options": None if options is None else list(options),
        "image_size": _size(image_size, "image_size"),
        "model_image_size": _size(model_image_size, "model_image_size"),
        "scorer_options": (
            None if scorer_options is None else {k: dict(v) for k, v in scorer_options.items()}
        ),
    }


#: The keys of an item (scoring refuses others).
ITEM_KEYS: frozenset[str] = frozenset(inspect.signature(reward_item).parameters)
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
