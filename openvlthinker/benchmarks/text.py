"""Text answers: OCRBench's substring match, ANLS and ChartQA's relaxed accuracy."""

from __future__ import annotations

from openvlthinker.benchmarks.base import MetricInput, MetricResult, register_metric
from openvlthinker.rewards.numeric import relaxed_match
from openvlthinker.rewards.text import anls


@register_metric("ocrbench")
def ocrbench_accuracy(inp: MetricInput) -> MetricResult:
    """OCRBench (Yuliang-Liu/MultimodalOCR ``OCRBench/scripts/*.py``, the scoring loop after
    generation): 1 when any reference answer, lower-cased and stripped with newlines as
    spaces, is a substring of the prediction treated alike. HME100k (handwritten math,
    ``dataset_name`` in the metadata, or ``dataset`` as the Hub card calls it) compares
    case-sensitively with all spaces removed."""
    answers = inp.answer if isinstance(inp.answer, list | tuple) else [inp.answer]
    dataset = inp.metadata.get("dataset_name", inp.metadata.get("dataset"))
    if dataset == "HME100k":

        def norm(text: str) -> str:
            return text.strip().replace("\n", " ").replace(" ", "")
    else:

        def norm(text: str) -> str:
            return text.lower().strip().replace("\n", " ")

    predict = norm(inp.prediction)
    hit = any(norm(str(a)) in predict for a in answers)
    return MetricResult(float(hit), predict)


@register_metric("anls")
def anls_metric(inp: MetricInput) -> MetricResult:
    """DocVQA / InfographicVQA ANLS (threshold 0.5, best over the reference answers):
    :func:`openvlthinker.rewards.text.anls`, which follows the RRC DocVQA scorer."""
    keys = list(inp.answer) if isinstance(inp.answer, list | tuple) else [inp.answer]
    return MetricResult(float(anls(inp.prediction, [str(k) for k in keys])), inp.prediction)


@register_metric("relaxed_accuracy")
def chartqa_relaxed_accuracy(inp: MetricInput) -> MetricResult:
    """ChartQA relaxed accuracy (numbers within 5% of the answer, else exact text):
    :func:`openvlthinker.rewards.numeric.relaxed_match`, which follows ChartQA's scorer."""
    keys = list(inp.answer) if isinstance(inp.answer, list | tuple) else [inp.answer]
    hit = any(relaxed_match(inp.prediction, str(k)) for k in keys)
    return MetricResult(float(hit), inp.prediction)
