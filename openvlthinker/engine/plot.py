"""The per-task plot written at the end of a run: one row per task (plus one for all tasks).

Columns: training reward; response length with the task's envelope shaded (L_min..L_max
light, L_low..L_high dark: the trapezoid's plateau, method.md section 2); entropy with the
task's band H_min..H_max shaded (method.md section 3); validation, one line per validation
set of the task (its benchmark metric when it names one, else correctness) and the task's
aggregate dashed. A reader sees at a glance whether each task stays inside its bounds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openvlthinker.tasks import TaskRegistry

PANELS = (
    ("reward", "train reward"),
    ("response_length", "response length (tokens)"),
    ("entropy", "entropy"),
    ("validation", "validation"),
)
VAL_METRIC = "correctness"


def tasks_in(history: list[dict[str, Any]]) -> list[str]:
    """Task keys that appear as ``train/<task>/reward`` in the history."""
    found = {
        key.split("/")[1]
        for row in history
        for key in row
        if key.startswith("train/") and key.count("/") == 2 and key.endswith("/reward")
    }
    return sorted(found)


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = [row for row in history if key in row]
    return [row["step"] for row in rows], [row[key] for row in rows]


def validation_lines(
    task: str | None, registry: TaskRegistry | None
) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, metric key, line style) of a task's validation panel; ``task`` None = macro."""
    if task is None:
        return [("macro", f"val/macro/{VAL_METRIC}", {"color": "black", "linewidth": 2})]
    lines = [(f"{task} (all sets)", f"val/{task}/{VAL_METRIC}", {"linestyle": "--"})]
    if registry is not None and task in registry:
        for vset in registry[task].validation:
            metric = vset.metric or VAL_METRIC
            lines.append((f"{vset.name} ({metric})", f"val/{vset.name}/{metric}", {}))
    return lines


def plot_history(
    history: list[dict[str, Any]], path: str | Path, registry: TaskRegistry | None = None
) -> Path:
    """:func:`build_figure` saved as PNG at ``path``."""
    import matplotlib.pyplot as plt

    fig = build_figure(history, registry)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def build_figure(history: list[dict[str, Any]], registry: TaskRegistry | None = None):
    """One row per task (the first: all tasks), the four panels of the module doc; with a
    ``registry`` the envelope, band and per-set lines are drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = tasks_in(history)
    if registry is not None:
        val_tasks = {k.split("/")[1] for row in history for k in row if k.startswith("val/")}
        tasks = [t for t in registry if t in tasks or t in val_tasks]
    rows: list[str | None] = [None, *tasks]
    fig, axes = plt.subplots(
        len(rows), len(PANELS), figsize=(4.2 * len(PANELS), 2.6 * len(rows)), squeeze=False
    )
    for r, task in enumerate(rows):
        known = registry is not None and task is not None and task in registry
        spec = registry[task] if known else None
        prefix = "train/" if task is None else f"train/{task}/"
        for c, (metric, label) in enumerate(PANELS):
            ax = axes[r][c]
            if metric == "validation":
                for name, key, style in validation_lines(task, registry):
                    steps, values = _series(history, key)
                    if steps:
                        ax.plot(steps, values, marker=".", label=name, **style)
                ax.set_ylim(-0.05, 1.05)
                if ax.lines:
                    ax.legend(fontsize=7)
            else:
                steps, values = _series(history, prefix + metric)
                if steps:
                    ax.plot(steps, values, marker=".", color="black" if task is None else None)
            if spec is not None and metric == "response_length":
                l_min, l_low, l_high, l_max = spec.length_envelope
                ax.axhspan(l_min, l_max, color="tab:green", alpha=0.12, label="L_min..L_max")
                ax.axhspan(l_low, l_high, color="tab:green", alpha=0.25, label="L_low..L_high")
                ax.legend(fontsize=7)
            if spec is not None and metric == "entropy":
                h_min, h_max, _ = spec.entropy_band
                ax.axhspan(h_min, h_max, color="tab:orange", alpha=0.2, label="H_min..H_max")
                ax.legend(fontsize=7)
            ax.set_title(f"{'all tasks' if task is None else task}: {label}", fontsize=9)
            ax.grid(alpha=0.3)
            if r == len(rows) - 1:
                ax.set_xlabel("step")
    fig.tight_layout()
    return fig
