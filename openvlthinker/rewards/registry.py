"""The scorer registry: one correctness scorer per problem type, extended by decorator."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openvlthinker.problem_types import canonical_problem_type, register_problem_type
from openvlthinker.rewards.config import RewardConfig


@dataclass(frozen=True)
class Verdict:
    """What a scorer says about one extracted answer.

    correctness in [0, 1]; structure in [0, 1] is the fraction of the structure bonus earned
    (1 when the answer has the machine-readable shape its type needs); error is a short reason
    when the answer could not be parsed.
    """

    correctness: float
    structure: float = 1.0
    error: str | None = None


@dataclass(frozen=True)
class ScoreContext:
    """Everything a scorer may need besides the answer and the ground truth."""

    config: RewardConfig
    options: tuple[str, ...] | None = None
    image_size: tuple[float, float] | None = None
    model_image_size: tuple[float, float] | None = None
    task: str | None = None
    #: The task's options for this problem type (the scorer's options dataclass), or None
    #: for a scorer that declares none.
    scorer_options: Any = None


Scorer = Callable[[str, Any, ScoreContext], "Verdict | float | Mapping[str, Any]"]

REWARD_FUNCTIONS: dict[str, Scorer] = {}
#: problem type -> the dataclass of options its scorer takes (a task file's scorer_options).
SCORER_OPTIONS: dict[str, type] = {}
_BUILTIN_MODULE_PREFIX = "openvlthinker.rewards."
# Bumped on every registration, so a worker pool knows when its copy is stale.
registry_version = [0]


def register_scorer(
    problem_type: str, *, replace: bool = False, options: type | None = None
) -> Callable[[Scorer], Scorer]:
    """Decorator: make ``fn(answer, ground_truth, ctx)`` the scorer of ``problem_type``.

    A new name becomes a known problem type. Registering a different function for a type
    that has one raises unless ``replace=True``. The scorer returns a :class:`Verdict`, a
    float (the correctness) or a mapping with correctness/structure/error. ``options``: a
    dataclass of the options a task file may set for this type (``ctx.scorer_options``).
    """
    try:
        name = canonical_problem_type(problem_type, where="register_scorer")
    except ValueError:
        name = register_problem_type(problem_type)

    def decorator(fn: Scorer) -> Scorer:
        if not callable(fn):
            raise TypeError(f"register_scorer({name!r}): expected a callable, got {fn!r}")
        old = REWARD_FUNCTIONS.get(name)
        same = old is not None and _qualified(old) == _qualified(fn)
        if old is not None and not same and not replace:
            raise ValueError(
                f"problem type {name!r} already has the scorer {_qualified(old)}; "
                f"pass replace=True to register {_qualified(fn)} instead"
            )
        if old is not fn:
            REWARD_FUNCTIONS[name] = fn
            registry_version[0] += 1
        if options is not None:
            SCORER_OPTIONS[name] = options
        else:
            SCORER_OPTIONS.pop(name, None)
        return fn

    return decorator


def user_scorers() -> dict[str, Scorer]:
    """Registered scorers that are not built in (what a fresh worker process must learn)."""
    return {
        name: fn
        for name, fn in REWARD_FUNCTIONS.items()
        if not getattr(fn, "__module__", "").startswith(_BUILTIN_MODULE_PREFIX)
    }


def validate_problem_types(names: Iterable[str], *, where: str = "problem_types") -> list[str]:
    """Canonical names of ``names``; raise ValueError at configuration time for any without a scorer.

    User problem types validate once their scorers are loaded
    (:func:`~openvlthinker.rewards.user.load_user_scorers`, at config load).
    """
    canonical = []
    for i, raw in enumerate(names):
        name = canonical_problem_type(raw, where=f"{where}[{i}]")
        if name not in REWARD_FUNCTIONS:
            raise ValueError(
                f"{where}[{i}]: problem type {raw!r} has no scorer; scored types: "
                f"{', '.join(REWARD_FUNCTIONS)} (add one with @register_scorer)"
            )
        canonical.append(name)
    return canonical


def scorer_options(problem_type: str, values: Mapping[str, Any] | None) -> Any:
    """The options object of ``problem_type``'s scorer built from ``values`` (a task's
    ``scorer_options.<type>``); None for a scorer without options. Raises
    :class:`~openvlthinker.rewards.options.ScorerOptionError` naming a bad option."""
    from openvlthinker.rewards.options import ScorerOptionError, build_options

    cls = SCORER_OPTIONS.get(problem_type)
    if cls is None:
        if values:
            raise ScorerOptionError(
                sorted(values)[0], f"the {problem_type!r} scorer takes no options"
            )
        return None
    return build_options(cls, values)


def as_verdict(value: Any) -> Verdict:
    """Coerce a scorer's return value to a Verdict with finite components in [0, 1]."""
    if isinstance(value, Verdict):
        verdict = value
    elif isinstance(value, Mapping):
        verdict = Verdict(
            correctness=value.get("correctness", 0.0),
            structure=value.get("structure", 1.0),
            error=value.get("error"),
        )
    elif isinstance(value, (int, float)):
        verdict = Verdict(correctness=float(value))
    else:
        raise TypeError(f"scorer returned {type(value).__name__}, expected Verdict/float/dict")
    correctness, structure = float(verdict.correctness), float(verdict.structure)
    error = None if verdict.error is None else str(verdict.error)[:200]
    if not (math.isfinite(correctness) and math.isfinite(structure)):
        return Verdict(0.0, 0.0, error or "scorer returned a non-finite score")
    return Verdict(min(max(correctness, 0.0), 1.0), min(max(structure, 0.0), 1.0), error)


def _qualified(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
