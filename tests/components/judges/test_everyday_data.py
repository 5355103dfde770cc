"""The hand-written everyday data: ordinary benign requests with short, helpful answers.

Checks shape (keys, unique ids, categories, counts, response length), duplicates, and that no prompt is
close to an XSTest prompt (XSTest is held back for reporting): every prompt shares < 30% of content
words (|A & B| / |A | B|) with every XSTest prompt. Texts are never printed: messages name ids only.
"""

import csv
import json
from pathlib import Path

import pytest

from safetune.components.judges.textstats import content_words

DATA_DIR = Path(__file__).resolve().parents[3] / "safetune" / "components" / "judges" / "data"
EVERYDAY = DATA_DIR / "handwritten_everyday.json"
XSTEST = "xstest_v2_completions_labelled.csv"
XSTEST_CANDIDATES = [DATA_DIR / XSTEST, Path("/work/shared/data") / XSTEST]
MAX_OVERLAP = 0.30
MAX_RESPONSE_CHARS = 700

CATEGORIES = {"cooking", "travel", "coding", "writing", "health and fitness", "personal finance", "science",
              "history and culture", "language and grammar", "home and garden", "career and study",
              "tech support", "math", "relationships and etiquette", "entertainment"}


def _norm(text):
    return " ".join(str(text).lower().split())


@pytest.fixture(scope="module")
def everyday():
    return json.loads(EVERYDAY.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def xstest_word_sets():
    path = next((p for p in XSTEST_CANDIDATES if p.exists()), None)
    if path is None:
        pytest.skip("XSTest completions CSV not available")
    with path.open(encoding="utf-8", newline="") as fh:
        prompts = {row["prompt"] for row in csv.DictReader(fh)}
    return [set(content_words(p)) for p in prompts]


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
    worst, failures = 0.0, []
    for item in everyday:
        words = set(content_words(item["prompt"]))
        for xs in xstest_word_sets:
            union = words | xs
            share = len(words & xs) / len(union) if union else 0.0
            worst = max(worst, share)
            if share >= MAX_OVERLAP:
                failures.append(item["id"])
                break
    assert not failures, f"{len(failures)} prompts share >= 30% content words with an XSTest prompt: {failures}"
    assert worst < MAX_OVERLAP
