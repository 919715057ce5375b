"""Benchmark metrics against cases worked through each benchmark's public scoring code."""

import pytest

from openvlthinker.benchmarks import (
    METRICS,
    MetricInput,
    box_iou,
    compute_metric,
    mathvista_extract,
    mathvista_normalize_choice,
    metric_input,
    mmmu_eval_open,
    mmmu_parse_choice,
    mmmu_parse_open,
)


def run(name, prediction, answer, **kw):
    return compute_metric(name, MetricInput(prediction=prediction, answer=answer, **kw))


# ------------------------------------------------------------------ MathVista


def test_mathvista_quick_extraction_rules():
    choices = ["2", "3", "4"]
    assert mathvista_extract("", choices, "multi_choice", "text") == ""
    assert mathvista_extract("3", choices, "multi_choice", "text") == "3"
    assert mathvista_extract("12", [], "free_form", "integer") == "12"
    assert mathvista_extract("1.50", [], "free_form", "float") == "1.5"
    # int("1.5") fails, so the response goes on as it is
    assert mathvista_extract("1.5", [], "free_form", "integer") == "1.5"


def test_mathvista_choice_normalisation_letter_bracket_and_levenshtein():
    choices = ["acute", "obtuse", "right"]
    assert mathvista_normalize_choice("B", choices) == "obtuse"
    assert mathvista_normalize_choice("(C) right", choices) == "right"
    assert mathvista_normalize_choice("obtus", choices) == "obtuse"  # nearest by edit distance
    # D is no letter of three choices: edit distance 5 / 6 / 5, the first smallest wins
    assert mathvista_normalize_choice("D", choices) == "acute"


def test_mathvista_multi_choice_compares_choice_text():
    meta = {"question_type": "multi_choice", "answer_type": "text", "precision": None}
    opts = ("A. 145°", "B. 165°", "C. 15°")
    got = run("mathvista", "(B)", "165°", options=opts, metadata=meta)
    assert got.value == 1.0 and got.extracted == "165°"
    assert run("mathvista", "A", "165°", options=opts, metadata=meta).value == 0.0


# ------------------------------------------------------------------ OCRBench


def test_ocrbench_containment_case_insensitive_and_newlines():
    assert run("ocrbench", "The word is CENTRE", ["centre"]).value == 1.0
    assert run("ocrbench", "centr", ["centre"]).value == 0.0
    assert run("ocrbench", "line one\nline two", "LINE ONE LINE TWO").value == 1.0
    assert run("ocrbench", "x", ["no", "x"]).value == 1.0  # any of the answers


def test_ocrbench_hme100k_removes_spaces_and_keeps_case():
    meta = {"dataset_name": "HME100k"}
    assert run("ocrbench", "x ^ { 2 } + 1", "x^{2}+1", metadata=meta).value == 1.0
    assert run("ocrbench", "X^{2}+1", "x^{2}+1", metadata=meta).value == 0.0
    assert run("ocrbench", "X^{2}+1", "x^{2}+1").value == 1.0  # other sets ignore case


# ------------------------------------------------------------------ MMMU


def test_mmmu_choice_brackets_spaces_text_and_last_match():
    letters = ["A", "B", "C", "D"]
    ans = {"A": "red apple", "B": "green pear", "C": "blue sky", "D": "black cat"}
    assert mmmu_parse_choice("(B)", letters, ans) == "B"
    assert mmmu_parse_choice("The answer is C.", letters, ans) == "C"
    # (X) beats " X ": the bracketed letter wins though A appears bare
    assert mmmu_parse_choice("A is wrong, so (D)", letters, ans) == "D"
    # two bracketed letters: the one written last
    assert mmmu_parse_choice("(A) or maybe (C)", letters, ans) == "C"
    # no letter; more than 5 words: option text, the last one mentioned
    assert mmmu_parse_choice("I think it shows a green pear near a black cat", letters, ans) == "D"
    # 5 words or fewer without a letter: MMMU would guess at random; we give no answer
    assert mmmu_parse_choice("a green pear", letters, ans) is None
    assert mmmu_parse_choice("none", letters, ans) is None


def test_mmmu_open_parsing_and_eval():
    preds = mmmu_parse_open("The area is 12.50 square units.")
    assert 12.5 in preds
    assert mmmu_eval_open("12.5", preds)
    assert mmmu_eval_open("1,250", mmmu_parse_open("so the total is 1250"))
    assert not mmmu_eval_open("13", preds)
    assert mmmu_eval_open("paris", mmmu_parse_open("Therefore the city is Paris"))


def test_mmmu_metric_by_problem_type():
    opts = ("1", "2", "3")
    assert run("mmmu", "(B)", "B", problem_type="multiple_choice", options=opts).value == 1.0
    assert run("mmmu", "(B)", "C", problem_type="multiple_choice", options=opts).value == 0.0
    assert run("mmmu", "so it is 7", "7", problem_type="open_ended").value == 1.0


# ------------------------------------------------------------------ RefCOCO


def test_box_iou_values():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


def test_refcoco_first_box_threshold_and_frame():
    gt = [0.0, 0.0, 100.0, 100.0]
    # pixel frame of an unresized image: [0, 0, 100, 60] has IoU 0.6 >= 0.5
    pix = {"coordinate_frame": "absolute", "image_size": (200, 200)}
    assert run("refcoco_acc", "[0, 0, 100, 60] then [0, 0, 1, 1]", gt, **pix).value == 1.0
    # IoU 0.4 < 0.5; the first box counts, not the better second one
    assert run("refcoco_acc", "[0, 0, 100, 40], [0, 0, 100, 100]", gt, **pix).value == 0.0
    # qwen 0..1000 frame: 500 of a 200-pixel side is 100 pixels
    q = {"coordinate_frame": "qwen_1000", "image_size": (200, 200)}
    got = run("refcoco_acc", '{"boxes": [0, 0, 500, 500]}', gt, **q)
    assert got.value == 1.0 and got.extracted == [0.0, 0.0, 100.0, 100.0]
    nobox = run("refcoco_acc", "no box here", gt, **pix)
    assert nobox.value == 0.0 and "no [x1" in nobox.error


# ------------------------------------------------------------------ registry


def test_unknown_metric_names_the_known_ones_and_failures_score_zero():
    with pytest.raises(KeyError, match="metric 'nope' is unknown; known: .*ocrbench"):
        compute_metric("nope", MetricInput(prediction="", answer=""))
    bad = run("refcoco_acc", "[0, 0, 1, 1]", "not a box", coordinate_frame="absolute")
    assert bad.value == 0.0 and bad.error.startswith("ValueError")
    assert {"mathvista", "ocrbench", "mmmu", "refcoco_acc", "anls", "relaxed_accuracy"} <= set(
        METRICS
    )


def test_metric_input_takes_the_answer_tag_else_the_text_after_think():
    from openvlthinker.data import Record

    rec = Record(
        id="r",
        problem="q",
        answer="B",
        problem_type="multiple_choice",
        task="t",
        data_type="text",
        options=("x", "y"),
    )
    assert metric_input(rec, "<think>hm</think><answer> B </answer>").prediction == "B"
    assert metric_input(rec, "<think>hm</think> (B) y").prediction == "(B) y"
    assert metric_input(rec, "plain").options == ("x", "y")


@pytest.mark.parametrize(
    ("prediction", "answer", "meta", "expected"),
    [
        ("2.7", "2", {"answer_type": "integer"}, 1.0),  # MathVista's int(float(x)) truncates
        ("3", "2", {"answer_type": "integer"}, 0.0),
        ("1.452", "1.45", {"answer_type": "float", "precision": 2}, 1.0),
        ("1.46", "1.45", {"answer_type": "float", "precision": 2}, 0.0),
        ("1.4", "1.45", {"answer_type": "float", "precision": 1}, 1.0),  # round(1.45, 1) == 1.4
        ("[1, 2]", "[1, 2]", {"answer_type": "list"}, 1.0),
        ("[1, 3]", "[1, 2]", {"answer_type": "list"}, 0.0),
    ],
)
def test_mathvista_free_form_follows_the_answer_type(prediction, answer, meta, expected):
    meta = {"question_type": "free_form", **meta}
    assert run("mathvista", prediction, answer, metadata=meta).value == expected


def test_anls_and_relaxed_accuracy_metrics_use_the_reward_suites_rules():
    keys = ["Dear Dr. Lobo", "Dr. Lobo"]
    assert run("anls", "Dr. Lobo", keys).value == 1.0
    assert run("anls", "dr lobo", keys).value == pytest.approx(1 - 1 / 8)  # one edit in 8
    assert run("anls", "Professor X", keys).value == 0.0  # NL >= 0.5
    assert run("relaxed_accuracy", "104", "100").value == 1.0  # 4% off
    assert run("relaxed_accuracy", "106", ["100"]).value == 0.0
    assert run("relaxed_accuracy", "45%", "0.45").value == 1.0
