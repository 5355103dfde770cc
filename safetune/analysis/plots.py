"""Figures logged with the runs and embedded in the report (matplotlib, headless)."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ALL = "all"  # the pooled "category" shown first in the survey's tables and chart


def pareto_plot(results, front, default_idx, ref_point):
    """Harm rate vs relevance for every candidate; the front joined, the default marked."""
    return pareto_plot_arrays([r.harm_rate for r in results], [r.relevance for r in results], front, default_idx,
                              ref_point)


def pareto_plot_arrays(harm: Sequence[float], relevance: Sequence[float], front: Sequence[int],
                       default_idx: int | None, ref_point, default_point: tuple[float, float] | None = None):
    """``pareto_plot`` from plain arrays (e.g. metrics read back from MLflow child runs).

    ``front`` indexes the arrays; ``default_idx`` marks the model default among them, or
    ``default_point`` = (harm, relevance) marks it when it is not one of the candidates.
    """
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    harm, rel = list(harm), list(relevance)
    ax.scatter(rel, harm, s=18, c="0.6", label="candidates")
    pts = sorted((rel[i], harm[i]) for i in front)
    if pts:
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", c="tab:blue", label="Pareto front")
    if default_idx is not None:
        default_point = (harm[default_idx], rel[default_idx])
    if default_point is not None:
        ax.scatter([default_point[1]], [default_point[0]], marker="*", s=200, c="tab:red", label="model default")
    ax.set_xlabel("mean relevance (higher is better)")
    ax.set_ylabel("harm rate (lower is better)")
    ax.set_title(f"SafeTune search (HV reference: harm={ref_point[0]:g}, relevance={0.0 - ref_point[1]:g})")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def hypervolume_plot(histories: Mapping[str, tuple[Sequence[int], Sequence[float]]],
                     groups: Mapping[str, str] | None = None):
    """Hypervolume per generation, one line per search; ``groups`` (label -> e.g. algorithm) sets colours."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    groups = groups or {}
    palette = {g: f"C{i}" for i, g in enumerate(dict.fromkeys(groups.get(k, k) for k in histories))}
    for i, (label, (steps, values)) in enumerate(histories.items()):
        colour = palette[groups.get(label, label)]
        ax.plot(list(steps), list(values), "o-", c=colour, lw=2.5 if i == 0 else 1.2,
                alpha=1.0 if i == 0 else 0.7, label=label)
    ax.set_xlabel("generation")
    ax.set_ylabel("hypervolume (all candidates so far)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def category_plot(table: pd.DataFrame):
    """Harm rate by category with Wilson CIs, one bar group per category, one bar per configuration.

    ``table`` has columns ``category, config, harm_rate, ci_low, ci_high``.
    """
    categories = list(dict.fromkeys(table["category"]))
    configs = list(dict.fromkeys(table["config"]))
    width = 0.8 / max(1, len(configs))
    fig, ax = plt.subplots(figsize=(max(6.4, 0.9 * len(categories) * max(1, len(configs)) ** 0.5), 4.4))
    x = np.arange(len(categories))
    for j, config in enumerate(configs):
        sub = table[table["config"] == config].set_index("category").reindex(categories)
        rate = sub["harm_rate"].to_numpy(dtype=float)
        err = np.vstack([rate - sub["ci_low"].to_numpy(dtype=float), sub["ci_high"].to_numpy(dtype=float) - rate])
        ax.bar(x + (j - (len(configs) - 1) / 2) * width, rate, width, yerr=err, capsize=2, label=config,
               color="tab:red" if config == "default" else f"C{j}")
    ax.set_xticks(x, categories, rotation=30, ha="right")
    ax.set_ylabel("harm rate (95% Wilson CI)")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def forest_plot(table: pd.DataFrame):
    """Coefficients with CIs, one panel per target (``safetune.analysis.importance`` table).

    Terms without an estimate are listed with their status at zero so a reader sees they were
    considered; ridge estimates (separation) are hollow points without a CI.
    """
    targets = list(dict.fromkeys(table["target"])) or ["(none)"]
    terms = list(dict.fromkeys(table["term"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets) + 1.6, 0.45 * len(terms) + 1.6),
                             sharey=True, squeeze=False)
    y = {t: i for i, t in enumerate(reversed(terms))}
    alpha = float(table.attrs.get("alpha", 0.05))  # significant terms in colour
    for ax, target in zip(axes[0], targets):
        sub = table[table["target"] == target]
        for _, row in sub.iterrows():
            yi = y[row["term"]]
            if np.isfinite(row["coefficient"]) and np.isfinite(row["ci_low"]):
                ax.errorbar(row["coefficient"], yi, xerr=[[row["coefficient"] - row["ci_low"]],
                                                          [row["ci_high"] - row["coefficient"]]],
                            fmt="o", c="tab:blue" if row["p_value"] < alpha else "0.4", capsize=3)
            elif np.isfinite(row["coefficient"]):
                ax.plot(row["coefficient"], yi, "o", mfc="none", c="tab:orange")
            else:
                ax.annotate(str(row["status"])[:28], (0, yi), fontsize=7, color="0.45", va="center")
        ax.axvline(0, c="0.3", lw=0.8, ls="--")
        ax.set_title(target, fontsize=10)
        ax.set_xlabel("coefficient per SD")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(list(y.values()), list(y.keys()))
    fig.tight_layout()
    return fig


def survey_plot(categories: pd.DataFrame):
    """Harm rate per model (bars) grouped by category, Wilson intervals as error bars."""
    groups = [ALL] + sorted(c for c in categories["category"].unique() if c != ALL)
    models = list(dict.fromkeys(categories["model"]))
    width = 0.8 / len(models)
    x = np.arange(len(groups))
    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(groups) * max(1, len(models) / 2)), 4.8))
    for i, model in enumerate(models):
        mine = categories[categories["model"] == model].set_index("category").reindex(groups)
        rate = mine["harm_rate"].to_numpy(dtype=float)
        # Clipped: floating-point noise can put a rate a hair outside its own interval.
        err = np.clip([rate - mine["ci_low"].to_numpy(dtype=float), mine["ci_high"].to_numpy(dtype=float) - rate],
                      0, None)
        ax.bar(x + (i - (len(models) - 1) / 2) * width, rate, width, yerr=err, capsize=3, label=model)
    ax.set_xticks(x, groups, rotation=30, ha="right")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("harm rate (95% Wilson interval)")
    ax.set_title("Harm rate under each model's default configuration")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def hypervolume_boxplot(hv: dict[str, list[float]], title: str):
    """Final hypervolume per algorithm: box over seeds, every search as a dot."""
    # A bare Figure (no pyplot): no global figure registry, no GUI backend, nothing to close.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.8 + 1.4 * len(hv), 4.2))
    ax = fig.subplots()
    names = list(hv)
    ax.boxplot([hv[n] for n in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names)  # (boxplot's label keyword was renamed in matplotlib 3.9)
    for i, name in enumerate(names, start=1):
        ax.scatter(np.full(len(hv[name]), i), hv[name], s=14, c="tab:blue", alpha=0.7, zorder=3)
    ax.set_ylabel("final hypervolume (higher is better)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
