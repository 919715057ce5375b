"""The config as data: the reference table of every key (``openvlthinker config-help``,
docs/engine.md), its plain-dict form, and the comparison of a resumed run's config with its
checkpoint's (a field whose metadata says ``resume: free`` may differ; nothing else may)."""

from __future__ import annotations

from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from omegaconf import OmegaConf

from openvlthinker.engine.config.base import RESUME_FREE
from openvlthinker.engine.config.renames import REMOVED, upgrade_saved
from openvlthinker.engine.config.sections import TrainConfig


def _fields(cls: type, prefix: str = "") -> list[tuple[str, Any, dict]]:
    """(dotted key, default, metadata) of every leaf field, nested sections walked."""
    rows = []
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        if key in REMOVED:  # a field another module still defines, refused at load
            continue
        sub = f.default_factory() if f.default_factory is not MISSING else None
        if sub is not None and is_dataclass(sub):
            rows.extend(_fields(type(sub), key + "."))
        else:
            rows.append((key, sub if sub is not None else f.default, dict(f.metadata)))
    return rows


def help_table(cls: type = TrainConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(dotted key, default, help) for every field: the reference table of docs/engine.md."""
    return [
        (key, repr(default), meta.get("help", "")) for key, default, meta in _fields(cls, prefix)
    ]


def resume_free_keys() -> frozenset[str]:
    """The dotted keys a resumed run may change: fields marked ``resume: free``."""
    marker = next(iter(RESUME_FREE.items()))
    return frozenset(key for key, _, meta in _fields(TrainConfig) if marker in meta.items())


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dict of a config (for logging and checkpoints)."""
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted leaf keys; an empty mapping has no leaves."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def resume_conflicts(saved: dict[str, Any], cfg: TrainConfig) -> list[str]:
    """``key: saved -> now`` for every key not marked ``resume: free`` whose value differs
    between a checkpoint's config and ``cfg``. A key the checkpoint lacks (written before the
    key existed) counts as its default; one it holds under an old name counts under the new
    name (:mod:`~.renames`), and a removed key is ignored."""
    now = _flatten(to_dict(cfg))
    before = {**_flatten(to_dict(TrainConfig())), **upgrade_saved(_flatten(saved))}
    free = resume_free_keys()
    return [
        f"{key}: {before.get(key)!r} -> {now.get(key)!r}"
        for key in sorted(set(now) | set(before))
        if key not in free and before.get(key) != now.get(key)
    ]
