"""RayEngine on a local two-CPU Ray cluster: the engine conformance suite (same answers as one
process, cache in the driver), and how the work is split between actors.

One module-scoped engine (one Ray start, two actors, no dashboard, no worker logs) serves every test
that needs Ray; its teardown checks that ``close()`` stops what it started.
"""

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'safetune[ray]')")

from safetune.cache import Cache  # noqa: E402
from safetune.components.generation import GenerationRequest  # noqa: E402
from safetune.components.engines.ray import RayConfig, RayEngine  # noqa: E402
from safetune.config import DecodingConfig  # noqa: E402
from safetune.errors import SafetuneError  # noqa: E402
from safetune.testing.engines import CONFIGS, PROMPTS, EngineSuite, answer, run_engine  # noqa: E402


@pytest.fixture(scope="module")
def engine_run(ref, single, tmp_path_factory):
    """One Ray start, two actors, used by the conformance suite and the checks below; its teardown checks
    that ``close()`` stops what it started."""
    if ray.is_initialized():
        pytest.skip("another test left Ray running; this module starts its own local cluster")
    engine = RayEngine(ref, cache=Cache(tmp_path_factory.mktemp("ray-cache") / "cache.sqlite"),
                       batch_size=2, workers=2, num_cpus=2, dtype="float32")
    yield run_engine(engine, single.generate)
    engine.close()
    assert engine.actors == [] and not ray.is_initialized()


def test_actors_start_lazily(ref, single):
    # Looking up cached candidates needs info(), which must not start the cluster or any actor.
    was_running = ray.is_initialized()
    engine = RayEngine(ref, workers=2, num_cpus=2, dtype="float32")
    assert engine.info() == single.info()
    assert engine.actors == [] and ray.is_initialized() == was_running


def test_slices_of_whole_configurations_one_per_actor_and_cache_hits_skip_them(engine_run, single):
    engine, distinct = engine_run.engine, len(engine_run.requests) - 1
    # The first call: two slices of two whole configurations each, one per actor, in parallel; the
    # second (cached) reached no actor.
    assert engine.actor_stats() == [{"calls": 1, "answered": distinct // 2}] * 2
    before = engine.actor_stats()
    # One new candidate among cached ones: only its requests reach an actor.
    fresh = DecodingConfig(temperature=0.0, max_new_tokens=6)
    mixed = [GenerationRequest(0, p, c, 7, 0) for c in (CONFIGS[0], fresh, CONFIGS[2]) for p in PROMPTS]
    out = engine.generate(mixed)
    assert engine.last_stats["generated"] == len(PROMPTS)
    answered = [a["answered"] - b["answered"] for a, b in zip(engine.actor_stats(), before)]
    assert sorted(answered) == [0, len(PROMPTS)]
    assert [answer(g) for g in out] == [answer(g) for g in single.generate(mixed)]


# Last in the module: the suite ends by closing the engine (the fixture's teardown checks Ray stopped).
class TestConformance(EngineSuite):
    pass


def test_bad_settings_are_one_line_errors(ref):
    with pytest.raises(SafetuneError, match="ray workers must be >= 1"):
        RayConfig(workers=0)
    with pytest.raises(SafetuneError, match="one device per actor"):
        RayEngine(ref, devices=2)


def test_local_cluster_size_and_address():
    assert RayConfig(workers=3).init_kwargs()["num_cpus"] == 3
    remote = RayConfig(address="ray://head:10001", workers=4).init_kwargs()
    assert remote["address"] == "ray://head:10001" and "num_cpus" not in remote
