"""What every config section shares: the error, the check that blames the dotted key, the
resume-free marker."""

from __future__ import annotations

from typing import Any, ClassVar


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key, the value and the fix."""


def check(ok: bool, key: str, value: Any, why: str) -> None:
    """Raise ``ConfigError("<key>=<value>: <why>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}={value!r}: {why}")


class Section:
    """Base of a config section: ``SECTION`` is its dotted place in the config (``rollout``,
    ``model.tiny``), so a field check names the full key wherever the object is built."""

    SECTION: ClassVar[str] = ""

    def _check(self, ok: bool, name: str, why: str, value: Any = None) -> None:
        check(ok, f"{self.SECTION}.{name}", getattr(self, name) if value is None else value, why)


#: Metadata of a field a resumed run may change (run length, logging, output place); every
#: other field must equal the checkpoint's (:func:`~.reference.resume_conflicts`).
RESUME_FREE = {"resume": "free"}
