"""The hand-written safe answers (prevention, redirection, refusal with explanation) to harmful
training requests: shape, one of each kind per request, each request really one of the labelled
harmful ones of its group (so it lands in its group's split), no duplicate answers. Texts are never
printed: messages name line numbers only."""

import collections
import json

import pytest

from safetune.components.judges.training import data as training
from safetune.components.judges.training.labelling import load_labelled


@pytest.fixture(scope="module")
def items():
    path = training.DATA_DIR / training.SAFE_ANSWERS
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


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


def test_every_request_is_a_labelled_harmful_request_of_its_group(items):
    harmful = {(r["group"], r["prompt"]) for r in load_labelled() if r["prompt_harmful"] == 1 and r["source"] != "handwritten-safe"}
    missing = [n for n, i in enumerate(items, 1) if (i["group"], i["prompt"].strip()) not in harmful]
    assert not missing, f"lines whose request is not a harmful training request of its group: {missing[:10]}"


def test_they_are_label_zero_rows_of_their_own_kinds():
    rows = [r for r in load_labelled() if r["source"] == "handwritten-safe"]
    assert {r["label"] for r in rows} == {0}
    assert {r["kind"] for r in rows} == set(training.SAFE_ANSWER_KINDS.values())
