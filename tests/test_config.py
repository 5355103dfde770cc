"""safetune/config.py and safetune/prompts.py: candidate configs, the search space, search settings."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from safetune.config import (
    GREEDY_BELOW, Bound, DecodingConfig, GuardConfig, SearchConfig, SearchSpace, build_search_config, load_yaml,
    parse_bound, split_list,
)
from safetune.errors import SafetuneError
from safetune.prompts import SYSTEM_PROMPTS

SAMPLING_KNOBS = {"temperature", "top_p", "top_k"}


def one_line_error(exc_info) -> str:
    message = str(exc_info.value)
    assert message and "\n" not in message
    return message


# --- prompts ---------------------------------------------------------------------------------------


def test_prompt_catalogue_has_default_none_and_safety_prompts():
    assert SYSTEM_PROMPTS["default"] is None  # no system message at all
    assert SYSTEM_PROMPTS["none"] == ""  # an explicit empty one
    others = {k: v for k, v in SYSTEM_PROMPTS.items() if k not in ("default", "none")}
    assert others and all(isinstance(v, str) and v.strip() for v in others.values())
    assert len(set(others.values())) == len(others)  # no two ids share a text


@pytest.mark.parametrize("key", list(SYSTEM_PROMPTS))
def test_system_prompt_text_comes_from_catalogue(key):
    assert DecodingConfig(system_prompt=key).system_prompt_text == SYSTEM_PROMPTS[key]


# --- DecodingConfig ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.01}, "top_p"),
        ({"top_p": float("nan")}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"repetition_penalty": -1.0}, "repetition_penalty"),
        ({"no_repeat_ngram_size": -1}, "no_repeat_ngram_size"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"system_prompt": "no-such-prompt"}, "no-such-prompt"),
    ],
)
def test_decoding_config_rejects_bad_values(kwargs, word):
    with pytest.raises(SafetuneError) as exc_info:
        DecodingConfig(**kwargs)
    assert word in one_line_error(exc_info)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"temperature": 0.0, "top_p": 1.0, "top_k": 0},
        {"top_p": 0.01, "repetition_penalty": 0.1, "max_new_tokens": 1, "no_repeat_ngram_size": 0},
        {"temperature": 5.0, "top_k": 1000, "system_prompt": "reflect"},
    ],
)
def test_decoding_config_accepts_edge_values(kwargs):
    DecodingConfig(**kwargs)


@pytest.mark.parametrize("temperature", [0.0, 0.01, GREEDY_BELOW - 1e-6])
def test_greedy_below_threshold_omits_sampling_knobs(temperature):
    cfg = DecodingConfig(temperature=temperature, top_p=0.7, top_k=40, repetition_penalty=0.8,
                         no_repeat_ngram_size=3, max_new_tokens=50)
    kwargs = cfg.generation_kwargs()
    assert cfg.do_sample is False
    assert kwargs["do_sample"] is False
    assert not SAMPLING_KNOBS & set(kwargs)
    assert kwargs["repetition_penalty"] == 0.8
    assert kwargs["no_repeat_ngram_size"] == 3
    assert kwargs["max_new_tokens"] == 50


@pytest.mark.parametrize("temperature", [GREEDY_BELOW, 0.7, 1.5])
def test_sampling_at_or_above_threshold_passes_sampling_knobs(temperature):
    cfg = DecodingConfig(temperature=temperature, top_p=0.7, top_k=40, repetition_penalty=1.2,
                         no_repeat_ngram_size=2, max_new_tokens=33)
    kwargs = cfg.generation_kwargs()
    assert cfg.do_sample is True
    assert kwargs == {
        "do_sample": True, "temperature": temperature, "top_p": 0.7, "top_k": 40,
        "repetition_penalty": 1.2, "no_repeat_ngram_size": 2, "max_new_tokens": 33,
    }


def test_digest_is_short_hex_and_equal_for_equal_configs():
    a = DecodingConfig(temperature=0.3, top_k=7, system_prompt="policy")
    b = DecodingConfig(system_prompt="policy", top_k=7, temperature=0.3)
    assert a.digest() == b.digest() == a.digest()
    assert len(a.digest()) == 12
    int(a.digest(), 16)  # hex


def test_digest_is_stable_across_processes():
    """The digest identifies candidates in runs and caches, so it must not depend on the process
    (e.g. no ``hash()`` with per-process salt, no set ordering)."""
    cfg = DecodingConfig(temperature=0.37, top_p=0.9, top_k=12, repetition_penalty=0.85,
                         no_repeat_ngram_size=2, max_new_tokens=77, system_prompt="balanced")
    code = (
        "from safetune.config import DecodingConfig; print(DecodingConfig(temperature=0.37, top_p=0.9, "
        "top_k=12, repetition_penalty=0.85, no_repeat_ngram_size=2, max_new_tokens=77, "
        "system_prompt='balanced').digest())"
    )
    outs = set()
    for hashseed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        outs.add(out.stdout.strip())
    assert outs == {cfg.digest()}


CHANGES = {
    "temperature": 0.71,
    "top_p": 0.95,
    "top_k": 5,
    "repetition_penalty": 0.9,
    "no_repeat_ngram_size": 3,
    "max_new_tokens": 65,
    "system_prompt": "persona",
}


@pytest.mark.parametrize("field, value", list(CHANGES.items()))
def test_digest_changes_when_any_field_changes(field, value):
    base = DecodingConfig()
    assert getattr(base, field) != value
    assert dataclasses.replace(base, **{field: value}).digest() != base.digest()


def test_digests_unique_over_a_grid():
    configs = [
        DecodingConfig(temperature=t, top_p=p, top_k=k, system_prompt=s)
        for t in (0.0, 0.5, 1.0)
        for p in (0.8, 1.0)
        for k in (0, 10)
        for s in SYSTEM_PROMPTS
    ]
    assert len({c.digest() for c in configs}) == len(configs)


def test_to_dict_from_dict_round_trip():
    cfg = DecodingConfig(temperature=0.2, top_p=0.6, top_k=3, repetition_penalty=0.75,
                         no_repeat_ngram_size=4, max_new_tokens=90, system_prompt="brief-rule")
    data = cfg.to_dict()
    assert data["system_prompt"] == "brief-rule" and data["top_k"] == 3
    again = DecodingConfig.from_dict(data)
    assert again == cfg
    assert again.digest() == cfg.digest()


def test_from_dict_partial_uses_defaults():
    assert DecodingConfig.from_dict({"temperature": 0.4}) == DecodingConfig(temperature=0.4)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(SafetuneError) as exc_info:
        DecodingConfig.from_dict({"temperature": 0.4, "temprature": 0.5, "beam": 2})
    message = one_line_error(exc_info)
    assert "temprature" in message and "beam" in message


def test_from_dict_validates_values():
    with pytest.raises(SafetuneError):
        DecodingConfig.from_dict({"top_p": 2.0})


# --- SearchSpace -------------------------------------------------------------------------------------


def test_default_space_is_valid_and_covers_all_prompts():
    space = SearchSpace()
    assert space.n_var == len(SearchSpace.knobs()) + 1
    lows, highs = space.bounds()
    assert len(lows) == len(highs) == space.n_var
    assert all(lo <= hi for lo, hi in zip(lows, highs))
    assert set(space.system_prompts) == set(SYSTEM_PROMPTS)


@pytest.mark.parametrize(
    "knob, bound",
    [
        ("temperature", Bound(-0.1, 1.0)),
        ("temperature", Bound(0.0, 5.1)),
        ("temperature", Bound(1.0, 0.5)),  # low > high
        ("top_p", Bound(0.0, 1.0)),
        ("top_p", Bound(0.5, 1.2)),
        ("top_k", Bound(0, 1001, integer=True)),
        ("repetition_penalty", Bound(0.05, 1.0)),
        ("no_repeat_ngram_size", Bound(0, 21, integer=True)),
        ("max_new_tokens", Bound(0, 64, integer=True)),
        ("max_new_tokens", Bound(32, 5000, integer=True)),
    ],
)
def test_space_rejects_bounds_outside_limits(knob, bound):
    with pytest.raises(SafetuneError) as exc_info:
        SearchSpace(**{knob: bound})
    assert knob in one_line_error(exc_info)


@pytest.mark.parametrize("knob", SearchSpace.knobs())
def test_space_accepts_bounds_at_the_limits(knob):
    lo, hi = SearchSpace.LIMITS[knob]
    integer = getattr(SearchSpace, knob).integer
    space = SearchSpace(**{knob: Bound(lo, hi, integer=integer)})
    assert getattr(space, knob).low == lo


def test_space_rejects_bad_system_prompts():
    with pytest.raises(SafetuneError) as exc_info:
        SearchSpace(system_prompts=("default", "nope"))
    assert "nope" in one_line_error(exc_info)
    with pytest.raises(SafetuneError) as exc_info:
        SearchSpace(system_prompts=())
    one_line_error(exc_info)


def test_decode_clips_out_of_bounds_values():
    space = SearchSpace()
    lows, highs = space.bounds()
    below = space.decode([lo - 100 for lo in lows[:-1]] + [-5.0])
    above = space.decode([hi + 100 for hi in highs[:-1]] + [99.0])
    for name in SearchSpace.knobs():
        bound = getattr(space, name)
        assert getattr(below, name) == bound.low
        assert getattr(above, name) == bound.high
    assert below.system_prompt == space.system_prompts[0]
    assert above.system_prompt == space.system_prompts[-1]


def test_decode_rounds_integer_knobs_and_rounds_floats_to_4_places():
    space = SearchSpace()
    cfg = space.decode([0.123456789, 0.87654321, 41.6, 1.000049, 2.4, 63.5001, 0.0])
    assert cfg.top_k == 42 and isinstance(cfg.top_k, int)
    assert cfg.no_repeat_ngram_size == 2 and isinstance(cfg.no_repeat_ngram_size, int)
    assert cfg.max_new_tokens == 64 and isinstance(cfg.max_new_tokens, int)
    assert cfg.temperature == 0.1235
    assert cfg.top_p == 0.8765
    assert cfg.repetition_penalty == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=7, max_size=7))
def test_decode_always_lands_inside_the_space(x):
    space = SearchSpace()
    cfg = space.decode(x)
    for name in SearchSpace.knobs():
        bound = getattr(space, name)
        value = getattr(cfg, name)
        assert bound.low <= value <= bound.high
        if bound.integer:
            assert isinstance(value, int)
    assert cfg.system_prompt in space.system_prompts


@pytest.mark.parametrize("prompts", [tuple(SYSTEM_PROMPTS), ("policy",), ("none", "reflect", "default")])
def test_every_system_prompt_index_is_reachable(prompts):
    space = SearchSpace(system_prompts=prompts)
    lows, highs = space.bounds()
    lo, hi = lows[-1], highs[-1]
    n = 2000
    reached = [space.decode(lows[:-1] + [lo + (hi - lo) * i / n]).system_prompt for i in range(n + 1)]
    assert set(reached) == set(prompts)
    # Each prompt owns an equal-width slice of the coordinate, in catalogue order.
    counts = [reached.count(p) for p in prompts]
    assert max(counts) - min(counts) <= 2
    assert reached[0] == prompts[0] and reached[-1] == prompts[-1]


def _configs_inside(space: SearchSpace):
    def real(bound: Bound):  # values already at decode's 4-decimal precision
        return st.integers(round(bound.low * 10_000), round(bound.high * 10_000)).map(lambda i: i / 10_000)

    def integer(bound: Bound):
        return st.integers(int(bound.low), int(bound.high))

    knobs = {
        name: (integer if getattr(space, name).integer else real)(getattr(space, name))
        for name in SearchSpace.knobs()
    }
    return st.builds(DecodingConfig, system_prompt=st.sampled_from(space.system_prompts), **knobs)


DEFAULT_SPACE = SearchSpace()
NARROW_SPACE = SearchSpace(temperature=Bound(0.2, 0.9), top_k=Bound(5, 20, integer=True),
                           system_prompts=("persona", "none"))
SINGLE_PROMPT_SPACE = SearchSpace(system_prompts=("balanced",))


@pytest.mark.parametrize("space", [DEFAULT_SPACE, NARROW_SPACE, SINGLE_PROMPT_SPACE],
                         ids=["default", "narrow", "single-prompt"])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_encode_decode_round_trip_inside_bounds(space, data):
    cfg = data.draw(_configs_inside(space))
    vector = space.encode(cfg)
    lows, highs = space.bounds()
    assert len(vector) == space.n_var
    assert all(lo <= v <= hi for lo, v, hi in zip(lows, vector, highs))
    assert space.decode(vector) == cfg


def test_encode_clips_configs_outside_the_space():
    space = NARROW_SPACE
    cfg = DecodingConfig(temperature=1.4, top_k=50, system_prompt="policy")
    decoded = space.decode(space.encode(cfg))
    assert decoded.temperature == 0.9
    assert decoded.top_k == 20
    assert decoded.system_prompt in space.system_prompts


def test_space_from_dict_accepts_low_high_lists():
    space = SearchSpace.from_dict({
        "temperature": [0.1, 0.9],
        "top_k": [5, 50],
        "max_new_tokens": (16, 32),
        "system_prompts": ["policy", "reflect"],
    })
    assert space.temperature == Bound(0.1, 0.9)
    assert space.top_k == Bound(5, 50, integer=True)
    assert space.max_new_tokens == Bound(16, 32, integer=True)
    assert space.system_prompts == ("policy", "reflect")
    assert space.top_p == SearchSpace().top_p  # untouched knobs keep their defaults
    cfg = space.decode([0.5, 0.7, 12.7, 1.0, 1.0, 20.2, 1.5])
    assert cfg.top_k == 13 and isinstance(cfg.top_k, int)
    assert cfg.max_new_tokens == 20 and cfg.system_prompt == "reflect"


def test_space_from_dict_accepts_low_high_mappings_and_round_trips():
    space = SearchSpace.from_dict({"repetition_penalty": {"low": 0.8, "high": 1.2}})
    assert space.repetition_penalty == Bound(0.8, 1.2)
    assert SearchSpace.from_dict(space.to_dict()) == space
    assert SearchSpace.from_dict(NARROW_SPACE.to_dict()) == NARROW_SPACE


@pytest.mark.parametrize(
    "data",
    [
        {"temprature": [0.1, 0.9]},
        {"temperature": [0.1, 9.0]},  # outside LIMITS
        {"temperature": [0.9, 0.1]},  # low > high
        {"temperature": [0.1]},
        {"temperature": [0.1, 0.5, 0.9]},
        {"temperature": 0.5},
        {"temperature": {"low": 0.1}},
        {"temperature": ["a", "b"]},
        {"system_prompts": ["nope"]},
    ],
)
def test_space_from_dict_rejects_bad_input_with_one_line(data):
    with pytest.raises(SafetuneError) as exc_info:
        SearchSpace.from_dict(data)
    one_line_error(exc_info)


# --- SearchConfig ------------------------------------------------------------------------------------


def test_search_config_defaults_are_valid():
    cfg = SearchConfig()
    assert cfg.pop_size >= 2 and cfg.n_prompts >= 1
    data = cfg.to_dict()
    assert data["space"] == SearchSpace().to_dict()
    assert data["default_config"] is None
    with_default = SearchConfig(default_config=DecodingConfig(temperature=0.3)).to_dict()
    assert with_default["default_config"]["temperature"] == 0.3


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"pop_size": 1}, "pop_size"),
        ({"pop_size": 0}, "pop_size"),
        ({"n_prompts": 0}, "n_prompts"),
        ({"n_gen": 0}, "n_gen"),
        ({"samples": 0}, "samples"),
        ({"batch_size": 0}, "batch_size"),
        ({"devices": 0}, "devices"),
        ({"harm_budget": -0.01}, "harm_budget"),
        ({"harm_budget": 1.01}, "harm_budget"),
        ({"datasets": ()}, "dataset"),
    ],
)
def test_search_config_rejects_bad_values(kwargs, word):
    with pytest.raises(SafetuneError) as exc_info:
        SearchConfig(**kwargs)
    assert word in one_line_error(exc_info)


@pytest.mark.parametrize("budget", [None, 0.0, 0.5, 1.0])
def test_search_config_accepts_budgets_in_range(budget):
    assert SearchConfig(harm_budget=budget, pop_size=2).harm_budget == budget

# --- experiment YAML files and overrides (build_search_config) ----------------------------------------

EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))


def write(tmp_path, text: str, name="exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_yaml_loads_into_search_config(path):
    raw = yaml.safe_load(path.read_text())
    cfg = build_search_config(path, {})
    assert isinstance(cfg, SearchConfig)
    for key, value in raw.items():
        if key == "guards":
            for gkey, gvalue in value.items():
                assert getattr(cfg.guards, gkey) == (tuple(gvalue) if isinstance(gvalue, list) else gvalue), gkey
            continue
        if key == "space":
            continue
        expected = tuple(value) if isinstance(value, list) else value
        assert getattr(cfg, key) == expected, key
    for knob in SearchSpace.knobs():
        bound = getattr(cfg.space, knob)
        expected = raw["space"].get(knob, [getattr(SearchSpace, knob).low, getattr(SearchSpace, knob).high])
        assert [bound.low, bound.high] == expected
        assert bound.integer == getattr(SearchSpace, knob).integer
    assert list(cfg.space.system_prompts) == raw["space"]["system_prompts"]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_yaml_holds_overrides_only(path):
    """Defaults live once, in the dataclasses: a YAML value equal to the default is a second copy."""
    raw = yaml.safe_load(path.read_text())
    defaults = {"space": SearchSpace().to_dict(), "guards": dataclasses.asdict(GuardConfig()),
                **{k: v for k, v in dataclasses.asdict(SearchConfig()).items() if k not in ("space", "guards")}}
    defaults["space"] = {k: ([v["low"], v["high"]] if isinstance(v, dict) else v) for k, v in defaults["space"].items()}
    norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    for key, value in raw.items():
        if key in ("space", "guards"):
            for sub, sub_value in value.items():
                assert norm(sub_value) != norm(defaults[key][sub]), f"{key}.{sub} repeats the default"
        else:
            assert norm(value) != norm(defaults[key]), f"{key} repeats the default"


def test_yaml_values_reach_the_config(tmp_path):
    path = write(tmp_path, """
model: some/model
datasets: [harmbench, advbench]
pop_size: 6
n_gen: 3
harm_budget: 0.2
hv_ref: [1.0, 0.5]
space:
  temperature: [0.2, 0.8]
  top_k: {low: 1, high: 9}
  system_prompts: [policy, none]
default_config:
  temperature: 0.6
  top_p: 0.9
""")
    cfg = build_search_config(path, {})
    assert cfg.model == "some/model"
    assert cfg.datasets == ("harmbench", "advbench")
    assert (cfg.pop_size, cfg.n_gen, cfg.harm_budget) == (6, 3, 0.2)
    assert cfg.hv_ref == (1.0, 0.5)
    assert cfg.space.temperature == Bound(0.2, 0.8)
    assert cfg.space.top_k == Bound(1, 9, integer=True)
    assert cfg.space.top_p == SearchSpace().top_p
    assert cfg.space.system_prompts == ("policy", "none")
    assert cfg.default_config == DecodingConfig(temperature=0.6, top_p=0.9)


def test_no_file_gives_defaults():
    assert build_search_config(None, {}) == SearchConfig()


def test_empty_file_gives_defaults(tmp_path):
    assert build_search_config(write(tmp_path, "# nothing\n"), {}) == SearchConfig()


def test_cli_overrides_win_and_none_means_not_given(tmp_path):
    path = write(tmp_path, "pop_size: 6\nn_gen: 3\nseed: 1\nmodel: file/model\nharm_budget: 0.3\n")
    overrides = {"pop_size": 10, "seed": 5, "model": None, "n_gen": None, "harm_budget": None,
                 "datasets": ("advbench",), "register": False}
    cfg = build_search_config(path, overrides)
    assert cfg.pop_size == 10 and cfg.seed == 5 and cfg.datasets == ("advbench",)
    assert cfg.register is False  # a False override is a value, not "not given"
    assert cfg.model == "file/model" and cfg.n_gen == 3 and cfg.harm_budget == 0.3


def test_datasets_string_is_split_on_commas():
    assert build_search_config(None, {"datasets": "harmbench,advbench"}).datasets == ("harmbench", "advbench")


def test_bounds_and_system_prompts_override_the_file_space(tmp_path):
    path = write(tmp_path, "space:\n  temperature: [0.2, 0.8]\n  top_p: [0.6, 0.9]\n"
                           "  system_prompts: [policy]\n")
    cfg = build_search_config(path, {}, bounds=("temperature=0.1:0.5", "top_k=2:8"),
                              system_prompts=("reflect", "none"))
    assert cfg.space.temperature == Bound(0.1, 0.5)
    assert cfg.space.top_k == Bound(2, 8, integer=True)
    assert cfg.space.top_p == Bound(0.6, 0.9)  # from the file, untouched by --bound
    assert cfg.space.system_prompts == ("reflect", "none")


def test_build_does_not_mutate_overrides():
    overrides = {"pop_size": 4, "seed": None}
    build_search_config(None, overrides, bounds=("temperature=0.1:0.5",))
    assert overrides == {"pop_size": 4, "seed": None}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("temperature=0.2:1.0", ("temperature", [0.2, 1.0])),
        ("top_k=0:50", ("top_k", [0.0, 50.0])),
        ("repetition_penalty=.8:1.3", ("repetition_penalty", [0.8, 1.3])),
        ("max_new_tokens=16:128", ("max_new_tokens", [16.0, 128.0])),
    ],
)
def test_parse_bound_good(text, expected):
    assert parse_bound(text) == expected


@pytest.mark.parametrize(
    "text",
    ["temperature", "temperature=", "temperature=0.2", "temperature=0.2:", "temperature=a:b",
     "temperature=0.1:0.2:0.3", "temperature:0.1:0.2", ""],
)
def test_parse_bound_malformed(text):
    with pytest.raises(SafetuneError) as exc_info:
        parse_bound(text)
    assert "KNOB=LOW:HIGH" in one_line_error(exc_info)


@pytest.mark.parametrize("text", ["temprature=0.1:0.2", "system_prompt=0:1", "=0.1:0.2"])
def test_parse_bound_unknown_knob(text):
    with pytest.raises(SafetuneError) as exc_info:
        parse_bound(text)
    message = one_line_error(exc_info)
    assert "unknown knob" in message and "temperature" in message  # lists the valid knobs


@pytest.mark.parametrize("bound", ["temperature=0.1:9", "temperature=0.9:0.1", "top_p=0:1", "nope=1:2", "top_k"])
def test_bad_bound_through_build_raises_one_line(bound):
    with pytest.raises(SafetuneError) as exc_info:
        build_search_config(None, {}, bounds=(bound,))
    one_line_error(exc_info)


def test_unknown_yaml_keys_raise(tmp_path):
    path = write(tmp_path, "pop_size: 4\npopsize: 5\nmodle: x\n")
    with pytest.raises(SafetuneError) as exc_info:
        build_search_config(path, {})
    message = one_line_error(exc_info)
    assert "popsize" in message and "modle" in message
    assert "pop_size" not in message.replace("popsize", "")


def test_missing_file_raises(tmp_path):
    missing = tmp_path / "nope.yaml"
    for call in (lambda: load_yaml(missing), lambda: build_search_config(missing, {})):
        with pytest.raises(SafetuneError) as exc_info:
            call()
        assert "nope.yaml" in one_line_error(exc_info)


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(SafetuneError):
        load_yaml(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "model: [unclosed\n",
        "pop_size: 4\n  n_gen: 3\n bad indent: [\n",
        "a: 1\na: {b: \"unterminated\n",
    ],
)
def test_invalid_yaml_raises_one_line(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(SafetuneError) as exc_info:
        build_search_config(path, {})
    assert "YAML" in one_line_error(exc_info)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_yaml_that_is_not_a_mapping_raises(tmp_path, text):
    with pytest.raises(SafetuneError) as exc_info:
        load_yaml(write(tmp_path, text))
    one_line_error(exc_info)


@pytest.mark.parametrize(
    "text",
    [
        "pop_size: 1\n",
        "harm_budget: 1.5\n",
        "pop_size: abc\n",
        "space:\n  temperature: [0.1]\n",
        "space:\n  temperature: 0.5\n",
        "space:\n  temprature: [0.1, 0.5]\n",
        "space:\n  system_prompts: [nope]\n",
        "default_config:\n  temprature: 0.5\n",
        "default_config:\n  top_p: 3\n",
    ],
)
def test_bad_values_in_yaml_raise_one_line(tmp_path, text):
    with pytest.raises(SafetuneError) as exc_info:
        build_search_config(write(tmp_path, text), {})
    one_line_error(exc_info)


def test_split_list_reads_commas_and_refuses_an_empty_list():
    assert split_list("a, b,,c ") == ("a", "b", "c") and split_list(None) is None
    with pytest.raises(SafetuneError, match="--datasets ' , ' names nothing"):
        split_list(" , ", "--datasets")
