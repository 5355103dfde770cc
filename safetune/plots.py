"""Figures logged with the runs (matplotlib, headless)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def pareto_plot(results, front, default_idx, ref_point):
    """Harm rate vs relevance for every candidate; the front joined, the default marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    harm = [r.harm_rate for r in results]
    rel = [r.relevance for r in results]
    ax.scatter(rel, harm, s=18, c="0.6", label="candidates")
    pts = sorted((rel[i], harm[i]) for i in front)
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", c="tab:blue", label="Pareto front")
    if default_idx is not None:
        ax.scatter([rel[default_idx]], [harm[default_idx]], marker="*", s=200, c="tab:red", label="model default")
    ax.set_xlabel("mean relevance (higher is better)")
    ax.set_ylabel("harm rate (lower is better)")
    ax.set_title(f"SafeTune search (HV reference: harm={ref_point[0]}, relevance={-ref_point[1]})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig
