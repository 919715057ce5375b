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

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricInput:
    """One response to score against one record."""

    prediction: str = field(metadata={"help": "The extracted answer text (see module doc)."})
    answer: Any = field(metadata={"help": "The record's ground truth."})
    problem_type: str = field(default="", metadata={"help": "The record's problem type."})
    options: tuple[str, ...] = field(default=(), metadata={"help": "Multiple-choice options."})
    metadata: Mapping[str, Any] = field(
        default_factory=dict, metadata={"help": "The record's metadata (unmapped card columns)."}
    )
    image_size: tuple[int, int] | None = field(
        default=None, metadata={"help": "Original (width, height) of the first image."}
    )
    model_image_size: tuple[int, int] | None = field(
        default=None, metadata={"help": "(width, height) the model saw (after resizing)."}
    )
    coordinate_frame: str = field(
        default="qwen_1000",
        metadata={"help": "Frame of predicted boxes (reward.coordinate_frame)."},
    )


@dataclass(frozen=True)
class MetricResult:
    """A metric's value for one response and what it compared (written to samples.jsonl)."""

    value: float
    extracted: Any = None
    error: str | None = None


Metric = Callable[[MetricInput], MetricResult]
METRICS: dict[str, Metric] = {}


def register_metric(name: str) -> Callable[[Metric], Metric]:
    """Decorator: make ``fn(MetricInput) -> MetricResult`` the metric called ``name``."""

    def wrap(fn: Metric) -> Metric:
        if name in METRICS and METRICS[name] is not fn:
            raise ValueError(f"metric {name!r} is already registered ({METRICS[name].__name__})")
        METRICS[name] = fn
        return fn

    return wrap


def compute_metric(name: str, inp: MetricInput) -> MetricResult:
    """``METRICS[name](inp)``; an exception becomes value 0 with ``error`` set (never raises
    for a bad response; an unknown name is a KeyError naming the known ones)."""
    if name not in METRICS:
        raise KeyError(f"metric {name!r} is unknown; known: {', '.join(sorted(METRICS))}")
    try:
        result = METRICS[name](inp)
    except Exception as e:  # a malformed response or record must not stop an evaluation
        logger.debug("metric %s failed", name, exc_info=True)
        return MetricResult(0.0, None, f"{type(e).__name__}: {str(e)[:160]}")
    return MetricResult(float(result.value), result.extracted, result.error)


def metric_input(
    record: Any,
    response: str,
    *,
    model_image_size: tuple[int, int] | None = None,
    answer_tag: str = "answer",
    think_tag: str = "think",
    coordinate_frame: str = "qwen_1000",
) -> MetricInput:
    """The :class:`MetricInput` of one response to one ``openvlthinker.data.Record``: the
    prediction is the last answer block's text, else the text after the think block."""
    from openvlthinker.rewards.tags import answer_without_tag, extract_answer

    prediction = extract_answer(response, answer_tag)
    if prediction is None:
        prediction = answer_without_tag(response, think_tag)
    return MetricInput(
        prediction=prediction,
        answer=record.answer,
        problem_type=record.problem_type,
        options=tuple(record.options),
        metadata=record.metadata,
        image_size=record.image_size,
        model_image_size=None if model_image_size is None else tuple(model_image_size),
        coordinate_frame=coordinate_frame,
    )


def _option_text(option: str) -> str:
    """``"A. dog"`` / ``"(A) dog"`` -> ``"dog"``; an unlabelled option is kept."""
    match = re.fullmatch(r"\s*\(?[A-Z]\)?[.:)]\s*(.*)", option, re.DOTALL)
    return match.group(1) if match else option


# ----------------------------------------------------------------------------- MathVista


def mathvista_extract(response: str, choices: Sequence[str], question_type: str, answer_type: str):
    """MathVista's rule-based extraction (``evaluation/extract_answer.py``, lupantech/MathVista):
    an empty response gives ``""``; a multi-choice response that *is* one of the choices is
    taken whole; an integer / float response is parsed; else the response itself (the GPT
    extractor that follows there is replaced by our answer tag, see the module doc)."""
    if response == "":
        return ""
    if question_type == "multi_choice" and response in choices:
        return response
    if answer_type == "integer":
        try:
            return str(int(response))
        except ValueError:
            pass
    if answer_type == "float":
        try:
            return str(float(response))
        except ValueError:
            pass
    return response


def mathvista_normalize_choice(extraction: Any, choices: Sequence[str]) -> str:
    """MathVista's multi-choice normalisation (``normalize_extracted_answer`` in
    ``evaluation/calculate_score.py``): ``(B) text`` -> ``B``; an option letter -> that
    choice's text; anything else -> the choice at the smallest Levenshtein distance."""
    from rapidfuzz.distance import Levenshtein

    text = extraction.strip() if isinstance(extraction, str) else str(extraction)
    letter = re.findall(r"\(([a-zA-Z])\)", text)
    if letter:
        text = letter[0].upper()
    letters = [chr(ord("A") + i) for i in range(len(choices))]
    if text in letters:
        return choices[letters.index(text)]
    distances = [Levenshtein.distance(text, c) for c in choices]
    return choices[distances.index(min(distances))]


@register_metric("mathvista")
def mathvista_accuracy(inp: MetricInput) -> MetricResult:
    """MathVista accuracy (lupantech/MathVista ``evaluation/calculate_score.py``): the
    extraction is normalised to the answer type (multi-choice: the choice text; integer:
    ``str(int(float(x)))``; float: ``str(round(float(x), precision))``) and must equal the
    answer string exactly. Reads ``answer_type``, ``precision`` (and ``question_type``, else
    the problem type) from the record's metadata and the choices from its options."""
    meta = inp.metadata
    # mapped to the record's problem type by the task file, the column is gone from metadata
    default = "multi_choice" if inp.problem_type == "multiple_choice" else "free_form"
    question_type = str(meta.get("question_type") or default)
    answer_type = str(meta.get("answer_type", ""))
    choices = [_option_text(o) for o in inp.options]
    extraction = mathvista_extract(inp.prediction, choices, question_type, answer_type)
    if question_type == "multi_choice":
        if not choices:
            return MetricResult(0.0, extraction, "multi_choice record without choices")
        prediction = mathvista_normalize_choice(extraction, choices)
        return MetricResult(float(prediction == str(inp.answer)), prediction)
    from openvlthinker.rewards.numeric import mathvista_match

    if answer_type == "integer":  # MathVista: str(int(float(x))), which truncates
        matched = mathvista_match(extraction, inp.answer, precision=0, truncate=True)
    elif answer_type == "float":  # MathVista: str(round(float(x), precision))
        precision = meta.get("precision")
        matched = mathvista_match(
            extraction, inp.answer, precision=None if precision is None else int(precision)
        )
    else:  # list / text answers: MathVista compares the strings
        matched = str(extraction).strip() == str(inp.answer).strip()
    return MetricResult(float(matched), extraction)


# ----------------------------------------------------------------------------- OCRBench


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


# ----------------------------------------------------------------------------- MMMU


def mmmu_parse_choice(response: str, all_choices: Sequence[str], index2ans: Mapping[str, str]):
    """MMMU's ``parse_multi_choice_response`` (MMMU-Benchmark/MMMU ``eval/eval_utils.py``):
    strip outer punctuation, pad with spaces; candidates are the letters written ``(X)``,
    else written `` X ``, else (responses over 5 words) the options whose text occurs; of
    several, the one that occurs last. Where MMMU then picks a *random* letter (no
    candidate), this returns None, scored wrong: a reproducible number instead of a seeded
    guess."""
    for char in (",", ".", "!", "?", ";", ":", "'"):
        response = response.strip(char)
    response = f" {response} "
    candidates: list[str] = []
    with_brackets = False
    by_letter = True
    for choice in all_choices:
        if f"({choice})" in response:
            candidates.append(choice)
            with_brackets = True
    if not candidates:
        candidates = [c for c in all_choices if f" {c} " in response]
    if not candidates and len(response.split()) > 5:
        lowered = response.lower()
        candidates = [i for i, ans in index2ans.items() if ans.lower() in lowered]
        by_letter = False
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    if by_letter:
        pattern = "({})" if with_brackets else " {} "
        starts = [response.rfind(pattern.format(c)) for c in candidates]
    else:
        starts = [response.lower().rfind(index2ans[c].lower()) for c in candidates]
    return candidates[max(range(len(starts)), key=lambda i: (starts[i], -i))]


def _mmmu_is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def _mmmu_normalize(text: str) -> list[Any]:
    """MMMU ``normalize_str``: numbers -> [round(float, 2)], one letter -> [" x", "x "]."""
    text = text.strip()
    if _mmmu_is_number(text):
        return [round(float(text.replace(",", "")), 2)]
    text = text.lower()
    return [" " + text, text + " "] if len(text) == 1 else [text]


def _mmmu_numbers(text: str) -> list[str]:
    """MMMU ``extract_numbers``: numbers with thousands commas, scientific, then simple."""
    commas = re.findall(r"-?\b\d{1,3}(?:,\d{3})+\b", text)
    scientific = re.findall(r"-?\d+(?:\.\d+)?[eE][+-]?\d+", text)
    simple = re.findall(r"-?(?:\d+\.\d+|\.\d+|\d+\b)(?![eE][+-]?\d+)(?![,\d])", text)
    return commas + scientific + simple


def mmmu_parse_open(response: str) -> list[Any]:
    """MMMU ``parse_open_response``: the shortest tail after a key phrase ("so ", "is ",
    "therefore ", ...; "=" in the last sentence) of each sentence, plus every number in
    those, normalised (numbers rounded to 2 places, text lower-cased)."""
    text = response.strip().strip(".").lower()
    sentences = re.split(r"\.\s(?=[A-Z])|\n", text)
    indicators = ["could be ", "so ", "is ", "thus ", "therefore ", "final ", "answer ", "result "]
    keys: list[str] = []
    for i, sentence in enumerate(sentences):
        if i == len(sentences) - 1:
            indicators.append("=")
        shortest = None
        for indicator in indicators:
            if indicator in sentence:
                tail = sentence.split(indicator)[-1].strip()
                if shortest is None or len(tail) < len(shortest):
                    shortest = tail
        if shortest and shortest.strip() not in (":", ",", ".", "!", "?", ";", "'"):
            keys.append(shortest)
    if not keys:
        keys = [text]
    preds = list(keys)
    for key in keys:
        preds.extend(_mmmu_numbers(key))
    out: list[Any] = []
    for p in preds:
        for v in _mmmu_normalize(p):
            if v not in out:
                out.append(v)
    return out


def mmmu_eval_open(gold: Any, preds: Sequence[Any]) -> bool:
    """MMMU ``eval_open``: a text prediction is right when a normalised text answer is a
    substring of it; a number when it is among the normalised answers."""
    golds = gold if isinstance(gold, list | tuple) else [gold]
    answers = [v for g in golds for v in _mmmu_normalize(str(g))]
    for pred in preds:
        if isinstance(pred, str):
            if any(isinstance(a, str) and a in pred for a in answers):
                return True
        elif pred in answers:
            return True
    return False


@register_metric("mmmu")
def mmmu_accuracy(inp: MetricInput) -> MetricResult:
    """MMMU accuracy (MMMU-Benchmark/MMMU ``eval/eval_utils.py``): multiple-choice records
    (problem type ``multiple_choice``) by :func:`mmmu_parse_choice` against the answer
    letter; open records by :func:`mmmu_parse_open` / :func:`mmmu_eval_open`."""
    if inp.problem_type == "multiple_choice":
        letters = [chr(ord("A") + i) for i in range(len(inp.options))]
        index2ans = {x: _option_text(o) for x, o in zip(letters, inp.options)}
        picked = mmmu_parse_choice(inp.prediction, letters, index2ans)
        golds = inp.answer if isinstance(inp.answer, list | tuple) else [inp.answer]
        return MetricResult(float(picked is not None and picked in golds), picked)
    preds = mmmu_parse_open(inp.prediction)
    return MetricResult(float(mmmu_eval_open(inp.answer, preds)), preds)


# ----------------------------------------------------------------------------- RefCOCO


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes (lmms-eval ``compute_iou`` in
    ``lmms_eval/tasks/refcoco/utils_rec.py``); 0 when the union is empty."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_FOUR_NUMBERS = re.compile(
    r"\[\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\s*\]"
)


@register_metric("refcoco_acc")
def refcoco_accuracy(inp: MetricInput) -> MetricResult:
    """RefCOCO / RefCOCO+ / RefCOCOg Acc@0.5 (lmms-eval ``utils_rec.py``:
    ``parse_float_sequence_within`` then ``compute_accuracy(..., 0.5)``): the *first*
    ``[a, b, c, d]`` in the prediction is the box; correct when its IoU with the ground
    truth box is >= 0.5. The predicted box is mapped from the model's frame
    (``coordinate_frame``: Qwen's 0..1000, or pixels of the resized image) into the ground
    truth's original-image pixels first, as the grounding reward does; no box scores 0."""
    from openvlthinker.rewards.config import RewardConfig
    from openvlthinker.rewards.geometry import prediction_scale
    from openvlthinker.rewards.registry import ScoreContext

    match = _FOUR_NUMBERS.search(inp.prediction)
    if match is None:
        return MetricResult(0.0, None, "no [x1, y1, x2, y2] box in the prediction")
    ctx = ScoreContext(
        config=RewardConfig(coordinate_frame=inp.coordinate_frame),
        image_size=inp.image_size,
        model_image_size=inp.model_image_size,
    )
    sx, sy = (float(v) for v in prediction_scale(ctx))
    x1, y1, x2, y2 = (float(match.group(i)) for i in range(1, 5))
    pred = [x1 * sx, y1 * sy, x2 * sx, y2 * sy]
    gt = [float(v) for v in inp.answer]
    return MetricResult(float(box_iou(gt, pred) >= 0.5), pred)


# ----------------------------------------------------------------------------- from the rewards


@register_metric("anls")
def anls_metric(inp: MetricInput) -> MetricResult:
    """DocVQA / InfographicVQA ANLS (threshold 0.5, best over the reference answers):
    :func:`openvlthinker.rewards.text.anls`, which follows the RRC DocVQA scorer."""
    from openvlthinker.rewards.text import anls

    keys = list(inp.answer) if isinstance(inp.answer, list | tuple) else [inp.answer]
    return MetricResult(float(anls(inp.prediction, [str(k) for k in keys])), inp.prediction)


@register_metric("relaxed_accuracy")
def chartqa_relaxed_accuracy(inp: MetricInput) -> MetricResult:
    """ChartQA relaxed accuracy (numbers within 5% of the answer, else exact text):
    :func:`openvlthinker.rewards.numeric.relaxed_match`, which follows ChartQA's scorer."""
    from openvlthinker.rewards.numeric import relaxed_match

    keys = list(inp.answer) if isinstance(inp.answer, list | tuple) else [inp.answer]
    hit = any(relaxed_match(inp.prediction, str(k)) for k in keys)
    return MetricResult(float(hit), inp.prediction)
