"""The hand-written everyday data: ordinary benign requests with short, helpful answers.

Checks shape (keys, unique ids, categories, counts, response length), duplicates, and that no prompt is
close to an XSTest prompt (XSTest is held back for reporting): every prompt shares < 30% of content
words (|A & B| / |A | B|) with every XSTest prompt. Texts are never printed: messages name ids only.
"""

import json

import pytest

from safetune.components.judges.training import data as training

DATA_DIR = training.DATA_DIR
EVERYDAY = DATA_DIR / "handwritten_everyday.json"
MAX_RESPONSE_CHARS = 700

CATEGORIES = {"cooking", "travel", "coding", "writing", "health and fitness", "personal finance", "science",
              "history and culture", "language and grammar", "home and garden", "career and study",
              "tech support", "math", "relationships and etiquette", "entertainment"}


def _norm(text):
    return " ".join(str(text).lower().split())


@pytest.fixture(scope="module")
def everyday():
    return json.loads(EVERYDAY.read_text(encoding="utf-8"))




def test_shape(everyday):
    assert isinstance(everyday, list)
    assert len(everyday) >= 200
    for i, item in enumerate(everyday):
        assert set(item) == {"id", "category", "prompt", "response"}, i
        assert item["id"] == f"ev_{i}"
        assert item["category"] in CATEGORIES, item["id"]
        assert item["prompt"].strip(), item["id"]
        assert item["response"].strip(), item["id"]
        assert len(item["response"]) <= MAX_RESPONSE_CHARS, item["id"]


def test_categories_are_spread(everyday):
    for cat in CATEGORIES:
        assert sum(x["category"] == cat for x in everyday) >= 10, cat


def test_ids_and_prompts_unique(everyday):
    assert len({x["id"] for x in everyday}) == len(everyday)
    prompts = [_norm(x["prompt"]) for x in everyday]
    dupes = [x["id"] for x, p in zip(everyday, prompts) if prompts.count(p) > 1]
    assert not dupes, dupes


def test_no_xstest_overlap(everyday, xstest_word_sets):
    too_close = training.too_close_to_xstest(everyday, xstest_word_sets)
    assert not too_close, f"{len(too_close)} prompts share >= 30% content words with an XSTest prompt: {too_close}"
