"""safetune/experiment.py: experiment YAML + CLI overrides -> SearchConfig."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from safetune.config import Bound, DecodingConfig, SearchConfig, SearchSpace
from safetune.errors import SafetuneError
from safetune.jobs.experiment import build_search_config, load_yaml, parse_bound

DEFAULT_YAML = Path(__file__).resolve().parents[2] / "experiments" / "default.yaml"


def one_line_error(exc_info) -> str:
    message = str(exc_info.value)
    assert message and "\n" not in message
    return message


def write(tmp_path, text: str, name="exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_yaml_loads_into_search_config():
    raw = yaml.safe_load(DEFAULT_YAML.read_text())
    cfg = build_search_config(DEFAULT_YAML, {})
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
        assert [bound.low, bound.high] == raw["space"][knob]
        assert bound.integer == getattr(SearchSpace, knob).integer
    assert list(cfg.space.system_prompts) == raw["space"]["system_prompts"]


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
