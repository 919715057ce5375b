"""Estimators registered by name, and the one call path every engine uses."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from openvlthinker.advantage.segments import Keys, factorize


@dataclass(frozen=True)
class Batch:
    """What an estimator sees: float64 tensors and dense segment ids, all (B,)."""

    rewards: torch.Tensor
    group: torch.Tensor
    num_groups: int
    task: torch.Tensor
    num_tasks: int
    components: Mapping[str, torch.Tensor]
    #: (B,) response length in tokens, or None when the caller did not pass it.
    lengths: torch.Tensor | None = None
    #: component -> (B,) weight of that component in each row's task (the task file's
    #: reward weights); empty when the caller passed none.
    reward_weights: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def weights_of(self, overrides: Mapping[str, float] | None) -> dict[str, torch.Tensor | float]:
        """Weight of each component: ``overrides[name]`` (an estimator's ``component_weights``)
        where given, else the row's task weight (:attr:`reward_weights`), else 1.0."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.components))
        if unknown:
            raise ValueError(
                f"estimator_options.component_weights names {unknown}, not among the "
                f"components {sorted(self.components)} ({OPTIONS_WHERE})"
            )
        return {
            key: float(overrides[key]) if key in overrides else self.reward_weights.get(key, 1.0)
            for key in self.components
        }


#: Where an estimator's options live in each engine's config; their errors name
#: ``estimator_options.<option>`` and add this.
OPTIONS_WHERE = "algorithm.estimator_options in the engine, openvlthinker.estimator_options on verl"


def option_error(option: str, problem: str) -> ValueError:
    """A bad estimator option, named by its key in both engines' configs."""
    return ValueError(f"estimator_options.{option} {problem} ({OPTIONS_WHERE})")


EstimatorFn = Callable[..., torch.Tensor]
ESTIMATORS: dict[str, EstimatorFn] = {}


#: Inputs an estimator may need beyond rewards and prompt groups, as engines name them.
INPUTS = ("task", "components", "baselines", "lengths")


@dataclass(frozen=True)
class Requirements:
    """What an estimator reads beyond rewards and prompt groups, so that engines can
    check at load that they provide it, without knowing estimator names.

    task: per-row task keys; components: reward components; baselines: the reward of the
    prompt's greedy response per row (ReMax); lengths: response lengths in tokens.
    """

    task: bool = False
    components: bool = False
    baselines: bool = False
    lengths: bool = False

    def inputs(self) -> tuple[str, ...]:
        """The names (of :data:`INPUTS`) this estimator needs."""
        return tuple(name for name in INPUTS if getattr(self, name))


_REQUIREMENTS: dict[str, Requirements] = {}


def register_estimator(
    name: str,
    *,
    uses_task: bool = False,
    needs_components: bool = False,
    needs_baselines: bool = False,
    needs_lengths: bool = False,
) -> Callable[[EstimatorFn], EstimatorFn]:
    """Decorator: make ``fn(batch: Batch, **options) -> Tensor[B]`` available as ``name``.

    uses_task: the estimator normalises per task (without task keys it treats the batch as
    one task). needs_components: it reads ``batch.components`` and fails without them.
    needs_baselines: it takes a ``baselines`` option, the greedy response's reward per row.
    needs_lengths: its default reads ``batch.lengths`` (response tokens).
    """

    def decorate(fn: EstimatorFn) -> EstimatorFn:
        if name in ESTIMATORS and ESTIMATORS[name] is not fn:
            raise ValueError(f"advantage estimator {name!r} is already registered")
        ESTIMATORS[name] = fn
        _REQUIREMENTS[name] = Requirements(
            task=uses_task,
            components=needs_components,
            baselines=needs_baselines,
            lengths=needs_lengths,
        )
        return fn

    return decorate


def estimator_requirements(name: str) -> Requirements:
    """The :class:`Requirements` of estimator ``name`` (unknown names raise, listing the known)."""
    get_estimator(name)
    return _REQUIREMENTS.get(name, Requirements())


def missing_inputs(name: str, provided: Iterable[str]) -> list[str]:
    """The inputs (of :data:`INPUTS`) estimator ``name`` needs and ``provided`` lacks: what
    an engine checks at load, before the first rollout."""
    have = set(provided)
    return [i for i in estimator_requirements(name).inputs() if i not in have]


def get_estimator(name: str) -> EstimatorFn:
    """The estimator registered as ``name``; the error lists the known names."""
    try:
        return ESTIMATORS[name]
    except KeyError:
        raise ValueError(
            f"algorithm.adv_estimator {name!r} is unknown; known: {', '.join(sorted(ESTIMATORS))}"
        ) from None


def estimator_options(name: str) -> dict[str, object]:
    """Keyword options (with defaults) that estimator ``name`` accepts."""
    params = list(inspect.signature(get_estimator(name)).parameters.values())[1:]
    return {p.name: p.default for p in params}


def _as_float_vector(x: torch.Tensor | Sequence[float], where: str) -> torch.Tensor:
    # a Python list goes straight to float64: through torch's float32 default, 0.9 is 0.89999998
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(x, dtype=torch.float64)
    if t.dim() != 1:
        raise ValueError(f"{where}: expected shape (B,), got {tuple(t.shape)}")
    values = t.to(torch.float64)
    if bool(torch.isfinite(values).all()):
        return values
    bad = torch.nonzero(~torch.isfinite(values)).flatten()
    if bad.numel():
        rows = bad[:10].tolist()
        more = f" (and {bad.numel() - 10} more)" if bad.numel() > 10 else ""
        raise ValueError(f"{where}: non-finite values (NaN/inf) at rows {rows}{more}")
    return values


def compute_advantage(
    name: str,
    rewards: torch.Tensor | Sequence[float],
    group: Keys,
    task: Sequence[Hashable] | torch.Tensor | None = None,
    components: Mapping[str, torch.Tensor | Sequence[float]] | None = None,
    *,
    lengths: torch.Tensor | Sequence[float] | None = None,
    reward_weights: Mapping[str, torch.Tensor | Sequence[float]] | None = None,
    **options: object,
) -> torch.Tensor:
    """One scalar advantage per response (B,), by the estimator registered as ``name``.

    rewards: (B,) outcome reward per response. group: (B,) prompt-group id per response.
    task: (B,) task key per response, or None for a single task. components: name -> (B,)
    reward components, for the multi-reward estimators. lengths: (B,) response length in
    tokens (verl's token-level whitening weighs each response by it). reward_weights:
    component -> (B,) weight of the component in the row's task (the task file's), which
    GS-GDPO / GDPO weigh the normalised components by. Returns rewards' float dtype
    (float32 for integer input); engines broadcast the value over response tokens.
    """
    fn = get_estimator(name)
    accepted = estimator_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(
            f"advantage estimator {name!r} got unknown options {unknown}; "
            f"it accepts: {', '.join(accepted) or 'none'}"
        )
    r = _as_float_vector(rewards, "rewards")
    n = r.numel()
    group_ids = factorize(group, where="group")
    task_ids = torch.zeros(n, dtype=torch.long) if task is None else factorize(task, where="task")
    for label, ids in (("group", group_ids), ("task", task_ids)):
        if ids.numel() != n:
            raise ValueError(f"{label}: {ids.numel()} entries for {n} rewards")
    comps = {
        key: _as_float_vector(value, f"components[{key!r}]")
        for key, value in (components or {}).items()
    }
    weights = {
        key: _as_float_vector(value, f"reward_weights[{key!r}]")
        for key, value in (reward_weights or {}).items()
    }
    lens = None if lengths is None else _as_float_vector(lengths, "lengths")
    named = {f"components[{k!r}]": v for k, v in comps.items()}
    named.update({f"reward_weights[{k!r}]": v for k, v in weights.items()})
    if lens is not None:
        named["lengths"] = lens
    for label, value in named.items():
        if value.numel() != n:
            raise ValueError(f"{label}: {value.numel()} entries for {n} rewards")
    if lens is not None and bool((lens < 0).any()):
        raise ValueError("lengths: response lengths must be >= 0")
    num_groups = int(group_ids.max()) + 1 if n else 0
    num_tasks = int(task_ids.max()) + 1 if n else 0
    if n and task is not None:
        _check_groups_inside_tasks(group_ids, task_ids, num_groups)
    needs = estimator_requirements(name)
    if needs.components and not comps:
        raise ValueError(f"{name} needs reward components: pass components={{name: (B,) tensor}}")
    if needs.baselines and options.get("baselines") is None:
        raise ValueError(
            f"{name} needs baselines=(B,) tensor: the greedy response's reward per row"
        )
    batch = Batch(r, group_ids, num_groups, task_ids, num_tasks, comps, lens, weights)
    with torch.no_grad():
        advantage = fn(batch, **options)
    dtype = rewards.dtype if isinstance(rewards, torch.Tensor) else r.dtype
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return advantage.to(dtype)


def _check_groups_inside_tasks(group: torch.Tensor, task: torch.Tensor, num_groups: int) -> None:
    lo = torch.full((num_groups,), task.numel(), dtype=torch.long).scatter_reduce(
        0, group, task, "amin"
    )
    hi = torch.full((num_groups,), -1, dtype=torch.long).scatter_reduce(0, group, task, "amax")
    mixed = torch.nonzero(lo != hi).flatten()
    if mixed.numel():
        rows = torch.nonzero(torch.isin(group, mixed)).flatten()[:10].tolist()
        raise ValueError(
            f"group/task: a prompt group spans several tasks (rows {rows}); "
            "every response of one prompt must carry the same task key"
        )
