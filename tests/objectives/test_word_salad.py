"""The word-salad champion of issue 9, on the embedded model itself (not a tiny random one).

temperature 1.4601, top_p 0.7529, top_k 39, repetition_penalty 0.7679, no_repeat_ngram_size 2,
max_new_tokens 33, system prompt `balanced`: SmolLM2-135M answers "To bake a bread, use a to- and fro
bread to bake..." and every older guard passed it. It must be infeasible in a search, and
`safetune evaluate` must call it worse than the default on the holdout split.
"""

import json

import mlflow
import pytest

from safetune.config import Bound, DecodingConfig, EvaluateConfig, GuardConfig, SearchConfig, SearchSpace
from safetune.jobs.evaluate import run_evaluate

SALAD = DecodingConfig(temperature=1.4601, top_p=0.7529, top_k=39, repetition_penalty=0.7679,
                       no_repeat_ngram_size=2, max_new_tokens=33, system_prompt="balanced")
GUARDS = GuardConfig(n_benign=16, n_capability=16, capability_tasks=("facts",))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("salad")
    return {"uri": f"sqlite:///{folder / 'mlflow.db'}", "cache": str(folder / "cache.sqlite")}


def test_word_salad_is_infeasible_in_a_search(store):
    from safetune.jobs.search import run_search

    # The first generation: the model's default (greedy, at the salad's own budget of 33 tokens) and the salad.
    cfg = SearchConfig(model="smollm2-135m", n_prompts=4, n_validation=4, pop_size=2, n_gen=1, judge="heuristic",
                       space=SearchSpace(max_new_tokens=Bound(33, 33, integer=True)), include=(SALAD,),
                       guards=GUARDS, cache_dir=store["cache"], experiment="salad")
    outcome = run_search(cfg, tracking_uri=store["uri"], progress=False)
    salad = [r for r in outcome.results if r.config == SALAD]
    assert salad, "the pinned space must produce the salad configuration"
    client = mlflow.tracking.MlflowClient(store["uri"])
    runs = {client.get_run(i).data.params["temperature"]: client.get_run(i) for i in outcome.child_run_ids}
    salad_run = runs[str(SALAD.temperature)]
    assert salad_run.data.tags["safetune.feasible"] == "false"
    assert salad_run.data.metrics["constraint.fluency"] > 0
    assert salad_run.data.metrics["constraint.benign_helpfulness"] > 0
    # It reads as word salad to the NLL (most of its answers are incoherent), the default does not.
    default = next(r for r in outcome.results if r.config != SALAD)
    assert salad[0].fluency_nll > 2 * default.fluency_nll
    assert salad[0].incoherence_rate >= 0.5 > default.incoherence_rate + 0.2
    # Racing: the salad stopped after its first slice of items; the default was measured on all of them.
    assert salad_run.data.metrics.get("raced") == 1.0 and salad[0].n_benign < default.n_benign
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags["safetune.champion_kept_quality"] == "false"
    champion = client.get_model_version_by_alias(outcome.model_name, "champion")
    assert json.loads(client.get_run(champion.run_id).data.params["temperature"]) == 0.0


def test_evaluate_calls_word_salad_worse(store, tmp_path):
    target = tmp_path / "salad.json"
    target.write_text(json.dumps({"model": {"name": "smollm2-135m"}, "decoding": SALAD.to_dict()}))
    cfg = EvaluateConfig(targets=(str(target),), model="smollm2-135m", n_prompts=6, n_benign=16, n_capability=12,
                         judge="heuristic", cache_dir=store["cache"], experiment="salad-eval")
    table, tests = run_evaluate(cfg, tracking_uri=store["uri"], progress=False)
    row = tests.iloc[0]
    assert row["verdict"].startswith(("safer but worse at", "not safer"))
    assert "fluency" in row["verdict"] and "benign_helpfulness" in row["verdict"]
    assert row["fluency_ratio"] > 2
    # The default was measured at the salad's own budget (33 tokens), not a longer one.
    client = mlflow.tracking.MlflowClient(store["uri"])
    experiment = client.get_experiment_by_name("salad-eval")
    parent = next(r for r in client.search_runs([experiment.experiment_id])
                  if r.data.tags.get("safetune.kind") == "evaluate")
    mlflow.set_tracking_uri(store["uri"])
    summary = mlflow.artifacts.load_dict(f"runs:/{parent.info.run_id}/evaluation_summary.json")
    assert summary["results"]["default"]["config"]["max_new_tokens"] == 33
