"""The paper's table from ``results.json``: rows = validation sets grouped by task, columns =
checkpoints, per-task and macro averages, and from the second checkpoint on the delta
against the first (the layout of the paper's ablation table). Written as CSV, Markdown and
a grouped bar chart."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One table row: a set (``set`` its name) or an average (``set`` = "average")."""

    task: str
    set: str
    metric: str
    values: tuple[float | None, ...]

    def deltas(self) -> tuple[float | None, ...]:
        first = self.values[0] if self.values else None
        return tuple(None if v is None or first is None else v - first for v in self.values[1:])


def _mean(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return sum(got) / len(got) if len(got) == len(values) and got else None


def build_rows(
    scores: Mapping[tuple[str, str], float],
    checkpoints: Sequence[str],
    sets: Sequence[tuple[str, str, str]],
) -> list[Row]:
    """``scores[(checkpoint, set)]``; ``sets`` as (task, set, metric) in table order. A task
    average is the unweighted mean over its sets, the macro one over the task averages
    (only where every cell is present)."""
    rows: list[Row] = []
    task_rows: list[Row] = []
    tasks = list(dict.fromkeys(t for t, _, _ in sets))
    for task in tasks:
        mine = [
            Row(task, name, metric, tuple(scores.get((c, name)) for c in checkpoints))
            for t, name, metric in sets
            if t == task
        ]
        rows += mine
        if len(mine) > 1:
            avg = Row(
                task,
                "average",
                "",
                tuple(_mean([r.values[i] for r in mine]) for i in range(len(checkpoints))),
            )
            rows.append(avg)
            task_rows.append(avg)
        else:
            task_rows.append(mine[0])
    if len(task_rows) > 1:
        rows.append(
            Row(
                "macro",
                "average",
                "",
                tuple(_mean([r.values[i] for r in task_rows]) for i in range(len(checkpoints))),
            )
        )
    return rows


def _header(checkpoints: Sequence[str]) -> list[str]:
    return ["task", "set", "metric", *checkpoints, *(f"delta {c}" for c in checkpoints[1:])]


def to_csv(rows: Sequence[Row], checkpoints: Sequence[str]) -> str:
    """Raw values (0..1), six decimals; empty cells where a value is missing."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_header(checkpoints))
    for r in rows:
        cells = [*r.values, *r.deltas()]
        writer.writerow(
            [r.task, r.set, r.metric, *("" if v is None else f"{v:.6f}" for v in cells)]
        )
    return buf.getvalue()


def to_markdown(rows: Sequence[Row], checkpoints: Sequence[str]) -> str:
    """Percentages with one decimal, deltas signed; averages in bold."""
    head = _header(checkpoints)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        values = ["" if v is None else f"{100 * v:.1f}" for v in r.values]
        deltas = ["" if v is None else f"{100 * v:+.1f}" for v in r.deltas()]
        cells = [r.task, r.set, r.metric, *values, *deltas]
        if r.set == "average":
            cells = [f"**{c}**" if c else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_bars(rows: Sequence[Row], checkpoints: Sequence[str], path: Path) -> Path:
    """Grouped bars, one group per set, one colour per checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    set_rows = [r for r in rows if r.set != "average"]
    x = np.arange(len(set_rows))
    width = 0.8 / max(1, len(checkpoints))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.7 * len(set_rows) * max(1, len(checkpoints))), 4))
    for i, name in enumerate(checkpoints):
        values = [100 * (r.values[i] or 0.0) for r in set_rows]
        ax.bar(x + (i - (len(checkpoints) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, [f"{r.set}\n({r.task})" for r in set_rows], fontsize=7, rotation=30)
    ax.set_ylabel("score (%)")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def score_of(entry: Mapping[str, Any]) -> float:
    """The value a results.json entry contributes to the table."""
    return float(entry["metrics"][entry["score_metric"]])
