"""Fixtures every engine's tests share: the tiny model's reference, and the single-process engine
whose answers the other engines must reproduce."""

import pytest

from safetune.components.engines.transformers import TransformersEngine
from safetune.models import resolve_model


@pytest.fixture(scope="module")
def ref(tiny_llama):
    return resolve_model(tiny_llama)


@pytest.fixture(scope="module")
def single(ref):
    """The single-process engine, no cache: what every engine's answers are compared with. Engines
    under test run float32 too: in bfloat16 a batch's shape changes rounding, so a response is its
    own request's only up to that (engines/base.py: generation_key)."""
    return TransformersEngine(ref, cache=None, batch_size=2, dtype="float32")
