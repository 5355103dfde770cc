"""The one registry class: names in registration order, lazy "module:attr" targets, one-line errors."""

import sys

import pytest

from safetune.errors import SafetuneError
from safetune.registries import Entry, Registry


def test_lazy_targets_are_imported_only_when_loaded():
    sys.modules.pop("json.tool", None)
    reg = Registry("thing", {"b": Entry("json.tool:main", "the json tool"), "a": Entry(len, "builtin")})
    assert reg.names() == ["b", "a"] and list(reg) == ["b", "a"] and "a" in reg
    assert "json.tool" not in sys.modules  # registering, listing and checking import nothing
    reg.check("b")
    assert "json.tool" not in sys.modules
    assert reg.load("b").__module__ == "json.tool" and reg.load("a") is len
    assert reg.describe() == "b (the json tool), a (builtin)" and reg.help("a") == "builtin"


def test_unknown_names_are_one_line_errors_listing_the_known_ones():
    reg = Registry("capability task", {"x": Entry(1)}, plural="capability tasks")
    with pytest.raises(SafetuneError, match=r"^unknown capability task 'y'; known capability tasks: x$"):
        reg.load("y")


def test_register_and_unregister():
    reg = Registry("judge")
    reg.register("mine", "json:dumps", help="a plugin")
    assert reg.load("mine")({"a": 1}) == '{"a": 1}'
    reg.unregister("mine")
    reg.unregister("mine")  # absent: nothing to do
    assert reg.names() == []
