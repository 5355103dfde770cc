"""The search loop: the default measured once, then generation after generation of candidates.

Each population is decoded from the algorithm's vectors, raced (a candidate failing fluency or
incoherence by far on the first slice of items stops there), measured against the default (the
constraints) and, once the algorithm has recorded the generation, logged as one child run per
candidate with the generation's hypervolume. ``Trail`` is everything the loop leaves for
``finish``, in evaluation order.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import mlflow
import numpy as np

from safetune.config import SearchConfig
from safetune.objectives.guards import CONSTRAINTS, constraint_values, raced_out
from safetune.objectives.results import CandidateResult
from safetune.search.base import GenerationLog, Problem, SearchResult
from safetune.tracking import runs as tracking


@dataclass
class Trail:
    """Every evaluated candidate in order: its result, constraint values and child run."""

    baseline: CandidateResult  # the default, the yardstick of every constraint
    results: list[CandidateResult] = field(default_factory=list)
    constraints: list[list[float]] = field(default_factory=list)
    child_ids: list[str] = field(default_factory=list)
    outcome: SearchResult | None = None
    started: float = field(default_factory=time.perf_counter)


def measure_baseline(setup, guards, progress) -> CandidateResult:
    """The default's figures (the yardstick), which capability tasks it can guard, logged on the parent."""
    evaluator = setup.evaluator
    progress.note("default")
    baseline, _, task_report = evaluator.measure_default(setup.default, guards,
                                                         lambda configs: progress.evaluate(evaluator, configs))
    mlflow.log_metrics({f"default.{k}": v for k, v in baseline.metrics().items()})
    for task, info in task_report.items():
        mlflow.log_metric(f"default.capability.{task}", info["default_accuracy"])
        mlflow.set_tag(f"safetune.capability_task.{task}",
                       "guard" if info["used"] else f"not a guard: default at chance ({info['chance']:.2f})")
    mlflow.log_dict({"reference": evaluator.reference.to_dict() if evaluator.reference else None,
                     "tasks": task_report}, "quality_reference.json")
    return baseline


def race(setup, configs, baseline: CandidateResult, guards, progress) -> list[CandidateResult]:
    """The first slice of every suite for all, the rest only for those not already failing by far."""
    evaluator = setup.evaluator
    if not (guards.enabled and guards.constrain and guards.race):
        return progress.evaluate(evaluator, configs)
    head = evaluator.head(guards.race_fraction)
    first = progress.evaluate(head, configs)
    out: list[CandidateResult | None] = [None] * len(configs)
    for i, r in enumerate(first):
        if configs[i] != setup.default and raced_out(r, baseline, guards):
            out[i] = dataclasses.replace(r, extra={**r.extra, "raced": 1.0})
    rest = [i for i in range(len(configs)) if out[i] is None]
    remaining = evaluator.responses_per_candidate - head.responses_per_candidate  # per candidate, after the slice
    progress.skip((len(configs) - len(rest)) * remaining)
    for i, r in zip(rest, progress.evaluate(evaluator, [configs[i] for i in rest], remaining)):
        out[i] = r
    return out


def run_loop(cfg: SearchConfig, setup, done: dict[tuple[int, str], str], progress) -> Trail:
    """Measure the default, run the algorithm, log every candidate; ``done`` maps (generation, digest)
    to the child runs a resumed search already logged."""
    guards, space = cfg.guards, cfg.space
    constrained = guards.enabled and guards.constrain
    baseline = measure_baseline(setup, guards, progress)
    if setup.evaluator.tasks != setup.tasks:  # dropped tasks no longer cost anything per candidate
        progress.expect(cfg.pop_size * cfg.n_gen * setup.evaluator.responses_per_candidate)
    trail = Trail(baseline)
    pending: list[tuple[CandidateResult, list[float]]] = []  # this generation's, logged once it is recorded

    def evaluate(X: np.ndarray, generation: int):
        progress.note(f"gen {generation + 1}/{cfg.n_gen}")
        batch = race(setup, [space.decode(x) for x in X], baseline, guards, progress)
        F = np.array([r.objectives() for r in batch], dtype=float)
        G = np.array([constraint_values(r, baseline, guards) for r in batch], dtype=float)
        pending[:] = list(zip(batch, G.tolist()))
        return (F, G) if constrained else F

    def on_generation(log: GenerationLog) -> None:
        for i, (result, g) in enumerate(pending):
            digest = result.config.digest()
            if (log.generation, digest) in done:
                trail.child_ids.append(done[(log.generation, digest)])
            else:
                is_default = log.generation == 0 and result.config == setup.default
                trail.child_ids.append(tracking.log_candidate(
                    result, log.generation, i, log.hypervolume, is_default,
                    dict(zip(CONSTRAINTS, g)) if constrained else None))
            trail.results.append(result)
            trail.constraints.append(g)
        metrics = {"hypervolume": log.hypervolume, "pareto_front_size": log.front_size}
        if "lambda" in log.extra:  # the lagrangian search's multiplier that ranked this generation
            metrics["lagrangian_lambda"] = log.extra["lambda"]
        mlflow.log_metrics(metrics, step=log.generation)

    xl, xu = space.bounds()
    problem = Problem(evaluate, xl, xu, n_obj=2, n_constr=len(CONSTRAINTS) if constrained else 0,
                      ref_point=cfg.hv_ref,
                      fixed=[space.encode(setup.declared_default)] + [space.encode(c) for c in cfg.include])
    trail.started = time.perf_counter()
    trail.outcome = setup.algorithm.run(problem, cfg.pop_size, cfg.n_gen, cfg.seed, on_generation)
    return trail
