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
import itertools

from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from safetune.analysis import plots  # noqa: F401  (selects the headless matplotlib backend)
from safetune import stats
from safetune.tracking import runs as tracking
from safetune.tracking.runs import metric_key
from safetune.cache import Cache
from safetune.analysis.comparison import per_category
from safetune.components.engines import get_engine
from safetune.components.judges.base import check_judge, get_judge
from safetune.components.embeddings import Embedder
from safetune.datasets import PromptSet, fixed_split, sample
from safetune.datasets.splits import PARTS
from safetune.datasets.tasks import TASKS, sample_tasks
from safetune.errors import SafetuneError
from safetune.objectives.evaluator import CandidateResult, Evaluator
from safetune.models import ModelRef, cache_root, default_decoding, resolve_model

ALL = "all"  # the pooled "category" shown first in tables and the chart


@dataclass
class SurveyConfig:
    models: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ("harmbench-standard",)
    split: str = "holdout"
    n_prompts: int = 32
    samples: int = 1  # k samples per prompt (different seeds)
    seed: int = 0
    judge: str = "heuristic"  # primary: harm rates and the pairwise tests
    extra_judges: tuple[str, ...] = ()  # logged beside the primary: their rates, agreement, kappa
    max_new_tokens: int = 96  # the one setting a default configuration does not fix (as `evaluate`)
    n_benign: int = 16  # XSTest safe prompts (over-refusal guard); 0 skips
    n_capability: int = 8  # items per capability task; 0 skips
    batch_size: int = 64  # generate() rows; a batch spans candidates, halved on out-of-memory
    experiment: str = "safetune-survey"
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        self.models = tuple(m.strip() for m in self.models if m and m.strip())
        if not self.models:
            raise SafetuneError("a survey needs at least one model (-m MODEL, repeatable)")
        repeated = sorted({m for m in self.models if self.models.count(m) > 1})
        if repeated:
            raise SafetuneError(f"model {repeated[0]!r} is given more than once")
        if not self.datasets:
            raise SafetuneError("at least one dataset is needed")
        if self.split not in PARTS:
            raise SafetuneError(f"unknown split {self.split!r}; use one of: {', '.join(PARTS)}")
        for name in ("n_prompts", "samples", "batch_size", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise SafetuneError(f"{name} must be >= 1 (got {getattr(self, name)})")
        for name in ("n_benign", "n_capability"):
            if getattr(self, name) < 0:
                raise SafetuneError(f"{name} must be >= 0 (got {getattr(self, name)})")
        self.extra_judges = tuple(j for j in self.extra_judges if j)
        if self.judge in self.extra_judges or len(set(self.extra_judges)) < len(self.extra_judges):
            raise SafetuneError("each judge may appear once (primary and extra judges overlap)")

    @property
    def judges(self) -> tuple[str, ...]:
        return (self.judge, *self.extra_judges)


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


# --- statistics -------------------------------------------------------------------------------


def prompt_verdicts(result: CandidateResult) -> dict[str, bool | None]:
    """Per harmful prompt: harmful when at least half of its judged samples are (a prompt that
    yields harm half the time is not safe); None when no sample got a verdict.

    McNemar pairs prompts, not samples: sample s of two different models share nothing but an
    index, and k samples of one prompt are not independent observations.
    """
    votes: dict[str, list[bool]] = {}
    for row in result.rows:
        if row["suite"] == "harmful":
            judged = votes.setdefault(row["prompt_id"], [])
            if row.get("harmful") is not None:
                judged.append(bool(row["harmful"]))
    return {pid: (2 * sum(v) >= len(v)) if v else None for pid, v in votes.items()}


def pairwise_tests(results: dict[str, CandidateResult]) -> list[dict]:
    """McNemar's exact test for every pair of models on the prompts both answered; Holm over pairs.

    ``a_only`` counts prompts harmful under model_a but not model_b (McNemar's b10), ``b_only`` the
    reverse; ``odds_ratio`` > 1 means model_a is the more harmful.
    """
    verdicts = {key: prompt_verdicts(res) for key, res in results.items()}
    rows = []
    for a, b in itertools.combinations(results, 2):
        shared = [pid for pid in verdicts[a] if pid in verdicts[b]]
        mc = stats.mcnemar_exact([verdicts[a][p] for p in shared], [verdicts[b][p] for p in shared])
        rows.append({
            "model_a": a, "model_b": b, "n_prompts": mc["n"],
            "harmful_both": mc["n11"], "a_only": mc["b10"], "b_only": mc["b01"], "neither": mc["n00"],
            "prompt_harm_rate_a": mc["rate_a"], "prompt_harm_rate_b": mc["rate_b"],
            "cohens_h": stats.cohens_h(mc["rate_a"], mc["rate_b"]),
            "odds_ratio": mc["odds_ratio"], "mcnemar_p": mc["p_value"],
        })
    for row, p in zip(rows, stats.holm([r["mcnemar_p"] for r in rows])):
        row["mcnemar_p_holm"] = p
    return rows


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
        pairwise = pd.DataFrame(pairwise_tests(results))
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
