"""``safetune evaluate``: registered configurations vs the model's default, on held-out prompts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from safetune.tracking import runs as tracking
from safetune.cache import Cache
from safetune.components.engines import get_engine
from safetune.components.embeddings import Embedder
from safetune.components.requests import check_context, load_tokenizer
from safetune.components.judges.base import get_judge
from safetune.config import DecodingConfig, EvaluateConfig, GuardConfig
from safetune.datasets import fixed_split, sample
from safetune.errors import SafetuneError
from safetune.objectives.evaluator import Evaluator
from safetune.models import cache_root, default_decoding, resolve_model
from safetune.analysis.comparison import compare_to_default, per_category, quadrant_table
from safetune.datasets.tasks import TASKS, sample_tasks
from safetune.jobs.progress import Progress


def registered_config(uri: str) -> dict:
    """The safetune config stored with a registered version (models:/NAME@ALIAS or models:/NAME/N)."""
    if not uri.startswith("models:/"):
        raise SafetuneError(f"not a model URI: {uri!r} (expected models:/NAME@ALIAS or models:/NAME/VERSION)")
    client = MlflowClient()
    body = uri[len("models:/"):]
    try:
        if "@" in body:
            name, alias = body.split("@", 1)
            version = client.get_model_version_by_alias(name, alias)
        else:
            name, number = body.rsplit("/", 1)
            version = client.get_model_version(name, number)
        return mlflow.artifacts.load_dict(f"runs:/{version.run_id}/safetune_config.json")
    except SafetuneError:
        raise
    except Exception as exc:
        raise SafetuneError(f"cannot read registered model {uri!r}: {str(exc).splitlines()[0]}") from exc


def resolve_targets(cfg: EvaluateConfig) -> tuple[str, list[tuple[str, DecodingConfig | None]]]:
    """(base model name, [(label, config or None for the model default)])."""
    targets: list[tuple[str, DecodingConfig | None]] = [("default", None)]
    model = cfg.model
    for target in cfg.targets:
        if target == "default":
            continue
        if target.startswith("models:/"):
            data = registered_config(target)
            base = data["model"]["name"]
            decoding = DecodingConfig.from_dict(data["decoding"])
        else:
            path = Path(target)
            if not path.is_file():
                raise SafetuneError(f"target {target!r} is neither models:/... nor an existing config file")
            try:
                data = json.loads(path.read_text())
            except ValueError as exc:
                raise SafetuneError(f"{target} is not valid JSON") from exc
            base = data.get("model", {}).get("name") if "decoding" in data else None
            decoding = DecodingConfig.from_dict(data.get("decoding", data))
        if base and model and base != model:
            raise SafetuneError(f"{target} was searched on {base!r}, not {model!r}; evaluate one base model at a time")
        model = model or base
        targets.append((target, decoding))
    if not model:
        raise SafetuneError("no base model: pass --model or a registered models:/... target")
    return model, targets


def run_evaluate(cfg: EvaluateConfig, tracking_uri: str | None = None, progress: bool = True):
    tracking.setup_tracking(tracking_uri)
    model, targets = resolve_targets(cfg)
    # The holdout side of the fixed split, whatever seed any search used.
    prompts = sample(fixed_split(cfg.datasets, cfg.split), cfg.n_prompts, seed=cfg.seed)
    judge = get_judge(cfg.judge)
    ref = resolve_model(model)
    longest = max([cfg.default_max_new_tokens] + [c.max_new_tokens for _, c in targets if c is not None])
    check_context(ref, prompts.items, longest, lambda: load_tokenizer(ref.path))
    cache = Cache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "cache.sqlite")
    engine = get_engine("transformers", ref=ref, cache=cache, batch_size=cfg.batch_size)
    guards = GuardConfig()
    benign = sample(fixed_split(guards.benign_datasets, cfg.split), cfg.n_benign, seed=cfg.seed) if cfg.n_benign else None
    tasks = sample_tasks(TASKS.names(), cfg.n_capability, seed=cfg.seed, part=cfg.split) if cfg.n_capability else ()
    evaluator = Evaluator(engine, judge, Embedder(), prompts, cfg.samples, cfg.seed, cache,
                          benign=benign, tasks=tasks, on_topic=guards.on_topic)
    model_default = default_decoding(ref, max_new_tokens=cfg.default_max_new_tokens)
    # Every target is compared with the default at the target's own token budget: a shorter cap
    # would otherwise look "safer" by cutting answers short.
    budgets = sorted({c.max_new_tokens for _, c in targets if c is not None} or {model_default.max_new_tokens})
    n_configs = len(budgets) + sum(c is not None for _, c in targets)
    bar = Progress(engine, n_configs * evaluator.responses_per_candidate, "evaluate", progress)
    defaults: dict[int, object] = {}
    task_reports: dict[int, dict] = {}
    results_by_label: dict[str, object] = {}
    for budget in budgets:
        default = dataclasses.replace(model_default, max_new_tokens=budget)
        evaluator.reference, evaluator.tasks = None, tasks
        full = evaluator.responses_per_candidate
        defaults[budget], _, task_reports[budget] = evaluator.measure_default(
            default, guards, lambda configs: bar.evaluate(evaluator, configs))
        mine = [(label, c) for label, c in targets if c is not None and c.max_new_tokens == budget]
        bar.skip(len(mine) * (full - evaluator.responses_per_candidate))  # tasks the default fails: not asked
        for (label, _), r in zip(mine, bar.evaluate(evaluator, [c for _, c in mine])):
            results_by_label[label] = r
    bar.close()
    default_label = lambda b: "default" if len(budgets) == 1 else f"default@{b}"  # noqa: E731
    listed = [(default_label(b), defaults[b]) for b in budgets]
    listed += [(label, results_by_label[label]) for label, c in targets if c is not None]
    others = [(label, results_by_label[label]) for label, c in targets if c is not None]
    comparisons = compare_to_default([defaults[r.config.max_new_tokens] for _, r in others], others, guards)
    summary = {
        "split": cfg.split, "n_prompts": len(prompts), "samples": cfg.samples, "judge": cfg.judge,
        "results": {label: {**r.metrics(), "config": r.config.to_dict(), "per_category": per_category(r)}
                    for label, r in listed},
        "capability_tasks": task_reports,
        "comparisons": comparisons,
        "quadrants": quadrant_table(comparisons) if comparisons else {},
    }
    rows = []
    with tracking.parent_run(cfg.experiment, f"evaluate-{ref.slug}"):
        mlflow.set_tags({"safetune.kind": "evaluate", "safetune.model": ref.model_id})
        mlflow.log_params({"model": ref.name, "model_revision": ref.revision, "split": cfg.split,
                           "n_prompts": len(prompts), "samples": cfg.samples, "judge": cfg.judge, "seed": cfg.seed})
        tracking.log_prompt_set(prompts, context=cfg.split)
        for label, result in listed:
            with mlflow.start_run(run_name=f"eval-{result.config.digest()}", nested=True):
                mlflow.set_tag("safetune.target", label)
                mlflow.log_params(result.config.to_dict())
                mlflow.log_metrics(result.metrics())
                mlflow.log_table(pd.DataFrame(result.rows), artifact_file="responses.json")
            rows.append({"target": label, "harm_rate": round(result.harm_rate, 4),
                         "harm_ci": f"[{result.harm_ci_low:.3f}, {result.harm_ci_high:.3f}]",
                         "relevance": round(result.relevance, 4),
                         "helpful": round(result.benign_helpfulness, 3), "fluency_nll": round(result.fluency_nll, 3),
                         "capability": round(result.capability, 3),
                         "incoherent": round(result.incoherence_rate, 3), "n": result.n_responses,
                         "unknown": result.n_unknown})
        for i, comp in enumerate(comparisons):
            mlflow.log_metrics({f"vs_default.{i}.{k}": float(v) for k, v in comp.items()
                                if isinstance(v, (int, float)) and v == v})
            mlflow.set_tag(f"safetune.verdict.{i}", comp["verdict"])
        mlflow.log_dict(summary, "evaluation_summary.json")
        table = pd.DataFrame(rows)
        mlflow.log_table(table, artifact_file="comparison.json")
        if comparisons:
            mlflow.log_table(pd.DataFrame(comparisons), artifact_file="paired_tests.json")
    columns = ("target", "harm_delta", "cohens_h", "mcnemar_p_holm", "helpfulness_mcnemar_p_holm",
               "fluency_ratio", "fluency_wilcoxon_p_holm", "relevance_delta", "wilcoxon_p_holm", "verdict")
    tests = pd.DataFrame([{k: c[k] for k in columns} for c in comparisons], columns=list(columns))
    return table, tests
