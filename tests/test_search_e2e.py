"""End to end on a tiny model: the real CLI, the MLflow structure, the registry, resume, `mlflow run`,
and a real `mlflow server` over the same store."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from safetune.tracking import runs as tracking
from safetune.config import GuardConfig, SearchConfig, SearchSpace, build_search_config

REPO = Path(__file__).resolve().parents[1]
TINY_BUDGET = ["--n-prompts", "3", "--pop-size", "3", "--n-gen", "2", "--bounds", "max_new_tokens=4:8",
               "--batch-size", "8", "--no-progress", "--n-benign", "2", "--n-capability", "1"]


def run_cli(*args, cwd, env_extra=None, timeout=600):
    env = {**os.environ, "SAFETUNE_CACHE": str(Path(cwd) / "cache"), **(env_extra or {})}
    env.pop("MLFLOW_RUN_ID", None)
    return subprocess.run([sys.executable, "-m", "safetune", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def searched(tiny_llama, tmp_path_factory):
    """One real `safetune search` through the CLI, shared by the structure tests."""
    work = tmp_path_factory.mktemp("search")
    uri = f"sqlite:///{work / 'mlflow.db'}"
    proc = run_cli("search", "--model", tiny_llama, "--tracking-uri", uri, "--experiment", "e2e", *TINY_BUDGET,
                   cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mlflow.set_tracking_uri(uri)
    return {"uri": uri, "work": work, "stdout": proc.stdout, "stderr": proc.stderr, "model": tiny_llama}


def children_of(client, parent):
    return client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'")


def test_search_logs_parent_children_and_registry(searched):
    mlflow.set_tracking_uri(searched["uri"])
    client = MlflowClient()
    exp = client.get_experiment_by_name("e2e")
    parents = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'search'")
    assert len(parents) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.params["safetune.pop_size"] == "3" and "safetune.model_revision" in parent.data.params
    # The UI opens on the runs table, and the run says what it found.
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    assert parent.info.run_name.startswith("search-") and parent.info.run_name.endswith("-s0")
    note = parent.data.tags["mlflow.note.content"]
    assert "| harm rate |" in note and "@champion" in note
    hv = client.get_metric_history(parent.info.run_id, "hypervolume")
    assert [m.step for m in hv] == [0, 1]
    assert hv[1].value >= hv[0].value  # over all points so far: never decreases
    kids = children_of(client, parent)
    assert len(kids) == 6  # pop_size x n_gen
    for kid in kids:
        assert {"harm_rate", "relevance", "hypervolume", "harm_rate_ci_low", "harm_rate_ci_high",
                "new_tokens", "wall_time_s"} <= set(kid.data.metrics)
        assert kid.data.tags["safetune.pareto"] in {"true", "false"}
        assert "temperature" in kid.data.params and "system_prompt" in kid.data.params
        # Harmful text stays in artifacts: no prompt text in run names, tags or params.
        assert "responses.json" in [a.path for a in client.list_artifacts(kid.info.run_id)]
    defaults = [k for k in kids if k.data.tags["safetune.default"] == "true"]
    assert len(defaults) == 1 and defaults[0].data.tags["safetune.generation"] == "0"
    inputs = parent.inputs.dataset_inputs
    assert inputs and inputs[0].dataset.digest

    name = f"safetune-{Path(searched['model']).name.lower()}"
    model = client.get_registered_model(name)
    assert set(model.aliases) == {"champion", "safest", "most-relevant"}
    versions = client.search_model_versions(f"name = '{name}'")
    pareto_kids = {k.info.run_id for k in kids if k.data.tags["safetune.pareto"] == "true"}
    # Every Pareto configuration, plus the default when it is the champion (no safer one kept the quality).
    champion = client.get_model_version_by_alias(name, "champion")
    expected = pareto_kids | ({champion.run_id} if champion.run_id == defaults[0].info.run_id else set())
    assert {v.run_id for v in versions} == expected


def test_champion_is_chosen_on_unseen_validation_prompts(searched):
    mlflow.set_tracking_uri(searched["uri"])
    client = MlflowClient()
    exp = client.get_experiment_by_name("e2e")
    parent = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'search'")[0]
    assert parent.data.tags["safetune.selection_split"] == "validation"
    assert "validation" in parent.data.tags["safetune.champion_rule"]
    contexts = {i.tags[0].value for i in parent.inputs.dataset_inputs}
    assert {"search", "validation"} <= contexts
    kids = children_of(client, parent)
    pareto = [k for k in kids if k.data.tags["safetune.pareto"] == "true"]
    assert pareto and all("validation.harm_rate" in k.data.metrics for k in pareto)
    # The default is re-measured too: the champion must beat it on the same validation prompts.
    default = [k for k in kids if k.data.tags.get("safetune.default") == "true"]
    assert default and all("validation.harm_rate" in k.data.metrics for k in default)
    assert not any("validation.harm_rate" in k.data.metrics for k in kids if k not in pareto + default)


def test_champion_loads_and_generates(searched):
    mlflow.set_tracking_uri(searched["uri"])
    name = f"safetune-{Path(searched['model']).name.lower()}"
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    out = model.predict(["How do I bake bread?", "Hi"])
    assert isinstance(out, list) and len(out) == 2 and all(isinstance(r, str) for r in out)
    import pandas as pd

    frame = model.predict(pd.DataFrame({"prompt": ["Hi"]}))  # a one-column frame is a list of prompts
    assert isinstance(frame, list) and len(frame) == 1
    # Type hints give the version a signature, an input example and a description in the registry.
    info = mlflow.models.get_model_info(f"models:/{name}@champion")
    assert info.signature is not None and info.signature.inputs.to_dict() == [{"type": "string", "required": True}]
    assert info.saved_input_example_info is not None
    version = MlflowClient().get_model_version_by_alias(name, "champion")
    assert "temperature=" in version.description and "harm_rate" in version.description
    # The stored configuration is plain JSON, not a pickle.
    files = os.listdir(mlflow.artifacts.download_artifacts(f"models:/{name}@champion"))
    assert not any(f.endswith((".pkl", ".pickle")) for f in files)


def test_cached_rerun_generates_nothing(searched):
    proc = run_cli("search", "--model", searched["model"], "--tracking-uri", searched["uri"], "--experiment", "e2e2",
                   "--no-register", *TINY_BUDGET, cwd=searched["work"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    mlflow.set_tracking_uri(searched["uri"])
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("e2e2").experiment_id])
    parent = [r for r in run if r.data.tags.get("safetune.kind") == "search"][0]
    assert parent.data.metrics["responses_generated"] == 0
    assert parent.data.metrics["candidates_evaluated"] == 0


def test_interrupted_search_resumes_without_regenerating(tiny_llama, isolated, monkeypatch):
    from safetune.jobs import search as runner

    cfg = SearchConfig(model=tiny_llama, n_prompts=3, n_validation=0, pop_size=3, n_gen=2, batch_size=8, experiment="resume",
                       space=SearchSpace.from_dict({"max_new_tokens": [4, 8]}), register=False,
                       guards=GuardConfig(n_benign=2, n_capability=1))
    # Reference: how many responses an uninterrupted search generates (own cache).
    monkeypatch.setenv("SAFETUNE_CACHE", str(isolated / "ref-cache"))
    full = runner.run_search(cfg, progress=False)
    client = MlflowClient()
    total = client.get_run(full.parent_run_id).data.metrics["responses_generated"]

    monkeypatch.setenv("SAFETUNE_CACHE", str(isolated / "cache"))
    real_log = tracking.log_candidate
    calls = {"n": 0}

    def crash_on_fifth(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # inside generation 1, after its responses were generated
            raise KeyboardInterrupt
        return real_log(*args, **kwargs)

    monkeypatch.setattr(tracking, "log_candidate", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        runner.run_search(cfg, progress=False)
    killed = [r for r in client.search_runs([client.get_experiment_by_name("resume").experiment_id])
              if r.info.status == "KILLED"]
    assert len(killed) == 1
    first_generated = killed[0].data.metrics.get("responses_generated", None)
    assert first_generated is None  # it died before the final metrics
    monkeypatch.setattr(tracking, "log_candidate", real_log)
    resumed = runner.run_search(cfg, progress=False, resume_run_id=killed[0].info.run_id)
    run = client.get_run(resumed.parent_run_id)
    assert run.info.status == "FINISHED" and resumed.parent_run_id == killed[0].info.run_id
    # Everything generated before the crash came from the cache.
    assert run.data.metrics["responses_generated"] == 0
    kids = children_of(client, run)
    keys = [(k.data.tags["safetune.generation"], k.data.tags["safetune.candidate"], k.info.run_name) for k in kids]
    assert len(kids) == 6 and len(set(keys)) == 6  # none lost, none duplicated
    assert total > 0


@pytest.mark.parametrize("signame, code, status", [
    ("SIGKILL", -9, "RUNNING"),  # nobody can mark the run
    ("SIGINT", 130, "KILLED"),  # Ctrl-C: Lightning's predict loop must not turn it into exit 1 / FAILED
    ("SIGTERM", 143, "KILLED"),
])
def test_interrupted_cli_search_resumes_without_regenerating_or_duplicating(tiny_llama, tmp_path, signame, code, status):
    """A signal in the middle of a real CLI search, then --resume: nothing finished is redone or lost."""
    import signal

    from safetune.cache import count_entries

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    budget = ["--n-prompts", "6", "--pop-size", "4", "--n-gen", "3", "--bounds", "max_new_tokens=6:10",
              "--batch-size", "4", "--no-progress", "--n-benign", "2", "--n-capability", "1", "--no-register"]
    args = ["search", "--model", tiny_llama, "--tracking-uri", uri, "--experiment", "kill", *budget]
    env = {**os.environ, "SAFETUNE_CACHE": str(tmp_path / "cache")}
    env.pop("MLFLOW_RUN_ID", None)
    cache_db = tmp_path / "cache" / "cache.sqlite"

    def generated() -> int:
        return count_entries(cache_db, "generation")

    proc = subprocess.Popen([sys.executable, "-m", "safetune", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while generated() < 20 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before it could be killed: " + proc.stderr.read()[-2000:]
    proc.send_signal(getattr(signal, signame))
    _, stderr = proc.communicate(timeout=120)
    before = generated()
    assert before >= 20 and proc.returncode == code, stderr[-3000:]

    mlflow.set_tracking_uri(uri)
    client = MlflowClient()
    exp = client.get_experiment_by_name("kill")
    parent = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'search'")[0]
    assert parent.info.status == status
    if signame != "SIGKILL":  # one line that says how to continue, no traceback
        assert stderr.strip().splitlines()[-1].endswith(f"--resume {parent.info.run_id}"), stderr[-2000:]
        assert "Traceback" not in stderr
    resumed = run_cli(*args, "--resume", parent.info.run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    run = client.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED"
    new = generated() - before
    assert run.data.metrics["responses_generated"] == new  # only what was never saved was generated
    kids = children_of(client, run)
    assert all(k.info.status == "FINISHED" for k in kids)
    slots = [(k.data.tags["safetune.generation"], k.info.run_name.split("-")[1]) for k in kids]
    assert len(kids) == 12 and len(set(slots)) == 12  # 3 generations x 4 candidates: none lost or doubled
    assert not client.search_runs(["0"])  # nothing strayed into the Default experiment


def test_mlflow_run_entry_point(tiny_llama, tmp_path):
    """`mlflow run` as the README gives it: every parameter but the config left at its empty default
    (= use the config), so an empty parameter must never reach the CLI as a value."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
           "SAFETUNE_CACHE": str(tmp_path / "cache")}
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(var, None)
    config = tmp_path / "tiny.yaml"
    config.write_text(f"model: {tiny_llama}\nn_prompts: 2\npop_size: 2\nn_gen: 1\nn_validation: 0\n"
                      "space:\n  max_new_tokens: [4, 6]\nguards:\n  n_benign: 2\n  n_capability: 1\n")
    cmd = [sys.executable, "-m", "mlflow", "run", str(REPO), "--env-manager", "local", "--experiment-name", "mlproject",
           "-P", f"config={config}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("mlproject").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    # The search attached to the run `mlflow run` created: one parent, children nested in it.
    assert len(parents) == 1 and parents[0].data.tags.get("safetune.kind") == "search"
    assert parents[0].info.run_name.startswith("search-")  # not MLflow's random "unique-kit-323"
    assert parents[0].data.params["safetune.n_prompts"] == "2"  # from the config, not a parameter default
    assert len([r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_server_rest_api_finds_candidates(searched, tmp_path):
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", searched["uri"], "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--default-artifact-root", str(tmp_path / "art")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("mlflow server did not start")

        def post(path, body):
            req = urllib.request.Request(f"{base}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            return json.load(urllib.request.urlopen(req, timeout=10))

        exp = json.load(urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=e2e"))
        found = post("/api/2.0/mlflow/runs/search", {
            "experiment_ids": [exp["experiment"]["experiment_id"]],
            "filter": "metrics.harm_rate >= 0",
            "max_results": 100,
        })
        runs = found.get("runs", [])
        assert len(runs) == 6
        metrics = {m["key"] for m in runs[0]["data"]["metrics"]}
        assert {"harm_rate", "relevance", "hypervolume"} <= metrics
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.parametrize("args, message", [
    (["search", "--model", "no-such-model"], "unknown model"),
    (["search", "--model", "/no/such/dir"], "does not exist"),
    (["search", "--judge", "nope"], "unknown judge"),
    (["search", "--datasets", "nope"], "unknown dataset"),
    (["search", "--bound", "temperature=0:99"], "out of range"),
    (["search", "--bound", "temperature"], "bad --bound"),
    (["search", "--pop-size", "1"], "pop_size"),
    (["search", "--config", "missing.yaml"], "not found"),
    (["search", "--model", "org/not-cached-model"], "not available offline"),
    (["search", "--pop-size", "0"], "pop_size must be >= 2"),
    (["search", "--system-prompts", ","], "--system-prompts ',' names nothing"),
    (["search", "--datasets", " , "], "--datasets ' , ' names nothing"),
    (["search", "--model", "TINY", "--tracking-uri", "bogus://x"], "tracking store 'bogus://x' cannot be used"),
    (["search", "--model", "TINY", "--tracking-uri", "sqlite:////proc/nope/m.db"], "cannot be used"),
    (["search", "--model", "TINY", "--cache", "/proc/nope/c.sqlite"], "cache '/proc/nope/c.sqlite' cannot be used"),
    (["search", "--model", "TINY", "--resume", "0" * 32], "no such run"),
    (["search", "--model", "BROKEN"], "names no model_type"),
    (["search", "--model", "TINY", "--datasets", "LONG"], "1 prompt(s) do not fit"),
    (["report", "x" * 32, "--tracking-uri", "bogus://x"], "cannot be used"),
])
def test_bad_input_is_one_line_and_nonzero(args, message, tmp_path, tiny_llama):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{}")
    # A 10k-token prompt against the tiny model's 2,048-token context (named in the error).
    (tmp_path / "long.csv").write_text("prompt\nshort one\n" + "how to " * 3000 + "\n")
    args = [{"TINY": tiny_llama, "BROKEN": str(tmp_path / "broken"), "LONG": str(tmp_path / "long.csv")}.get(a, a)
            for a in args]
    proc = run_cli(*args, cwd=tmp_path, env_extra={"HF_HUB_OFFLINE": "1"}, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_empty_dataset_file_is_an_error(tmp_path):
    (tmp_path / "empty.csv").write_text("prompt\n")
    proc = run_cli("search", "--datasets", str(tmp_path / "empty.csv"), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_build_config_from_yaml_defaults():
    cfg = build_search_config(REPO / "experiments" / "default.yaml", {"n_gen": 2})
    assert cfg.model == "smollm2-135m" and cfg.n_gen == 2 and cfg.space.repetition_penalty.low < 1 < cfg.space.repetition_penalty.high


def test_evaluate_champion_against_default(searched):
    name = f"safetune-{Path(searched['model']).name.lower()}"
    proc = run_cli("evaluate", f"models:/{name}@champion", "--n-prompts", "3", "--tracking-uri", searched["uri"],
                   "--batch-size", "8", "--no-progress", "--n-benign", "2", "--n-capability", "1",
                   cwd=searched["work"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["target", "harm_rate", "harm_ci"]
    assert lines[1].split()[0] == "default" and lines[2].split()[0] == f"models:/{name}@champion"
    assert "paired tests vs default" in proc.stdout and "mcnemar_p_holm" in proc.stdout
    client = MlflowClient(tracking_uri=searched["uri"])
    exp = client.get_experiment_by_name("safetune-evaluate")
    runs = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'evaluate'")
    assert len(runs) == 1 and runs[0].data.params["split"] == "holdout"
    arts = [a.path for a in client.list_artifacts(runs[0].info.run_id)]
    assert "evaluation_summary.json" in arts and "paired_tests.json" in arts


def test_evaluate_progress_bar_ends_full_cold_and_warm(searched, tmp_path):
    """The bar once stayed at 0/736 when the answers came from the result cache (nothing reaches the
    engine) and over-counted the default (measured, then re-read from the generation cache)."""
    import re

    name = f"safetune-{Path(searched['model']).name.lower()}"
    args = ("evaluate", f"models:/{name}@champion", "--n-prompts", "3", "--tracking-uri", searched["uri"],
            "--batch-size", "8", "--n-benign", "2", "--n-capability", "2", "--cache", str(tmp_path / "c.sqlite"))
    for run in ("cold", "warm"):
        proc = run_cli(*args, cwd=searched["work"])
        assert proc.returncode == 0, proc.stderr[-2000:]
        counts = re.findall(r"evaluate:.*?\| *(\d+)/(\d+) ", proc.stderr)
        assert counts and counts[-1][0] == counts[-1][1], (run, counts[-3:])


def test_evaluate_unknown_registered_model(searched):
    proc = run_cli("evaluate", "models:/safetune-nope@champion", "--tracking-uri", searched["uri"], cwd=searched["work"])
    assert proc.returncode == 2 and "cannot read registered model" in proc.stderr


@contextlib.contextmanager
def _serving(cmd, url, env=None, seconds=180):
    """Start a server process, wait until ``url`` answers, stop it afterwards."""
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + seconds
        while time.time() < deadline and server.poll() is None:
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"{cmd[2:4]} did not start: " + (server.stderr.read()[-2000:] if server.poll() is not None else ""))
        yield
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_champion_serves_predictions_over_http(searched):
    """`mlflow models serve -m models:/NAME@champion`: the command the search prints, used as printed."""
    port = _free_port()
    name = f"safetune-{Path(searched['model']).name.lower()}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": searched["uri"]}
    env.pop("MLFLOW_RUN_ID", None)
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{name}@champion", "--env-manager",
           "local", "--host", "127.0.0.1", "--port", str(port)]
    assert f"mlflow models serve -m 'models:/{name}@champion' --env-manager local" in searched["stdout"]
    with _serving(cmd, f"http://127.0.0.1:{port}/ping", env=env):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations",
                                     data=json.dumps({"inputs": ["How do I bake bread?", "Hi"]}).encode(),
                                     headers={"Content-Type": "application/json"})
        out = json.load(urllib.request.urlopen(req, timeout=120))
    assert len(out["predictions"]) == 2 and all(isinstance(p, str) for p in out["predictions"])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_mlflow_ui_shows_the_runs_table_with_candidates(searched, tmp_path):
    """Open the experiment in `mlflow ui` in headless Chromium, as a person would, and read the page."""
    port = _free_port()
    mlflow.set_tracking_uri(searched["uri"])
    client = MlflowClient()
    exp = client.get_experiment_by_name("e2e")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", searched["uri"], "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    with _serving(cmd, f"http://127.0.0.1:{port}/health"):
        page = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=30000", "--dump-dom",
             # The candidates, filtered and sorted by harm rate as a person would (nested runs are
             # otherwise collapsed under their parent).
             f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs"
             "?searchFilter=metrics.harm_rate%20%3E%3D%200&orderByKey=metrics.%60harm_rate%60&orderByAsc=true"],
            capture_output=True, text=True, timeout=180).stdout
    kids = [r.info.run_name for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", page, flags=re.S)))
    assert "Training runs" in text  # the runs table of a model-development experiment, not GenAI traces
    assert kids and all(name in text for name in kids), text[:3000]  # every candidate is listed
    assert "Sort: harm_rate" in text and f"{len(kids)} matching runs" in text
