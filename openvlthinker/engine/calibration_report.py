"""Write a calibration: the task file that extends the input, calibration.md/.png/.json.

The task file overrides only the derived bounds, each under a comment giving the
measurement behind it (method.md section 7); everything else comes from ``extends``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from openvlthinker.shaping.calibration import CALIBRATION_FILE, Calibration, length_buckets
from openvlthinker.tasks.registry import TaskRegistry

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _key(name: str) -> str:
    return name if _PLAIN_KEY.match(name) else '"' + name.replace('"', '\\"') + '"'


def _comment(text: str, indent: str, width: int = 96) -> list[str]:
    """``text`` as ``# ...`` lines of at most ``width`` characters."""
    lines, line = [], ""
    for word in text.split():
        if line and len(indent) + 2 + len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return [f"{indent}# {x}" for x in lines]


def task_file_text(calibration: Calibration, registry: TaskRegistry, out: Path) -> str:
    """The calibrated task file (``extends`` the input, relative to ``out``'s folder)."""
    s = calibration.settings
    target, folder = Path(calibration.task_file).resolve(), out.resolve().parent
    # Relative when both live under one tree (a repo), so the pair can move together.
    shared = os.path.commonpath([target, folder])
    base = os.path.relpath(target, folder) if shared != target.anchor else str(target)
    lines = [
        "# Written by `openvlthinker calibrate`: shaping bounds measured from the policy",
        *_comment(
            f"{s['model']}, no update: {s['batches']} batches x {s['prompts_per_batch']} prompts "
            f"x {s['responses_per_prompt']} responses per task at temperature "
            f"{s['temperature']:g}, {s['max_new_tokens']}-token limit, seed {s['seed']}, "
            f"{s['entropy_estimator']} entropy. Rule: docs/method.md section 7; report: "
            "calibration.md, calibration.png. Only the derived bounds are set here; "
            "everything else comes from the extended file.",
            "",
        ),
        f"extends: {base}",
        "",
        "tasks:",
    ]
    for task, names in calibration.fields.items():
        b = calibration.bounds[task]
        lines.append(f"  {_key(task)}:")
        if "length_envelope" in names:
            lines += _comment(b.notes["length_envelope"], "    ")
            lines.append(f"    length_envelope: {list(b.length_envelope)}")
        derived = [k for k in ("h_min", "h_max") if k in names]
        if derived:
            h_min, h_max, coef = registry[task].entropy_band
            band = {
                "h_min": h_min,
                "h_max": h_max,
                "coef": coef,
                **{k: getattr(b, k) for k in derived},
            }
            kept = [k for k in ("h_min", "h_max", "coef") if k not in derived]
            lines += _comment(
                b.notes["entropy_band"] + f"; {', '.join(kept)} as in the extended file", "    "
            )
            lines.append(
                f"    entropy_band: {{h_min: {band['h_min']!r}, h_max: {band['h_max']!r}, "
                f"coef: {band['coef']!r}}}"
            )
    return "\n".join(lines) + "\n"


def _fmt(x: float) -> str:
    return "-" if isinstance(x, float) and math.isnan(x) else f"{x:.2f}"


def markdown_text(calibration: Calibration, registry: TaskRegistry, out: Path) -> str:
    """calibration.md: the settings, per task the measurements and bounds, correctness by
    length bucket."""
    s = calibration.settings
    rows = [
        "# Calibration",
        "",
        f"Task file `{out.name}` extends `{calibration.task_file}`; rule: docs/method.md "
        "section 7. Measured with the policy frozen:",
        "",
        *[f"- {k}: {v}" for k, v in s.items()],
        "",
        "| task | intent | responses | hit limit | finished median | mean correctness | "
        "token-mean entropy | length_envelope | h_min | h_max | derived |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, names in calibration.fields.items():
        b, e = calibration.bounds[task], calibration.bounds[task].evidence
        rows.append(
            f"| {task} | {registry[task].length_intent} | {int(e['responses'])} | "
            f"{e['hit_limit_share']:.1%} | {e['finished_median_length']:.1f} | "
            f"{e['finished_mean_correctness']:.2f} | {e['token_mean_entropy']:.4f} | "
            f"{list(b.length_envelope)} | {b.h_min} | {b.h_max} | {', '.join(names)} |"
        )
    rows += ["", "![per-task histograms](calibration.png)", ""]
    for task in calibration.fields:
        b = calibration.bounds[task]
        rows += [f"## {task}", "", f"- envelope: {b.notes['length_envelope']}"]
        rows += [f"- band: {b.notes['entropy_band']}", ""]
        m = calibration.measurements.get(task)
        if m is not None:
            rows += [
                "| length bucket | responses | mean correctness | mean reward |",
                "|---|---|---|---|",
            ]
            for label, n, correct, reward in length_buckets(m, b.length_envelope):
                rows.append(f"| {label} | {n} | {_fmt(correct)} | {_fmt(reward)} |")
            rows.append("")
    return "\n".join(rows)


def write_plot(calibration: Calibration, registry: TaskRegistry, path: Path) -> Path:
    """Per task: the length and the entropy histogram with the bounds drawn (solid: derived,
    dashed: from the extended file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in calibration.fields if t in calibration.measurements]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(10, 2.6 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        m, b, names = (
            calibration.measurements[task],
            calibration.bounds[task],
            calibration.fields[task],
        )
        spec = registry[task]
        envelope = b.length_envelope if "length_envelope" in names else spec.length_envelope
        ax = row[0]
        lengths = np.asarray(m.lengths)
        bins = np.linspace(0, m.max_new_tokens + 1, min(40, m.max_new_tokens + 1) + 1)
        ax.hist(
            [lengths[~m.truncated], lengths[m.truncated]],
            bins=bins,
            stacked=True,
            color=["tab:blue", "tab:gray"],
            label=["finished", "hit the limit"],
        )
        ax.legend(fontsize=7, loc="center left")
        style = "-" if "length_envelope" in names else "--"
        for label, x in zip(("L_min", "L_low", "L_high", "L_max"), envelope or ()):
            ax.axvline(x, color="tab:red", linestyle=style, linewidth=1)
            ax.annotate(label, (x, 1), xycoords=("data", "axes fraction"), fontsize=7, va="top")
        ax.set_title(f"{task} ({spec.length_intent}): response length (tokens)", fontsize=9)
        ax = row[1]
        entropy = np.asarray(m.entropy)[np.asarray(m.lengths) > 0]
        ax.hist(entropy, bins=30, color="tab:green", alpha=0.7)
        for name, value in zip(("h_min", "h_max"), spec.entropy_band[:2]):
            derived = name in names
            x = getattr(b, name) if derived else value
            ax.axvline(x, color="tab:red", linestyle="-" if derived else "--", linewidth=1)
            ax.annotate(name, (x, 1), xycoords=("data", "axes fraction"), fontsize=7, va="top")
        ax.axvline(m.token_mean_entropy(), color="black", linewidth=1, linestyle=":")
        ax.set_title(f"{task}: per-response mean token entropy (dotted: token mean)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(calibration: Calibration, registry: TaskRegistry, out: str | Path) -> list[Path]:
    """``out`` (the task file) and calibration.md / .png / .json next to it; returns the paths."""
    out = Path(out)
    folder = out.parent
    folder.mkdir(parents=True, exist_ok=True)
    out.write_text(task_file_text(calibration, registry, out), encoding="utf-8")
    md = folder / "calibration.md"
    md.write_text(markdown_text(calibration, registry, out), encoding="utf-8")
    data = folder / CALIBRATION_FILE
    data.write_text(calibration.to_json(with_measurements=True), encoding="utf-8")
    paths = [out, md, data]
    if calibration.measurements:
        paths.append(write_plot(calibration, registry, folder / "calibration.png"))
    return paths
