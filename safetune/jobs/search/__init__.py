"""The search job: ``prepare`` (prompts, engine, evaluator), ``loop`` (the default, then the
algorithm's populations, each candidate a child run), ``finish`` (front, validation, champion,
registry, report), inside one MLflow parent run. ``preflight`` holds the checks a command runs
before any of it.

Importing this package is cheap (the CLI does it to fail fast); ``run_search`` imports the rest.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from safetune.config import SearchConfig

if TYPE_CHECKING:
    from safetune.jobs.search.finish import SearchOutcome

log = logging.getLogger(__name__)


def run_search(cfg: SearchConfig, tracking_uri: str | None = None, resume_run_id: str | None = None,
               progress: bool = True) -> "SearchOutcome":
    from safetune.jobs.progress import Progress
    from safetune.jobs.search.finish import finish
    from safetune.jobs.search.loop import run_loop
    from safetune.jobs.search.preflight import preflight
    from safetune.jobs.search.prepare import log_start, prepare
    from safetune.tracking import runs as tracking

    cfg = preflight(cfg)
    tracking.setup_tracking(tracking_uri)
    if resume_run_id:
        tracking.check_resumable(resume_run_id, cfg.experiment, cfg.to_dict())
    setup = prepare(cfg)
    # closing(): Ray actors and Ray itself end with the search, also on errors and Ctrl-C.
    with contextlib.closing(setup.engine), tracking.parent_run(cfg.experiment, setup.run_name, resume_run_id) as parent:
        parent_id = parent.info.run_id
        done = {}
        if resume_run_id:
            dropped = tracking.discard_unfinished_children(parent_id)
            if dropped:
                log.info("resume: discarded %d half-logged candidate run(s)", dropped)
            done = tracking.existing_candidates(parent_id)
        log_start(cfg, setup)
        bar = Progress(setup.engine, (cfg.pop_size * cfg.n_gen + 1) * setup.evaluator.responses_per_candidate,
                       "search", progress)
        trail = run_loop(cfg, setup, done, bar)
        bar.close()
        outcome = finish(cfg, setup, trail, parent_id, progress)
    return outcome
