"""Shared pieces of the click commands: one-line errors, clean interrupts."""

from __future__ import annotations

import functools
import sys

import click

from safetune.errors import SafetuneError


def _terminate(signum, frame):
    raise KeyboardInterrupt


def _friendly(fn):
    """Turn SafetuneError into a one-line error and KeyboardInterrupt into exit 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SafetuneError as exc:
            click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted: the run is marked KILLED; finished work is cached, re-run to resume", err=True)
            sys.exit(130)

    return wrapper
