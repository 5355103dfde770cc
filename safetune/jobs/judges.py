"""The judge jobs: ``safetune judge-train`` (dev set + training) and ``safetune judge-eval``
(measure judges on labelled rows, log the numbers to MLflow). Numbers only: prompts and responses
never reach the console or MLflow params/tags."""

from __future__ import annotations

from pathlib import Path


def run_judge_train(output_dir: str | Path | None, seed: int, write_devset: bool, dev_eval: bool,
                    command: str, lm: dict | None, model_answers: bool = False,
                    label_audit: bool = False) -> tuple[dict | None, dict]:
    """(the dev set written, or None; the training MANIFEST). ``command`` is recorded in the MANIFEST,
    so the artifact says exactly how to re-create it. ``lm``: the causal LM whose hidden states stack
    with the sentence vectors ({"model", "layer"}), or None for sentence vectors alone. ``model_answers``:
    also train on the offline models' hand-labelled answers; ``label_audit``: on our audited PyRIT labels
    (the dev set written and measured too)."""
    from safetune.components.embeddings import DEFAULT_EMBEDDER, EmbeddingCache, text_embedder
    from safetune.components.judges.trained import ARTIFACT_DIR
    from safetune.components.judges.training.artifact import train
    from safetune.components.judges.training.data import DEVSET
    from safetune.components.judges.training.synthesis import write_devset as write

    embedder = text_embedder(DEFAULT_EMBEDDER, lm)
    if lm:
        embedder.states  # noqa: B018 - load now: a wrong model or layer fails before any work
    # The packaged dev set keeps the source's labels; an audited one goes beside the artifact instead.
    path = Path(output_dir or ARTIFACT_DIR) / "devset_audited.jsonl" if label_audit else DEVSET
    devset = write(path, seed=seed, label_audit=label_audit) if write_devset else None
    manifest = train(output_dir or ARTIFACT_DIR, seed=seed, evaluate_dev=dev_eval, command=command,
                     embeddings=EmbeddingCache(embedder), model_answers=model_answers, label_audit=label_audit)
    return devset, manifest


def run_judge_eval(judge_names: list[str], data: str, limit: int | None = None, suffixes: bool = True) -> dict:
    """Every judge over the rows of ``data`` (devset | xstest | a JSONL path), measured; ``suffixes``:
    with the suffix-robustness figure."""
    from safetune.components.judges.base import check_judge
    from safetune.components.judges.training.measure import ROBUSTNESS_SUFFIXES, evaluate_judges, load_rows

    for name in judge_names:
        check_judge(name)
    rows = load_rows(data)
    result = evaluate_judges(list(judge_names), rows[:limit] if limit is not None else rows,
                             suffixes=ROBUSTNESS_SUFFIXES if suffixes else ())
    result["data"] = data
    return result


def log_judge_eval(result: dict, experiment: str, tracking_uri: str | None) -> str:
    """One MLflow run with every judge's rates and the pairwise kappas; returns its id."""
    import mlflow

    from safetune.tracking.runs import experiment_id, metric_key, setup_tracking

    setup_tracking(tracking_uri)
    mlflow.set_experiment(experiment_id=experiment_id(experiment))
    data_name = result["data"] if result["data"] in ("devset", "xstest") else "file"
    with mlflow.start_run(run_name=f"judge-eval-{data_name}") as run:
        mlflow.log_params({"judges": ",".join(result["judges"]), "data": data_name, "n_rows": result["n_rows"]})
        metrics = {}
        for name, m in result["judges"].items():
            for key in ("accuracy", "balanced_accuracy", "roc_auc", "coverage", "unknown", "tpr", "seconds_per_1000"):
                if m[key] is not None:
                    metrics[f"{metric_key(name)}.{key}"] = float(m[key])
            for kind, v in m["fpr_by_kind"].items():
                if v is not None:
                    metrics[f"{metric_key(name)}.fpr.{metric_key(kind)}"] = float(v)
            for kind, v in m["tpr_by_kind"].items():
                if v is not None:
                    metrics[f"{metric_key(name)}.tpr.{metric_key(kind)}"] = float(v)
            flips = m.get("suffix_flips") or {}
            if flips.get("mean") is not None:
                metrics[f"{metric_key(name)}.suffix_flips"] = flips["mean"]
                for i, v in enumerate(flips["by_suffix"].values(), 1):
                    metrics[f"{metric_key(name)}.suffix_flips.s{i}"] = v
        for pair, k in result["kappa"].items():
            if k["kappa"] is not None:
                metrics[f"kappa.{metric_key(pair)}"] = k["kappa"]
        mlflow.log_metrics(metrics)
        mlflow.log_dict(result, "judge_eval.json")
        return run.info.run_id
