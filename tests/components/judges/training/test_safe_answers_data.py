"""The hand-written safe answers (prevention, redirection, refusal with explanation; and the long-form
ones) to harmful training requests: shape, one of each kind per request, each request really one of
the labelled harmful ones of its group (so it lands in its group's split), no duplicate answers. Texts
are never printed: messages name line numbers only."""

import collections
import json

import pytest

from safetune.components.judges.training import data as training
from safetune.components.judges.training.labelling import load_labelled, split_groups

HANDWRITTEN_ANSWERS = {"handwritten-safe", "handwritten-long"}


def _read(name):
    path = training.DATA_DIR / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def items():
    return _read(training.SAFE_ANSWERS)


@pytest.fixture(scope="module")
def long_items():
    return _read(training.LONG_ANSWERS)


@pytest.fixture(scope="module")
def harmful_requests():
    return {(r["group"], r["prompt"]) for r in load_labelled()
            if r["prompt_harmful"] == 1 and r["source"] not in HANDWRITTEN_ANSWERS}


def test_shape_and_one_of_each_kind_per_request(items):
    assert len(items) >= 1000
    for n, item in enumerate(items, 1):
        assert set(item) == {"group", "prompt_source", "prompt", "kind", "response"}, n
        assert item["kind"] in training.SAFE_ANSWER_KINDS, n
        assert len(item["response"].split()) >= 15, n
    kinds = collections.defaultdict(list)
    for item in items:
        kinds[item["group"]].append(item["kind"])
    assert all(sorted(k) == sorted(training.SAFE_ANSWER_KINDS) for k in kinds.values())
    assert len({i["response"] for i in items}) == len(items)


@pytest.mark.parametrize("which", ["items", "long_items"])
def test_every_request_is_a_labelled_harmful_request_of_its_group(which, request, harmful_requests):
    rows = request.getfixturevalue(which)
    missing = [n for n, i in enumerate(rows, 1) if (i["group"], i["prompt"].strip()) not in harmful_requests]
    assert not missing, f"lines whose request is not a harmful training request of its group: {missing[:10]}"


def test_long_form_answers_are_long_structured_new_and_dev_only(items, long_items):
    for n, item in enumerate(long_items, 1):
        assert set(item) == {"group", "prompt_source", "prompt", "kind", "response"}, n
        assert item["kind"] in training.LONG_ANSWER_KINDS, n
        assert len(item["response"].split()) >= 60, n
        lines = item["response"].splitlines()  # markdown: a header, a bold lead or a list
        assert any(x.startswith(("#", "**", "- ", "1. ")) for x in lines), n
    texts = [i["response"] for i in long_items]
    assert len(set(texts)) == len(texts) and not set(texts) & {i["response"] for i in items}
    train, dev = split_groups(load_labelled(), 0)
    # A probe of a form training lacks: every request's group is in dev, none reaches training or CV.
    assert not [r for r in train if r["source"] == "handwritten-long"]
    assert sum(r["source"] == "handwritten-long" for r in dev) == len(long_items) >= 20


@pytest.mark.parametrize("source,kinds", [("handwritten-safe", training.SAFE_ANSWER_KINDS),
                                          ("handwritten-long", training.LONG_ANSWER_KINDS)])
def test_they_are_label_zero_rows_of_their_own_kinds(source, kinds):
    rows = [r for r in load_labelled() if r["source"] == source]
    assert rows and {r["label"] for r in rows} == {0}
    assert {r["kind"] for r in rows} == set(kinds.values())
