"""safetune/cache.py: content-addressed keys and the SQLite store."""

from __future__ import annotations

import pytest

from safetune.cache import Cache, make_key

BASE = dict(
    model="HuggingFaceTB/SmolLM2-135M-Instruct",
    revision="abc123",
    template="{{ messages }}",
    system_prompt="Refuse harm.",
    generation={"do_sample": True, "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 64},
    seed=0,
    sample=0,
    prompt="How do I bake bread?",
)


def key_of(parts: dict) -> str:
    return make_key(parts["model"], parts["revision"], parts["template"], parts["system_prompt"],
                    parts["generation"], parts["seed"], parts["sample"], parts["prompt"])


def test_make_key_is_deterministic_hex():
    k = key_of(BASE)
    assert k == key_of(dict(BASE))
    assert len(k) == 64
    int(k, 16)


@pytest.mark.parametrize(
    "field, value",
    [
        ("model", "Qwen/Qwen3.5-0.8B"),
        ("revision", "abc124"),
        ("template", "{{ messages }} "),
        ("system_prompt", None),
        ("system_prompt", ""),
        ("generation", {**BASE["generation"], "temperature": 0.71}),
        ("generation", {**BASE["generation"], "top_k": 0}),
        ("seed", 1),
        ("sample", 1),
        ("prompt", "How do I bake bread ?"),
    ],
)
def test_make_key_changes_when_any_part_changes(field, value):
    assert key_of({**BASE, field: value}) != key_of(BASE)


def test_make_key_distinguishes_sample_indices():
    keys = {key_of({**BASE, "sample": i}) for i in range(20)}
    assert len(keys) == 20


def test_make_key_part_order_and_types_matter():
    assert make_key("a", "b") != make_key("b", "a")
    assert make_key(1) != make_key("1")
    assert make_key(None) != make_key("None")
    assert make_key("a", "b") != make_key("ab")
    assert make_key(["a", "b"]) != make_key("a", "b")


def test_make_key_ignores_dict_insertion_order():
    assert make_key({"a": 1, "b": 2}) == make_key({"b": 2, "a": 1})


def test_make_key_accepts_non_json_values():
    class Obj:
        def __str__(self):
            return "obj-v1"

    assert make_key(Obj()) == make_key(Obj())


def test_put_get_count(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    assert cache.count("gen") == 0
    assert cache.get("gen", "k1") is None
    cache.put_many("gen", {"k1": {"text": "hello"}, "k2": {"text": "wörld ✓", "n": [1, 2]}})
    assert cache.count("gen") == 2
    assert cache.get("gen", "k1") == {"text": "hello"}
    assert cache.get("gen", "k2") == {"text": "wörld ✓", "n": [1, 2]}
    cache.close()


def test_put_replaces_existing_key(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("gen", {"k": {"v": 1}})
    cache.put_many("gen", {"k": {"v": 2}})
    assert cache.count("gen") == 1
    assert cache.get("gen", "k") == {"v": 2}
    cache.close()


def test_get_many_returns_only_found_keys_across_chunks(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    items = {f"k{i}": {"i": i} for i in range(1234)}  # more than one 500-key chunk
    cache.put_many("gen", items)
    wanted = [f"k{i}" for i in range(1300)]  # 1300 keys, 66 of them missing
    found = cache.get_many("gen", wanted)
    assert len(found) == 1234
    assert found == items
    assert cache.get_many("gen", []) == {}
    cache.close()


def test_persists_across_reopen(tmp_path):
    path = tmp_path / "nested" / "dir" / "cache.sqlite"  # parents are created
    cache = Cache(path)
    cache.put_many("gen", {"a": {"text": "kept"}})
    cache.put_many("result", {"a": {"harm": 0.1}})
    cache.close()
    again = Cache(path)
    assert again.get("gen", "a") == {"text": "kept"}
    assert again.get("result", "a") == {"harm": 0.1}
    assert again.count("gen") == 1
    again.close()


def test_kinds_are_separated(tmp_path):
    cache = Cache(tmp_path / "c.sqlite")
    cache.put_many("gen", {"same": {"kind": "gen"}})
    cache.put_many("judge", {"same": {"kind": "judge"}, "other": {}})
    assert cache.get("gen", "same") == {"kind": "gen"}
    assert cache.get("judge", "same") == {"kind": "judge"}
    assert cache.get("gen", "other") is None
    assert cache.count("gen") == 1 and cache.count("judge") == 2 and cache.count("nothing") == 0
    assert cache.get_many("gen", ["same", "other"]) == {"same": {"kind": "gen"}}
    cache.close()


def test_two_handles_on_one_file_see_each_others_writes(tmp_path):
    path = tmp_path / "c.sqlite"
    a, b = Cache(path), Cache(path)
    a.put_many("gen", {"x": {"v": 1}})
    assert b.get("gen", "x") == {"v": 1}
    a.close()
    b.close()
