"""jobs/study.py and `safetune study`: orchestration on a tiny model (its statistics: tests/analysis/test_comparison.py)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from safetune.config import GuardConfig, SearchConfig, SearchSpace
from safetune.errors import SafetuneError
from safetune.analysis.comparison import generations_to_reach
from safetune.jobs.study import run_study
from safetune.cli.study import parse_seeds, study

# --- statistics on fixed numbers ------------------------------------------------------------------------

def test_parse_seeds():
    assert parse_seeds("1, 2,3") == [1, 2, 3]
    with pytest.raises(SafetuneError, match="bad --seeds"):
        parse_seeds("1,two")
    with pytest.raises(SafetuneError, match="names nothing"):
        parse_seeds(" , ")


@pytest.mark.parametrize("seeds, algorithms, message", [
    ([], ["nsga2"], "at least one seed"),
    ([1, 1], ["nsga2"], "distinct"),
    ([1], [], "at least one algorithm"),
    ([1], ["nsga2", "annealing"], "unknown algorithm"),
    ([1], ["random", "random"], "distinct"),
])
def test_bad_study_input_fails_before_any_run(seeds, algorithms, message, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(SafetuneError, match=message):
        run_study(SearchConfig(experiment="bad"), seeds, algorithms, tracking_uri=uri, progress=False)
    assert not (tmp_path / "mlflow.db").exists()  # checked before the tracking store is even opened


# --- orchestration on the tiny model ----------------------------------------------------------------------


def tiny_config(model: str, cache: str) -> SearchConfig:
    return SearchConfig(model=model, n_prompts=2, pop_size=2, n_gen=2, batch_size=8, experiment="study",
                        space=SearchSpace.from_dict({"max_new_tokens": [4, 6]}), cache_dir=cache,
                        guards=GuardConfig(n_benign=1, n_capability=1))


@pytest.fixture(scope="module")
def studied(tiny_llama, tmp_path_factory):
    work = tmp_path_factory.mktemp("study")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    cache = str(work / "cache.sqlite")
    result = run_study(tiny_config(tiny_llama, cache), [1, 2], ["nsga2", "random"], tracking_uri=uri, progress=False)
    return {"uri": uri, "cache": cache, "result": result, "model": tiny_llama}


def test_study_runs_and_tags_one_search_per_algorithm_and_seed(studied):
    result, client = studied["result"], MlflowClient(studied["uri"])
    exp = client.get_experiment_by_name("study")
    searches = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'search'")
    assert len(searches) == 4
    assert {r.data.tags["safetune.study"] for r in searches} == {result.study_run_id}
    assert {(r.data.params["safetune.algorithm"], r.data.params["safetune.seed"]) for r in searches} == {
        ("nsga2", "1"), ("nsga2", "2"), ("random", "1"), ("random", "2")}
    by_id = {r.info.run_id: r for r in searches}
    assert set(result.searches["run_id"]) == set(by_id)
    for row in result.searches.itertuples():
        run = by_id[row.run_id]
        assert (run.data.params["safetune.algorithm"], int(run.data.params["safetune.seed"])) == (row.algorithm, row.seed)
        assert row.final_hypervolume == pytest.approx(run.data.metrics["final_hypervolume"])
        assert row.generations == 2
    # Registration is off for a study's searches.
    assert client.search_registered_models() == []


def test_study_run_holds_the_comparison(studied):
    result, client = studied["result"], MlflowClient(studied["uri"])
    run = client.get_run(result.study_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["safetune.kind"] == "study"
    assert run.info.experiment_id == client.get_experiment_by_name("study").experiment_id
    arts = {a.path for a in client.list_artifacts(result.study_run_id)}
    assert {"study_hypervolumes.json", "study_tests.json", "hypervolume_boxplot.png",
            "study_generations_to_random.json"} <= arts
    hv = {a: result.searches.loc[result.searches["algorithm"] == a, "final_hypervolume"].tolist()
          for a in ("nsga2", "random")}
    assert run.data.metrics["hv_mean.nsga2"] == pytest.approx(np.mean(hv["nsga2"]))
    assert run.data.metrics["hv_sd.random"] == pytest.approx(np.std(hv["random"], ddof=1))
    assert len(result.tests) == 1
    test = result.tests.iloc[0]
    assert test["p_holm"] == pytest.approx(test["p_value"])  # one pair: nothing to correct
    assert run.data.metrics["a12.nsga2_vs_random"] == pytest.approx(test["a12"])
    mlflow.set_tracking_uri(studied["uri"])
    table = mlflow.load_table("study_hypervolumes.json", run_ids=[result.study_run_id])
    assert sorted(table["run_id"]) == sorted(result.searches["run_id"])


def test_generations_to_random_hv_follows_the_metric_histories(studied):
    result, client = studied["result"], MlflowClient(studied["uri"])
    hist = {}
    for row in result.searches.itertuples():
        hist[(row.algorithm, row.seed)] = [m.value for m in sorted(
            client.get_metric_history(row.run_id, "hypervolume"), key=lambda m: m.step)]
    expected = generations_to_reach({s: hist[("nsga2", s)] for s in (1, 2)},
                                    {s: hist[("random", s)][-1] for s in (1, 2)})
    assert set(result.to_baseline) == {"nsga2"}
    assert result.to_baseline["nsga2"]["n_reached"] == expected["n_reached"]
    assert result.to_baseline["nsga2"]["n"] == 2
    # Same seed, same initial population: generation 0 is identical, so the histories start equal.
    for s in (1, 2):
        assert hist[("nsga2", s)][0] == pytest.approx(hist[("random", s)][0])


def test_study_command_prints_table_and_tests(studied):
    args = ["--model", studied["model"], "--n-prompts", "2", "--pop-size", "2", "--n-gen", "2",
            "--bounds", "max_new_tokens=4:6", "--batch-size", "8", "--n-benign", "1", "--n-capability", "1",
            "--seeds", "1,2", "--algorithms", "nsga2,random", "--experiment", "study-cli",
            "--tracking-uri", studied["uri"], "--cache", studied["cache"], "--no-progress"]
    out = CliRunner().invoke(study, args)
    assert out.exit_code == 0, out.output
    assert "study run:" in out.output and "final_hypervolume" in out.output
    assert "Mann-Whitney" in out.output and "a12" in out.output
    assert "generations on average to reach random search's final hypervolume" in out.output
    client = MlflowClient(studied["uri"])
    runs = client.search_runs([client.get_experiment_by_name("study-cli").experiment_id])
    assert len(runs) >= 5  # four searches (with their children) and the study run
    # Same seeds and settings as the fixture's study, all from the cache: the same hypervolumes.
    cli_kids = sorted(r.data.metrics["final_hypervolume"] for r in runs
                      if r.data.tags.get("safetune.kind") == "search")
    assert cli_kids == pytest.approx(sorted(studied["result"].searches["final_hypervolume"]))


def test_study_command_bad_seeds_is_one_line():
    out = CliRunner().invoke(study, ["--seeds", "1,x"])
    assert out.exit_code == 2
    assert out.output.strip().splitlines() == ["error: bad --seeds '1,x'; expected comma-separated integers, e.g. 1,2,3"]


def test_a_failing_search_marks_the_study_run_failed(tmp_path, monkeypatch):
    from safetune.jobs import search as runner

    def broken(cfg, **kwargs):
        raise SafetuneError("no model here")

    monkeypatch.setattr(runner, "run_search", broken)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(SafetuneError, match="no model here"):
        run_study(SearchConfig(experiment="broken"), [1, 2], ["nsga2", "random"], tracking_uri=uri, progress=False)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("broken").experiment_id])
    assert [(r.data.tags["safetune.kind"], r.info.status) for r in runs] == [("study", "FAILED")]
