"""The vLLM engine without vLLM or a GPU: its parameter mapping, and the engine conformance suite on
a stand-in ``vllm`` module whose answers are a function of the rendered prompt and sampling parameters."""

import hashlib
import sys
from types import ModuleType, SimpleNamespace

import pytest

from safetune.cache import Cache
from safetune.components.engines.vllm import VLLMEngine, sampling_params_kwargs
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError
from safetune.testing.engines import EngineSuite, run_engine


class FakeLLM:
    """vLLM's ``LLM`` as the engine uses it: one ``generate`` per population, per-request parameters."""

    def __init__(self, model, tensor_parallel_size=1, dtype="auto", **kwargs):
        self.model = model

    def generate(self, prompts, params, use_tqdm=True):
        out = []
        for prompt, p in zip(prompts, params):
            key = hashlib.sha256(f"{prompt}|{sorted(vars(p).items())}".encode()).hexdigest()
            n = 1 + int(key[:2], 16) % p.max_tokens
            out.append(SimpleNamespace(prompt_token_ids=list(range(len(prompt.split()))), outputs=[SimpleNamespace(
                text=f" answer {key[:8]} ", token_ids=list(range(n)), finish_reason="stop" if n % 2 else "length",
                logprobs=None)]))
        return out


@pytest.fixture(scope="module")
def engine_run(ref, tmp_path_factory):
    fake = ModuleType("vllm")
    fake.LLM, fake.SamplingParams = FakeLLM, lambda **kwargs: SimpleNamespace(**kwargs)
    saved = sys.modules.get("vllm")
    sys.modules["vllm"] = fake  # only while the engines are made and generate
    try:
        engine = VLLMEngine(ref, cache=Cache(tmp_path_factory.mktemp("vllm") / "cache.sqlite"))
        return run_engine(engine, VLLMEngine(ref, cache=None).generate)  # the stand-in is deterministic
    finally:
        if saved is None:
            sys.modules.pop("vllm")
        else:
            sys.modules["vllm"] = saved


class TestConformance(EngineSuite):
    pass


def test_identity_names_vllm_its_sampler_differs(engine_run, single):
    assert engine_run.engine.info() == {**single.info(), "engine": "vllm", "dtype": "auto"}


def test_sampled_config_maps_every_knob():
    c = DecodingConfig(temperature=0.7, top_p=0.9, top_k=40, repetition_penalty=0.8, max_new_tokens=48)
    assert sampling_params_kwargs(c, seed=7) == {
        "n": 1, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "repetition_penalty": 0.8,
        "max_tokens": 48, "seed": 7, "skip_special_tokens": True, "logprobs": 0,
    }


def test_greedy_and_off_values():
    greedy = sampling_params_kwargs(DecodingConfig(temperature=0.0, top_p=0.5, top_k=10), seed=0)
    assert (greedy["temperature"], greedy["top_p"], greedy["top_k"]) == (0.0, 1.0, -1)
    no_top_k = sampling_params_kwargs(DecodingConfig(temperature=1.0, top_k=0), seed=0)
    assert no_top_k["top_k"] == -1


def test_no_repeat_ngram_is_refused_not_dropped():
    with pytest.raises(SafetuneError, match="no_repeat_ngram_size"):
        sampling_params_kwargs(DecodingConfig(no_repeat_ngram_size=3), seed=0)


def test_missing_vllm_is_one_clear_error(tiny_llama):
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    from safetune.components.engines import get_engine
    from safetune.models import resolve_model

    with pytest.raises(SafetuneError, match="pip install vllm"):
        get_engine("vllm", ref=resolve_model(tiny_llama))


def test_a_search_on_vllm_must_bound_no_repeat_ngram_to_zero():
    from safetune.config import SearchConfig, SearchSpace
    from safetune.jobs.search.preflight import preflight

    with pytest.raises(SafetuneError, match="no_repeat_ngram_size=0:0"):
        preflight(SearchConfig(engine="vllm"))
    preflight(SearchConfig(engine="vllm", space=SearchSpace.from_dict({"no_repeat_ngram_size": [0, 0]})))


def test_completion_nll_from_raw_logprobs():
    from types import SimpleNamespace as NS

    from safetune.components.engines.vllm import completion_nll

    step = lambda token, lp: {token: NS(logprob=lp)}  # noqa: E731 - vLLM's per-position {token: Logprob}
    done = NS(token_ids=[5, 6, 2], logprobs=[step(5, -1.0), step(6, -3.0), step(2, -0.1)])
    assert completion_nll(done, stop_ids={2}) == pytest.approx(2.0)  # the stop token is not part of the answer
    assert completion_nll(NS(token_ids=[5], logprobs=None)) is None  # engine without log-probabilities
    assert completion_nll(NS(token_ids=[5, 6], logprobs=[step(5, -1.0), {}])) is None
    assert sampling_params_kwargs(DecodingConfig(), 1)["logprobs"] == 0
