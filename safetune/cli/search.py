"""`safetune search`, and the search options `safetune study` shares.

Every option that sets a search setting is built from ``SearchConfig`` / ``GuardConfig``
(``options.py``) and defaults to "not given": the experiment YAML (``--config``), else the
dataclass default, decides.
"""

from __future__ import annotations

import os

import click

from safetune.cli.common import friendly, no_progress_option, tracking_uri_option
from safetune.cli.options import ConfigOptions
from safetune.components.engines.registry import ENGINES
from safetune.components.requests import DTYPES
from safetune.config import GuardConfig, SearchConfig, build_search_config, split_list
from safetune.search.registry import ALGORITHMS

SEARCH = ConfigOptions(SearchConfig, [
    "model", "datasets", "n_prompts", "n_validation", "pop_size", "n_gen", "algorithm", "samples", "seed", "judge",
    "judges", "batch_size", "harm_budget", "experiment", "cache_dir", "register", "devices", "accelerator",
    "precision", "dtype", "engine", "ray_address", "ray_workers",
], choices={"algorithm": ALGORITHMS, "engine": ENGINES, "dtype": DTYPES})
GUARDS = ConfigOptions(GuardConfig, ["enabled", "constrain", "n_benign", "n_capability"], prefix="guards_")


def space_options(fn):
    """``--system-prompts``, ``--bound`` (repeatable) and ``--bounds``: the search space."""
    fn = click.option("--bounds", "bounds_csv", default=None, metavar="KNOB=LOW:HIGH,...",
                      help="Comma-separated bound overrides (same as repeated --bound).")(fn)
    fn = click.option("--bound", "bounds", multiple=True, metavar="KNOB=LOW:HIGH",
                      help="Override a search bound, e.g. --bound repetition_penalty=0.8:1.3 (repeatable).")(fn)
    return click.option("--system-prompts", default=None, help="Comma-separated system prompt ids to search over.")(fn)


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                             help="Experiment YAML (see experiments/); options given here override it.")


def search_config(config_path, values: dict, search: ConfigOptions = SEARCH) -> SearchConfig:
    """The YAML at ``config_path`` overridden by the options given; pops every option it reads from ``values``."""
    bounds = tuple(values.pop("bounds")) + (split_list(values.pop("bounds_csv"), "--bounds") or ())
    system_prompts = split_list(values.pop("system_prompts"), "--system-prompts")
    return build_search_config(config_path, search.values(values), bounds, system_prompts, GUARDS.values(values))


@click.command()
@config_option
@SEARCH
@GUARDS
@space_options
@tracking_uri_option
@click.option("--resume", "resume_run_id", default=None, help="Parent run id of an interrupted search to continue.")
@no_progress_option
@friendly
def search(config_path, tracking_uri, resume_run_id, no_progress, **values):
    """Run a SafeTune search (NSGA-II), track it in MLflow and register the best configurations."""
    from safetune.jobs.search.preflight import preflight
    from safetune.models import resolve_model

    cfg = preflight(search_config(config_path, values))
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
        echo_summary(outcome.summary)
    if outcome.model_name:
        aliases = ", ".join(f"{a}=v{v}" for a, v in outcome.registered.items())
        click.echo(f"registered {outcome.model_name}: {aliases}")
        uri = f"models:/{outcome.model_name}@champion"
        click.echo(f"load it:   mlflow.pyfunc.load_model('{uri}')")
        click.echo(f"serve it:  mlflow models serve -m '{uri}' --env-manager local --port 5001")
        click.echo(f"check it:  safetune evaluate '{uri}'   (held-out prompts, paired tests, verdict)")
    click.echo(f"report:    safetune report {outcome.parent_run_id}   UI: mlflow ui --backend-store-uri "
               f"{tracking_uri or os.environ.get('MLFLOW_TRACKING_URI', 'sqlite:///mlflow.db')}")


def echo_summary(summary: dict) -> None:
    """Default vs champion on the prompts that chose it: what a person needs to act on the result."""
    names = {"harm_rate": "harm rate", "relevance": "relevance", "benign_helpfulness": "benign helpfulness",
             "fluency_nll": "fluency NLL", "capability": "capability", "incoherence_rate": "incoherence"}
    click.echo(f"\n{'':20s}{'default':>10s}{'champion':>10s}   ({summary['split']} prompts)")
    for key, label in names.items():
        a, b = summary["default"].get(key), summary["champion"].get(key)
        fmt = lambda v: "n/a" if v is None or v != v else f"{v:.3f}"  # noqa: E731
        click.echo(f"{label:20s}{fmt(a):>10s}{fmt(b):>10s}")
    click.echo(f"verdict: {summary['verdict']}\n")
