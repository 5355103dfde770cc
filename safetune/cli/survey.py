"""`safetune survey` (registered into the main group by cli.py).

Models, judges and numbers reach the console; prompts and responses never do (they are in the
child runs' ``responses.json`` tables only).
"""

from __future__ import annotations

import click

from safetune.cli.common import _friendly, csv


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@click.command("survey")
@click.option("--model", "-m", "models", multiple=True, metavar="MODEL",
              help="Alias (see `safetune models`), hub id or local folder (repeatable).")
@click.option("--models", "models_csv", default=None, metavar="A,B,...", help="Comma-separated models (same as -m).")
@click.option("--datasets", default="harmbench-standard", show_default=True,
              help="Comma-separated prompt sets or CSV/JSONL files.")
@click.option("--split", "part", default="holdout", show_default=True, type=click.Choice(["search", "holdout", "all"]))
@click.option("--n-prompts", type=int, default=32, show_default=True)
@click.option("--samples", type=int, default=1, show_default=True, help="Samples per prompt (different seeds).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--judge", default="safetune", show_default=True, help="Primary judge (rates and tests).")
@click.option("--extra-judges", default=None, help="Comma-separated judges logged beside the primary (agreement).")
@click.option("--max-new-tokens", type=int, default=96, show_default=True)
@click.option("--n-benign", type=int, default=16, show_default=True, help="XSTest safe prompts (over-refusal).")
@click.option("--n-capability", type=int, default=8, show_default=True, help="Items per capability task.")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--experiment", default="safetune-survey", show_default=True)
@click.option("--tracking-uri", default=None, help="Default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db")
@click.option("--cache", "cache_path", default=None, help="Cache file (default: ~/.cache/safetune/cache.sqlite).")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@_friendly
def survey(models, models_csv, datasets, part, n_prompts, samples, seed, judge, extra_judges, max_new_tokens,
           n_benign, n_capability, batch_size, experiment, tracking_uri, cache_path, no_progress):
    """Harm rate of several models under their own default configurations, on the same prompts and
    judge(s), with the guards and pairwise McNemar tests (Holm); one MLflow run, a child per model."""
    from safetune.components.judges.base import check_judge
    from safetune.models import resolve_model

    names = tuple(models) + (csv(models_csv, "--models") or ())
    # Fail fast (one line) on an unknown model or judge, before torch, Lightning and MLflow load.
    for name in (judge, *(csv(extra_judges, "--extra-judges") or ())):
        check_judge(name)
    for name in names:
        resolve_model(name)
    from safetune.jobs.survey import SurveyConfig, run_survey

    cfg = SurveyConfig(
        models=names, datasets=csv(datasets, "--datasets") or (), split=part, n_prompts=n_prompts, samples=samples, seed=seed,
        judge=judge, extra_judges=csv(extra_judges, "--extra-judges") or (), max_new_tokens=max_new_tokens, n_benign=n_benign,
        n_capability=n_capability, batch_size=batch_size, experiment=experiment, cache_dir=cache_path,
    )
    outcome = run_survey(cfg, tracking_uri=tracking_uri, progress=not no_progress)
    table = outcome.table.drop(columns=["model_id"])
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    rates = outcome.categories.pivot(index="category", columns="model", values="harm_rate")
    click.echo("\nharm rate per category:")
    click.echo(rates.to_string(float_format=lambda v: f"{v:.3f}"))
    if len(outcome.pairwise):
        click.echo("\npairwise McNemar exact tests on per-prompt verdicts (Holm-corrected across pairs):")
        cols = ["model_a", "model_b", "n_prompts", "a_only", "b_only", "cohens_h", "mcnemar_p", "mcnemar_p_holm"]
        click.echo(outcome.pairwise[cols].to_string(index=False, float_format=_fmt))
    click.echo(f"\nparent run: {outcome.parent_run_id}")
