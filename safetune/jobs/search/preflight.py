"""The checks a search runs first: no model, torch or MLflow is needed, so bad input fails in a second.

Every name is checked against its registry (nothing is imported to do so) and every prompt file is
read, before the command loads a model or opens a run.
"""

from __future__ import annotations

from safetune.components.engines.registry import ENGINES
from safetune.components.judges.base import check_judge
from safetune.config import SearchConfig
from safetune.datasets import load_prompt_sets
from safetune.datasets.tasks import TASKS
from safetune.search.registry import ALGORITHMS


def preflight(cfg: SearchConfig) -> None:
    """Cheap checks before heavy imports, so bad input fails in a second, not after model loading."""
    ALGORITHMS.check(cfg.algorithm)
    ENGINES.check(cfg.engine)
    for name in (cfg.judge, *cfg.judges):
        check_judge(name)
    for name in cfg.guards.capability_tasks:
        TASKS.check(name)
    if cfg.guards.enabled and cfg.guards.n_benign:
        load_prompt_sets(cfg.guards.benign_datasets)
    load_prompt_sets(cfg.datasets)
