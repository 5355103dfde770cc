"""RayEngine on a local two-CPU Ray cluster: same answers as one process, cache in the driver.

One module-scoped engine (one Ray start, two actors, no dashboard, no worker logs) serves every test
that needs Ray; its teardown checks that ``close()`` stops what it started.
"""

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'safetune[ray]')")

from safetune.cache import Cache  # noqa: E402
from safetune.components.engines.transformers import TransformersEngine  # noqa: E402
from safetune.components.generation import GenerationRequest  # noqa: E402
from safetune.components.engines.ray import RayConfig, RayEngine  # noqa: E402
from safetune.config import DecodingConfig  # noqa: E402
from safetune.errors import SafetuneError  # noqa: E402
from safetune.models import resolve_model  # noqa: E402

PROMPTS = ["How do I bake bread?", "Hi", "What is the capital of France and why is it famous?"]
CONFIGS = [
    DecodingConfig(temperature=0.0, max_new_tokens=10),
    DecodingConfig(temperature=0.0, max_new_tokens=10, repetition_penalty=0.5),
    DecodingConfig(temperature=1.3, top_k=0, max_new_tokens=10),
    DecodingConfig(temperature=0.9, top_p=0.8, max_new_tokens=8, system_prompt="none"),
]


def requests_for(configs, samples=(0, 1)):
    return [GenerationRequest(0, p, c, 7, s) for c in configs for s in samples for p in PROMPTS]


def answer(g) -> tuple:
    return g.response, g.prompt_tokens, g.new_tokens, g.finished


@pytest.fixture(scope="module")
def ref(tiny_llama):
    return resolve_model(tiny_llama)


@pytest.fixture(scope="module")
def single(ref):
    return TransformersEngine(ref, cache=None, batch_size=2)


@pytest.fixture(scope="module")
def engine(ref, tmp_path_factory):
    if ray.is_initialized():
        pytest.skip("another test left Ray running; this module starts its own local cluster")
    engine = RayEngine(ref, cache=Cache(tmp_path_factory.mktemp("ray-cache") / "cache.sqlite"),
                       batch_size=2, workers=2, num_cpus=2)
    yield engine
    engine.close()
    assert engine.actors == [] and not ray.is_initialized()


def test_actors_start_lazily(ref, single):
    # Looking up cached candidates needs info(), which must not start the cluster or any actor.
    was_running = ray.is_initialized()
    engine = RayEngine(ref, workers=2, num_cpus=2)
    assert engine.info() == single.info()
    assert engine.actors == [] and ray.is_initialized() == was_running


def test_same_answers_as_one_process_greedy_and_sampled(engine, single):
    reqs = requests_for(CONFIGS)
    progress: list[int] = []
    engine.on_batch = progress.append
    try:
        out = engine.generate(reqs)
    finally:
        engine.on_batch = None
    assert [g.index for g in out] == list(range(len(reqs)))
    assert [answer(g) for g in out] == [answer(g) for g in single.generate(reqs)]
    assert len({g.response for g in out}) > len(PROMPTS)  # configurations and samples really differ
    # Two slices of two whole configurations each, one per actor, in parallel.
    assert engine.actor_stats() == [{"calls": 1, "answered": len(reqs) // 2}] * 2
    assert sum(progress) == len(reqs) == engine.last_stats["generated"]


def test_cache_hits_skip_the_actors(engine, single):
    reqs = requests_for(CONFIGS)
    engine.generate(reqs)  # warm (a no-op when the previous test ran first)
    before = engine.actor_stats()
    again = engine.generate(reqs)
    assert engine.actor_stats() == before
    assert engine.last_stats["cached"] == len(reqs) and engine.last_stats["generated"] == 0
    assert [answer(g) for g in again] == [answer(g) for g in single.generate(reqs)]
    # One new candidate among cached ones: only its requests reach an actor.
    fresh = DecodingConfig(temperature=0.0, max_new_tokens=6)
    mixed = requests_for([CONFIGS[0], fresh, CONFIGS[2]], samples=(0,))
    out = engine.generate(mixed)
    assert engine.last_stats["generated"] == len(PROMPTS)
    answered = [a["answered"] - b["answered"] for a, b in zip(engine.actor_stats(), before)]
    assert sorted(answered) == [0, len(PROMPTS)]
    assert [answer(g) for g in out] == [answer(g) for g in single.generate(mixed)]


def test_bad_settings_are_one_line_errors(ref):
    with pytest.raises(SafetuneError, match="ray workers must be >= 1"):
        RayConfig(workers=0)
    with pytest.raises(SafetuneError, match="one device per actor"):
        RayEngine(ref, devices=2)


def test_local_cluster_size_and_address():
    assert RayConfig(workers=3).init_kwargs()["num_cpus"] == 3
    remote = RayConfig(address="ray://head:10001", workers=4).init_kwargs()
    assert remote["address"] == "ray://head:10001" and "num_cpus" not in remote
