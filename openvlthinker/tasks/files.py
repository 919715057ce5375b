"""Reading a task file: YAML with duplicate keys refused and ``extends`` deep-merged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from openvlthinker.tasks.spec import TaskFileError

TOP_KEYS = {"advantage_key", "data_root", "data", "defaults", "tasks", "extends"}


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise TaskFileError(
                f"{loader.name}: duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                f"(first at line {seen[key] + 1}); each key may appear once"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TaskFileError(f"{path}: task file not found")
    with path.open(encoding="utf-8") as fh:
        loader = _UniqueKeyLoader(fh)
        loader.name = str(path)
        try:
            data = loader.get_single_data()
        except yaml.YAMLError as e:
            raise TaskFileError(f"{path}: not valid YAML: {e}") from e
        finally:
            loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TaskFileError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of mappings; lists and scalars in ``over`` replace those in ``base``."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def read_with_extends(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        raise TaskFileError(f"{path}: 'extends' forms a cycle: {' -> '.join(map(str, chain))}")
    data = _read_yaml(path)
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise TaskFileError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}"
        )
    # A relative data_root belongs to the file that writes it, so resolve it here.
    root = data.get("data_root", "." if not data.get("extends") else None)
    if root is not None:
        data["data_root"] = str((path.parent / str(root)).resolve())
    if "extends" in data:
        base = read_with_extends(path.parent / str(data.pop("extends")), (*chain, path))
        data = _merge(base, data)
    return data
