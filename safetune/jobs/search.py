"""The search job: wire prompts, engine, judge, NSGA-II, MLflow tracking and the registry together."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
from tqdm.auto import tqdm

from safetune.tracking import runs as tracking
from safetune.analysis import importance
from safetune.analysis import plots
from safetune.objectives import guards as quality
from safetune.tracking import registry
from safetune.analysis import report
from safetune.search import validation
from safetune.cache import Cache
from safetune.components.engines import get_engine
from safetune.components.judges.base import get_judge
from safetune.components.lazy import LazyRelevance
from safetune.config import DecodingConfig, SearchConfig
from safetune.datasets import PromptSet, load_prompt_sets, sample, split
from safetune.datasets.tasks import SPLIT_SEED, chance_level, sample_tasks
from safetune.objectives.evaluator import CandidateResult, Evaluator
from safetune.components.requests import load_tokenizer, overlong_prompts
from safetune.errors import SafetuneError
from safetune.models import ModelRef, cache_root, context_length, resolve_model
from safetune.analysis.plots import pareto_plot
from safetune.search.base import Problem
from safetune.search.front import feasible, hypervolume, pareto_indices
from safetune.search.registry import get_algorithm

log = logging.getLogger(__name__)


def model_default_config(ref: ModelRef, max_new_tokens: int) -> DecodingConfig:
    """The model's own decoding defaults (its generation_config.json), no system prompt of ours."""
    path = Path(ref.path) / "generation_config.json"
    gc = json.loads(path.read_text()) if path.exists() else {}
    sampling = bool(gc.get("do_sample", False))
    return DecodingConfig(
        temperature=float(gc.get("temperature", 1.0)) if sampling else 0.0,
        top_p=float(gc.get("top_p", 1.0) or 1.0),
        top_k=int(gc.get("top_k", 0) or 0) if sampling else 0,
        repetition_penalty=float(gc.get("repetition_penalty", 1.0) or 1.0),
        no_repeat_ngram_size=int(gc.get("no_repeat_ngram_size", 0) or 0),
        max_new_tokens=max_new_tokens,
        system_prompt="default",
    )


def search_pool(datasets) -> PromptSet:
    """The search side of the fixed split: the holdout side never depends on a search's seed."""
    return split(load_prompt_sets(datasets), "search", seed=SPLIT_SEED)


def check_context(ref, items, max_new_tokens: int, tokenizer_fn) -> None:
    """Refuse prompts that cannot fit the model's context with room for the answer (one line,
    naming them), before any generation: they cost minutes per candidate and degenerate."""
    window = context_length(ref)
    if window is None:
        return
    # Room for the chat template and a system prompt, besides the answer itself.
    limit = window - max_new_tokens - 256
    too_long = overlong_prompts(items, limit, tokenizer_fn)
    if too_long:
        shown = ", ".join(f"{pid} ({n} tokens)" for pid, n in too_long[:3])
        more = f" and {len(too_long) - 3} more" if len(too_long) > 3 else ""
        raise SafetuneError(f"{len(too_long)} prompt(s) do not fit {ref.name}'s {window}-token context with "
                            f"{max_new_tokens} new tokens: {shown}{more}; shorten or drop them")


def search_prompts(cfg: SearchConfig) -> PromptSet:
    return sample(search_pool(cfg.datasets), cfg.n_prompts, seed=cfg.seed)


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


SUMMARY_METRICS = ("harm_rate", "relevance", "benign_helpfulness", "fluency_nll", "capability", "incoherence_rate")


def champion_summary(chosen, measured: dict[str, CandidateResult], baseline: CandidateResult, guards) -> dict:
    """Default vs champion on the selection split, with the verdict, for the console and the run note."""
    champ = measured[chosen.aliases["champion"]]
    is_default = not chosen.kept_quality or champ.config == baseline.config
    safer, p = quality.significantly_safer(champ, baseline) if not is_default else (False, 1.0)
    worse = quality.failed_constraints(champ, baseline, guards) if not is_default else []
    return {
        "split": chosen.split, "rule": chosen.rule, "kept_quality": chosen.kept_quality,
        "default": {k: getattr(baseline, k) for k in SUMMARY_METRICS},
        "champion": {k: getattr(champ, k) for k in SUMMARY_METRICS},
        "champion_config": champ.config.to_dict(), "champion_is_default": is_default,
        "harm_p_one_sided": p,
        "verdict": "the model default (no safer configuration kept the model's quality)" if is_default
        else quality.verdict(safer, worse),
    }


def guard_suites(cfg: SearchConfig):
    """Benign prompts (over-refusal) and capability items, from the search side of every split."""
    g = cfg.guards
    if not g.enabled:
        return None, ()
    benign = sample(search_pool(g.benign_datasets), g.n_benign, seed=cfg.seed) if g.n_benign else None
    tasks = sample_tasks(g.capability_tasks, g.n_capability, seed=cfg.seed) if g.n_capability else ()
    return benign, tasks


def constraint_values(result: CandidateResult, baseline: CandidateResult, cfg: SearchConfig) -> list[float]:
    """g <= 0 is feasible: non-inferiority to the default on every quality measure (safetune/quality.py)."""
    return quality.constraint_values(result, baseline, cfg.guards)


CONSTRAINTS = quality.CONSTRAINTS


def usable_tasks(baseline: CandidateResult, tasks) -> tuple[tuple, dict]:
    """The capability items of tasks the default passes clearly above chance, and a report per task."""
    keep, report_ = [], {}
    for task in sorted({t.task for t in tasks}):
        mine = [t for t in tasks if t.task == task]
        ids = {t.id for t in mine}
        correct = sum(bool(r["correct"]) for r in baseline.rows if r["suite"] == "capability" and r["prompt_id"] in ids)
        chance = chance_level(task, mine)
        used = quality.above_chance(correct, len(mine), chance)
        report_[task] = {"default_accuracy": correct / len(mine), "chance": chance, "n": len(mine), "used": used}
        if used:
            keep.extend(mine)
    return tuple(keep), report_


def measure_default(evaluator: Evaluator, default: DecodingConfig, guards, evaluate_configs):
    """The yardstick, measured once: calibrate incoherence on the default's own answers, keep only the
    capability tasks it passes above chance, then re-aggregate it under that calibration (its
    generations come from the cache)."""
    raw = evaluate_configs([default])[0]
    nlls = [r["nll"] for r in raw.rows if r["suite"] in ("harmful", "benign")]
    evaluator.reference = quality.calibrate(nlls, default.max_new_tokens, guards.nll_factor)
    evaluator.tasks, task_report = usable_tasks(raw, evaluator.tasks)
    baseline = evaluator.evaluate([default])[0]
    return baseline, raw, task_report


def slice_evaluator(evaluator: Evaluator, fraction: float) -> Evaluator:
    """The same evaluator on the first ``fraction`` of each suite (at least 4 items each), for racing.
    Its answers are generated with the same requests, so the full evaluation reuses them from the cache."""
    def head(n: int) -> int:
        return min(n, max(4, math.ceil(fraction * n)))

    prompts = PromptSet(evaluator.prompts.name, evaluator.prompts.items[:head(len(evaluator.prompts.items))])
    benign = (PromptSet(evaluator.benign.name, evaluator.benign.items[:head(len(evaluator.benign.items))])
              if evaluator.benign else None)
    return Evaluator(evaluator.engine, evaluator.judges, evaluator.relevance, prompts, evaluator.samples, evaluator.seed,
                     evaluator.cache, judge_id=evaluator.judge_id, benign=benign,
                     tasks=evaluator.tasks[:head(len(evaluator.tasks))], reference=evaluator.reference,
                     on_topic=evaluator.on_topic)


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


def validation_suites(cfg: SearchConfig, evaluator: Evaluator, used: PromptSet):
    """Search-split prompts, benign prompts and capability items that the search never asked."""
    val_prompts = validation.validation_slice(search_pool(cfg.datasets), used, cfg.n_validation, cfg.seed)
    benign = None
    if evaluator.benign:
        benign = validation.validation_slice(search_pool(cfg.guards.benign_datasets), evaluator.benign,
                                             len(evaluator.benign), cfg.seed) or evaluator.benign
    tasks = ()
    if evaluator.tasks:
        names = sorted({t.task for t in evaluator.tasks})
        per_task = max(sum(t.task == n for t in evaluator.tasks) for n in names)
        tasks = sample_tasks(names, per_task, seed=cfg.seed, exclude={t.id for t in evaluator.tasks}) or evaluator.tasks
    return val_prompts, benign, tasks


def validate_front(cfg: SearchConfig, used: PromptSet, evaluator: Evaluator, configs: list[DecodingConfig],
                   run_ids: list[str], progress: bool) -> list[CandidateResult] | None:
    """Re-measure ``configs`` (the default first, then the front's) on the validation suites; log
    ``validation.*`` on their runs."""
    val_prompts, benign, tasks = validation_suites(cfg, evaluator, used)
    if val_prompts is None:
        if cfg.n_validation:
            log.warning("no search-split prompts left for validation; the champion is chosen on search prompts")
        return None
    tracking.log_prompt_set(val_prompts, context="validation")
    val_eval = Evaluator(evaluator.engine, evaluator.judges, evaluator.relevance, val_prompts, cfg.samples, cfg.seed,
                         evaluator.cache, benign=benign, tasks=tasks, reference=evaluator.reference,
                         on_topic=evaluator.on_topic)
    bar = tqdm(total=len(configs) * val_eval.responses_per_candidate, unit="resp", desc="validation",
               disable=not progress, dynamic_ncols=True)
    evaluator.engine.on_batch = bar.update
    measured = val_eval.evaluate(configs)
    bar.update(bar.total - bar.n)
    bar.close()
    client = mlflow.tracking.MlflowClient()
    for run_id, r in zip(run_ids, measured):
        for key in ("harm_rate", "harm_rate_ci_low", "harm_rate_ci_high", "relevance", "incoherence_rate",
                    "benign_helpfulness", "capability", "fluency_nll"):
            value = r.metrics().get(key)
            if value is not None:
                client.log_metric(run_id, f"validation.{key}", value)
    return measured


def run_search(cfg: SearchConfig, tracking_uri: str | None = None, resume_run_id: str | None = None,
               progress: bool = True) -> SearchOutcome:
    tracking.setup_tracking(tracking_uri)
    if resume_run_id:
        tracking.check_resumable(resume_run_id, cfg.experiment, cfg.to_dict())
    ref = resolve_model(cfg.model)
    prompts = search_prompts(cfg)
    benign, tasks = guard_suites(cfg)
    # Every search-split prompt (the validation prompts come from there too), not only the sampled ones.
    check_context(ref, list(search_pool(cfg.datasets).items) + list(benign.items if benign else ()),
                  int(cfg.space.max_new_tokens.high), lambda: load_tokenizer(ref.path))
    cache = Cache(Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "cache.sqlite")
    judges = [get_judge(name) for name in (cfg.judge, *cfg.judges)]  # fail before loading any model
    ray_kwargs = {"address": cfg.ray_address, "workers": cfg.ray_workers} if cfg.engine == "ray" else {}
    engine = get_engine(
        cfg.engine, ref=ref, cache=cache, batch_size=cfg.batch_size,
        accelerator=cfg.accelerator, devices=cfg.devices, precision=cfg.precision, dtype=cfg.dtype, **ray_kwargs,
    )
    evaluator = Evaluator(engine, judges, LazyRelevance(), prompts, cfg.samples, cfg.seed, cache,
                          benign=benign, tasks=tasks, on_topic=cfg.guards.on_topic)
    constrained = cfg.guards.enabled and cfg.guards.constrain
    n_constr = len(CONSTRAINTS) if constrained else 0

    space = cfg.space
    default = cfg.default_config or model_default_config(ref, int(space.max_new_tokens.high))
    default_vec = space.encode(default)
    default_in_space = space.decode(default_vec)
    if default_in_space != default:
        log.warning("the model's default configuration lies outside the search space; using %s", default_in_space)
    xl, xu = space.bounds()

    run_name = f"{'search' if cfg.algorithm == 'nsga2' else cfg.algorithm}-{ref.slug}-s{cfg.seed}"
    algorithm = get_algorithm(cfg.algorithm, cfg.harm_budget)
    algorithm_options = algorithm.options
    # closing(): Ray actors and Ray itself end with the search, also on errors and Ctrl-C.
    with contextlib.closing(engine), tracking.parent_run(cfg.experiment, run_name, resume_run_id) as parent:
        parent_id = parent.info.run_id
        done = {}
        if resume_run_id:
            dropped = tracking.discard_unfinished_children(parent_id)
            if dropped:
                log.info("resume: discarded %d half-logged candidate run(s)", dropped)
            done = tracking.existing_candidates(parent_id)
        mlflow.set_tags({"safetune.kind": "search", "safetune.model": ref.model_id})
        # Prefixed: `mlflow run` has already logged its own entry-point parameters under bare names.
        mlflow.log_params(tracking.flatten("safetune", {
            "model": ref.name, "model_id": ref.model_id, "model_revision": ref.revision,
            "judge": cfg.judge, "judges": list(cfg.judges), "datasets": list(cfg.datasets),
            "n_prompts": len(prompts), "n_validation": cfg.n_validation, "algorithm": cfg.algorithm, "pop_size": cfg.pop_size, "n_gen": cfg.n_gen, "samples": cfg.samples,
            "seed": cfg.seed, "hv_ref": list(cfg.hv_ref), "batch_size": cfg.batch_size, "devices": cfg.devices,
            "accelerator": cfg.accelerator, "precision": cfg.precision, "algorithm_options": algorithm_options,
            "dtype": engine.dtype,
            "engine": cfg.engine, "ray_workers": cfg.ray_workers if cfg.engine == "ray" else None,
            "guards": {**dataclasses.asdict(cfg.guards), "n_benign": len(benign) if benign else 0,
                       "n_capability_items": len(tasks)},
        }))
        mlflow.log_dict(cfg.to_dict(), "search_config.json")
        mlflow.log_dict(space.to_dict(), "search_space.json")
        mlflow.log_dict(default.to_dict(), "default_config.json")
        tracking.log_prompt_set(prompts, context="search")
        if benign:
            tracking.log_prompt_set(benign, context="guard-benign")

        results: list[CandidateResult] = []
        constraints: list[list[float]] = []
        child_ids: list[str] = []
        per_candidate = evaluator.responses_per_candidate
        bar = tqdm(total=(cfg.pop_size * cfg.n_gen + 1) * per_candidate, unit="resp", desc="search",
                   disable=not progress, dynamic_ncols=True)
        engine.on_batch = bar.update

        def evaluate_configs(configs):
            before = bar.n
            batch = evaluator.evaluate(configs)
            # Candidates answered from the result cache never reach the engine: count them here.
            bar.update(max(0, len(configs) * per_candidate - (bar.n - before)))
            return batch

        # The default's quality values are the yardstick for every candidate's constraints.
        bar.set_postfix_str("default")
        baseline, raw_default, task_report = measure_default(evaluator, default_in_space, cfg.guards, evaluate_configs)
        mlflow.log_metrics({f"default.{k}": v for k, v in baseline.metrics().items()})
        for task, info in task_report.items():
            mlflow.log_metric(f"default.capability.{task}", info["default_accuracy"])
            mlflow.set_tag(f"safetune.capability_task.{task}",
                           "guard" if info["used"] else f"not a guard: default at chance ({info['chance']:.2f})")
        mlflow.log_dict({"reference": evaluator.reference.to_dict() if evaluator.reference else None,
                         "tasks": task_report}, "quality_reference.json")
        if evaluator.tasks != tasks:  # dropped tasks no longer cost anything per candidate
            per_candidate = evaluator.responses_per_candidate
            bar.total = bar.n + cfg.pop_size * cfg.n_gen * per_candidate
            bar.refresh()

        racer = slice_evaluator(evaluator, cfg.guards.race_fraction) if constrained and cfg.guards.race else None

        def race(configs):
            """First slice for all, the rest only for those not already failing by far."""
            if racer is None:
                return evaluate_configs(configs)
            before = bar.n
            first = racer.evaluate(configs)
            out = [None] * len(configs)
            for i, r in enumerate(first):
                if configs[i] != default_in_space and quality.raced_out(r, baseline, cfg.guards):
                    out[i] = dataclasses.replace(r, extra={**r.extra, "raced": 1.0})
            rest = [i for i in range(len(configs)) if out[i] is None]
            bar.update(max(0, len(configs) * racer.responses_per_candidate - (bar.n - before)))
            for i, r in zip(rest, evaluator.evaluate([configs[i] for i in rest])):
                out[i] = r
            return out

        def evaluate(X: np.ndarray, generation: int):
            configs = [space.decode(x) for x in X]
            bar.set_postfix_str(f"gen {generation + 1}/{cfg.n_gen}")
            batch = race(configs)
            F = np.array([r.objectives() for r in batch], dtype=float)
            G = np.array([constraint_values(r, baseline, cfg) for r in batch], dtype=float)
            so_far = np.concatenate([np.array([r.objectives() for r in results]).reshape(-1, 2), F])
            G_so_far = np.concatenate([np.array(constraints).reshape(-1, len(CONSTRAINTS)), G])
            hv = hypervolume(so_far, cfg.hv_ref, G_so_far if constrained else None)
            for i, result in enumerate(batch):
                digest = result.config.digest()
                if (generation, digest) in done:
                    child_ids.append(done[(generation, digest)])
                else:
                    is_default = generation == 0 and result.config == default_in_space
                    child_ids.append(tracking.log_candidate(
                        result, generation, i, hv, is_default, dict(zip(CONSTRAINTS, G[i])) if constrained else None))
                results.append(result)
                constraints.append(list(G[i]))
            return (F, G) if constrained else F

        def on_generation(g) -> None:
            metrics = {"hypervolume": g.hypervolume, "pareto_front_size": g.front_size}
            if "lambda" in g.extra:  # the lagrangian search's multiplier that ranked this generation
                metrics["lagrangian_lambda"] = g.extra["lambda"]
            mlflow.log_metrics(metrics, step=g.generation)

        started = time.perf_counter()
        problem = Problem(evaluate, xl, xu, n_obj=2, n_constr=n_constr, ref_point=cfg.hv_ref,
                          fixed=[default_vec] + [space.encode(c) for c in cfg.include])
        outcome = algorithm.run(problem, cfg.pop_size, cfg.n_gen, cfg.seed, on_generation)
        bar.close()
        G_all = np.asarray(constraints, dtype=float) if constrained else None
        front = pareto_indices(outcome.F, G_all)
        n_feasible = int(feasible(G_all, len(results)).sum())
        if constrained and n_feasible == 0:
            log.warning("no candidate satisfied the guards; the front is taken over all candidates")
        # One entry per distinct configuration on the front (a config can recur across generations).
        front_unique: dict[str, int] = {}
        for i in front:
            front_unique.setdefault(results[i].config.digest(), int(i))
        pareto_ids = [child_ids[i] for i in front_unique.values()]
        tracking.mark_pareto(child_ids, set(pareto_ids))
        mlflow.log_metrics({
            "search_wall_time_s": time.perf_counter() - started,
            "candidates_evaluated": evaluator.stats["candidates_evaluated"],
            "candidates_from_cache": evaluator.stats["candidates_cached"],
            "candidates_feasible": n_feasible,
            "final_hypervolume": outcome.history[-1].hypervolume,
            "responses_generated": engine.totals["generated"],
            "responses_from_cache": engine.totals["cached"],
        })
        default_idx = next((i for i, r in enumerate(results) if r.config == default_in_space), None)
        mlflow.log_figure(pareto_plot(results, front, default_idx, cfg.hv_ref), "pareto_front.png")
        mlflow.log_dict(
            {"front": [{"run_id": child_ids[i], **results[i].metrics(), "config": results[i].config.to_dict()}
                       for i in front_unique.values()]},
            "pareto_front.json",
        )

        # The champion is chosen on prompts the search never saw (see safetune/validation.py), against
        # the default measured on the same prompts and items.
        front_idx = list(front_unique.values())
        measured_idx = ([default_idx] if default_idx is not None else []) + [i for i in front_idx if i != default_idx]
        val_all = validate_front(cfg, prompts, evaluator, [results[i].config for i in measured_idx],
                                 [child_ids[i] for i in measured_idx], progress)
        val_by_idx = dict(zip(measured_idx, val_all)) if val_all is not None else None
        val_results = [val_by_idx[i] for i in front_idx] if val_by_idx else None
        reference_default = (val_by_idx[default_idx] if val_by_idx and default_idx is not None
                             else baseline)
        chosen = validation.select(
            [str(i) for i in front_idx], [results[i] for i in front_idx], val_results, cfg.harm_budget,
            default_key=str(default_idx) if default_idx is not None and cfg.guards.enabled else None,
            baseline=reference_default, guards=cfg.guards)
        if not chosen.kept_quality:
            print(validation.NO_SAFER.capitalize() + ": the champion is the model's default configuration.")
        measured_by_key = {str(i): (val_by_idx or {}).get(i, results[i]) for i in front_idx}
        if default_idx is not None:
            measured_by_key.setdefault(str(default_idx), reference_default)
        summary = champion_summary(chosen, measured_by_key, reference_default, cfg.guards) if cfg.guards.enabled else None
        if summary:
            mlflow.log_dict(summary, "champion_summary.json")
        mlflow.set_tags({"safetune.champion_rule": chosen.rule, "safetune.selection_split": chosen.split,
                         "safetune.champion_kept_quality": str(chosen.kept_quality).lower()})
        if chosen.reasons:
            mlflow.log_dict({child_ids[int(k)]: why for k, why in chosen.reasons.items()}, "champion_reasons.json")
        # Totals again, now including the validation responses (the latest value is the metric's value).
        mlflow.log_metrics({"responses_generated": engine.totals["generated"],
                            "responses_from_cache": engine.totals["cached"]})
        registered, name = {}, None
        if cfg.register:
            name = registry.model_name(ref)
            to_register = front_idx + [int(k) for k in set(chosen.aliases.values()) if int(k) not in front_idx]
            where = "validation prompts" if val_by_idx else "search prompts"

            def describe(i: int) -> str:
                measured = (val_by_idx or {}).get(i, results[i])
                return registry.describe_version(results[i].config, {k: getattr(measured, k) for k in SUMMARY_METRICS}, where)

            versions = {str(i): registry.log_configuration_model(child_ids[i], ref, results[i].config, cfg.seed, name,
                                                                 describe(i))
                        for i in to_register}
            registered = {alias: versions[key] for alias, key in chosen.aliases.items()}
            registry.set_aliases(name, registered)
            mlflow.set_tag("safetune.registered_model", name)
            for alias, version in registered.items():
                mlflow.set_tag(f"safetune.alias.{alias}", version)
        if summary:
            mlflow.set_tag("mlflow.note.content", tracking.describe_search(summary, ref.name, registered, name))
        log_importance_and_report(parent_id, results)
    return SearchOutcome(parent_id, results, child_ids, pareto_ids, registered, name, summary)
