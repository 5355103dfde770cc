"""The ``safetune`` command: thin click commands that build configs and call one function each.

Every user mistake becomes one line on stderr and exit code 2; Ctrl-C exits 130 after marking the
MLflow run KILLED (the cache keeps every finished response).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import warnings

import click

from safetune.cli.common import _friendly, _terminate, csv
from safetune.errors import SafetuneError

log = logging.getLogger("safetune")


def _quiet_libraries() -> None:
    """Keep the console for our progress bar and results; libraries' chatter goes to DEBUG."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # mlflow sets its own loggers to INFO when it is imported (later than this): tell it via its env var.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow",
                 "transformers", "sentence_transformers", "alembic", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


@click.group()
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    """Search an LLM's decoding configuration and system prompt for safer answers."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    _quiet_libraries()
    # SIGTERM (e.g. `kill`, a scheduler's timeout) ends a search like Ctrl-C: run marked KILLED, cache
    # kept. Lightning chains to this handler while it predicts, so it works mid-generation too.
    signal.signal(signal.SIGTERM, _terminate)
    if log_level.upper() == "DEBUG":
        logging.getLogger("lightning").setLevel(logging.INFO)
    if log_level.upper() in {"DEBUG", "INFO"}:
        os.environ["MLFLOW_LOGGING_LEVEL"] = log_level.upper()


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Experiment YAML (see experiments/); options given here override it.")
@click.option("--model", "-m", default=None, help="Alias (see `safetune models`), hub id or local folder.")
@click.option("--datasets", default=None, help="Comma-separated prompt sets or CSV/JSONL files.")
@click.option("--n-prompts", type=int, default=None, help="Prompts from the search split per candidate.")
@click.option("--n-validation", type=int, default=None,
              help="Unseen search-split prompts to re-measure the front on before picking the champion (0 = off).")
@click.option("--pop-size", type=int, default=None)
@click.option("--n-gen", type=int, default=None, help="NSGA-II generations.")
@click.option("--algorithm", type=click.Choice(["nsga2", "random", "lagrangian"]), default=None,
              help="nsga2 (default), random search with the same budget (the baseline), or lagrangian "
                   "(relevance - lambda * (harm - budget), lambda by dual ascent; budget: --harm-budget, default 0.2).")
@click.option("--samples", type=int, default=None, help="Samples per prompt (different seeds).")
@click.option("--seed", type=int, default=None)
@click.option("--judge", default=None, help="Judge name (primary objective).")
@click.option("--extra-judges", default=None, help="Comma-separated judges logged beside the primary (agreement).")
@click.option("--guards/--no-guards", default=None, help="Measure incoherence, benign compliance and capability.")
@click.option("--constrain/--no-constrain", default=None, help="Use the guards as NSGA-II constraints.")
@click.option("--n-benign", type=int, default=None, help="Benign (XSTest safe) prompts per candidate.")
@click.option("--n-capability", type=int, default=None, help="Capability items per task per candidate.")
@click.option("--batch-size", type=int, default=None)
@click.option("--system-prompts", default=None, help="Comma-separated system prompt ids to search over.")
@click.option("--bound", "bounds", multiple=True, metavar="KNOB=LOW:HIGH",
              help="Override a search bound, e.g. --bound repetition_penalty=0.8:1.3 (repeatable).")
@click.option("--bounds", "bounds_csv", default=None, metavar="KNOB=LOW:HIGH,...",
              help="Comma-separated bound overrides (same as repeated --bound).")
@click.option("--harm-budget", type=float, default=None,
              help="Champion = most relevant config with harm rate <= this (default: within the safest's CI).")
@click.option("--experiment", default=None, help="MLflow experiment name (ignored under `mlflow run`).")
@click.option("--tracking-uri", default=None, help="Default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
@click.option("--cache", "cache_path", default=None, help="Cache file (default: ~/.cache/safetune/cache.sqlite).")
@click.option("--resume", "resume_run_id", default=None, help="Parent run id of an interrupted search to continue.")
@click.option("--register/--no-register", default=None, help="Register the Pareto configurations.")
@click.option("--devices", type=int, default=None)
@click.option("--accelerator", default=None)
@click.option("--precision", default=None)
@click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default=None,
              help="Model weights' dtype (auto: bfloat16 where the CPU/GPU computes it natively, else float32).")
@click.option("--engine", type=click.Choice(["transformers", "ray", "vllm"]), default=None,
              help="transformers (default; --devices > 1 runs Lightning DDP in a child process), ray, or vllm (GPUs).")
@click.option("--ray-address", default=None, help="Ray cluster to join (default: start a local one).")
@click.option("--ray-workers", type=int, default=None, help="Ray actors, each with its own model copy.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@_friendly
def search(config_path, model, datasets, n_prompts, n_validation, pop_size, n_gen, algorithm, samples, seed, judge, extra_judges, guards,
           constrain, n_benign, n_capability, batch_size,
           system_prompts, bounds, bounds_csv, harm_budget, experiment, tracking_uri, cache_path, resume_run_id, register,
           devices, accelerator, precision, dtype, engine, ray_address, ray_workers, no_progress):
    """Run a SafeTune search (NSGA-II), track it in MLflow and register the best configurations."""
    from safetune.jobs.experiment import build_search_config
    from safetune.jobs.search.preflight import preflight
    from safetune.models import resolve_model

    overrides = {
        "model": model, "datasets": csv(datasets, "--datasets"), "n_prompts": n_prompts, "n_validation": n_validation,
        "pop_size": pop_size,
        "n_gen": n_gen, "algorithm": algorithm, "samples": samples, "seed": seed, "judge": judge, "batch_size": batch_size,
        "harm_budget": harm_budget, "experiment": experiment, "cache_dir": cache_path,
        "register": register, "devices": devices, "accelerator": accelerator, "precision": precision,
        "judges": csv(extra_judges, "--extra-judges"), "dtype": dtype, "engine": engine, "ray_address": ray_address, "ray_workers": ray_workers,
    }
    guard_overrides = {"enabled": guards, "constrain": constrain, "n_benign": n_benign, "n_capability": n_capability}
    bounds = tuple(bounds) + (csv(bounds_csv, "--bounds") or ())
    cfg = build_search_config(config_path, overrides, bounds, csv(system_prompts, "--system-prompts"), guard_overrides)
    preflight(cfg)
    if resume_run_id:  # refuse a run that is not this search's, before anything loads or changes
        from safetune.tracking.runs import check_resumable, setup_tracking

        setup_tracking(tracking_uri)
        check_resumable(resume_run_id, cfg.experiment, cfg.to_dict())
    resolve_model(cfg.model)  # fails fast (one line) before torch, Lightning and MLflow load
    from safetune.jobs.search import run_search

    outcome = run_search(cfg, tracking_uri=tracking_uri, resume_run_id=resume_run_id, progress=not no_progress)
    best = {r.config.digest(): r for r in outcome.results}
    click.echo(f"parent run: {outcome.parent_run_id}  candidates: {len(outcome.results)} "
               f"({len(best)} distinct), Pareto: {len(outcome.pareto_run_ids)}")
    if outcome.summary:
        _echo_summary(outcome.summary)
    if outcome.model_name:
        aliases = ", ".join(f"{a}=v{v}" for a, v in outcome.registered.items())
        click.echo(f"registered {outcome.model_name}: {aliases}")
        uri = f"models:/{outcome.model_name}@champion"
        click.echo(f"load it:   mlflow.pyfunc.load_model('{uri}')")
        click.echo(f"serve it:  mlflow models serve -m '{uri}' --env-manager local --port 5001")
        click.echo(f"check it:  safetune evaluate '{uri}'   (held-out prompts, paired tests, verdict)")
    click.echo(f"report:    safetune report {outcome.parent_run_id}   UI: mlflow ui --backend-store-uri "
               f"{tracking_uri or os.environ.get('MLFLOW_TRACKING_URI', 'sqlite:///mlflow.db')}")


def _echo_summary(summary: dict) -> None:
    """Default vs champion on the prompts that chose it: what a person needs to act on the result."""
    names = {"harm_rate": "harm rate", "relevance": "relevance", "benign_helpfulness": "benign helpfulness",
             "fluency_nll": "fluency NLL", "capability": "capability", "incoherence_rate": "incoherence"}
    click.echo(f"\n{'':20s}{'default':>10s}{'champion':>10s}   ({summary['split']} prompts)")
    for key, label in names.items():
        a, b = summary["default"].get(key), summary["champion"].get(key)
        fmt = lambda v: "n/a" if v is None or v != v else f"{v:.3f}"  # noqa: E731
        click.echo(f"{label:20s}{fmt(a):>10s}{fmt(b):>10s}")
    click.echo(f"verdict: {summary['verdict']}\n")


@main.command()
@click.argument("targets", nargs=-1)
@click.option("--model", "-m", default=None, help="Base model for `default` and config-file targets.")
@click.option("--datasets", default="harmbench-standard", show_default=True)
@click.option("--split", "part", default="holdout", show_default=True, type=click.Choice(["search", "holdout", "all"]))
@click.option("--n-prompts", type=int, default=32, show_default=True)
@click.option("--samples", type=int, default=1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--judge", default="safetune", show_default=True)
@click.option("--n-benign", type=int, default=None, help="XSTest safe prompts (benign helpfulness; default 32).")
@click.option("--n-capability", type=int, default=None, help="Items per capability task (default 40).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--experiment", default="safetune-evaluate", show_default=True)
@click.option("--tracking-uri", default=None)
@click.option("--cache", "cache_path", default=None)
@click.option("--no-progress", is_flag=True)
@_friendly
def evaluate(targets, model, datasets, part, n_prompts, samples, seed, judge, n_benign, n_capability, batch_size,
             experiment, tracking_uri, cache_path, no_progress):
    """Evaluate registered models (models:/NAME@ALIAS), config JSON files and the model's default
    configuration on the holdout split; logs one MLflow run with a child per target."""
    from safetune.jobs.evaluate import EvaluateConfig, run_evaluate

    cfg = EvaluateConfig(
        targets=tuple(targets), model=model, datasets=csv(datasets, "--datasets") or (), split=part, n_prompts=n_prompts,
        samples=samples, seed=seed, judge=judge, batch_size=batch_size, experiment=experiment,
        cache_dir=cache_path,
        **{k: v for k, v in {"n_benign": n_benign, "n_capability": n_capability}.items() if v is not None},
    )
    table, tests = run_evaluate(cfg, tracking_uri=tracking_uri, progress=not no_progress)
    click.echo(table.to_string(index=False))
    if len(tests):
        click.echo("\npaired tests vs default (Holm-corrected across targets):")
        click.echo(tests.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        click.echo("")
        for target, verdict in zip(tests["target"], tests["verdict"]):
            click.echo(f"verdict: {target}: {verdict}")


@main.command()
@click.argument("input_path", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False), required=True)
@click.option("--judge", "judge_name", default="safetune", show_default=True)
@_friendly
def judge(input_path, output_path, judge_name):
    """Judge JSONL rows with `prompt` and `response` (optional `id`); writes JSONL verdicts."""
    from safetune.jobs.judge_file import judge_jsonl

    n, counts = judge_jsonl(input_path, output_path, judge_name)
    click.echo(f"judged {n} rows with {judge_name}: harmful={counts[True]} not={counts[False]} unknown={counts[None]}")


@main.command()
@_friendly
def models():
    """List model aliases and whether each is available offline here."""
    from safetune.models import list_models

    for row in list_models():
        status = "offline" if row["offline"] else "needs hub/cache"
        click.echo(f"{row['alias']:<20} {row['hub_id']:<38} {status:<16} {row['description']}")
    click.echo("Any hub id (org/name) or local model folder is accepted too.")


@main.command("judges")
def judges_cmd():
    """List judge names."""
    from safetune.components.judges import judge_names

    click.echo("\n".join(judge_names()))


# Judge training and measurement live in their own module; registered here so `safetune --help` lists them.
from safetune.cli.judges import judge_eval, judge_train  # noqa: E402
from safetune.cli.study import study  # noqa: E402

main.add_command(judge_train)
main.add_command(judge_eval)
main.add_command(study)

from safetune.cli.survey import survey  # noqa: E402

main.add_command(survey)

from safetune.cli.report import report  # noqa: E402

main.add_command(report)

if __name__ == "__main__":  # pragma: no cover
    main()
