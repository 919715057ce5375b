"""The benchmark metrics, kept importable here for ``openvlthinker eval``'s callers: they live
in :mod:`openvlthinker.benchmarks` (a core package, so the task file and both engines use
them without importing the evaluation layer)."""

from openvlthinker.benchmarks import (
    METRICS,
    Metric,
    MetricInput,
    MetricResult,
    compute_metric,
    metric_input,
    register_metric,
)

__all__ = [
    "METRICS",
    "Metric",
    "MetricInput",
    "MetricResult",
    "compute_metric",
    "metric_input",
    "register_metric",
]
