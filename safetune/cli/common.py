"""What every command shares: one-line errors, clean interrupts, a quiet console."""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings

import click

from safetune.errors import SafetuneError, Terminated, interrupt_note


def terminate(signum, frame):
    """SIGTERM handler: raise like Ctrl-C, so every cleanup written for KeyboardInterrupt runs."""
    raise Terminated


def friendly(fn):
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


def quiet_libraries() -> None:
    """Keep the console for our progress bar and results; libraries' chatter goes to DEBUG."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    # mlflow sets its own loggers to INFO when it is imported (later than this): tell it via its env var.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "mlflow",
                 "transformers", "sentence_transformers", "alembic", "httpx"):
        logging.getLogger(name).setLevel(logging.ERROR)


def fmt(value) -> str:
    """A number for a console table."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


TRACKING_URI_HELP = "Default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db"
tracking_uri_option = click.option("--tracking-uri", default=None, help=TRACKING_URI_HELP)
no_progress_option = click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
