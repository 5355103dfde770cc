"""The MLproject adapter: empty parameters mean "use the config", the rest become real options."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from safetune.cli import main as cli
from safetune.cli.mlproject import command_line

REPO = Path(__file__).resolve().parents[2]


def test_empty_parameters_are_dropped_and_pairs_become_options():
    assert command_line(["search", "--", "config=experiments/default.yaml", "bounds=", "n_prompts=8", "seed= "]) == [
        "search", "--config", "experiments/default.yaml", "--n-prompts", "8"]
    assert command_line(["evaluate", "models:/m@champion", "--", "model=", "judge=heuristic"]) == [
        "evaluate", "models:/m@champion", "--judge", "heuristic"]
    # A value may hold '=' (a bound): only the first one splits.
    assert command_line(["search", "--", "bounds=temperature=0:1"]) == ["search", "--bounds", "temperature=0:1"]


def test_a_malformed_pair_is_one_line():
    with pytest.raises(SystemExit, match="not key=value"):
        command_line(["search", "--", "n_prompts"])


@pytest.mark.parametrize("entry", ["main", "evaluate", "survey"])
def test_every_mlproject_parameter_is_an_option_of_its_command(entry):
    spec = yaml.safe_load((REPO / "MLproject").read_text())["entry_points"][entry]
    words = spec["command"].split()
    assert words[:3] == ["python", "-m", "safetune.cli.mlproject"]
    command = cli.commands[words[3]]
    options = {opt for p in command.params for opt in getattr(p, "opts", [])}
    pairs = words[words.index("--") + 1:]
    for pair in pairs:
        key, _, value = pair.partition("=")
        assert value == "{" + key + "}", pair  # each pair substitutes its own parameter
        assert f"--{key.replace('_', '-')}" in options, f"{entry}: {key} is no option of `safetune {words[3]}`"
    # Every parameter reaches the command (a positional one before `--`).
    assert set(spec["parameters"]) == {p.partition("=")[0] for p in pairs} | {
        w.strip("{}") for w in words[4:words.index("--")]}
