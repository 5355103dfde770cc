"""MLflow tracking: one parent run per search, one nested child run per candidate.

The parent attaches to the run ``mlflow run`` created (``MLFLOW_RUN_ID``). Harmful text lives only in
artifacts (tables, text files), never in run names, tags or params.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import contextmanager

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from safetune.errors import SafetuneError
from safetune.objectives.results import CandidateResult

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def setup_tracking(tracking_uri: str | None = None) -> str:
    """Explicit URI, else MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no "Downloading artifacts" bars
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    try:  # an unsupported scheme or an unwritable SQLite file fails here, as one line
        MlflowClient().search_experiments(max_results=1)
    except Exception as exc:  # noqa: BLE001 - the store's own errors are many and untyped
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise SafetuneError(f"tracking store {uri!r} cannot be used: {first}") from None
    return uri


# What may change between an interrupted search and its resume: where and how it runs, not what it
# searches. Anything else (model, prompts, seed, bounds, guards, judge...) would mix two searches.
RESUME_MAY_CHANGE = {"cache_dir", "devices", "accelerator", "batch_size", "ray_address", "ray_workers", "register"}


def check_resumable(run_id: str, experiment: str, search_config: dict) -> None:
    """Refuse (SafetuneError) any run but an unfinished search parent of ``experiment`` searched
    with the same options. Reads only; call it before a model loads and before the run is reopened."""
    client = MlflowClient()
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise SafetuneError(f"--resume {run_id}: no such run in this tracking store") from None
    tags = run.data.tags
    if tags.get("safetune.kind") != "search" or "mlflow.parentRunId" in tags:
        kind = "a candidate run" if "mlflow.parentRunId" in tags else f"a {tags.get('safetune.kind', 'non-safetune')} run"
        raise SafetuneError(f"--resume {run_id}: that is {kind}, not a search's parent run")
    exp = client.get_experiment(run.info.experiment_id)
    if exp.name != experiment:
        raise SafetuneError(f"--resume {run_id}: the run belongs to experiment {exp.name!r}, not {experiment!r} "
                            f"(pass --experiment {exp.name})")
    if run.info.status == "FINISHED":
        raise SafetuneError(f"--resume {run_id}: that search already finished; start a new one instead")
    try:
        stored = mlflow.artifacts.load_dict(f"runs:/{run_id}/search_config.json")
    except Exception:  # noqa: BLE001 - died before logging its configuration: nothing to compare
        return
    keys = sorted((set(stored) | set(search_config)) - RESUME_MAY_CHANGE)
    changed = [k for k in keys if json.loads(json.dumps(stored.get(k))) != json.loads(json.dumps(search_config.get(k)))]
    if changed:
        raise SafetuneError(f"--resume {run_id}: the search was started with other options ({', '.join(changed)}); "
                            f"resume it with the same ones, or start a new search")


def experiment_id(name: str) -> str:
    """Get or create experiment ``name``; safe when several searches create it at the same moment.

    ``mlflow.set_experiment(name)`` is not: the process that loses the creation race returns
    without activating the experiment, so its runs silently land in "Default" (id 0).
    """
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found is not None:
        mark_model_development(found.experiment_id, found.tags)
        return found.experiment_id
    try:
        exp_id = client.create_experiment(name, tags={EXPERIMENT_KIND_TAG: MODEL_DEVELOPMENT})
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        exp_id = client.get_experiment_by_name(name).experiment_id
    return exp_id


# MLflow 3's UI opens an experiment without this tag in its GenAI view (traces, sessions), where a
# search has nothing to show; tagged as model development it opens on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_DEVELOPMENT = "custom_model_development"


def mark_model_development(exp_id: str, tags: dict | None = None) -> None:
    if tags is None:
        tags = MlflowClient().get_experiment(exp_id).tags
    if EXPERIMENT_KIND_TAG not in tags:
        MlflowClient().set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, MODEL_DEVELOPMENT)


@contextmanager
def parent_run(experiment: str, run_name: str, resume_run_id: str | None = None):
    """Attach to ``mlflow run``'s run or a run to resume, else start a new run in ``experiment``.

    A KeyboardInterrupt marks the run KILLED (and is re-raised); other errors mark it FAILED.
    """
    # Take MLFLOW_RUN_ID out of the environment once read: a later start_run(nested=True) would
    # otherwise re-open the parent itself instead of creating a child (mlflow #15713).
    env_run_id = os.environ.pop("MLFLOW_RUN_ID", None)
    run_id = resume_run_id or env_run_id
    if run_id:
        # Make the run's experiment the active one too: nested child runs are created in the *active*
        # experiment, which for a resumed run would otherwise be "Default".
        exp_id = MlflowClient().get_run(run_id).info.experiment_id
        mark_model_development(exp_id)
        mlflow.set_experiment(experiment_id=exp_id)
        run = mlflow.start_run(run_id=run_id)
        if env_run_id and not resume_run_id:  # `mlflow run` named it at random ("unique-kit-323")
            mlflow.set_tag("mlflow.runName", run_name)
    else:
        mlflow.set_experiment(experiment_id=experiment_id(experiment))
        run = mlflow.start_run(run_name=run_name)
    try:
        yield run
    except KeyboardInterrupt as exc:
        mlflow.end_run(status="KILLED")
        exc.safetune_resume = (f"run {run.info.run_id} is marked KILLED; finished work is cached; "
                               f"continue it with the same options and --resume {run.info.run_id}")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run(status="FINISHED")


def describe_search(summary: dict, model: str, registered: dict[str, str] | None, name: str | None) -> str:
    """Markdown for the parent run's description (``mlflow.note.content``): champion vs default."""
    rows = [("harm rate", "harm_rate"), ("relevance", "relevance"), ("benign helpfulness", "benign_helpfulness"),
            ("fluency NLL (nats/token)", "fluency_nll"), ("capability", "capability"), ("incoherence", "incoherence_rate")]
    lines = [f"**{model}**: {summary['verdict']}", "",
             f"| on {summary['split']} prompts | default | champion |", "|---|---|---|"]
    for label, key in rows:
        lines.append(f"| {label} | {summary['default'][key]:.3f} | {summary['champion'][key]:.3f} |")
    if name and registered:
        lines += ["", "Registered: " + ", ".join(f"`models:/{name}@{a}` (v{v})" for a, v in registered.items())]
    return "\n".join(lines)


def metric_key(text: str) -> str:
    """A name fragment MLflow accepts as a metric key: ASCII letters, digits and _ - . / are kept,
    anything else (spaces, commas, '~') becomes '_'."""
    return re.sub(r"[^0-9A-Za-z_.\-/]", "_", text)


def flatten(prefix: str, data: dict) -> dict:
    out = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(name, value))
        else:
            out[name] = value if not isinstance(value, (list, tuple)) else json.dumps(list(value))
    return out


def log_prompt_set(prompt_set, context: str) -> None:
    """log_input with the set's digest, so runs on different prompts are never compared blindly."""
    df = prompt_set.to_pandas()[["id", "category", "source", "harmful"]]  # ids, not harmful text
    dataset = mlflow.data.from_pandas(df, name=prompt_set.name, digest=prompt_set.digest[:16])
    mlflow.log_input(dataset, context=context)


def child_runs(parent_run_id: str, finished: bool = True, client: MlflowClient | None = None) -> list:
    """Child runs of a parent: the FINISHED ones, or (``finished=False``) every other status. Paged."""
    client = client or MlflowClient()
    parent = client.get_run(parent_run_id)
    status = "=" if finished else "!="
    runs, token = [], None
    while True:
        page = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status {status} 'FINISHED'",
            max_results=1000, page_token=token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def existing_candidates(parent_run_id: str) -> dict[tuple[int, str], str]:
    """(generation, candidate hash) -> child run id, for finished children of a parent (resume)."""
    out = {}
    for child in child_runs(parent_run_id):
        tags = child.data.tags
        if "safetune.generation" in tags and "safetune.candidate" in tags:
            out[(int(tags["safetune.generation"]), tags["safetune.candidate"])] = child.info.run_id
    return out


def discard_unfinished_children(parent_run_id: str) -> int:
    """Delete child runs a crash left half-logged (RUNNING, FAILED or KILLED); resume logs them again.

    A SIGKILL between a child's start_run and its end leaves a RUNNING child with partial metrics; if
    it stayed, the resumed search's complete copy would make it a duplicate in every comparison.
    """
    client = MlflowClient()
    children = child_runs(parent_run_id, finished=False, client=client)
    for child in children:
        client.delete_run(child.info.run_id)
    return len(children)


def log_candidate(result: CandidateResult, generation: int, index: int, hypervolume: float, is_default: bool,
                  constraints: dict[str, float] | None = None) -> str:
    """One nested child run for one evaluated candidate; returns its run id."""
    digest = result.config.digest()
    with mlflow.start_run(run_name=f"g{generation:02d}-c{index:02d}-{digest}", nested=True) as run:
        metrics = {**result.metrics(), "hypervolume": hypervolume}
        tags = {
            "safetune.generation": str(generation),
            "safetune.candidate": digest,
            "safetune.default": str(is_default).lower(),
            "safetune.pareto": "unknown",
        }
        if constraints:
            metrics.update({f"constraint.{k}": float(v) for k, v in constraints.items() if v == v})
            tags["safetune.feasible"] = str(all(not v > 0 for v in constraints.values())).lower()
        # One store write for params, metrics and tags (three separate calls were ~0.03 s each per
        # candidate, a visible share of a warm search, which is nearly all MLflow work).
        _log_batch(run.info.run_id, result.config.to_dict(), metrics, tags)
        mlflow.log_text(result.config.system_prompt_text or "", "system_prompt.txt")
        mlflow.log_dict(result.config.to_dict(), "config.json")
        if result.rows:
            mlflow.log_table(pd.DataFrame(result.rows), artifact_file="responses.json")
        return run.info.run_id


def _log_batch(run_id: str, params: dict, metrics: dict[str, float], tags: dict[str, str]) -> None:
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    MlflowClient().log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
        params=[Param(k, str(v)) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )


def mark_pareto(run_ids: list[str], pareto: set[str]) -> None:
    client = MlflowClient()
    for run_id in run_ids:
        client.set_tag(run_id, "safetune.pareto", str(run_id in pareto).lower())
