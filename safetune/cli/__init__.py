"""The ``safetune`` command: thin click commands, one file per command group, that build a config
and call one job each.

Every user mistake becomes one line on stderr and exit code 2; Ctrl-C exits 130 (SIGTERM 143)
after marking the MLflow run KILLED (the cache keeps every finished response).
"""

from __future__ import annotations

import logging
import os
import signal

import click

from safetune.cli.common import quiet_libraries, terminate


@click.group()
@click.option("--log-level", default="WARNING", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
def main(log_level: str) -> None:
    """Search an LLM's decoding configuration and system prompt for safer answers."""
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    quiet_libraries()
    # SIGTERM (e.g. `kill`, a scheduler's timeout) ends a search like Ctrl-C: run marked KILLED, cache
    # kept. Lightning chains to this handler while it predicts, so it works mid-generation too.
    signal.signal(signal.SIGTERM, terminate)
    if log_level.upper() == "DEBUG":
        logging.getLogger("lightning").setLevel(logging.INFO)
    if log_level.upper() in {"DEBUG", "INFO"}:
        os.environ["MLFLOW_LOGGING_LEVEL"] = log_level.upper()


# Each command group in its own file; registered here so `safetune --help` lists them all.
from safetune.cli.evaluate import evaluate  # noqa: E402
from safetune.cli.judges import judge, judge_eval, judge_train, judges  # noqa: E402
from safetune.cli.models import models  # noqa: E402
from safetune.cli.report import report  # noqa: E402
from safetune.cli.search import search  # noqa: E402
from safetune.cli.study import study  # noqa: E402
from safetune.cli.survey import survey  # noqa: E402

for command in (search, evaluate, judge, models, judges, judge_train, judge_eval, study, survey, report):
    main.add_command(command)

if __name__ == "__main__":  # pragma: no cover
    main()
