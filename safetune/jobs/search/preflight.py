"""The checks a search runs first: no model, torch or MLflow is needed, so bad input fails in a second.

Every name is checked against its registry and every prompt file is read, before the command loads
a model or opens a run; what a configuration leaves to a registry (every capability task) is filled
in here, so the configuration a run logs and a resume compares is complete.
"""

from __future__ import annotations

from safetune.components.engines.registry import ENGINES
from safetune.components.requests import DTYPES
from safetune.components.judges.base import check_judge
import dataclasses

from safetune.config import SearchConfig
from safetune.datasets import load_prompt_sets
from safetune.datasets.tasks import TASKS
from safetune.errors import SafetuneError
from safetune.search.registry import ALGORITHMS


def preflight(cfg: SearchConfig) -> SearchConfig:
    """``cfg`` checked, with every registry default filled in; one-line errors, before heavy imports."""
    ALGORITHMS.check(cfg.algorithm)
    ENGINES.check(cfg.engine)
    if cfg.dtype not in DTYPES:
        raise SafetuneError(f"unknown dtype {cfg.dtype!r}; known: {', '.join(DTYPES)}")
    # Knobs an engine cannot apply must be bounded to 0 (the engine module is light; its backend is not imported).
    for knob in ENGINES.load(cfg.engine).unsupported_knobs:
        if getattr(cfg.space, knob).high > 0:
            raise SafetuneError(f"the {cfg.engine} engine has no {knob}: bound it with --bound {knob}=0:0")
    for name in (cfg.judge, *cfg.judges):
        check_judge(name)
    tasks = cfg.guards.capability_tasks
    for name in tasks or ():
        TASKS.check(name)
    if cfg.guards.enabled and cfg.guards.n_benign:
        load_prompt_sets(cfg.guards.benign_datasets)
    load_prompt_sets(cfg.datasets)
    if tasks is None:
        cfg = dataclasses.replace(cfg, guards=dataclasses.replace(cfg.guards, capability_tasks=tuple(TASKS.names())))
    return cfg
