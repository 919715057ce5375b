"""The task registry (``load_tasks``) and multi-task validation metrics."""

from openvlthinker.tasks.registry import (
    DataFile,
    TaskFileError,
    TaskRegistry,
    TaskSpec,
    ValidationSet,
    load_tasks,
)
from openvlthinker.tasks.validation import compute_validation_metrics

__all__ = [
    "DataFile",
    "TaskFileError",
    "TaskRegistry",
    "TaskSpec",
    "ValidationSet",
    "compute_validation_metrics",
    "load_tasks",
]
