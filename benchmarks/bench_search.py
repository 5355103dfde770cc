"""End-to-end cost of a search: cold, warm (same cache), and killed halfway (SIGKILL) then resumed.

Runs the real CLI (`python -m safetune search`) in subprocesses against a fresh SQLite tracking
store and cache in a temporary folder, so the machine's own cache is never touched.

    python benchmarks/bench_search.py                  # the default search (experiments/default.yaml)
    python benchmarks/bench_search.py --quick          # a small budget, for a first look

It prints, last: ``cold <S> s``, ``warm <S> s`` (median of 3 warm runs), ``warm/cold <R>`` (target <= 0.05), and for the
killed-and-resumed search ``regenerated <N>`` (responses generated twice; target 0) and
``candidate runs <N> expected <M> duplicated <D> lost <L>``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from safetune.cache import count_entries

QUICK = ["--n-prompts", "6", "--pop-size", "4", "--n-gen", "2"]


WARM_RUNS = 3  # the warm figure is their median

def count_generations(cache_db: Path) -> int:
    return count_entries(cache_db, "generation")


def command(work: Path, cache: Path, args: list[str]) -> tuple[list[str], dict]:
    cmd = [sys.executable, "-m", "safetune", "search", "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
           "--cache", str(cache), "--no-progress", *args]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_RUN_ID", None)
    return cmd, env


def timed_run(work: Path, cache: Path, args: list[str]) -> float:
    cmd, env = command(work, cache, args)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"search failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.returncode}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small budget: " + " ".join(QUICK))
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--config", default="experiments/default.yaml")
    ap.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temporary one)")
    ap.add_argument("--kill-at", type=float, default=0.5, help="fraction of the cold run's responses before SIGKILL")
    args = ap.parse_args()
    search_args = ["--config", str(Path(args.config).resolve()), "--model", args.model, *(QUICK if args.quick else [])]

    import mlflow
    from mlflow.tracking import MlflowClient

    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="safetune-bench-")) as tmp:
        work = Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        cache = work / "cache.sqlite"
        cold = timed_run(work, cache, search_args)
        total = count_generations(cache)
        # Warm: the median of three runs. A warm search is ~10 s of MLflow work (store start-up,
        # logging 24 runs, registering the front, the report), so one run's noise is a visible
        # share of a 5% target; the cold run is one run (minutes, its noise is small in relative terms).
        warms = sorted(timed_run(work, cache, search_args) for _ in range(WARM_RUNS))
        warm = warms[len(warms) // 2]

        # Killed halfway: a fresh cache, SIGKILL once `kill_at` of the responses are saved, then --resume.
        cache2 = work / "cache-kill.sqlite"
        experiment = "bench-kill"
        cmd, env = command(work, cache2, [*search_args, "--experiment", experiment])
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while count_generations(cache2) < args.kill_at * total and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is not None:
            sys.exit("the search finished before it could be killed")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        saved = count_generations(cache2)

        mlflow.set_tracking_uri(f"sqlite:///{work / 'mlflow.db'}")
        client = MlflowClient()
        exp = client.get_experiment_by_name(experiment)
        parent = client.search_runs([exp.experiment_id], "tags.`safetune.kind` = 'search'")[0]
        cmd, env = command(work, cache2, [*search_args, "--experiment", experiment, "--resume", parent.info.run_id])
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
        resumed_s = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"resume failed: {proc.stderr.strip().splitlines()[-1]}")
        run = client.get_run(parent.info.run_id)
        generated_on_resume = int(run.data.metrics["responses_generated"])
        regenerated = generated_on_resume - (count_generations(cache2) - saved)
        kids = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
                                  max_results=5000)
        slots = [(k.data.tags.get("safetune.generation"), k.info.run_name.split("-")[1]) for k in kids]
        expected = int(run.data.params["safetune.pop_size"]) * int(run.data.params["safetune.n_gen"])
        duplicated = len(slots) - len(set(slots))
        lost = expected - len(set(slots))

    print(f"search: {' '.join(search_args)}; {total} responses")
    print(f"killed after {saved} of {total} saved responses; resume took {resumed_s:.1f} s and generated "
          f"{generated_on_resume}")
    print(f"cold {cold:.1f} s")
    print(f"warm runs {', '.join(f'{w:.1f}' for w in warms)} s")
    print(f"warm {warm:.1f} s")
    print(f"warm/cold {warm / cold:.3f}")
    print(f"regenerated {regenerated}")
    print(f"candidate runs {len(kids)} expected {expected} duplicated {duplicated} lost {lost}")


if __name__ == "__main__":
    main()
