"""``safetune evaluate``: registered configurations vs the model's default, on held-out prompts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from tqdm.auto import tqdm

from safetune import tracking
from safetune.cache import Cache
from safetune.components.engine import get_engine
from safetune.components.judges.base import get_judge
from safetune.components.lazy import LazyRelevance
from safetune.config import DecodingConfig
from safetune.datasets import load_prompt_sets, sample, split
from safetune.errors import SafetuneError
from safetune.evaluation import Evaluator
from safetune.models import cache_root, resolve_model
from safetune.comparison import compare_to_default, per_category, quadrant_table
from safetune.datasets.tasks import TASKS, sample_tasks
from safetune.runner import model_default_config


@dataclass
class EvaluateConfig:
    targets: tuple[str, ...] = ()
    model: str | None = None
    datasets: tuple[str, ...] = ("harmbench-standard",)
    split: str = "holdout"
    n_prompts: int = 32
    samples: int = 1
    seed: int = 0
    judge: str = "safetune"
    batch_size: int = 64  # generate() rows; a batch spans candidates, halved on out-of-memory
    experiment: str = "safetune-evaluate"
    cache_dir: str | None = None
    n_benign: int = 16
    n_capability: int = 8  # per task

    def __post_init__(self) -> None:
        for name in ("n_prompts", "samples", "batch_size"):
            if getattr(self, name) < 1:
                raise SafetuneError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if not self.datasets:
            raise SafetuneError("at least one dataset is needed")


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


def run_evaluate(cfg: EvaluateConfig, tracking_uri: str | None = None, progress: bool = True) -> pd.DataFrame:
    tracking.setup_tracking(tracking_uri)
    model, targets = resolve_targets(cfg)
    prompts = sample(split(load_prompt_sets(cfg.datasets), cfg.split, seed=0), cfg.n_prompts, seed=cfg.seed)
    judge = get_judge(cfg.judge)
    ref = resolve_model(model)
    cache = Cache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "cache.sqlite")
    engine = get_engine("transformers", ref=ref, cache=cache, batch_size=cfg.batch_size)
    benign = sample(split(load_prompt_sets(("xstest-safe",)), cfg.split, seed=0), cfg.n_benign, seed=cfg.seed) \
        if cfg.n_benign else None
    tasks = sample_tasks(TASKS, cfg.n_capability, seed=cfg.seed + 1) if cfg.n_capability else ()
    evaluator = Evaluator(engine, judge, LazyRelevance(), prompts, cfg.samples, cfg.seed, cache,
                          benign=benign, tasks=tasks)
    default = model_default_config(ref, max_new_tokens=96)
    configs = [c if c is not None else default for _, c in targets]
    bar = tqdm(total=len(configs) * evaluator.responses_per_candidate, unit="resp", desc="evaluate",
               disable=not progress)
    engine.on_batch = bar.update
    results = evaluator.evaluate(configs)
    bar.close()
    comparisons = compare_to_default(results[0], [(label, r) for (label, _), r in zip(targets[1:], results[1:])])
    summary = {
        "split": cfg.split, "n_prompts": len(prompts), "samples": cfg.samples, "judge": cfg.judge,
        "results": {label: {**r.metrics(), "config": r.config.to_dict(), "per_category": per_category(r)}
                    for (label, _), r in zip(targets, results)},
        "comparisons": comparisons,
        "quadrants": quadrant_table(comparisons) if comparisons else {},
    }
    rows = []
    with tracking.parent_run(cfg.experiment, f"evaluate-{ref.slug}"):
        mlflow.set_tags({"safetune.kind": "evaluate", "safetune.model": ref.model_id})
        mlflow.log_params({"model": ref.name, "model_revision": ref.revision, "split": cfg.split,
                           "n_prompts": len(prompts), "samples": cfg.samples, "judge": cfg.judge, "seed": cfg.seed})
        tracking.log_prompt_set(prompts, context=cfg.split)
        for (label, _), result in zip(targets, results):
            with mlflow.start_run(run_name=f"eval-{result.config.digest()}", nested=True):
                mlflow.set_tag("safetune.target", label)
                mlflow.log_params(result.config.to_dict())
                mlflow.log_metrics(result.metrics())
                mlflow.log_table(pd.DataFrame(result.rows), artifact_file="responses.json")
            rows.append({"target": label, "harm_rate": round(result.harm_rate, 4),
                         "harm_ci": f"[{result.harm_ci_low:.3f}, {result.harm_ci_high:.3f}]",
                         "relevance": round(result.relevance, 4),
                         "benign_ok": round(result.benign_compliance, 3), "capability": round(result.capability, 3),
                         "incoherent": round(result.incoherence_rate, 3), "n": result.n_responses,
                         "unknown": result.n_unknown})
        for i, comp in enumerate(comparisons):
            mlflow.log_metrics({f"vs_default.{i}.{k}": float(v) for k, v in comp.items()
                                if isinstance(v, (int, float)) and v == v})
        mlflow.log_dict(summary, "evaluation_summary.json")
        table = pd.DataFrame(rows)
        mlflow.log_table(table, artifact_file="comparison.json")
        if comparisons:
            mlflow.log_table(pd.DataFrame(comparisons), artifact_file="paired_tests.json")
    tests = pd.DataFrame([{k: c[k] for k in ("target", "harm_delta", "cohens_h", "mcnemar_p_holm",
                                              "relevance_delta", "a12_relevance", "wilcoxon_p_holm")}
                          for c in comparisons])
    return table, tests
