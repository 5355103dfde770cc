"""Shared pieces of the click commands: one-line errors, clean interrupts."""

from __future__ import annotations

import functools
import sys

import click

from safetune.errors import SafetuneError, Terminated, interrupt_note


def _terminate(signum, frame):
    raise Terminated


def csv(value: str | None, option: str = "the option") -> tuple[str, ...] | None:
    """'a, b' -> ('a', 'b'); None (not given) -> None; given but naming nothing (',') is an error,
    never a silent "use the default"."""
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise SafetuneError(f"{option} {value!r} names nothing: give a comma-separated list, or leave it out")
    return items


def _friendly(fn):
    """Turn SafetuneError into a one-line error, Ctrl-C into exit 130 and SIGTERM into exit 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SafetuneError as exc:
            click.echo(f"error: {str(exc).splitlines()[0]}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as exc:
            click.echo(f"interrupted: {interrupt_note(exc)}", err=True)
            sys.exit(143 if isinstance(exc, Terminated) else 130)

    return wrapper
