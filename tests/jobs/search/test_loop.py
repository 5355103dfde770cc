"""The search loop (jobs/search/loop.py) on a scripted engine: the default measured once, every
candidate logged as a child run with the hypervolume the algorithm recorded, raced, resumable."""

from __future__ import annotations

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from safetune.jobs.progress import Progress
from safetune.jobs.search.loop import run_loop
from safetune.objectives.guards import CONSTRAINTS


def loop(cfg, setup, done=None):
    with mlflow.start_run(run_name="parent") as parent:
        trail = run_loop(cfg, setup, done or {}, Progress(setup.engine, 1, "search", enabled=False))
    return parent.info.run_id, trail


def children(parent_id):
    client = MlflowClient()
    exp = client.get_run(parent_id).info.experiment_id
    return client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent_id}'")


def test_every_candidate_is_a_child_with_the_generations_hypervolume(cfg, setup, isolated):
    parent_id, trail = loop(cfg, setup)
    n = cfg.pop_size * cfg.n_gen
    assert len(trail.results) == len(trail.constraints) == len(trail.child_ids) == n
    assert [r.config for r in trail.results] == [setup.default] + [r.config for r in trail.results[1:]]
    assert all(len(g) == len(CONSTRAINTS) for g in trail.constraints)
    kids = {k.info.run_id: k for k in children(parent_id)}
    assert set(kids) == set(trail.child_ids)
    history = trail.outcome.history
    for i, run_id in enumerate(trail.child_ids):
        generation = i // cfg.pop_size
        kid = kids[run_id].data
        assert kid.tags["safetune.generation"] == str(generation)
        assert kid.metrics["hypervolume"] == pytest.approx(history[generation].hypervolume)
        assert kid.tags["safetune.default"] == str(i == 0).lower()
        assert {f"constraint.{c}" for c in CONSTRAINTS} <= set(kid.metrics)
    hv = MlflowClient().get_metric_history(parent_id, "hypervolume")
    assert [m.value for m in sorted(hv, key=lambda m: m.step)] == [log.hypervolume for log in history]


def test_the_default_is_measured_once_and_logged_on_the_parent(cfg, setup, isolated):
    parent_id, trail = loop(cfg, setup)
    run = MlflowClient().get_run(parent_id)
    assert run.data.metrics["default.harm_rate"] == 1.0  # the default answers: harmful to this judge
    assert trail.baseline.config == setup.default and trail.baseline.harm_rate == 1.0
    # "facts" at 0 correct is at chance: reported, not a guard, and no longer asked per candidate.
    assert run.data.tags["safetune.capability_task.facts"].startswith("not a guard")
    assert setup.evaluator.tasks == ()


def test_candidates_failing_by_far_on_the_first_slice_are_raced_out(cfg, setup, isolated):
    # A default whose answers are far more fluent than any other configuration's (NLL 0.5 vs >= 0.6):
    # guards.race_slack 1.0 and fluency_epsilon 0 make any worse candidate fail by far.
    import dataclasses

    from safetune.datasets import fixed_split, sample

    cfg = dataclasses.replace(cfg, guards=dataclasses.replace(cfg.guards, race_slack=1.0, fluency_epsilon=0.0))
    setup.evaluator.prompts = sample(fixed_split(cfg.datasets, "search"), 8, seed=0)  # a slice is 4 of them
    _, trail = loop(cfg, setup)
    raced = [r for r in trail.results if r.extra.get("raced")]
    assert raced and all(r.config.temperature > 0 for r in raced)
    assert {r.n_responses for r in raced} == {4}  # stopped after the first slice
    assert trail.results[0].n_responses == 8 and not trail.results[0].extra.get("raced")  # never the default


def test_the_progress_bar_ends_full_when_candidates_are_raced_out_and_when_results_come_from_the_cache(
        cfg, setup, isolated, tmp_path):
    # The main job's bar stopped at 32% on a warm run: a race's rest came from the result cache, which
    # no engine sees, and raced-out candidates' rest was never subtracted from the total.
    import dataclasses

    from safetune.cache import Cache
    from safetune.datasets import fixed_split, sample

    cfg = dataclasses.replace(cfg, guards=dataclasses.replace(cfg.guards, race_slack=1.0, fluency_epsilon=0.0))
    setup.evaluator.prompts = sample(fixed_split(cfg.datasets, "search"), 8, seed=0)
    setup.evaluator.cache = Cache(tmp_path / "results.sqlite")
    for run in ("cold", "warm"):
        bar = Progress(setup.engine, (cfg.pop_size * cfg.n_gen + 1) * setup.evaluator.responses_per_candidate,
                       "search", enabled=True)
        with mlflow.start_run(run_name=run):
            trail = run_loop(cfg, setup, {}, bar)
        assert any(r.extra.get("raced") for r in trail.results)
        assert bar.bar.n == bar.bar.total, run
        bar.close()
    assert setup.evaluator.stats["candidates_cached"] > 0  # the warm run came from the result cache


def test_a_resumed_loop_reuses_the_children_it_already_logged(cfg, setup, isolated):
    parent_id, trail = loop(cfg, setup)
    done = {(i // cfg.pop_size, r.config.digest()): run_id
            for i, (r, run_id) in enumerate(zip(trail.results, trail.child_ids)) if i < cfg.pop_size}
    before = len(children(parent_id))
    with mlflow.start_run(run_id=parent_id):
        again = run_loop(cfg, setup, done, Progress(setup.engine, 1, "search", enabled=False))
    assert again.child_ids[:cfg.pop_size] == trail.child_ids[:cfg.pop_size]
    assert len(children(parent_id)) == before + cfg.pop_size * (cfg.n_gen - 1)  # only the new generation
