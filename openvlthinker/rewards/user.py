"""User reward functions named as ``path/to/file.py:function`` (the EasyR1 convention)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from openvlthinker.rewards.config import RewardConfig
from openvlthinker.rewards.registry import register_scorer

USER_MODULE_PREFIX = "openvlthinker_user_reward_"
# Resolved file path -> module, so a file runs once per process (its decorators register once).
_modules: dict[str, ModuleType] = {}


def load_reward_function(spec: str, problem_type: str | None = None) -> Callable[..., Any]:
    """Import ``function`` from ``path/to/file.py`` and return it.

    With ``problem_type`` the function also becomes that type's scorer
    (``fn(answer, ground_truth, ctx)``, see :func:`register_scorer`). Errors name the spec.
    """
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(f"reward function {spec!r}: expected 'path/to/file.py:function'")
    path_text, _, name = spec.rpartition(":")
    if not path_text or not name.isidentifier():
        raise ValueError(f"reward function {spec!r}: expected 'path/to/file.py:function'")
    module = load_user_module(path_text, where=spec)
    fn = getattr(module, name, None)
    if fn is None:
        defined = sorted(
            k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
        )
        raise AttributeError(
            f"reward function {spec!r}: {path_text} defines no {name!r}; "
            f"it defines: {', '.join(defined) or 'nothing callable'}"
        )
    if not callable(fn):
        raise TypeError(
            f"reward function {spec!r}: {name!r} is a {type(fn).__name__}, not callable"
        )
    if problem_type is not None:
        register_scorer(problem_type, replace=True)(fn)
    return fn


def load_user_module(path_text: str, *, where: str | None = None) -> ModuleType:
    """Execute a Python file once per process and return it as a module."""
    path = Path(path_text).expanduser().resolve()
    key = str(path)
    if key in _modules:
        return _modules[key]
    if not path.is_file():
        raise FileNotFoundError(f"reward function {where or path_text!r}: no file {path}")
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    module_name = f"{USER_MODULE_PREFIX}{path.stem}_{digest}"
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"reward function {where or path_text!r}: cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[module_name]
        raise ImportError(
            f"reward function {where or path_text!r}: importing {path} failed: {e}"
        ) from e
    _modules[key] = module
    return module


def loaded_user_files() -> list[str]:
    """Files loaded so far (a fresh worker process loads them again)."""
    return list(_modules)


def load_user_scorers(config: RewardConfig) -> None:
    """Register every ``config.user_scorers`` entry (idempotent)."""
    for problem_type, spec in config.user_scorers.items():
        load_reward_function(spec, problem_type=problem_type)
