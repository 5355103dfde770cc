"""`safetune evaluate`: registered configurations against the model's default, on held-out prompts."""

from __future__ import annotations

import click

from safetune.cli.common import friendly, no_progress_option, tracking_uri_option
from safetune.cli.options import ConfigOptions
from safetune.config import PARTS, EvaluateConfig

EVALUATE = ConfigOptions(EvaluateConfig, [
    "model", "datasets", "split", "n_prompts", "samples", "seed", "judge", "n_benign", "n_capability", "batch_size",
    "experiment", "cache_dir",
], defaults=True, choices={"split": PARTS})


@click.command()
@click.argument("targets", nargs=-1)
@EVALUATE
@tracking_uri_option
@no_progress_option
@friendly
def evaluate(targets, tracking_uri, no_progress, **values):
    """Evaluate registered models (models:/NAME@ALIAS), config JSON files and the model's default
    configuration on the holdout split; logs one MLflow run with a child per target."""
    from safetune.jobs.evaluate import run_evaluate

    settings = EVALUATE.values(values)
    cfg = EvaluateConfig(targets=tuple(targets), **{k: v for k, v in settings.items() if v is not None})
    table, tests = run_evaluate(cfg, tracking_uri=tracking_uri, progress=not no_progress)
    click.echo(table.to_string(index=False))
    if len(tests):
        click.echo("\npaired tests vs default (Holm-corrected across targets):")
        click.echo(tests.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        click.echo("")
        for target, verdict in zip(tests["target"], tests["verdict"]):
            click.echo(f"verdict: {target}: {verdict}")
