"""Several searches per algorithm, and whether one algorithm beats another beyond seed noise.

One search's hypervolume depends on its seed (prompt sample, initial population, variation), so
"NSGA-II beats random search" needs several seeds per algorithm and a test across them. A study
runs ``run_search`` once per (algorithm, seed), each its own MLflow parent run tagged
``safetune.study=<study run id>``, then logs one study run in the same experiment with:

* every search's final hypervolume (``study_hypervolumes.json`` table) and per-algorithm mean/sd;
* for each pair of algorithms: two-sided Mann-Whitney U and Vargha-Delaney A12 (= P(HV_a > HV_b)),
  p-values Holm-corrected over the pairs (``study_tests.json``);
* a boxplot of hypervolume per algorithm;
* for each algorithm other than random search: how many generations it needs to reach random
  search's final hypervolume with the same seed (same prompts and same initial population, so
  the pairing is fair), from each search's ``hypervolume`` metric history.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from safetune.analysis.comparison import compare_algorithms, generations_to_reach, summarize
from safetune.analysis.plots import hypervolume_boxplot
from safetune.config import SearchConfig
from safetune.errors import SafetuneError
from safetune.search.registry import algorithm_names
from safetune.tracking.runs import metric_key

log = logging.getLogger(__name__)

BASELINE = "random"
SEARCH_COLUMNS = ["algorithm", "seed", "run_id", "final_hypervolume", "generations"]


@dataclass
class StudyResult:
    study_run_id: str
    searches: pd.DataFrame  # one row per search: SEARCH_COLUMNS
    summary: pd.DataFrame  # one row per algorithm: algorithm, n, mean, sd
    tests: pd.DataFrame  # one row per pair of algorithms: TEST_COLUMNS
    # algorithm -> {"mean_generations", "n_reached", "n"}: generations to reach random search's final HV
    to_baseline: dict[str, dict]


# --- orchestration ------------------------------------------------------------------------------------


def _check(seeds, algorithms) -> tuple[list[int], list[str]]:
    seeds, algorithms = list(seeds), list(algorithms)
    if not seeds:
        raise SafetuneError("a study needs at least one seed")
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
        raise SafetuneError(f"seeds must be integers (got {seeds!r})")
    if len(set(seeds)) != len(seeds):
        raise SafetuneError(f"seeds must be distinct (got {seeds!r})")
    if not algorithms:
        raise SafetuneError("a study needs at least one algorithm")
    unknown = [a for a in algorithms if a not in algorithm_names()]
    if unknown:
        raise SafetuneError(f"unknown algorithm(s) {', '.join(unknown)}; known: {', '.join(algorithm_names())}")
    if len(set(algorithms)) != len(algorithms):
        raise SafetuneError(f"algorithms must be distinct (got {', '.join(algorithms)})")
    return [int(s) for s in seeds], algorithms


def _hv_history(client, run_id: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run_id, "hypervolume"), key=lambda m: m.step)]


def run_study(base_cfg: SearchConfig, seeds: list[int], algorithms: list[str], tracking_uri: str | None = None,
              progress: bool = True, register: bool = False) -> StudyResult:
    """Run every (algorithm, seed) search, then log and return the comparison.

    ``register`` defaults to False: registering each search's front would move the model's
    aliases once per search; a study is for comparing algorithms, not for choosing a champion.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    from safetune.tracking import runs as tracking
    from safetune.jobs.search import run_search

    seeds, algorithms = _check(seeds, algorithms)
    # Every config is built (and validated) before the first search starts.
    configs = [(a, s, dataclasses.replace(base_cfg, algorithm=a, seed=s, register=register))
               for a in algorithms for s in seeds]
    tracking.setup_tracking(tracking_uri)
    client = MlflowClient()
    experiment_id = mlflow.set_experiment(experiment_id=tracking.experiment_id(base_cfg.experiment)).experiment_id
    # Under `mlflow run` the study is the run it created; the searches must not attach to it.
    study_run_id = os.environ.pop("MLFLOW_RUN_ID", None) or client.create_run(
        experiment_id, run_name=f"study-{'-'.join(algorithms)}-{len(seeds)}seeds").info.run_id
    client.set_tag(study_run_id, "safetune.kind", "study")

    rows, histories = [], {}
    try:
        for algorithm, seed, cfg in configs:
            log.info("study: %s seed %d", algorithm, seed)
            outcome = run_search(cfg, tracking_uri=tracking_uri, progress=progress)
            client.set_tag(outcome.parent_run_id, "safetune.study", study_run_id)
            history = _hv_history(client, outcome.parent_run_id)
            histories[(algorithm, seed)] = history
            rows.append([algorithm, seed, outcome.parent_run_id, history[-1], len(history)])
    except KeyboardInterrupt:
        client.set_terminated(study_run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(study_run_id, "FAILED")
        raise

    searches = pd.DataFrame(rows, columns=SEARCH_COLUMNS)
    hv = {a: searches.loc[searches["algorithm"] == a, "final_hypervolume"].tolist() for a in algorithms}
    summary = summarize(searches)
    tests = compare_algorithms(hv)
    to_baseline = {}
    if BASELINE in algorithms:
        targets = {s: histories[(BASELINE, s)][-1] for s in seeds}
        for a in algorithms:
            if a != BASELINE:
                to_baseline[a] = generations_to_reach({s: histories[(a, s)] for s in seeds}, targets)

    with tracking.parent_run(base_cfg.experiment, "", resume_run_id=study_run_id):
        _log_study(base_cfg, seeds, algorithms, searches, summary, tests, to_baseline, hv)
    return StudyResult(study_run_id, searches, summary, tests, to_baseline)


def _log_study(cfg: SearchConfig, seeds, algorithms, searches, summary, tests, to_baseline, hv) -> None:
    import mlflow

    mlflow.log_params({
        "study.algorithms": ",".join(algorithms), "study.seeds": ",".join(map(str, seeds)),
        "study.model": cfg.model, "study.judge": cfg.judge, "study.n_prompts": cfg.n_prompts,
        "study.pop_size": cfg.pop_size, "study.n_gen": cfg.n_gen, "study.hv_ref": list(cfg.hv_ref),
    })
    mlflow.log_table(searches, artifact_file="study_hypervolumes.json")
    mlflow.log_table(tests, artifact_file="study_tests.json")
    metrics = {}
    for row in summary.itertuples():
        metrics[f"hv_mean.{metric_key(row.algorithm)}"] = row.mean
        if not np.isnan(row.sd):
            metrics[f"hv_sd.{metric_key(row.algorithm)}"] = row.sd
    for row in tests.itertuples():
        pair = metric_key(f"{row.algorithm_a}_vs_{row.algorithm_b}")
        for name in ("p_value", "p_holm", "a12"):
            value = getattr(row, name)
            if not np.isnan(value):
                metrics[f"{name}.{pair}"] = value
    for algorithm, reach in to_baseline.items():
        key = metric_key(algorithm)
        metrics[f"generations_to_random_hv.n_reached.{key}"] = reach["n_reached"]
        if not np.isnan(reach["mean_generations"]):
            metrics[f"generations_to_random_hv.{key}"] = reach["mean_generations"]
    mlflow.log_metrics(metrics)
    mlflow.log_dict({"to_baseline": to_baseline, "baseline": BASELINE}, "study_generations_to_random.json")
    mlflow.log_figure(hypervolume_boxplot(hv, f"final hypervolume over {len(seeds)} seed(s)"), "hypervolume_boxplot.png")
