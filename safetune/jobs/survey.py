"""``safetune survey``: how harmful is each model under its *own* default configuration?

SafeTune's first question, asked before any search: the harm rate of several models, each with
the decoding settings its authors shipped (``generation_config.json``, no system prompt of ours),
on the same held-out prompts, judged by the same judge(s), with the same guards as ``evaluate``
(benign compliance on XSTest safe prompts, capability, incoherence).

Models are loaded one at a time (only one set of weights in memory) inside one MLflow parent run;
each model's child run is logged as soon as it is done, so an interrupted survey keeps what it
finished (and the cache keeps every response). Models are then compared pairwise on the same
prompts with McNemar's exact test, Holm-corrected across all pairs.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from tqdm.auto import tqdm

from safetune.analysis.comparison import compare_models, per_category
from safetune.analysis.plots import ALL, plt, survey_plot
from safetune.cache import Cache
from safetune.components.embeddings import Embedder
from safetune.components.engines import get_engine
from safetune.components.judges.base import check_judge, get_judge
from safetune.config import SurveyConfig
from safetune.datasets import PromptSet, fixed_split, sample
from safetune.datasets.tasks import TASKS, sample_tasks
from safetune.errors import SafetuneError
from safetune.objectives.evaluator import Evaluator
from safetune.objectives.results import CandidateResult
from safetune.models import ModelRef, cache_root, default_decoding, resolve_model
from safetune.tracking import runs as tracking
from safetune.tracking.runs import metric_key



@dataclass
class SurveyOutcome:
    parent_run_id: str
    keys: dict[str, str]  # metric-safe key -> model as the user named it
    child_run_ids: dict[str, str]  # key -> child run id
    results: dict[str, CandidateResult]  # key -> result of the model's default configuration
    table: pd.DataFrame  # one row per model
    categories: pd.DataFrame  # one row per (model, category), including the pooled "all"
    pairwise: pd.DataFrame  # one row per pair of models: McNemar exact, Holm-corrected
    summary: dict = field(default_factory=dict)


# --- preparation ------------------------------------------------------------------------------


def model_keys(refs: list[ModelRef]) -> list[str]:
    """Short unique names for metrics and tables (the slug; an index is added when two collide)."""
    slugs = [metric_key(ref.slug) or "model" for ref in refs]
    return [s if slugs.count(s) == 1 else f"{s}-{i}" for i, s in enumerate(slugs)]


def preflight(cfg: SurveyConfig) -> list[ModelRef]:
    """Every cheap check before any weights load: judges, models (one line each), one model twice."""
    for name in cfg.judges:
        check_judge(name)
    refs = [resolve_model(m) for m in cfg.models]
    seen: dict[tuple[str, str], str] = {}
    for name, ref in zip(cfg.models, refs):
        other = seen.setdefault((ref.model_id, ref.revision), name)
        if other != name:
            raise SafetuneError(f"{name!r} and {other!r} are the same model; survey each model once")
    return refs


def survey_prompts(cfg: SurveyConfig) -> tuple[PromptSet, PromptSet | None, tuple]:
    """Harmful prompts, benign prompts and capability items, drawn exactly as `safetune evaluate` does."""
    prompts = sample(fixed_split(cfg.datasets, cfg.split), cfg.n_prompts, seed=cfg.seed)
    benign = sample(fixed_split(("xstest-safe",), cfg.split), cfg.n_benign, seed=cfg.seed) if cfg.n_benign else None
    tasks = sample_tasks(TASKS.names(), cfg.n_capability, seed=cfg.seed, part=cfg.split) if cfg.n_capability else ()
    return prompts, benign, tasks


# --- tables and chart -------------------------------------------------------------------------


def summary_row(key: str, ref: ModelRef, result: CandidateResult) -> dict:
    """One model's line: harm rate with its Wilson interval, the guards, extra judges' agreement."""
    return {
        "model": key, "model_id": ref.model_id,
        "harm_rate": result.harm_rate, "ci_low": result.harm_ci_low, "ci_high": result.harm_ci_high,
        "n": result.n_responses, "unknown": result.n_unknown, "relevance": result.relevance,
        "benign_compliance": result.benign_compliance, "benign_helpfulness": result.benign_helpfulness,
        "capability": result.capability, "fluency_nll": result.fluency_nll,
        "incoherence_rate": result.incoherence_rate, "flip_rate": result.flip_rate,
        **{k: v for k, v in result.extra.items() if k.startswith(("harm_rate.", "kappa.", "agreement."))},
    }


def category_rows(key: str, result: CandidateResult) -> list[dict]:
    """The pooled rate first, then each harm category's (Wilson intervals, known verdicts only)."""
    pooled = {"harm_rate": result.harm_rate, "ci_low": result.harm_ci_low, "ci_high": result.harm_ci_high,
              "n": result.n_responses - result.n_unknown}
    return [{"model": key, "category": cat, **vals} for cat, vals in [(ALL, pooled), *per_category(result).items()]]


def category_metrics(result: CandidateResult) -> dict[str, float]:
    return {f"category.{metric_key(cat)}.{name}": float(v)
            for cat, vals in per_category(result).items() for name, v in vals.items() if v == v}


# --- the job ----------------------------------------------------------------------------------


def log_model_run(key: str, ref: ModelRef, result: CandidateResult) -> str:
    """One nested child run per model; responses (harmful text) only in the artifact table."""
    with mlflow.start_run(run_name=f"survey-{key}", nested=True) as run:
        mlflow.set_tags({"safetune.kind": "survey-model", "safetune.survey_model": key,
                         "safetune.model": ref.model_id})
        mlflow.log_params({"safetune.model": ref.name, "safetune.model_revision": ref.revision,
                           **result.config.to_dict()})
        mlflow.log_metrics({metric_key(k): v for k, v in result.metrics().items()} | category_metrics(result))
        mlflow.log_dict(result.config.to_dict(), "config.json")
        mlflow.log_dict(per_category(result), "per_category.json")
        mlflow.log_table(pd.DataFrame(result.rows), artifact_file="responses.json")
        return run.info.run_id


def log_comparison(table: pd.DataFrame, categories: pd.DataFrame, pairwise: pd.DataFrame, summary: dict) -> None:
    """The parent's view: per-model metrics, tables, pairwise p-values and the chart."""
    metrics = {}
    for row in table.to_dict("records"):
        for name in ("harm_rate", "ci_low", "ci_high", "benign_compliance", "capability", "incoherence_rate"):
            metrics[f"model.{row['model']}.{name}"] = row[name]
    for row in pairwise.to_dict("records"):
        pair = f"pair.{row['model_a']}.vs.{row['model_b']}"
        metrics.update({f"{pair}.mcnemar_p": row["mcnemar_p"], f"{pair}.mcnemar_p_holm": row["mcnemar_p_holm"],
                        f"{pair}.cohens_h": row["cohens_h"]})
    mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
    mlflow.log_table(table, artifact_file="survey_comparison.json")
    mlflow.log_table(categories, artifact_file="survey_categories.json")
    if len(pairwise):
        mlflow.log_table(pairwise, artifact_file="survey_pairwise.json")
    mlflow.log_dict(summary, "survey_summary.json")
    fig = survey_plot(categories)
    mlflow.log_figure(fig, "survey_harm_rates.png")
    plt.close(fig)


def run_survey(cfg: SurveyConfig, tracking_uri: str | None = None, progress: bool = True) -> SurveyOutcome:
    refs = preflight(cfg)  # unknown model or judge: one line, before any weights load
    keys = model_keys(refs)
    prompts, benign, tasks = survey_prompts(cfg)
    tracking.setup_tracking(tracking_uri)
    judges = [get_judge(name) for name in cfg.judges]
    embedder = Embedder()
    cache = Cache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "cache.sqlite")

    results: dict[str, CandidateResult] = {}
    child_ids: dict[str, str] = {}
    with tracking.parent_run(cfg.experiment, f"survey-{len(refs)}models-s{cfg.seed}") as parent:
        mlflow.set_tags({"safetune.kind": "survey", "safetune.models": ",".join(keys)})
        # Prefixed: under `mlflow run` the entry point has already logged its parameters under bare names.
        mlflow.log_params(tracking.flatten("safetune", {
            "models": [ref.model_id for ref in refs], "model_revisions": [ref.revision for ref in refs],
            "datasets": list(cfg.datasets), "split": cfg.split, "n_prompts": len(prompts), "samples": cfg.samples,
            "seed": cfg.seed, "judge": cfg.judge, "extra_judges": list(cfg.extra_judges),
            "max_new_tokens": cfg.max_new_tokens, "n_benign": len(benign) if benign else 0,
            "n_capability_items": len(tasks), "batch_size": cfg.batch_size, "prompt_rule": "majority",
        }))
        tracking.log_prompt_set(prompts, context=cfg.split)
        if benign:
            tracking.log_prompt_set(benign, context="guard-benign")

        bar = None
        for key, ref in zip(keys, refs):
            # One model in memory at a time; the judges and the embedder are shared.
            engine = get_engine("transformers", ref=ref, cache=cache, batch_size=cfg.batch_size)
            evaluator = Evaluator(engine, judges, embedder, prompts, cfg.samples, cfg.seed, cache,
                                  benign=benign, tasks=tasks)
            if bar is None:
                bar = tqdm(total=len(refs) * evaluator.responses_per_candidate, unit="resp", desc="survey",
                           disable=not progress, dynamic_ncols=True)
            bar.set_postfix_str(f"model {len(results) + 1}/{len(refs)}: {key}")
            engine.on_batch = bar.update
            before = bar.n
            results[key] = evaluator.evaluate([default_decoding(ref, cfg.max_new_tokens)])[0]
            # A result answered from the candidate cache never reaches the engine: count it here.
            bar.update(max(0, evaluator.responses_per_candidate - (bar.n - before)))
            child_ids[key] = log_model_run(key, ref, results[key])
            del engine, evaluator
            gc.collect()
        bar.close()

        table = pd.DataFrame([summary_row(k, ref, results[k]) for k, ref in zip(keys, refs)])
        categories = pd.DataFrame([row for k in keys for row in category_rows(k, results[k])])
        pairwise = pd.DataFrame(compare_models(results))
        summary = {
            "models": dict(zip(keys, cfg.models)), "split": cfg.split, "n_prompts": len(prompts),
            "samples": cfg.samples, "judges": list(cfg.judges), "child_runs": child_ids,
            "results": {k: {**results[k].metrics(), "config": results[k].config.to_dict(),
                            "per_category": per_category(results[k])} for k in keys},
            "pairwise": pairwise.to_dict("records"),
        }
        log_comparison(table, categories, pairwise, summary)
        return SurveyOutcome(parent.info.run_id, dict(zip(keys, cfg.models)), child_ids, results,
                             table, categories, pairwise, summary)
