"""Before the loop (jobs/search/preflight.py, prepare.py): one-line errors before anything loads, the
registry defaults filled in, and a setup drawn from the search side of the fixed split."""

from __future__ import annotations

import dataclasses

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from safetune.config import GuardConfig, SearchConfig, SearchSpace
from safetune.datasets import fixed_split
from safetune.datasets.tasks import TASKS
from safetune.errors import SafetuneError
from safetune.jobs.search.preflight import preflight
from safetune.jobs.search.prepare import log_start, prepare


@pytest.mark.parametrize("change, message", [
    ({"algorithm": "annealing"}, "unknown algorithm 'annealing'; known algorithms: nsga2, random, lagrangian"),
    ({"engine": "tgi"}, "unknown engine 'tgi'"),
    ({"dtype": "int4"}, "unknown dtype 'int4'"),
    ({"judge": "nope"}, "unknown judge 'nope'"),
    ({"judges": ("heuristic", "nope")}, "unknown judge 'nope'"),
    ({"guards": GuardConfig(capability_tasks=("facts", "trivia"))}, "unknown capability task 'trivia'"),
    ({"datasets": ("no-such-set",)}, "unknown dataset"),
])
def test_bad_names_are_one_line_errors(change, message):
    with pytest.raises(SafetuneError, match=message) as info:
        preflight(dataclasses.replace(SearchConfig(), **change))
    assert "\n" not in str(info.value)


def test_preflight_fills_in_every_registered_capability_task():
    cfg = preflight(SearchConfig())
    assert cfg.guards.capability_tasks == tuple(TASKS.names())
    assert preflight(cfg) == cfg  # idempotent: a resumed run compares the same configuration
    chosen = SearchConfig(guards=GuardConfig(capability_tasks=("facts",)))
    assert preflight(chosen).guards.capability_tasks == ("facts",)


def test_prepare_draws_from_the_search_side_and_loads_no_model(tiny_llama, isolated):
    cfg = preflight(SearchConfig(model=tiny_llama, n_prompts=3, pop_size=3, n_gen=1, dtype="float32",
                                 space=SearchSpace.from_dict({"max_new_tokens": [4, 8]}),
                                 guards=GuardConfig(n_benign=2, n_capability=1)))
    setup = prepare(cfg)
    search_side = {it.id for it in fixed_split(cfg.datasets, "search")}
    assert len(setup.prompts) == 3 and {it.id for it in setup.prompts} <= search_side
    assert {it.id for it in setup.benign} <= {it.id for it in fixed_split(cfg.guards.benign_datasets, "search")}
    assert sorted({t.task for t in setup.tasks}) == sorted(TASKS.names())
    assert setup.engine._module is None  # weights load at the first generation, not before
    assert setup.default == cfg.space.decode(cfg.space.encode(setup.declared_default))
    assert setup.default.max_new_tokens == 8 and setup.run_name.endswith("-s0")
    assert setup.algorithm.name == "nsga2" and setup.algorithm.options == {}
    with mlflow.start_run() as run:
        log_start(cfg, setup)
    params = MlflowClient().get_run(run.info.run_id).data.params
    assert params["safetune.n_prompts"] == "3" and params["safetune.dtype"] == "float32"
    assert params["safetune.guards.capability_tasks"] == repr(list(TASKS.names())).replace("'", '"')
