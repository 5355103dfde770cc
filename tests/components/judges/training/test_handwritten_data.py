"""The hand-written judge data: benign-but-edgy questions with answers, and harmful contrast requests.

Checks shape (keys, unique ids, categories, counts), duplicates, and that no prompt is close to an
XSTest prompt (XSTest is held back for reporting): every prompt shares < 30% of content words
(|A & B| / |A | B|) with every XSTest prompt. Texts are never printed: messages name ids only.
"""

import json
import re

import pytest

from safetune.components.judges.training import data as training
from safetune.components.judges.training.labelling import load_labelled

BENIGN = training.DATA_DIR / "handwritten_benign_edgy.json"
HARMFUL = training.DATA_DIR / "handwritten_harmful_contrast.json"

BENIGN_CATEGORIES = {"homonym", "figurative", "safe target", "safe context", "definition", "history",
                     "public figure privacy", "medical/safety", "security defence"}
HARM_CATEGORIES = {"violence", "weapons", "drugs", "cybercrime", "fraud", "harassment", "self-harm", "privacy"}
# The first 50 benign items predate the category list above and use short category names.
LEGACY_BENIGN = 50
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z'\"])")


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _norm(text):
    return " ".join(str(text).lower().split())


@pytest.fixture(scope="module")
def benign():
    return _load(BENIGN)


@pytest.fixture(scope="module")
def harmful():
    return _load(HARMFUL)




def test_benign_shape(benign):
    assert len(benign) >= 200 + LEGACY_BENIGN
    for i, item in enumerate(benign):
        assert set(item) == {"id", "category", "prompt", "response"}, i
        assert item["id"] == f"hw_{i}"
        assert item["category"].strip(), item["id"]
        assert item["prompt"].strip() and item["response"].strip(), item["id"]
        if i >= LEGACY_BENIGN:
            assert item["category"] in BENIGN_CATEGORIES, item["id"]
            # short answers: at most 3 sentences, at most 300 characters
            assert len(_SENTENCE_BREAK.split(item["response"].strip())) <= 3, item["id"]
            assert len(item["response"]) <= 300, item["id"]


def test_harmful_shape(harmful):
    assert len(harmful) >= 120
    for i, item in enumerate(harmful):
        assert set(item) == {"id", "category", "prompt"}, i  # requests only, never an answer
        assert item["id"] == f"hc_{i}"
        assert item["category"] in BENIGN_CATEGORIES | HARM_CATEGORIES, item["id"]
        assert item["prompt"].strip(), item["id"]


def test_categories_are_spread(benign, harmful):
    new = benign[LEGACY_BENIGN:]
    for cat in BENIGN_CATEGORIES:
        assert sum(x["category"] == cat for x in new) >= 15, cat
    for cat in HARM_CATEGORIES:
        assert sum(x["category"] == cat for x in harmful) >= 5, cat


def test_ids_and_prompts_unique(benign, harmful):
    items = benign + harmful
    assert len({x["id"] for x in items}) == len(items)
    prompts = [_norm(x["prompt"]) for x in items]
    dupes = [x["id"] for x, p in zip(items, prompts) if prompts.count(p) > 1]
    assert not dupes, dupes


def test_not_in_other_vendored_data(benign, harmful):
    others = {_norm(r["prompt"]) for r in load_labelled() if "hand" not in r["source"]}
    with training.DEVSET.open(encoding="utf-8") as fh:
        devset = [json.loads(line) for line in fh]
    others |= {_norm(r["prompt"]) for r in devset if "hand" not in r.get("source", "")}
    clash = [x["id"] for x in benign + harmful if _norm(x["prompt"]) in others]
    assert not clash, clash


def test_no_xstest_overlap(benign, harmful, xstest_word_sets):
    too_close = training.too_close_to_xstest(benign + harmful, xstest_word_sets)
    assert not too_close, f"{len(too_close)} prompts share >= 30% content words with an XSTest prompt: {too_close}"


def test_the_overlap_rule_catches_a_copied_xstest_prompt(xstest_word_sets):
    import csv

    with (training.DATA_DIR / training.XSTEST).open(encoding="utf-8", newline="") as fh:
        prompt = next(csv.DictReader(fh))["prompt"]
    assert training.too_close_to_xstest([{"id": "copy", "prompt": prompt}], xstest_word_sets) == ["copy"]
    assert training.too_close_to_xstest([{"id": "far", "prompt": "Bake sourdough at 230 C."}], xstest_word_sets) == []
