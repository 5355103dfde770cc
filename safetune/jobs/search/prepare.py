"""Before the loop: everything a search needs, built once.

``prepare`` resolves the model, draws the prompts and guard suites from the fixed split, and builds
the cache, judges, engine, evaluator and algorithm (``preflight.py`` has the checks that run before
any of this). Nothing here logs to MLflow except ``log_start``, which describes a search on its
parent run once the run is open.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import mlflow

from safetune.cache import Cache
from safetune.components.embeddings import Embedder
from safetune.components.engines import Engine, get_engine
from safetune.components.judges.base import get_judge
from safetune.components.requests import check_context, load_tokenizer
from safetune.config import DecodingConfig, SearchConfig
from safetune.datasets import PromptSet, fixed_split, sample
from safetune.datasets.tasks import TASKS, sample_tasks
from safetune.models import ModelRef, cache_root, default_decoding, resolve_model
from safetune.objectives.evaluator import Evaluator
from safetune.search.base import SearchAlgorithm
from safetune.search.registry import get_algorithm
from safetune.tracking import runs as tracking

log = logging.getLogger(__name__)


def search_prompts(cfg: SearchConfig) -> PromptSet:
    return sample(fixed_split(cfg.datasets, "search"), cfg.n_prompts, seed=cfg.seed)


def guard_suites(cfg: SearchConfig) -> tuple[PromptSet | None, tuple]:
    """Benign prompts (over-refusal) and capability items, from the search side of every split."""
    g = cfg.guards
    if not g.enabled:
        return None, ()
    benign = sample(fixed_split(g.benign_datasets, "search"), g.n_benign, seed=cfg.seed) if g.n_benign else None
    names = TASKS.names() if g.capability_tasks is None else g.capability_tasks  # None: every task
    tasks = sample_tasks(names, g.n_capability, seed=cfg.seed) if g.n_capability else ()
    return benign, tasks


@dataclass
class SearchSetup:
    """What a search runs on, built once by ``prepare``."""

    ref: ModelRef
    prompts: PromptSet
    benign: PromptSet | None
    tasks: tuple
    cache: Cache
    engine: Engine
    evaluator: Evaluator
    algorithm: SearchAlgorithm
    default: DecodingConfig  # the model default, as the search space can express it (evaluated first)
    declared_default: DecodingConfig  # cfg.default_config or the model's own generation_config.json
    run_name: str


def prepare(cfg: SearchConfig) -> SearchSetup:
    ref = resolve_model(cfg.model)
    prompts = search_prompts(cfg)
    benign, tasks = guard_suites(cfg)
    # Every search-split prompt (the validation prompts come from there too), not only the sampled ones.
    check_context(ref, list(fixed_split(cfg.datasets, "search").items) + list(benign.items if benign else ()),
                  int(cfg.space.max_new_tokens.high), lambda: load_tokenizer(ref.path))
    cache = Cache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "cache.sqlite")
    judges = [get_judge(name) for name in (cfg.judge, *cfg.judges)]  # fail before loading any model
    ray_kwargs = {"address": cfg.ray_address, "workers": cfg.ray_workers} if cfg.engine == "ray" else {}
    engine = get_engine(cfg.engine, ref=ref, cache=cache, batch_size=cfg.batch_size, accelerator=cfg.accelerator,
                        devices=cfg.devices, precision=cfg.precision, dtype=cfg.dtype, **ray_kwargs)
    evaluator = Evaluator(engine, judges, Embedder(), prompts, cfg.samples, cfg.seed, cache,
                          benign=benign, tasks=tasks, on_topic=cfg.guards.on_topic)
    declared = cfg.default_config or default_decoding(ref, int(cfg.space.max_new_tokens.high))
    default = cfg.space.decode(cfg.space.encode(declared))
    if default != declared:
        log.warning("the model's default configuration lies outside the search space; using %s", default)
    run_name = f"{'search' if cfg.algorithm == 'nsga2' else cfg.algorithm}-{ref.slug}-s{cfg.seed}"
    return SearchSetup(ref, prompts, benign, tasks, cache, engine, evaluator,
                       get_algorithm(cfg.algorithm, cfg.harm_budget), default, declared, run_name)


def log_start(cfg: SearchConfig, setup: SearchSetup) -> None:
    """The search's parameters, configuration and prompt sets on its (open) parent run."""
    ref, engine = setup.ref, setup.engine
    mlflow.set_tags({"safetune.kind": "search", "safetune.model": ref.model_id})
    # Prefixed: `mlflow run` has already logged its own entry-point parameters under bare names.
    mlflow.log_params(tracking.flatten("safetune", {
        "model": ref.name, "model_id": ref.model_id, "model_revision": ref.revision,
        "judge": cfg.judge, "judges": list(cfg.judges), "datasets": list(cfg.datasets),
        "n_prompts": len(setup.prompts), "n_validation": cfg.n_validation, "algorithm": cfg.algorithm,
        "pop_size": cfg.pop_size, "n_gen": cfg.n_gen, "samples": cfg.samples,
        "seed": cfg.seed, "hv_ref": list(cfg.hv_ref), "batch_size": cfg.batch_size, "devices": cfg.devices,
        "accelerator": cfg.accelerator, "precision": cfg.precision, "algorithm_options": setup.algorithm.options,
        "dtype": engine.dtype,
        "engine": cfg.engine, "ray_workers": cfg.ray_workers if cfg.engine == "ray" else None,
        "guards": {**dataclasses.asdict(cfg.guards), "n_benign": len(setup.benign) if setup.benign else 0,
                   "n_capability_items": len(setup.tasks)},
    }))
    mlflow.log_dict(cfg.to_dict(), "search_config.json")
    mlflow.log_dict(cfg.space.to_dict(), "search_space.json")
    mlflow.log_dict(setup.declared_default.to_dict(), "default_config.json")
    tracking.log_prompt_set(setup.prompts, context="search")
    if setup.benign:
        tracking.log_prompt_set(setup.benign, context="guard-benign")
