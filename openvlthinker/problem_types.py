"""The one list of problem types (answer formats) that rewards, tasks and data share.

A problem type decides how a response is scored and therefore the *shape* of its reward,
which is why G2RPO can key its stage 2 on it. The reward suite registers a scorer per
type; user scorers add new types through :func:`register_problem_type`.
"""

from __future__ import annotations

BUILTIN_PROBLEM_TYPES: tuple[str, ...] = (
    "multiple_choice",
    "numerical",
    "regression",
    "math",
    "ocr",
    "open_ended",
    "spatial_grounding",
    "counting",
    "temporal_grounding",
    "spatial_temporal_grounding",
    "tracking",
    "segmentation",
)

# Spellings used by the released OneThinker / OpenVLThinker data, mapped to ours.
ALIASES: dict[str, str] = {
    "multiple choice": "multiple_choice",
    "multiple-choice": "multiple_choice",
    "mc": "multiple_choice",
    "numeric": "numerical",
    "OCR": "ocr",
    "free-form": "open_ended",
    "free_form": "open_ended",
    "open-ended": "open_ended",
    # benchmark cards' question_type values: MathVista multi_choice / free_form, MMMU open
    "multi_choice": "multiple_choice",
    "open": "open_ended",
    "spatial grounding": "spatial_grounding",
    "grounding": "spatial_grounding",
    "count": "counting",
    "temporal grounding": "temporal_grounding",
    "spatial-temporal grounding": "spatial_temporal_grounding",
    "spatial temporal grounding": "spatial_temporal_grounding",
    "image segmentation": "segmentation",
    "video segmentation": "segmentation",
}

_registered: list[str] = list(BUILTIN_PROBLEM_TYPES)


def known_problem_types() -> tuple[str, ...]:
    """All problem types that have a scorer: the built-ins plus user registrations."""
    return tuple(_registered)


def register_problem_type(name: str) -> str:
    """Make ``name`` a known problem type (idempotent); returns it."""
    if not name or not isinstance(name, str):
        raise ValueError(f"problem type must be a non-empty string, got {name!r}")
    if name not in _registered:
        _registered.append(name)
    return name


def canonical_problem_type(name: str, *, where: str = "problem_type") -> str:
    """Map a spelling (ours or the released data's) to the canonical name.

    Raises ``ValueError`` naming ``where`` and the known types when it is unknown.
    """
    if not isinstance(name, str):
        raise ValueError(f"{where}: problem type must be a string, got {name!r}")
    if name in _registered:
        return name
    alias = ALIASES.get(name) or ALIASES.get(str(name).strip().lower())
    if alias is not None:
        return alias
    raise ValueError(
        f"{where}: unknown problem type {name!r}; known: {', '.join(_registered)} "
        f"(aliases: {', '.join(sorted(ALIASES))})"
    )
