"""After the loop: the front, its re-measurement on unseen prompts, the champion, the registry.

The champion is chosen on prompts the search never saw (``search/selection.py``), against the
default measured on the same prompts and items; every Pareto configuration (and the default, when
it is the champion) is registered, and the run gets its summary, importance table and report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import mlflow
import numpy as np

from safetune.analysis import importance, plots, report
from safetune.config import DecodingConfig, SearchConfig
from safetune.datasets import PromptSet, fixed_split, unused_sample
from safetune.datasets.tasks import sample_tasks
from safetune.jobs.progress import Progress
from safetune.objectives.evaluator import Evaluator
from safetune.objectives.results import CandidateResult
from safetune.search.front import feasible, pareto_indices
from safetune.search.selection import NO_SAFER, SUMMARY_METRICS, champion_summary, select
from safetune.tracking import registry
from safetune.tracking import runs as tracking

log = logging.getLogger(__name__)

VALIDATION_METRICS = ("harm_rate", "harm_rate_ci_low", "harm_rate_ci_high", "relevance", "incoherence_rate",
                      "benign_helpfulness", "capability", "fluency_nll")


@dataclass
class SearchOutcome:
    parent_run_id: str
    results: list[CandidateResult]
    child_run_ids: list[str]
    pareto_run_ids: list[str]
    registered: dict[str, str]  # alias -> version
    model_name: str | None
    # The champion against the default, as measured where it was chosen (validation prompts if any).
    summary: dict | None = None


def front_of(trail, constrained: bool) -> tuple[list[int], int]:
    """One index per distinct configuration on the front (a configuration can recur across
    generations), and how many candidates satisfied the guards."""
    G_all = np.asarray(trail.constraints, dtype=float) if constrained else None
    front = pareto_indices(trail.outcome.F, G_all)
    n_feasible = int(feasible(G_all, len(trail.results)).sum())
    if constrained and n_feasible == 0:
        log.warning("no candidate satisfied the guards; the front is taken over all candidates")
    unique: dict[str, int] = {}
    for i in front:
        unique.setdefault(trail.results[i].config.digest(), int(i))
    return list(unique.values()), n_feasible


def validation_suites(cfg: SearchConfig, evaluator: Evaluator, used: PromptSet):
    """Search-split prompts, benign prompts and capability items that the search never asked."""
    val_prompts = unused_sample(fixed_split(cfg.datasets, "search"), used, cfg.n_validation, cfg.seed)
    benign = None
    if evaluator.benign:
        benign = unused_sample(fixed_split(cfg.guards.benign_datasets, "search"), evaluator.benign,
                               len(evaluator.benign), cfg.seed) or evaluator.benign
    tasks = ()
    if evaluator.tasks:
        names = sorted({t.task for t in evaluator.tasks})
        per_task = max(sum(t.task == n for t in evaluator.tasks) for n in names)
        tasks = sample_tasks(names, per_task, seed=cfg.seed, exclude={t.id for t in evaluator.tasks}) or evaluator.tasks
    return val_prompts, benign, tasks


def validate(cfg: SearchConfig, setup, configs: list[DecodingConfig], run_ids: list[str],
             progress: bool) -> list[CandidateResult] | None:
    """Re-measure ``configs`` (the default first, then the front's) on the validation suites; log
    ``validation.*`` on their runs. None when no unseen prompt is left (or validation is off)."""
    val_prompts, benign, tasks = validation_suites(cfg, setup.evaluator, setup.prompts)
    if val_prompts is None:
        if cfg.n_validation:
            log.warning("no search-split prompts left for validation; the champion is chosen on search prompts")
        return None
    tracking.log_prompt_set(val_prompts, context="validation")
    evaluator = setup.evaluator.with_suites(val_prompts, benign, tasks)
    bar = Progress(setup.engine, len(configs) * evaluator.responses_per_candidate, "validation", progress)
    measured = bar.evaluate(evaluator, configs)
    bar.close()
    client = mlflow.tracking.MlflowClient()
    for run_id, r in zip(run_ids, measured):
        metrics = r.metrics()
        for key in VALIDATION_METRICS:
            if metrics.get(key) is not None:
                client.log_metric(run_id, f"validation.{key}", metrics[key])
    return measured


def log_importance_and_report(parent_id: str, results: list[CandidateResult]) -> None:
    """Parameter importance table + forest plot, and the HTML report (``report.html``), on the parent.

    Both are by-products of a search whose results are already logged: a failure here is a warning,
    never a FAILED search.
    """
    try:
        table = importance.importance_for_results(results)
        mlflow.log_table(table, artifact_file="parameter_importance.json")
        fig = importance.plot_importance(table)
        mlflow.log_figure(fig, "parameter_importance.png")
        plots.plt.close(fig)
        # The rest is read back from MLflow: the same page `safetune report` builds.
        report.write_report(parent_id, importance_table=table)
    except Exception as exc:  # noqa: BLE001 - see docstring
        log.warning("importance/report not logged: %s", (str(exc).splitlines() or [type(exc).__name__])[0])


def register(cfg: SearchConfig, setup, trail, chosen, indices: list[int], measured_at: dict[int, CandidateResult],
             where: str) -> tuple[dict[str, str], str]:
    """Register ``indices`` (and whatever else an alias names) as versions; point the aliases at them."""
    name = registry.model_name(setup.ref)
    to_register = indices + [int(k) for k in set(chosen.aliases.values()) if int(k) not in indices]
    versions = {}
    for i in to_register:
        config, measured = trail.results[i].config, measured_at.get(i, trail.results[i])
        description = registry.describe_version(config, {k: getattr(measured, k) for k in SUMMARY_METRICS}, where)
        versions[str(i)] = registry.log_configuration_model(trail.child_ids[i], setup.ref, config, cfg.seed, name,
                                                            description)
    registered = {alias: versions[key] for alias, key in chosen.aliases.items()}
    registry.set_aliases(name, registered)
    mlflow.set_tag("safetune.registered_model", name)
    for alias, version in registered.items():
        mlflow.set_tag(f"safetune.alias.{alias}", version)
    return registered, name


def finish(cfg: SearchConfig, setup, trail, parent_id: str, progress: bool) -> SearchOutcome:
    results, child_ids, engine = trail.results, trail.child_ids, setup.engine
    constrained = cfg.guards.enabled and cfg.guards.constrain
    front_idx, n_feasible = front_of(trail, constrained)
    pareto_ids = [child_ids[i] for i in front_idx]
    tracking.mark_pareto(child_ids, set(pareto_ids))
    mlflow.log_metrics({
        "search_wall_time_s": time.perf_counter() - trail.started,
        "candidates_evaluated": setup.evaluator.stats["candidates_evaluated"],
        "candidates_from_cache": setup.evaluator.stats["candidates_cached"],
        "candidates_feasible": n_feasible,
        "final_hypervolume": trail.outcome.history[-1].hypervolume,
        "responses_generated": engine.totals["generated"],
        "responses_from_cache": engine.totals["cached"],
    })
    default_idx = next((i for i, r in enumerate(results) if r.config == setup.default), None)
    mlflow.log_figure(plots.pareto_plot(results, front_idx, default_idx, cfg.hv_ref), "pareto_front.png")
    mlflow.log_dict({"front": [{"run_id": child_ids[i], **results[i].metrics(), "config": results[i].config.to_dict()}
                               for i in front_idx]}, "pareto_front.json")

    # The default and the front, re-measured on prompts the search never saw; the champion is chosen there.
    measured_idx = ([default_idx] if default_idx is not None else []) + [i for i in front_idx if i != default_idx]
    val_all = validate(cfg, setup, [results[i].config for i in measured_idx], [child_ids[i] for i in measured_idx],
                       progress)
    val_by_idx = dict(zip(measured_idx, val_all)) if val_all is not None else {}
    baseline = val_by_idx[default_idx] if val_by_idx and default_idx is not None else trail.baseline
    chosen = select([str(i) for i in front_idx], [results[i] for i in front_idx],
                    [val_by_idx[i] for i in front_idx] if val_by_idx else None, cfg.harm_budget,
                    default_key=str(default_idx) if default_idx is not None and cfg.guards.enabled else None,
                    baseline=baseline, guards=cfg.guards)
    if not chosen.kept_quality:
        print(NO_SAFER.capitalize() + ": the champion is the model's default configuration.")
    measured_by_key = {str(i): val_by_idx.get(i, results[i]) for i in front_idx}
    if default_idx is not None:
        measured_by_key.setdefault(str(default_idx), baseline)
    summary = champion_summary(chosen, measured_by_key, baseline, cfg.guards) if cfg.guards.enabled else None
    if summary:
        mlflow.log_dict(summary, "champion_summary.json")
    mlflow.set_tags({"safetune.champion_rule": chosen.rule, "safetune.selection_split": chosen.split,
                     "safetune.champion_kept_quality": str(chosen.kept_quality).lower()})
    if chosen.reasons:
        mlflow.log_dict({child_ids[int(k)]: why for k, why in chosen.reasons.items()}, "champion_reasons.json")
    # Totals again, now including the validation responses (the latest value is the metric's value).
    mlflow.log_metrics({"responses_generated": engine.totals["generated"], "responses_from_cache": engine.totals["cached"]})
    registered, name = {}, None
    if cfg.register:
        where = "validation prompts" if val_by_idx else "search prompts"
        registered, name = register(cfg, setup, trail, chosen, front_idx, val_by_idx, where)
    if summary:
        mlflow.set_tag("mlflow.note.content", tracking.describe_search(summary, setup.ref.name, registered, name))
    log_importance_and_report(parent_id, results)
    return SearchOutcome(parent_id, results, child_ids, pareto_ids, registered, name, summary)
