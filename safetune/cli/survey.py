"""`safetune survey`: several models under their own default configurations, on the same prompts.

Models, judges and numbers reach the console; prompts and responses never do (they are in the
child runs' ``responses.json`` tables only).
"""

from __future__ import annotations

import click

from safetune.cli.common import fmt, friendly, no_progress_option, tracking_uri_option
from safetune.cli.options import ConfigOptions
from safetune.config import PARTS, SurveyConfig, split_list

SURVEY = ConfigOptions(SurveyConfig, [
    "datasets", "split", "n_prompts", "samples", "seed", "judge", "extra_judges", "max_new_tokens", "n_benign",
    "n_capability", "batch_size", "experiment", "cache_dir",
], defaults=True, choices={"split": PARTS})


@click.command("survey")
@click.option("--model", "-m", "models", multiple=True, metavar="MODEL",
              help="Alias (see `safetune models`), hub id or local folder (repeatable).")
@click.option("--models", "models_csv", default=None, metavar="A,B,...", help="Comma-separated models (same as -m).")
@SURVEY
@tracking_uri_option
@no_progress_option
@friendly
def survey(models, models_csv, tracking_uri, no_progress, **values):
    """Harm rate of several models under their own default configurations, on the same prompts and
    judge(s), with the guards and pairwise McNemar tests (Holm); one MLflow run, a child per model."""
    from safetune.components.judges.base import check_judge
    from safetune.models import resolve_model

    settings = {k: v for k, v in SURVEY.values(values).items() if v is not None}
    names = tuple(models) + (split_list(models_csv, "--models") or ())
    # Fail fast (one line) on an unknown model or judge, before torch, Lightning and MLflow load.
    for name in (settings["judge"], *settings.get("extra_judges", ())):
        check_judge(name)
    for name in names:
        resolve_model(name)
    from safetune.jobs.survey import run_survey

    cfg = SurveyConfig(models=names, **settings)
    outcome = run_survey(cfg, tracking_uri=tracking_uri, progress=not no_progress)
    table = outcome.table.drop(columns=["model_id"])
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    rates = outcome.categories.pivot(index="category", columns="model", values="harm_rate")
    click.echo("\nharm rate per category:")
    click.echo(rates.to_string(float_format=lambda v: f"{v:.3f}"))
    if len(outcome.pairwise):
        click.echo("\npairwise McNemar exact tests on per-prompt verdicts (Holm-corrected across pairs):")
        cols = ["model_a", "model_b", "n_prompts", "a_only", "b_only", "cohens_h", "mcnemar_p", "mcnemar_p_holm"]
        click.echo(outcome.pairwise[cols].to_string(index=False, float_format=fmt))
    click.echo(f"\nparent run: {outcome.parent_run_id}")
