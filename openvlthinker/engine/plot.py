"""The per-task plot written at the end of a run: reward, response length, entropy vs step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PANELS = (
    ("reward", "reward"),
    ("response_length", "response length (tokens)"),
    ("entropy", "entropy"),
)


def tasks_in(history: list[dict[str, Any]]) -> list[str]:
    """Task keys that appear as ``train/<task>/reward`` in the history."""
    found = {
        key.split("/")[1]
        for row in history
        for key in row
        if key.startswith("train/") and key.count("/") == 2 and key.endswith("/reward")
    }
    return sorted(found)


def plot_history(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Three panels, one line per task (plus the all-task mean); saved as PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = tasks_in(history)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 3.6))
    for ax, (metric, label) in zip(axes, PANELS):
        for name, key in [("all", f"train/{metric}")] + [(t, f"train/{t}/{metric}") for t in tasks]:
            points = [(row["step"], row[key]) for row in history if key in row]
            if points:
                steps, values = zip(*points)
                style = {"color": "black", "linewidth": 2} if name == "all" else {}
                ax.plot(steps, values, marker=".", label=name, **style)
        ax.set_xlabel("step")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
