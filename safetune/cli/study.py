"""`safetune study`: the same search over several seeds and algorithms, compared (registered by cli.py).

Prints numbers only (hypervolumes, tests, run ids): prompts and responses stay in the runs' artifacts.
"""

from __future__ import annotations

import click

from safetune.cli.common import _friendly, csv
from safetune.errors import SafetuneError


def parse_seeds(value: str) -> list[int]:
    """"1,2,3" -> [1, 2, 3]; anything else is a one-line error."""
    items = csv(value, "--seeds") or ()
    try:
        seeds = [int(v) for v in items]
    except ValueError as exc:
        raise SafetuneError(f"bad --seeds {value!r}; expected comma-separated integers, e.g. 1,2,3") from exc
    if not seeds:
        raise SafetuneError("--seeds needs at least one integer, e.g. 1,2,3")
    return seeds


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@click.command("study")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="Experiment YAML (see experiments/); options given here override it.")
@click.option("--model", "-m", default=None, help="Alias (see `safetune models`), hub id or local folder.")
@click.option("--datasets", default=None, help="Comma-separated prompt sets or CSV/JSONL files.")
@click.option("--n-prompts", type=int, default=None, help="Prompts from the search split per candidate.")
@click.option("--pop-size", type=int, default=None)
@click.option("--n-gen", type=int, default=None, help="Generations per search.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds; one search per seed.")
@click.option("--algorithms", default="nsga2,random", show_default=True,
              help="Comma-separated algorithms, each run once per seed.")
@click.option("--samples", type=int, default=None, help="Samples per prompt (different seeds).")
@click.option("--judge", default=None, help="Judge name (primary objective).")
@click.option("--guards/--no-guards", default=None, help="Measure incoherence, benign compliance and capability.")
@click.option("--constrain/--no-constrain", default=None, help="Use the guards as constraints.")
@click.option("--n-benign", type=int, default=None, help="Benign (XSTest safe) prompts per candidate.")
@click.option("--n-capability", type=int, default=None, help="Capability items per task per candidate.")
@click.option("--batch-size", type=int, default=None)
@click.option("--system-prompts", default=None, help="Comma-separated system prompt ids to search over.")
@click.option("--bound", "bounds", multiple=True, metavar="KNOB=LOW:HIGH", help="Override a search bound (repeatable).")
@click.option("--bounds", "bounds_csv", default=None, metavar="KNOB=LOW:HIGH,...", help="Comma-separated bound overrides.")
@click.option("--harm-budget", type=float, default=None, help="Harm budget (the lagrangian search's constraint).")
@click.option("--experiment", default=None, help="MLflow experiment for the searches and the study run.")
@click.option("--tracking-uri", default=None, help="Default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
@click.option("--cache", "cache_path", default=None, help="Cache file (default: ~/.cache/safetune/cache.sqlite).")
@click.option("--register/--no-register", default=False, show_default=True,
              help="Register each search's Pareto configurations (moves the aliases once per search).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@_friendly
def study(config_path, model, datasets, n_prompts, pop_size, n_gen, seeds, algorithms, samples, judge, guards,
          constrain, n_benign, n_capability, batch_size, system_prompts, bounds, bounds_csv, harm_budget, experiment,
          tracking_uri, cache_path, register, no_progress):
    """Run one search per (algorithm, seed) and test whether their hypervolumes differ."""
    from safetune.jobs.experiment import build_search_config
    from safetune.jobs.search.preflight import preflight
    from safetune.models import resolve_model

    seed_list = parse_seeds(seeds)
    algorithm_list = list(csv(algorithms, "--algorithms") or ())
    overrides = {
        "model": model, "datasets": csv(datasets, "--datasets"), "n_prompts": n_prompts, "pop_size": pop_size, "n_gen": n_gen,
        "samples": samples, "judge": judge, "batch_size": batch_size, "harm_budget": harm_budget,
        "experiment": experiment, "cache_dir": cache_path,
    }
    guard_overrides = {"enabled": guards, "constrain": constrain, "n_benign": n_benign, "n_capability": n_capability}
    bounds = tuple(bounds) + (csv(bounds_csv, "--bounds") or ())
    cfg = build_search_config(config_path, overrides, bounds, csv(system_prompts, "--system-prompts"), guard_overrides)
    preflight(cfg)
    resolve_model(cfg.model)  # fails fast (one line) before torch, Lightning and MLflow load
    from safetune.jobs.study import run_study

    result = run_study(cfg, seed_list, algorithm_list, tracking_uri=tracking_uri, progress=not no_progress,
                       register=register)
    click.echo(f"study run: {result.study_run_id}")
    click.echo(result.searches.to_string(index=False, float_format=_fmt))
    click.echo("\nfinal hypervolume per algorithm:")
    click.echo(result.summary.to_string(index=False, float_format=_fmt))
    if len(result.tests):
        click.echo("\nMann-Whitney U and Vargha-Delaney A12 = P(HV_a > HV_b), Holm-corrected over pairs:")
        click.echo(result.tests.to_string(index=False, float_format=_fmt))
    for algorithm, reach in result.to_baseline.items():
        click.echo(f"\n{algorithm}: {_fmt(reach['mean_generations'])} generations on average to reach random search's "
                   f"final hypervolume (reached in {reach['n_reached']}/{reach['n']} seeds)")
