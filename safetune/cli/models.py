"""`safetune models`: the model aliases and which of them load offline here."""

from __future__ import annotations

import click

from safetune.cli.common import friendly


@click.command()
@friendly
def models():
    """List model aliases and whether each is available offline here."""
    from safetune.models import list_models

    for row in list_models():
        status = "offline" if row["offline"] else "needs hub/cache"
        click.echo(f"{row['alias']:<20} {row['hub_id']:<38} {status:<16} {row['description']}")
    click.echo("Any hub id (org/name) or local model folder is accepted too.")
