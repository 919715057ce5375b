"""Benchmark metrics: each benchmark's own scoring rule, apart from the training rewards.

A training reward may be shaped (continuous IoU, partial credit, a format bonus); a number
comparable with a benchmark's leaderboard must follow that benchmark's published rule. Each
metric here is written from the benchmark's public scoring code, cited in its docstring. A
validation set names its metric in the task file (``metric: ocrbench``); the value is logged
as ``val/<set>/<metric>`` next to the reward's components.

What every metric sees (:class:`MetricInput`): the *prediction* is the text inside the
response's last answer tag (``<answer>...</answer>``), else the text after the think block.
That replaces the benchmarks' LLM answer extractors (MathVista, MathVerse, VLMEvalKit's
judge fallback): a deterministic extraction, which is what makes the number reproducible,
and one reason it can differ from a judged leaderboard (docs/evaluation.md).

A metric never raises into a run: :func:`compute_metric` turns an exception into value 0
and an ``error`` string, as the reward suite does.
"""

# Importing the metric modules registers the metrics.
from openvlthinker.benchmarks import grounding, mathvista, mmmu, text  # noqa: F401
from openvlthinker.benchmarks.base import (
    METRICS,
    Metric,
    MetricInput,
    MetricResult,
    compute_metric,
    metric_input,
    option_text,
    register_metric,
)
from openvlthinker.benchmarks.grounding import box_iou, refcoco_accuracy
from openvlthinker.benchmarks.mathvista import (
    mathvista_accuracy,
    mathvista_extract,
    mathvista_normalize_choice,
)
from openvlthinker.benchmarks.mmmu import (
    mmmu_accuracy,
    mmmu_eval_open,
    mmmu_parse_choice,
    mmmu_parse_open,
)
from openvlthinker.benchmarks.text import anls_metric, chartqa_relaxed_accuracy, ocrbench_accuracy

__all__ = [
    "METRICS",
    "Metric",
    "MetricInput",
    "MetricResult",
    "anls_metric",
    "box_iou",
    "chartqa_relaxed_accuracy",
    "compute_metric",
    "mathvista_accuracy",
    "mathvista_extract",
    "mathvista_normalize_choice",
    "metric_input",
    "mmmu_accuracy",
    "mmmu_eval_open",
    "mmmu_parse_choice",
    "mmmu_parse_open",
    "ocrbench_accuracy",
    "option_text",
    "refcoco_accuracy",
    "register_metric",
]
