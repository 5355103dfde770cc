"""`safetune report RUN_ID`.

Prints only where the report went: the page itself holds numbers and category names, never
prompt or response text.
"""

from __future__ import annotations

import click

from safetune.cli.common import friendly, tracking_uri_option


@click.command("report")
@click.argument("run_id")
@click.option("-o", "--output", "output_path", type=click.Path(dir_okay=False), default=None,
              help="Where to write the HTML (default: report-RUN_ID.html in the working directory).")
@tracking_uri_option
@click.option("--alpha", type=float, default=0.05, show_default=True, help="CI level 1-alpha of the importance models.")
@click.option("--log-artifact/--no-log-artifact", default=True, show_default=True,
              help="Also log the page to the search run as report.html.")
@friendly
def report(run_id, output_path, tracking_uri, alpha, log_artifact):
    """HTML report of a search parent run: config, Pareto front, hypervolume, harm by category,
    parameter importance and any held-out evaluation of its registered configurations."""
    from safetune.analysis.importance import ImportanceConfig
    from safetune.analysis.report import REPORT_ARTIFACT, ReportConfig, write_report
    from safetune.tracking.runs import setup_tracking

    setup_tracking(tracking_uri)
    cfg = ReportConfig(importance=ImportanceConfig(alpha=alpha))
    path, _ = write_report(run_id, output_path or f"report-{run_id}.html", cfg, log_artifact=log_artifact)
    click.echo(f"wrote {path}")
    if log_artifact:
        click.echo(f"logged to run {run_id} as {REPORT_ARTIFACT}")
