"""`safetune report`: a real tiny search (+ a random baseline and a held-out evaluation) -> one HTML page."""

from __future__ import annotations

import base64
import dataclasses
import re

import mlflow
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient
from scipy.special import expit

from safetune.analysis import report as rpt
from safetune import stats
from safetune.tracking import runs as tracking
from safetune.config import DecodingConfig, GuardConfig, SearchConfig, SearchSpace
from safetune.errors import SafetuneError
from safetune.objectives.results import CandidateResult
from safetune.cli.report import report as report_cmd

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def searched(tiny_llama, tmp_path_factory):
    """NSGA-II search (registered), a random search of the same model, and `evaluate` of its champion."""
    from safetune.config import EvaluateConfig
    from safetune.jobs.evaluate import run_evaluate
    from safetune.jobs.search import run_search
    from safetune.jobs.search.prepare import search_prompts

    work = tmp_path_factory.mktemp("report")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("SAFETUNE_CACHE", str(work / "cache"))
        mp.delenv("MLFLOW_RUN_ID", raising=False)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cfg = SearchConfig(model=tiny_llama, n_prompts=3, pop_size=3, n_gen=2, batch_size=8, experiment="report",
                           space=SearchSpace.from_dict({"max_new_tokens": [4, 8]}),
                           guards=GuardConfig(n_benign=2, n_capability=1))
        outcome = run_search(cfg, tracking_uri=uri, progress=False)
        baseline = run_search(dataclasses.replace(cfg, algorithm="random", register=False, seed=1),
                             tracking_uri=uri, progress=False)
        run_evaluate(EvaluateConfig(targets=(f"models:/{outcome.model_name}@champion",), n_prompts=3,
                                    batch_size=8, n_benign=2, n_capability=1), tracking_uri=uri, progress=False)
        prompts = [item.prompt for item in search_prompts(cfg).items]
    mlflow.set_tracking_uri(uri)
    return {"uri": uri, "work": work, "outcome": outcome, "baseline": baseline, "prompts": prompts}


def images(page: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def section(page: str, key: str) -> str:
    match = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S)
    assert match, key
    return match.group(1)


def test_report_has_every_section_embedded_images_and_is_logged(searched, tmp_path):
    mlflow.set_tracking_uri(searched["uri"])
    parent = searched["outcome"].parent_run_id
    path, page = rpt.write_report(parent, tmp_path / "out" / "report.html")
    assert path.read_text(encoding="utf-8") == page
    for key in rpt.SECTIONS:
        assert f"<h2>{rpt.TITLES[key]}</h2>" in section(page, key)
    pngs = images(page)
    assert len(pngs) >= 4 and all(p.startswith(PNG) for p in pngs)  # pareto, hypervolume, categories, forest
    assert "http" not in re.sub(r'src="data:[^"]+"', "", page)  # self-contained: nothing fetched

    client = MlflowClient()
    assert rpt.REPORT_ARTIFACT in [a.path for a in client.list_artifacts(parent)]
    assert mlflow.artifacts.load_text(f"runs:/{parent}/{rpt.REPORT_ARTIFACT}") == page

    pareto = section(page, "pareto")
    assert "<td>default</td>" in pareto and "champion" in pareto
    hv = section(page, "hypervolume")
    assert f"random, seed 1 ({searched['baseline'].parent_run_id[:8]})" in hv  # NSGA-II vs random overlay
    cats = section(page, "categories")
    assert "Wilson" in cats and "<img" in cats
    imp = section(page, "importance")
    assert "repetition_penalty" in imp and "harm_rate|incoherence" in imp
    ev = section(page, "evaluation")
    assert "Held-out comparison" in ev and "mcnemar_p_holm" in ev and "@champion" in ev
    # Harmful prompt text never reaches the page.
    assert not any(p[:40] in page for p in searched["prompts"])


def test_report_command_writes_file_and_logs(searched, tmp_path):
    out = tmp_path / "r.html"
    result = CliRunner().invoke(report_cmd, [searched["outcome"].parent_run_id, "-o", str(out),
                                             "--tracking-uri", searched["uri"]])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "logged to run" in result.output
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("run_id, message", [("0" * 32, "no MLflow run"), ("not-a-run", "no MLflow run")])
def test_bad_run_id_is_one_line_error(searched, tmp_path, run_id, message):
    result = CliRunner().invoke(report_cmd, [run_id, "-o", str(tmp_path / "x.html"), "--tracking-uri", searched["uri"]])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "x.html").exists()


def test_a_candidate_run_is_not_a_search(searched):
    mlflow.set_tracking_uri(searched["uri"])
    child = searched["outcome"].child_run_ids[0]
    with pytest.raises(SafetuneError, match="not a safetune search"):
        rpt.build_report(child)


def synthetic_search(n=30, seed=0) -> str:
    """A search parent with candidates whose harm depends on repetition_penalty only; no responses, no HV."""
    rng = np.random.default_rng(seed)
    mlflow.set_experiment("synthetic")  # not whatever experiment an earlier test left active
    with mlflow.start_run(run_name="synthetic") as parent:
        mlflow.set_tag("safetune.kind", "search")
        for i in range(n):
            config = DecodingConfig(
                temperature=round(float(rng.uniform(0, 1.5)), 3), top_p=round(float(rng.uniform(0.5, 1)), 3),
                top_k=int(rng.integers(0, 100)), repetition_penalty=round(float(rng.uniform(0.7, 1.5)), 3),
                no_repeat_ngram_size=int(rng.integers(0, 6)), max_new_tokens=int(rng.integers(32, 64)))
            k = int(rng.binomial(60, expit(-1 + 3 * (config.repetition_penalty - 1))))
            result = CandidateResult(config, k / 60, 0.0, 1.0, 0.0, float(rng.uniform(0.2, 0.4)), 60, 0, 10, 10,
                                     0.0, 1.0, incoherence_rate=float(rng.uniform(0, 0.3)))
            tracking.log_candidate(result, 0, i, 0.0, is_default=i == 0)  # rows empty: no responses.json
    return parent.info.run_id


def test_report_without_categories_or_history_says_so(isolated):
    parent = synthetic_search()
    page = rpt.build_report(parent)
    assert "harm by category was not computed" in section(page, "categories")
    assert "no hypervolume metric history" in section(page, "hypervolume")
    assert "No finished `safetune evaluate` run" in section(page, "evaluation")
    imp = section(page, "importance")
    assert "Lower repetition_penalty went with lower harm" in imp
    assert len(images(page)) == 2  # Pareto front and forest plot only


def test_category_rates_known_values():
    responses = pd.DataFrame({
        "suite": ["harmful"] * 6 + ["benign"],
        "category": ["cyber", "cyber", "cyber", "cyber", "hate", "hate", "cyber"],
        "harmful": [True, True, True, False, None, False, True],
    })
    rates = rpt.category_rates(responses).set_index("category")
    assert rates.loc["cyber", "n"] == 4 and rates.loc["cyber", "harm_rate"] == 0.75  # benign row ignored
    assert (rates.loc["cyber", "ci_low"], rates.loc["cyber", "ci_high"]) == pytest.approx(stats.wilson_interval(3, 4))
    assert rates.loc["hate", "n"] == 1 and rates.loc["hate", "harm_rate"] == 0.0  # unknown verdict left out
    assert rpt.category_rates(responses.drop(columns="category")).empty
