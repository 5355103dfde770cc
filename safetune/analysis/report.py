"""``safetune report RUN_ID``: one self-contained HTML page about a finished (or running) search.

Everything is read back from MLflow (the parent run, its candidate child runs, their
``responses.json`` tables, the registry and any ``safetune evaluate`` run of the registered
configurations), so the report can be rebuilt for any search at any time. Figures are matplotlib
PNGs embedded as base64 and tables are ``DataFrame.to_html``: the file opens anywhere, offline.

The page carries numbers and category names only. Prompt and response text stay in the runs'
artifacts, although the report itself is an artifact too, to keep it safe to share.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from safetune import stats
from safetune.analysis import importance
from safetune.analysis import plots
from safetune.errors import SafetuneError

REPORT_ARTIFACT = "report.html"
SECTIONS = ("config", "pareto", "hypervolume", "categories", "importance", "evaluation")
PARETO_COLUMNS = ["label", "harm_rate", "harm_rate_ci_low", "harm_rate_ci_high", "relevance", "incoherence_rate",
                  "benign_helpfulness", "fluency_nll", "capability", *importance.FACTORS, "run_id"]


@dataclass(frozen=True)
class ReportConfig:
    """What the report computes; the importance models' settings live in ``importance``."""

    importance: importance.ImportanceConfig = field(default_factory=importance.ImportanceConfig)
    max_overlays: int = 12  # other searches drawn on the hypervolume figure (most recent first)

    def __post_init__(self) -> None:
        if self.max_overlays < 0:
            raise SafetuneError(f"max_overlays must be >= 0 (got {self.max_overlays})")


@dataclass
class SearchRecord:
    """What the report needs from MLflow about one search."""

    parent: object  # mlflow Run
    children: list  # candidate child runs, evaluation order
    candidates: pd.DataFrame  # one row per child run (duplicates kept), metrics, knobs, labels

    @property
    def run_id(self) -> str:
        return self.parent.info.run_id

    @property
    def params(self) -> dict[str, str]:
        """The search's own parameters (``safetune.`` prefix stripped; `mlflow run` adds bare ones)."""
        return {k[len("safetune."):]: v for k, v in self.parent.data.params.items() if k.startswith("safetune.")}

    @property
    def tags(self) -> dict[str, str]:
        return self.parent.data.tags


# --- Reading MLflow -------------------------------------------------------------------------------


def load_search(run_id: str, client: MlflowClient) -> SearchRecord:
    """The parent run and its candidates; SafetuneError if the id is unknown or not a search."""
    parent = importance.get_run(run_id, client)
    kind = parent.data.tags.get("safetune.kind")
    if kind != "search":
        raise SafetuneError(f"run {run_id} is not a safetune search (tag safetune.kind={kind!r})")
    children = importance.child_runs(run_id, client)
    rows = []
    for run in children:
        config = importance.config_from_params(run.data.params)
        tags, m = run.data.tags, run.data.metrics
        rows.append({
            "run_id": run.info.run_id, "generation": int(tags["safetune.generation"]), "digest": config.digest(),
            "pareto": tags.get("safetune.pareto") == "true", "default": tags.get("safetune.default") == "true",
            **config.to_dict(), **{k: float(m[k]) if k in m else np.nan for k in (
                "harm_rate", "harm_rate_ci_low", "harm_rate_ci_high", "relevance", "n_responses", "n_unknown",
                "incoherence_rate", "benign_compliance", "benign_helpfulness", "fluency_nll", "capability")},
        })
    columns = ["run_id", "generation", "digest", "pareto", "default", *importance.FACTORS, "harm_rate",
               "harm_rate_ci_low", "harm_rate_ci_high", "relevance", "n_responses", "n_unknown", "incoherence_rate",
               "benign_compliance", "benign_helpfulness", "fluency_nll", "capability"]
    return SearchRecord(parent, children, pd.DataFrame(rows, columns=columns))


def _alias_labels(record: SearchRecord, client: MlflowClient) -> dict[str, list[str]]:
    """child run id -> registry aliases pointing at a version logged from it."""
    name = record.tags.get("safetune.registered_model")
    out: dict[str, list[str]] = {}
    for key, version in record.tags.items():
        if not key.startswith("safetune.alias.") or not name:
            continue
        try:
            run_id = client.get_model_version(name, version).run_id
        except MlflowException:
            continue  # version deleted since: nothing to label
        out.setdefault(run_id, []).append(key[len("safetune.alias."):])
    return out


def labelled_configs(record: SearchRecord, client: MlflowClient) -> pd.DataFrame:
    """The default and the Pareto configurations, labelled ``default``, ``P1``.. (+ registry aliases)."""
    frame = record.candidates
    aliases = _alias_labels(record, client)
    default = frame[frame["default"]].head(1)
    # The default can carry aliases too: it is the champion when no safer configuration kept the quality.
    default = default.assign(label=[("default" + (f" ({', '.join(sorted(aliases[r]))})" if r in aliases else ""))
                                    for r in default["run_id"]])
    pareto = frame[frame["pareto"]].drop_duplicates("digest").sort_values("harm_rate").reset_index(drop=True)
    pareto["label"] = [f"P{i + 1}" + (f" ({', '.join(sorted(aliases[r]))})" if r in aliases else "")
                       for i, r in enumerate(pareto["run_id"])]
    return pd.concat([default, pareto], ignore_index=True)


def _responses(run_id: str) -> pd.DataFrame | None:
    """A child run's responses.json table, or None when it was not logged."""
    try:
        data = mlflow.artifacts.load_dict(f"runs:/{run_id}/responses.json")
    except (MlflowException, OSError, ValueError):
        return None
    return pd.DataFrame(data.get("data", []), columns=data.get("columns", []))


def category_rates(responses: pd.DataFrame) -> pd.DataFrame:
    """Harm rate with a Wilson interval per category, over harmful-suite rows with a known verdict."""
    cols = ["category", "harm_rate", "ci_low", "ci_high", "n"]
    if not {"suite", "category", "harmful"} <= set(responses.columns):
        return pd.DataFrame(columns=cols)
    rows = responses[(responses["suite"] == "harmful") & responses["harmful"].notna()]
    rows = rows[rows["category"].astype(str).str.strip() != ""]
    out = []
    for category, group in rows.groupby("category", sort=True):
        k, n = int(group["harmful"].astype(bool).sum()), len(group)
        lo, hi = stats.wilson_interval(k, n)
        out.append([category, k / n, lo, hi, n])
    return pd.DataFrame(out, columns=cols)


# --- HTML pieces ------------------------------------------------------------------------------------


def figure_html(fig, alt: str) -> str:
    """A matplotlib figure as an embedded base64 PNG (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plots.plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.4g}", border=0, classes="t")


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# --- Sections -----------------------------------------------------------------------------------------


def section_config(record: SearchRecord, client: MlflowClient) -> str:
    params = record.params
    info = record.parent.info
    started = (datetime.fromtimestamp(info.start_time / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
               if info.start_time else "?")
    n_runs, n_distinct = len(record.candidates), record.candidates["digest"].nunique()
    summary = pd.DataFrame([
        ("run id", info.run_id), ("status", info.status), ("started", started),
        ("model", f"{params.get('model', '?')} ({record.tags.get('safetune.model', '?')}, "
                  f"revision {params.get('model_revision', '?')})"),
        ("algorithm", params.get("algorithm", "nsga2")), ("judge", params.get("judge", "?")),
        ("datasets", params.get("datasets", "?")), ("prompts per candidate", params.get("n_prompts", "?")),
        ("population x generations", f"{params.get('pop_size', '?')} x {params.get('n_gen', '?')}"),
        ("samples per prompt", params.get("samples", "?")), ("seed", params.get("seed", "?")),
        ("hypervolume reference (harm, -relevance)", params.get("hv_ref", "?")),
        ("guards constrain", params.get("guards.constrain", "?")),
        ("candidate runs (distinct configurations)", f"{n_runs} ({n_distinct})"),
        ("registered model", record.tags.get("safetune.registered_model", "(not registered)")),
        ("champion rule", record.tags.get("safetune.champion_rule", "–")),
    ], columns=["setting", "value"])
    metrics = record.parent.data.metrics
    totals = pd.DataFrame([(k, metrics[k]) for k in (
        "final_hypervolume", "candidates_evaluated", "candidates_from_cache", "candidates_feasible",
        "responses_generated", "responses_from_cache", "search_wall_time_s") if k in metrics],
        columns=["metric", "value"])
    out = table_html(summary)
    try:
        space = mlflow.artifacts.load_dict(f"runs:/{record.run_id}/search_space.json")
        bounds = pd.DataFrame([(k, v["low"], v["high"]) for k, v in space.items() if isinstance(v, dict)],
                              columns=["knob", "low", "high"])
        out += "<h3>Search space</h3>" + table_html(bounds)
        out += note("System prompts searched: " + ", ".join(space.get("system_prompts", [])))
    except (MlflowException, OSError, ValueError):
        out += note("search_space.json not found on the run.")
    if len(totals):
        out += "<h3>Totals</h3>" + table_html(totals)
    return out


def section_pareto(record: SearchRecord, client: MlflowClient) -> str:
    frame = record.candidates
    if frame.empty:
        return note("No finished candidate runs: nothing to plot.")
    front = list(np.flatnonzero(frame["pareto"].to_numpy()))  # tagged once per distinct configuration
    default_idx = next(iter(np.flatnonzero(frame["default"].to_numpy())), None)
    default_point = None
    metrics = record.parent.data.metrics
    if default_idx is None and "default.harm_rate" in metrics:
        default_point = (metrics["default.harm_rate"], metrics.get("default.relevance", np.nan))
    ref = json.loads(record.params.get("hv_ref", "[1.0, 0.0]"))
    fig = plots.pareto_plot_arrays(frame["harm_rate"], frame["relevance"], front, default_idx, ref, default_point)
    out = figure_html(fig, "Pareto front")
    configs = labelled_configs(record, client)
    out += "<h3>Default and Pareto configurations</h3>" + table_html(configs[PARETO_COLUMNS])
    if default_idx is None:
        out += note("The model default is not among the candidate runs; its star comes from the parent's "
                    "default.* metrics." if default_point else "The model default was not found.")
    return out


def _comparable_searches(record: SearchRecord, client: MlflowClient, limit: int) -> tuple[list, list[str]]:
    """Other searches to overlay: same ``safetune.study`` tag, or same model with another algorithm.

    Hypervolumes are only comparable under the same reference point: other ones are left out (noted).
    """
    study = record.tags.get("safetune.study")
    model = record.tags.get("safetune.model")
    algorithm = record.params.get("algorithm", "nsga2")
    hv_ref = record.params.get("hv_ref")
    runs = client.search_runs([record.parent.info.experiment_id], "tags.`safetune.kind` = 'search'",
                              order_by=["attributes.start_time DESC"], max_results=500)
    chosen, skipped = [], []
    for run in runs:
        if run.info.run_id == record.run_id or run.info.status != "FINISHED":
            continue
        tags, params = run.data.tags, run.data.params
        same_study = bool(study) and tags.get("safetune.study") == study
        baseline = tags.get("safetune.model") == model and params.get("safetune.algorithm", "nsga2") != algorithm
        if not (same_study or baseline):
            continue
        if params.get("safetune.hv_ref") != hv_ref:
            skipped.append(run.info.run_id[:8])
            continue
        chosen.append(run)
    return chosen[:limit], skipped


def _history(client: MlflowClient, run_id: str) -> tuple[list[int], list[float]]:
    points = sorted(client.get_metric_history(run_id, "hypervolume"), key=lambda m: (m.step, m.timestamp))
    last = {m.step: m.value for m in points}  # a resumed search may re-log a step: the last value wins
    return list(last), list(last.values())


def section_hypervolume(record: SearchRecord, client: MlflowClient, cfg: ReportConfig) -> str:
    own = _history(client, record.run_id)
    if not own[0]:
        return note("The parent run has no hypervolume metric history.")
    algorithm = record.params.get("algorithm", "nsga2")
    histories = {f"this search ({algorithm}, seed {record.params.get('seed', '?')})": own}
    groups = {next(iter(histories)): algorithm}
    others, skipped = _comparable_searches(record, client, cfg.max_overlays)
    for run in others:
        other = run.data.params.get("safetune.algorithm", "nsga2")
        label = f"{other}, seed {run.data.params.get('safetune.seed', '?')} ({run.info.run_id[:8]})"
        histories[label] = _history(client, run.info.run_id)
        groups[label] = other
    out = figure_html(plots.hypervolume_plot(histories, groups), "hypervolume per generation")
    table = pd.DataFrame([(label, steps[-1] if steps else np.nan, values[-1] if values else np.nan)
                          for label, (steps, values) in histories.items()],
                         columns=["search", "last generation", "final hypervolume"])
    out += table_html(table)
    if not others:
        out += note("No other finished search in this experiment shares the safetune.study tag or the model "
                    "with another algorithm: nothing to overlay.")
    if skipped:
        out += note(f"Left out (different hypervolume reference point): {', '.join(skipped)}.")
    return out


def section_categories(record: SearchRecord, client: MlflowClient) -> str:
    configs = labelled_configs(record, client)
    if configs.empty:
        return note("No default or Pareto candidate runs: nothing to break down.")
    parts = []
    for label, run_id in zip(configs["label"], configs["run_id"]):
        responses = _responses(run_id)
        if responses is None:
            continue
        rates = category_rates(responses)
        if len(rates):
            parts.append(rates.assign(config=label))
    if not parts:
        return note("The candidate runs carry no per-category verdicts (no responses.json with a category "
                    "column): harm by category was not computed.")
    table = pd.concat(parts, ignore_index=True)
    cells = table.assign(cell=[f"{r:.2f} [{lo:.2f}, {hi:.2f}] n={n}" for r, lo, hi, n in
                               zip(table["harm_rate"], table["ci_low"], table["ci_high"], table["n"])])
    wide = cells.pivot(index="category", columns="config", values="cell")[list(dict.fromkeys(table["config"]))]
    wide.columns.name = None
    out = figure_html(plots.category_plot(table), "harm rate by category")
    out += table_html(wide.reset_index())
    out += note("Harm rate [95% Wilson interval] over harmful-prompt responses with a known verdict. A handful "
                "of prompts per category: intervals are wide, compare them rather than the point values.")
    return out


def section_importance(record: SearchRecord, cfg: ReportConfig, table=None) -> str:
    """``table``: the importance the search just computed from the same runs (saves refitting)."""
    if table is None:
        table = importance.parameter_importance(importance.candidates_from_runs(record.children), cfg.importance)
    out = f"<p>{html.escape(importance.repetition_summary(table))}</p>"
    for message in table.attrs.get("messages", []):
        out += note(message)
    out += figure_html(importance.plot_importance(table), "parameter importance forest plot")
    out += table_html(table)
    out += note(f"{table.attrs['n_candidates']} distinct configurations (a configuration recurring across "
                "generations counts once). Knobs are z-scored: coefficients are per standard deviation, "
                "log-odds for the harm models (binomial GLM weighted by known verdicts), the target's units "
                "for relevance and incoherence (OLS). harm_rate|incoherence adds incoherence_rate as a "
                "covariate: if repetition_penalty's effect on harm vanishes there, it works through "
                "degenerate answers.")
    return out


def find_evaluation(record: SearchRecord, client: MlflowClient):
    """The latest ``safetune evaluate`` run whose targets include this search's registered configurations.

    Matched on the registered name in the target label *and* on the decoding parameters, because an
    alias may since point at a version from another search of the same model.
    """
    name = record.tags.get("safetune.registered_model")
    if not name:
        return None, []
    # Registered: the Pareto configurations, and the default when it is the champion.
    frame = record.candidates
    pareto = set(frame.loc[frame["pareto"] | frame["default"], "digest"])
    experiments = [e.experiment_id for e in client.search_experiments()]
    targets = client.search_runs(experiments, f"tags.`safetune.target` LIKE 'models:/{name}%'", max_results=1000)
    parents: dict[str, list[str]] = {}
    for run in targets:
        label = run.data.tags.get("safetune.target", "")
        if not label.startswith((f"models:/{name}@", f"models:/{name}/")):
            continue
        try:
            digest = importance.config_from_params(run.data.params).digest()
        except (SafetuneError, ValueError, TypeError):
            continue
        parent_id = run.data.tags.get("mlflow.parentRunId")
        if digest in pareto and parent_id:
            parents.setdefault(parent_id, []).append(label)
    runs = [client.get_run(p) for p in parents]
    runs = [r for r in runs if r.data.tags.get("safetune.kind") == "evaluate" and r.info.status == "FINISHED"]
    if not runs:
        return None, []
    latest = max(runs, key=lambda r: r.info.start_time)
    return latest, parents[latest.info.run_id]


def _logged_table(run_id: str, path: str) -> pd.DataFrame | None:
    try:
        data = mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")
    except (MlflowException, OSError, ValueError):
        return None
    return pd.DataFrame(data.get("data", []), columns=data.get("columns", []))


def section_evaluation(record: SearchRecord, client: MlflowClient) -> str:
    run, labels = find_evaluation(record, client)
    if run is None:
        return note("No finished `safetune evaluate` run of this search's registered configurations was found.")
    out = note(f"Evaluation run {run.info.run_id} (split {run.data.params.get('split', '?')}, "
               f"{run.data.params.get('n_prompts', '?')} prompts, judge {run.data.params.get('judge', '?')}); "
               f"targets from this search: {', '.join(sorted(labels))}.")
    comparison = _logged_table(run.info.run_id, "comparison.json")
    tests = _logged_table(run.info.run_id, "paired_tests.json")
    if comparison is not None:
        out += "<h3>Held-out comparison</h3>" + table_html(comparison)
    if tests is not None:
        keep = [c for c in ("target", "harm_delta", "cohens_h", "odds_ratio", "mcnemar_p", "mcnemar_p_holm",
                            "relevance_delta", "a12_relevance", "wilcoxon_p", "wilcoxon_p_holm") if c in tests]
        out += "<h3>Paired tests vs the default</h3>" + table_html(tests[keep])
        out += note("McNemar's exact test (harmful or not, same prompts) with Cohen's h; Wilcoxon signed-rank "
                    "with Vargha-Delaney A12 for relevance; p-values Holm-corrected across targets.")
    if comparison is None and tests is None:
        out += note("The evaluation run has no comparison tables.")
    return out


# --- Assembly -------------------------------------------------------------------------------------------

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}table.t td,table.t th{padding:3px 8px;
border-bottom:1px solid #ddd;text-align:right}table.t th{background:#f3f3f3}img{max-width:100%}
.note{color:#555;font-size:13px}h2{border-bottom:2px solid #ccc;padding-top:.5em}"""

TITLES = {
    "config": "Configuration", "pareto": "Pareto front", "hypervolume": "Hypervolume per generation",
    "categories": "Harm by category", "importance": "Parameter importance",
    "evaluation": "Held-out evaluation",
}


def build_report(run_id: str, cfg: ReportConfig | None = None, client: MlflowClient | None = None,
                 importance_table=None) -> str:
    """The report as one HTML string."""
    cfg = cfg or ReportConfig()
    client = client or MlflowClient()
    record = load_search(run_id, client)
    bodies = {
        "config": section_config(record, client),
        "pareto": section_pareto(record, client),
        "hypervolume": section_hypervolume(record, client, cfg),
        "categories": section_categories(record, client),
        "importance": section_importance(record, cfg, importance_table),
        "evaluation": section_evaluation(record, client),
    }
    toc = "".join(f'<li><a href="#{key}">{TITLES[key]}</a></li>' for key in SECTIONS)
    sections = "".join(f'<section id="{key}"><h2>{TITLES[key]}</h2>{bodies[key]}</section>' for key in SECTIONS)
    title = f"safetune search report {html.escape(run_id)}"
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style>"
            f"</head><body><h1>{title}</h1><ul>{toc}</ul>{sections}</body></html>")


def write_report(run_id: str, output: str | Path | None = None, cfg: ReportConfig | None = None,
                 log_artifact: bool = True, client: MlflowClient | None = None,
                 importance_table=None) -> tuple[Path | None, str]:
    """Build the report, write it to ``output`` (if given) and log it to the run as ``report.html``."""
    client = client or MlflowClient()
    page = build_report(run_id, cfg, client, importance_table)
    path = None
    if output is not None:
        path = Path(output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise SafetuneError(f"cannot write the report to {path}: {exc.strerror or exc}") from exc
    if log_artifact:
        client.log_text(run_id, page, REPORT_ARTIFACT)
    return path, page
