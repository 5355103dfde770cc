"""Tracking: the store is usable or one line says why; --resume accepts only this search's unfinished parent."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from safetune.tracking import runs as tracking
from safetune.config import SearchConfig
from safetune.errors import SafetuneError


@pytest.fixture()
def store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    tracking.setup_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}")
    return MlflowClient()


def _search_run(client, experiment="safetune", cfg=None, status="KILLED", kind="search", parent=None):
    exp = tracking.experiment_id(experiment)
    tags = {"safetune.kind": kind, **({"mlflow.parentRunId": parent} if parent else {})}
    run = client.create_run(exp, tags=tags)
    if cfg is not None:
        client.log_dict(run.info.run_id, cfg.to_dict(), "search_config.json")
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.mark.parametrize("uri, message", [
    ("bogus://x", "cannot be used"), ("sqlite:////proc/nope/m.db", "cannot be used"),
])
def test_unusable_tracking_store_is_one_line(uri, message):
    with pytest.raises(SafetuneError, match=message) as err:
        tracking.setup_tracking(uri)
    assert "\n" not in str(err.value)


def test_an_interrupted_search_with_the_same_options_is_resumable(store):
    cfg = SearchConfig(model="m")
    run_id = _search_run(store, cfg=cfg)
    tracking.check_resumable(run_id, "safetune", cfg.to_dict())  # no error
    # Where and how it runs may change; the run itself is untouched.
    tracking.check_resumable(run_id, "safetune", SearchConfig(model="m", batch_size=7, devices=1).to_dict())
    assert store.get_run(run_id).info.status == "KILLED"


@pytest.mark.parametrize("case, message", [
    ("unknown", "no such run"),
    ("finished", "already finished"),
    ("other-kind", "a judge-eval run, not a search"),
    ("child", "a candidate run"),
    ("other-experiment", "belongs to experiment 'elsewhere'"),
    ("changed-seed", r"other options \(seed\)"),
])
def test_resume_refuses_anything_else_and_changes_nothing(store, case, message):
    cfg = SearchConfig(model="m")
    if case == "unknown":
        run_id = "0" * 32
    elif case == "finished":
        run_id = _search_run(store, cfg=cfg, status="FINISHED")
    elif case == "other-kind":
        run_id = _search_run(store, kind="judge-eval")
    elif case == "child":
        run_id = _search_run(store, cfg=cfg, parent=_search_run(store, cfg=cfg))
    elif case == "other-experiment":
        run_id = _search_run(store, experiment="elsewhere", cfg=cfg)
    else:
        run_id = _search_run(store, cfg=cfg)
        cfg = SearchConfig(model="m", seed=5)
    before = store.get_run(run_id).info.status if case != "unknown" else None
    with pytest.raises(SafetuneError, match=message):
        tracking.check_resumable(run_id, "safetune", cfg.to_dict())
    if before:
        assert store.get_run(run_id).info.status == before


def test_interrupt_note_names_the_run_to_resume(store):
    with pytest.raises(KeyboardInterrupt) as err:
        with tracking.parent_run("safetune", "x"):
            raise KeyboardInterrupt
    run = store.search_runs([store.get_experiment_by_name("safetune").experiment_id])[0]
    assert run.info.status == "KILLED" and err.value.safetune_resume.endswith(f"--resume {run.info.run_id}")
    mlflow.end_run()
