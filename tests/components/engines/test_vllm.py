"""The vLLM engine's parameter mapping, tested without vLLM or a GPU."""

import pytest

from safetune.components.engines.vllm import sampling_params_kwargs
from safetune.config import DecodingConfig
from safetune.errors import SafetuneError


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


def test_search_config_refuses_vllm_with_a_no_repeat_ngram_bound():
    from safetune.config import SearchConfig, SearchSpace

    with pytest.raises(SafetuneError, match="no_repeat_ngram_size=0:0"):
        SearchConfig(engine="vllm")
    SearchConfig(engine="vllm", space=SearchSpace.from_dict({"no_repeat_ngram_size": [0, 0]}))


def test_completion_nll_from_raw_logprobs():
    from types import SimpleNamespace as NS

    from safetune.components.engines.vllm import completion_nll

    step = lambda token, lp: {token: NS(logprob=lp)}  # noqa: E731 - vLLM's per-position {token: Logprob}
    done = NS(token_ids=[5, 6, 2], logprobs=[step(5, -1.0), step(6, -3.0), step(2, -0.1)])
    assert completion_nll(done, stop_ids={2}) == pytest.approx(2.0)  # the stop token is not part of the answer
    assert completion_nll(NS(token_ids=[5], logprobs=None)) is None  # engine without log-probabilities
    assert completion_nll(NS(token_ids=[5, 6], logprobs=[step(5, -1.0), {}])) is None
    assert sampling_params_kwargs(DecodingConfig(), 1)["logprobs"] == 0
