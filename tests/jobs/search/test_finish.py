"""After the loop (jobs/search/finish.py): the front, its re-measurement on unseen prompts, the
champion and what the parent run records, on the scripted setup."""

from __future__ import annotations

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient

from safetune.config import DecodingConfig
from safetune.jobs.progress import Progress
from safetune.jobs.search.finish import finish, front_of
from safetune.jobs.search.loop import Trail, run_loop
from safetune.objectives.results import CandidateResult
from safetune.search.base import SearchResult


def result(config, harm, relevance):
    return CandidateResult(config, harm, 0.0, 1.0, harm, relevance, 10, 0, 10, 10, 0.0, 0.1)


def test_the_front_is_feasible_and_counts_each_configuration_once():
    a, b, c = (DecodingConfig(temperature=t) for t in (0.1, 0.2, 0.3))
    trail = Trail(result(a, 0.5, 0.5))
    trail.results = [result(a, 0.5, 0.5), result(b, 0.1, 0.2), result(c, 0.0, 0.9), result(a, 0.5, 0.5)]
    trail.constraints = [[0.0], [0.0], [0.3], [0.0]]  # c infeasible
    F = np.array([r.objectives() for r in trail.results])
    trail.outcome = SearchResult(F, F, np.zeros(4))
    front, n_feasible = front_of(trail, constrained=True)
    assert front == [0, 1] and n_feasible == 3  # a once (its repeat dropped) and b; c is infeasible
    assert front_of(trail, constrained=False)[0] == [2]  # without the guards c dominates both


def test_finish_chooses_on_unseen_prompts_and_records_why(cfg, setup, isolated):
    with mlflow.start_run(run_name="parent") as parent:
        trail = run_loop(cfg, setup, {}, Progress(setup.engine, 1, "search", enabled=False))
        outcome = finish(cfg, setup, trail, parent.info.run_id, progress=False)
    client = MlflowClient()
    run = client.get_run(parent.info.run_id)
    tags, metrics = run.data.tags, run.data.metrics
    assert tags["safetune.selection_split"] == "validation" and "validation" in tags["safetune.champion_rule"]
    assert metrics["final_hypervolume"] == trail.outcome.history[-1].hypervolume
    assert metrics["candidates_evaluated"] >= 1 and metrics["responses_generated"] > 0
    # The policy prompt refuses everything: safer, but it refuses benign prompts too, so the default stays.
    assert outcome.summary["champion_is_default"] and tags["safetune.champion_kept_quality"] == "false"
    assert set(outcome.pareto_run_ids) <= set(outcome.child_run_ids) and outcome.registered == {}
    pareto = [k for k in outcome.child_run_ids if client.get_run(k).data.tags["safetune.pareto"] == "true"]
    assert sorted(pareto) == sorted(outcome.pareto_run_ids)
    for run_id in outcome.pareto_run_ids:  # re-measured on the validation prompts
        assert "validation.harm_rate" in client.get_run(run_id).data.metrics
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"pareto_front.json", "champion_summary.json", "champion_reasons.json"} <= artifacts
    assert "| harm rate |" in tags["mlflow.note.content"]
