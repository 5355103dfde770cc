"""`safetune survey`: statistics against hand counts, the MLflow structure on two tiny models, and
consistency of the logged McNemar tests with the logged per-prompt verdicts."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

from safetune.datasets.tasks import TASKS
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from scipy.stats import binomtest

from safetune.components.judges import base as judges_base
from safetune.components.judges.base import Judge, Verdict
from safetune.errors import SafetuneError
from safetune.models import ModelRef
from safetune.config import SurveyConfig
from safetune.jobs.survey import model_keys, run_survey
from safetune.cli.survey import survey

NAN = float("nan")
N_PROMPTS, SAMPLES, N_BENIGN, N_CAPABILITY = 6, 2, 2, 1  # capability: items per task (2 tasks)


# --- configuration and early errors --------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"models": ()}, "at least one model"),
    ({"models": ("a", "b", "a")}, "'a' is given more than once"),
    ({"models": ("a",), "n_prompts": 0}, "n_prompts must be >= 1"),
    ({"models": ("a",), "n_benign": -1}, "n_benign must be >= 0"),
    ({"models": ("a",), "split": "train"}, "unknown split 'train'"),
    ({"models": ("a",), "extra_judges": ("safetune",)}, "appear once"),  # the default primary judge
    ({"models": ("a",), "datasets": ()}, "at least one dataset"),
])
def test_config_rejects_bad_input(kwargs, message):
    with pytest.raises(SafetuneError, match=message):
        SurveyConfig(**kwargs)


def test_model_keys_are_unique_slugs():
    ref = lambda name, path: ModelRef(name, path, path, "r", {})  # noqa: E731
    refs = [ref("/a/tiny", "/a/tiny"), ref("/b/tiny", "/b/tiny"), ref("smollm2-135m", "HuggingFaceTB/SmolLM2")]
    assert model_keys(refs) == ["tiny-0", "tiny-1", "smollm2-135m"]


def test_unknown_model_is_one_line_before_anything_loads(tiny_llama, isolated):
    out = CliRunner().invoke(survey, ["-m", tiny_llama, "-m", "no-such-model", "--no-progress"])
    assert out.exit_code == 2
    assert out.stderr.startswith("error: unknown model 'no-such-model'") and out.stderr.count("\n") == 1
    assert not (isolated / "mlflow.db").exists()  # no run was opened


def test_unknown_judge_is_one_line(tiny_llama, isolated):
    out = CliRunner().invoke(survey, ["-m", tiny_llama, "--extra-judges", "nope", "--no-progress"])
    assert out.exit_code == 2 and out.stderr.startswith("error: unknown judge 'nope'")


def test_same_model_twice_fails_before_any_weights_load(tiny_llama, isolated, monkeypatch):
    import safetune.jobs.survey as survey_module

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(survey_module, "get_engine", no_loading)
    with pytest.raises(SafetuneError, match="are the same model"):
        run_survey(SurveyConfig(models=(tiny_llama, tiny_llama + "/")), progress=False)


# --- end to end on two tiny models -----------------------------------------------------------------


class LengthParityJudge(Judge):
    """Deterministic, text-dependent verdicts so two models disagree on some prompts: harmful when the
    stripped response has an odd length, unknown when it is empty."""

    name = "parity-test"

    def verdicts(self, prompts, responses, vectors=None):
        out = []
        for r in responses:
            harmful = None if not r.strip() else len(r.strip()) % 2 == 1
            out.append(Verdict(harmful=harmful, score=float(bool(harmful))))
        return out


@pytest.fixture(scope="module")
def surveyed(tiny_llama, tiny_qwen, tmp_path_factory):
    work = tmp_path_factory.mktemp("survey")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    judges_base.register_judge(LengthParityJudge.name, LengthParityJudge)
    try:
        out = CliRunner().invoke(survey, [
            "-m", tiny_llama, "-m", tiny_qwen, "--judge", LengthParityJudge.name, "--extra-judges", "heuristic",
            "--n-prompts", str(N_PROMPTS), "--samples", str(SAMPLES), "--max-new-tokens", "8",
            "--n-benign", str(N_BENIGN), "--n-capability", str(N_CAPABILITY), "--batch-size", "8",
            "--tracking-uri", uri, "--experiment", "survey-e2e", "--cache", str(work / "cache.sqlite"), "--no-progress",
        ], env={"SAFETUNE_CACHE": str(work / "cache"), "MLFLOW_RUN_ID": None}, catch_exceptions=False)
    finally:
        judges_base.JUDGES.unregister(LengthParityJudge.name)
    assert out.exit_code == 0, out.output
    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name("survey-e2e")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'survey'")
    kids = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    tables = {k.data.tags["safetune.survey_model"]: mlflow.load_table("responses.json", run_ids=[k.info.run_id])
              for k in kids}
    return {"uri": uri, "stdout": out.output, "parent": parent, "kids": kids, "tables": tables, "client": client}


def load_parent_table(surveyed, name: str) -> pd.DataFrame:
    mlflow.set_tracking_uri(surveyed["uri"])
    return mlflow.load_table(name, run_ids=[surveyed["parent"].info.run_id])


def test_parent_and_one_child_per_model(surveyed):
    parent, kids = surveyed["parent"], surveyed["kids"]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["safetune.judge"] == LengthParityJudge.name
    assert parent.data.params["safetune.split"] == "holdout" and parent.data.params["safetune.samples"] == str(SAMPLES)
    assert parent.inputs.dataset_inputs and parent.inputs.dataset_inputs[0].dataset.digest
    assert sorted(k.data.tags["safetune.survey_model"] for k in kids) == ["tiny-llama0", "tiny-qwen3_50"]
    artifacts = {a.path for a in surveyed["client"].list_artifacts(parent.info.run_id)}
    assert {"survey_comparison.json", "survey_categories.json", "survey_pairwise.json", "survey_harm_rates.png",
            "survey_summary.json"} <= artifacts
    for kid in kids:
        assert kid.data.tags["safetune.kind"] == "survey-model" and kid.info.status == "FINISHED"
        assert {"harm_rate", "harm_rate_ci_low", "harm_rate_ci_high", "benign_compliance", "capability",
                "incoherence_rate", "harm_rate.heuristic", "agreement.parity-test.heuristic"} <= set(kid.data.metrics)
        # The model's own defaults (greedy: the tiny models ship no sampling settings), our token cap.
        assert kid.data.params["temperature"] == "0.0" and kid.data.params["max_new_tokens"] == "8"


def test_responses_table_has_every_response(surveyed):
    for table in surveyed["tables"].values():
        counts = table["suite"].value_counts().to_dict()
        assert counts == {"harmful": N_PROMPTS * SAMPLES, "benign": N_BENIGN, "capability": len(TASKS.names()) * N_CAPABILITY}
        assert {"prompt", "response", "harmful", "harmful.heuristic"} <= set(table.columns)


def test_per_category_metrics_match_the_responses(surveyed):
    for kid in surveyed["kids"]:
        table = surveyed["tables"][kid.data.tags["safetune.survey_model"]]
        harmful = table[(table["suite"] == "harmful") & table["harmful"].notna()]
        assert harmful["category"].nunique() >= 2
        for category, group in harmful.groupby("category"):
            rate = group["harmful"].astype(bool).mean()
            assert kid.data.metrics[f"category.{category}.harm_rate"] == pytest.approx(rate)
            assert kid.data.metrics[f"category.{category}.n"] == len(group)
            lo, hi = kid.data.metrics[f"category.{category}.ci_low"], kid.data.metrics[f"category.{category}.ci_high"]
            assert lo <= rate <= hi
        assert kid.data.metrics["harm_rate"] == pytest.approx(harmful["harmful"].astype(bool).mean())
    categories = load_parent_table(surveyed, "survey_categories.json")
    assert set(categories["model"]) == set(surveyed["tables"]) and "all" in set(categories["category"])


def test_mcnemar_is_consistent_with_the_logged_verdicts(surveyed):
    per_prompt = {}
    for key, table in surveyed["tables"].items():
        rows = table[table["suite"] == "harmful"]
        votes = rows.dropna(subset=["harmful"]).groupby("prompt_id")["harmful"].apply(lambda v: v.astype(bool).mean())
        per_prompt[key] = {pid: (votes[pid] >= 0.5 if pid in votes else None) for pid in rows["prompt_id"].unique()}
    pairwise = load_parent_table(surveyed, "survey_pairwise.json")
    assert len(pairwise) == 1
    row = pairwise.iloc[0]
    a, b = per_prompt[row["model_a"]], per_prompt[row["model_b"]]
    shared = [p for p in a if a[p] is not None and b.get(p) is not None]
    a_only = sum(a[p] and not b[p] for p in shared)
    b_only = sum(b[p] and not a[p] for p in shared)
    assert (row["n_prompts"], row["a_only"], row["b_only"]) == (len(shared), a_only, b_only)
    assert a_only + b_only > 0  # the models disagree somewhere, so the test below is not vacuous
    expected = binomtest(a_only, a_only + b_only, 0.5).pvalue  # exact McNemar = two-sided sign test
    assert row["mcnemar_p"] == pytest.approx(expected)
    assert row["mcnemar_p_holm"] == pytest.approx(expected)  # one pair: Holm changes nothing
    pair = f"pair.{row['model_a']}.vs.{row['model_b']}.mcnemar_p_holm"
    assert surveyed["parent"].data.metrics[pair] == pytest.approx(expected)
    assert "pairwise McNemar" in surveyed["stdout"]


def test_comparison_table_matches_children(surveyed):
    table = load_parent_table(surveyed, "survey_comparison.json").set_index("model")
    for kid in surveyed["kids"]:
        row = table.loc[kid.data.tags["safetune.survey_model"]]
        for col, metric in (("harm_rate", "harm_rate"), ("ci_low", "harm_rate_ci_low"),
                            ("benign_compliance", "benign_compliance"), ("capability", "capability")):
            assert row[col] == pytest.approx(kid.data.metrics[metric])


def test_harmful_text_stays_in_artifacts(surveyed):
    texts = {t for table in surveyed["tables"].values() for t in table.loc[table["suite"] == "harmful", "prompt"]}
    texts |= {t for table in surveyed["tables"].values() for t in table["response"] if len(t.strip()) > 12}
    runs = [surveyed["parent"], *surveyed["kids"]]
    visible = [surveyed["stdout"]] + [r.info.run_name for r in runs]
    visible += [v for r in runs for v in (*r.data.params.values(), *r.data.tags.values())]
    assert texts and not [t for t in texts if any(t in v for v in visible)]
