"""Advantage estimators, registered by name; every engine calls :func:`compute_advantage`."""

from openvlthinker.advantage import baselines, g2rpo  # noqa: F401  (registers the estimators)
from openvlthinker.advantage.gaussian import gaussian_quantile_map
from openvlthinker.advantage.registry import (
    ESTIMATORS,
    INPUTS,
    Batch,
    Requirements,
    compute_advantage,
    estimator_options,
    estimator_requirements,
    get_estimator,
    missing_inputs,
    register_estimator,
)
from openvlthinker.advantage.segments import factorize

__all__ = [
    "ESTIMATORS",
    "INPUTS",
    "Batch",
    "Requirements",
    "compute_advantage",
    "estimator_options",
    "estimator_requirements",
    "factorize",
    "gaussian_quantile_map",
    "get_estimator",
    "missing_inputs",
    "register_estimator",
]
