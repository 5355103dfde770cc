"""The single-process engine against the engine conformance suite (safetune/testing/engines.py).

Its reference is itself one request at a time: an answer depends on its own request only, never on
the batch it shares (per-row decoding, request-seeded sampling), bit for bit in float32.
"""

import pytest

from safetune.cache import Cache
from safetune.components.engines.transformers import TransformersEngine
from safetune.testing.engines import EngineSuite, run_engine


@pytest.fixture(scope="module")
def engine_run(ref, tmp_path_factory):
    engine = TransformersEngine(ref, cache=Cache(tmp_path_factory.mktemp("engine") / "cache.sqlite"), batch_size=4,
                                dtype="float32")  # bit-identical across batches holds in float32 (see conftest)
    one_by_one = TransformersEngine(ref, cache=None, batch_size=1, dtype="float32")
    return run_engine(engine, one_by_one.generate)


class TestConformance(EngineSuite):
    pass


def test_lightning_keeps_quiet_about_what_the_engine_does_on_purpose(ref):
    """The main job's console showed Lightning's warnings about our batch sampler and device transfer
    on every registration; they are intended, so they are filtered, and other warnings are not."""
    import warnings

    from safetune.testing.engines import population

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        TransformersEngine(ref, cache=None, batch_size=4, dtype="float32").generate(population()[:4])
        warnings.warn("an unrelated warning", UserWarning)
    messages = [str(w.message) for w in seen]
    assert not [m for m in messages if "BucketBatchSampler" in m or "transfer_batch_to_device" in m], messages
    assert "an unrelated warning" in messages
