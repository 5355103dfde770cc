"""`safetune study`: the same search over several seeds and algorithms, compared.

Takes every search option but ``--seed``, ``--algorithm`` and ``--resume`` (the same ones as
``safetune search``, from ``cli/search.py``). Prints numbers only (hypervolumes, tests, run ids):
prompts and responses stay in the runs' artifacts.
"""

from __future__ import annotations

import click

from safetune.cli.common import fmt, friendly, tracking_uri_option
from safetune.cli.options import ConfigOptions
from safetune.cli.search import GUARDS, SEARCH, config_option, search_config, space_options
from safetune.config import SearchConfig, split_list
from safetune.errors import SafetuneError

STUDY_SEARCH = ConfigOptions(SearchConfig, [n for n in SEARCH.names if n not in ("seed", "algorithm", "register")],
                             choices=SEARCH.choices,
                             help={"experiment": "MLflow experiment for the searches and the study run."})


def parse_seeds(value: str) -> list[int]:
    """"1,2,3" -> [1, 2, 3]; anything else is a one-line error."""
    items = split_list(value, "--seeds") or ()
    try:
        seeds = [int(v) for v in items]
    except ValueError as exc:
        raise SafetuneError(f"bad --seeds {value!r}; expected comma-separated integers, e.g. 1,2,3") from exc
    if not seeds:
        raise SafetuneError("--seeds needs at least one integer, e.g. 1,2,3")
    return seeds


@click.command("study")
@config_option
@STUDY_SEARCH
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds; one search per seed.")
@click.option("--algorithms", default="nsga2,random", show_default=True,
              help="Comma-separated algorithms, each run once per seed.")
@GUARDS
@space_options
@tracking_uri_option
@click.option("--register/--no-register", default=False, show_default=True,
              help="Register each search's Pareto configurations (moves the aliases once per search).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bars.")
@friendly
def study(config_path, seeds, algorithms, tracking_uri, register, no_progress, **values):
    """Run one search per (algorithm, seed) and test whether their hypervolumes differ."""
    from safetune.jobs.search.preflight import preflight
    from safetune.models import resolve_model

    seed_list = parse_seeds(seeds)
    algorithm_list = list(split_list(algorithms, "--algorithms") or ())
    cfg = preflight(search_config(config_path, values, STUDY_SEARCH))
    resolve_model(cfg.model)  # fails fast (one line) before torch, Lightning and MLflow load
    from safetune.jobs.study import run_study

    result = run_study(cfg, seed_list, algorithm_list, tracking_uri=tracking_uri, progress=not no_progress,
                       register=register)
    click.echo(f"study run: {result.study_run_id}")
    click.echo(result.searches.to_string(index=False, float_format=fmt))
    click.echo("\nfinal hypervolume per algorithm:")
    click.echo(result.summary.to_string(index=False, float_format=fmt))
    if len(result.tests):
        click.echo("\nMann-Whitney U and Vargha-Delaney A12 = P(HV_a > HV_b), Holm-corrected over pairs:")
        click.echo(result.tests.to_string(index=False, float_format=fmt))
    for algorithm, reach in result.to_baseline.items():
        click.echo(f"\n{algorithm}: {fmt(reach['mean_generations'])} generations on average to reach random search's "
                   f"final hypervolume (reached in {reach['n_reached']}/{reach['n']} seeds)")
