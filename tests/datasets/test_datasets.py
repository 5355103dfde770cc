"""Tests for safetune.datasets.

Assertions compare ids, counts and digests, never prompt text or PromptItem objects, so a failure
cannot print a harmful prompt into the test log.
"""

import csv
import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from importlib import resources

import pytest

from safetune.datasets import (
    PromptItem,
    PromptSet,
    dataset_names,
    load_prompt_set,
    load_prompt_sets,
    sample,
    split,
    unused_sample,
)
from safetune.errors import SafetuneError


def _raw(filename):
    with resources.files("safetune.datasets").joinpath("data", filename).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _ids(ps):
    return [it.id for it in ps.items]


# ---- bundled sets ------------------------------------------------------------------------------


def test_registry_names():
    assert dataset_names() == [
        "harmbench", "harmbench-standard", "harmbench-contextual",
        "strongreject", "advbench", "xstest-safe", "xstest-unsafe",
    ]


def test_data_files_and_licences_are_bundled():
    data = resources.files("safetune.datasets").joinpath("data")
    names = {p.name for p in data.iterdir()}
    for f in ["README.md", "LICENSE-harmbench.txt", "LICENSE-xstest.txt", "LICENSE-advbench.txt",
              "LICENSE-strongreject.txt"]:
        assert f in names
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    for cite in ["2402.04249", "2307.15043", "2402.10260", "2308.01263"]:
        assert cite in readme


def test_harmbench_counts_match_csv():
    kinds = Counter(r["FunctionalCategory"] for r in _raw("harmbench_behaviors_text_all.csv"))
    std, ctx = load_prompt_set("harmbench-standard"), load_prompt_set("harmbench-contextual")
    assert len(std) == kinds["standard"] == 200
    assert len(ctx) == kinds["contextual"] == 100
    both = load_prompt_set("harmbench")
    assert sorted(_ids(both)) == sorted(_ids(std) + _ids(ctx))
    assert all(it.harmful and it.source == "harmbench" for it in both)
    assert "copyright" not in {it.category for it in both}  # copyright behaviours excluded
    assert "harmbench/dimethylmercury_instructions_home" in _ids(std)


def test_contextual_prompts_carry_their_context():
    rows = {r["BehaviorID"]: r for r in _raw("harmbench_behaviors_text_all.csv")}
    bad = []
    for it in load_prompt_set("harmbench-contextual").items:
        r = rows[it.id.split("/", 1)[1]]
        if not (r["ContextString"].strip() and it.prompt == r["ContextString"].strip() + "\n\n---\n\n" + r["Behavior"]):
            bad.append(it.id)
    assert not bad
    bad = [it.id for it in load_prompt_set("harmbench-standard").items
           if it.prompt != rows[it.id.split("/", 1)[1]]["Behavior"]]
    assert not bad


def test_other_bundled_sets():
    sr = load_prompt_set("strongreject")
    assert len(sr) == 313 and len({it.category for it in sr}) == 6
    ab = load_prompt_set("advbench")
    assert len(ab) == 520 and {it.category for it in ab} == {"unspecified"}
    safe, unsafe = load_prompt_set("xstest-safe"), load_prompt_set("xstest-unsafe")
    assert (len(safe), len(unsafe)) == (250, 200)
    assert not any(it.harmful for it in safe) and all(it.harmful for it in unsafe)
    assert all(it.category.startswith("contrast_") for it in unsafe)
    assert not any(it.category.startswith("contrast_") for it in safe)


def test_all_ids_unique_and_prompts_nonempty():
    for name in dataset_names():
        ps = load_prompt_set(name)
        assert len(set(_ids(ps))) == len(ps), name
        assert all(it.prompt.strip() for it in ps.items), name


def test_digest_is_content_hash():
    ps = load_prompt_set("xstest-safe")
    canon = json.dumps([[it.id, it.prompt] for it in ps.items], ensure_ascii=False, separators=(",", ":"))
    assert ps.digest == hashlib.sha256(canon.encode("utf-8")).hexdigest()
    assert load_prompt_set("xstest-unsafe").digest != ps.digest
    renamed = PromptSet("other-name", ps.items)
    assert renamed.digest == ps.digest  # name is not content


def test_reprs_do_not_leak_prompt_text():
    ps = load_prompt_set("harmbench-standard")
    assert ps.items[0].prompt not in repr(ps) and ps.items[0].prompt not in repr(ps.items[0])


def test_to_pandas():
    pytest.importorskip("pandas")
    df = load_prompt_set("xstest-safe").to_pandas()
    assert list(df.columns) == ["id", "prompt", "category", "source", "harmful"]
    assert len(df) == 250 and not df["harmful"].any()


def test_concatenation():
    both = load_prompt_sets(["xstest-safe", "xstest-unsafe"])
    assert both.name == "xstest-safe+xstest-unsafe" and len(both) == 450
    assert load_prompt_set("xstest-safe+xstest-unsafe").digest == both.digest
    assert load_prompt_sets(["advbench"]).digest == load_prompt_set("advbench").digest


# ---- split / sample ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["harmbench", "strongreject", "xstest-safe"])
def test_split_disjoint_complete_stratified(name):
    ps = load_prompt_set(name)
    s, h = split(ps, "search"), split(ps, "holdout")
    assert not set(_ids(s)) & set(_ids(h))
    assert set(_ids(s)) | set(_ids(h)) == set(_ids(ps))
    assert split(ps, "all").digest == ps.digest
    for cat, n in Counter(it.category for it in ps.items).items():
        if n >= 2:
            assert cat in {it.category for it in s.items} and cat in {it.category for it in h.items}, cat
    assert abs(len(h) - len(ps) / 2) <= len({it.category for it in ps.items})  # ~ fraction, per category


def test_split_fraction_and_seed():
    ps = load_prompt_set("harmbench")
    assert split(ps, "holdout", 0.5, seed=0).digest == split(ps, "holdout", 0.5, seed=0).digest
    assert split(ps, "holdout", 0.5, seed=0).digest != split(ps, "holdout", 0.5, seed=1).digest
    small = split(ps, "holdout", 0.2)
    assert 0.15 * len(ps) < len(small) < 0.25 * len(ps)
    # even a tiny fraction keeps every category (>= 2 items) on both sides
    tiny_h = {it.category for it in split(ps, "holdout", 0.01).items}
    assert tiny_h == {it.category for it in ps.items}


def test_split_stable_across_python_processes():
    # hash() is salted per process; the split must not depend on it.
    code = ("from safetune.datasets import load_prompt_set, split;"
            "print(split(load_prompt_set('harmbench'), 'holdout', 0.3, seed=7).digest)")
    out = set()
    for hashseed in ["1", "2"]:
        env = dict(os.environ, PYTHONHASHSEED=hashseed)
        out.add(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                               check=True).stdout.strip())
    out.add(split(load_prompt_set("harmbench"), "holdout", 0.3, seed=7).digest)
    assert len(out) == 1


def test_sample_covers_categories_and_is_deterministic():
    ps = load_prompt_set("harmbench")
    cats = {it.category for it in ps.items}
    six = sample(ps, len(cats))
    assert len(six) == len(cats) and {it.category for it in six.items} == cats
    twelve = sample(ps, 2 * len(cats))
    assert set(Counter(it.category for it in twelve.items).values()) == {2}
    assert sample(ps, 3).digest == sample(ps, 3).digest
    assert len({it.category for it in sample(ps, 3).items}) == 3
    assert sample(ps, 20, seed=0).digest != sample(ps, 20, seed=1).digest
    assert sample(ps, len(ps)).digest == ps.digest and sample(ps, 10**6).digest == ps.digest
    assert set(_ids(sample(ps, 50))) <= set(_ids(ps))


# ---- user files --------------------------------------------------------------------------------


def test_user_csv(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text('id,prompt,category,harmful\na1,"hello, world",greet,false\na2,second,,\n', encoding="utf-8")
    ps = load_prompt_set(str(p))
    assert ps.name == "mine" and _ids(ps) == ["mine/a1", "mine/a2"]
    assert [it.category for it in ps.items] == ["greet", "unspecified"]
    assert [it.harmful for it in ps.items] == [False, True]
    assert ps.items[0].prompt == "hello, world" and ps.items[0].source == "mine"


def test_user_csv_prompt_only_and_pathlike(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("prompt\nfirst\nsecond\n", encoding="utf-8")
    ps = load_prompt_set(p)
    assert _ids(ps) == ["plain/2", "plain/3"] and all(it.harmful for it in ps.items)
    assert len(load_prompt_sets([str(p), "xstest-safe"])) == 252


def test_user_jsonl(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"prompt": "a", "harmful": false, "category": "c"}\n\n{"prompt": "b", "id": 9}\n', encoding="utf-8")
    ps = load_prompt_set(str(p))
    assert _ids(ps) == ["j/1", "j/9"] and [it.harmful for it in ps.items] == [False, True]
    assert len(split(ps, "search")) == len(split(ps, "holdout")) == 1  # singleton categories pooled
    assert split(ps, "search").digest != split(ps, "holdout").digest


def test_user_file_reread_after_edit(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("prompt\nx\n", encoding="utf-8")
    assert len(load_prompt_set(str(p))) == 1
    p.write_text("prompt\nx\ny\n", encoding="utf-8")
    os.utime(p, ns=(1, 1))  # make sure mtime differs even on coarse-clock filesystems
    assert len(load_prompt_set(str(p))) == 2


# ---- bad input ---------------------------------------------------------------------------------


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


BAD_FILES = {
    "no_prompt.csv": ("text,id\nx,1\n", "no 'prompt' column"),
    "quote.csv": ('prompt,id\nok,1\n"bad"quote,2\n', "malformed CSV"),
    "fields.csv": ("prompt,id\nok,1\nx,2,3\n", "fields.csv:3"),
    "empty.csv": ("prompt,id\n", "empty"),
    "blank.csv": ("prompt\n  \n", "empty"),
    "emptyprompt.csv": ("prompt,id\n,1\n", "empty or non-text prompt"),
    "dup.csv": ("prompt,id\na,1\nb,1\n", "duplicate id"),
    "harm.csv": ("prompt,harmful\na,maybe\n", "harmful="),
    "line.jsonl": ('{"prompt": "a"}\n{"prompt": \n', ".jsonl:2: not valid JSON"),
    "noprompt.jsonl": ('{"prompt": "a"}\n{"text": "b"}\n', ".jsonl:2:"),
    "list.jsonl": ("[1, 2]\n", ".jsonl:1:"),
    "empty.jsonl": ("\n", "empty"),
    "notes.txt": ("prompt\na\n", "unsupported file type"),
}


@pytest.mark.parametrize("fname", sorted(BAD_FILES))
def test_bad_files_raise_one_line(tmp_path, fname):
    text, fragment = BAD_FILES[fname]
    with pytest.raises(SafetuneError) as e:
        load_prompt_set(_write(tmp_path, fname, text))
    msg = str(e.value)
    assert "\n" not in msg and fragment in msg


def test_non_utf8_file(tmp_path):
    p = tmp_path / "latin.csv"
    p.write_bytes("prompt\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(SafetuneError, match="UTF-8"):
        load_prompt_set(str(p))


BAD_CALLS = {
    "unknown name": (lambda: load_prompt_set("harmbenchh"), "known: harmbench, harmbench-standard"),
    "missing file": (lambda: load_prompt_set("/nonexistent/prompts.csv"), "not found"),
    "missing bare file": (lambda: load_prompt_set("prompts.jsonl"), "not found"),
    "empty name": (lambda: load_prompt_set(""), "non-empty"),
    "unknown in list": (lambda: load_prompt_sets(["advbench", "nope"]), "unknown dataset 'nope'"),
    "duplicate ids": (lambda: load_prompt_sets(["harmbench", "harmbench-standard"]), "duplicate id"),
    "no names": (lambda: load_prompt_sets([]), "no dataset"),
    "empty set": (lambda: PromptSet("x", ()), "empty"),
    "dup items": (lambda: PromptSet("x", (PromptItem("a", "p", "c", "s", True),) * 2), "duplicate id"),
    "bad part": (lambda: split(load_prompt_set("advbench"), "train"), "search, holdout, all"),
    "fraction 0": (lambda: split(load_prompt_set("advbench"), "search", 0.0), "between 0 and 1"),
    "fraction 1": (lambda: split(load_prompt_set("advbench"), "holdout", 1), "between 0 and 1"),
    "fraction >1": (lambda: split(load_prompt_set("advbench"), "all", 1.5), "between 0 and 1"),
    "fraction str": (lambda: split(load_prompt_set("advbench"), "all", "0.5"), "between 0 and 1"),
    "empty part": (lambda: split(PromptSet("x", (PromptItem("a", "p", "c", "s", True),)), "search"), "empty"),
    "sample 0": (lambda: sample(load_prompt_set("advbench"), 0), "positive integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_bad_calls_raise_one_line(case):
    call, fragment = BAD_CALLS[case]
    with pytest.raises(SafetuneError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and fragment in msg


def test_unused_sample_never_reuses_the_used_prompts():
    pool = split(load_prompt_sets(("harmbench-standard",)), "search")
    used = sample(pool, 12, seed=0)
    val = unused_sample(pool, used, 12, seed=0)
    assert len(val) == 12 and not {it.id for it in val} & {it.id for it in used}
    assert {it.id for it in val} <= {it.id for it in pool}
    assert unused_sample(pool, pool, 12, seed=0) is None  # nothing left
    assert unused_sample(pool, used, 0, seed=0) is None  # switched off
