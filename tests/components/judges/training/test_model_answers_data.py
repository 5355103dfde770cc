"""The offline models' hand-labelled answers to training requests (``model_answers_labelled.jsonl``): shape,
each request one of the train split's harmful requests of its group, none of the dev requests that
``bench_judge_model_outputs.py`` checks the judge on, and the rows they become. Texts are never printed."""

import collections
import importlib.util
import json
from pathlib import Path

import pytest

from safetune.components.judges.training import data as training
from safetune.components.judges.training.labelling import load_labelled, split_groups
from safetune.components.judges.training.synthesis import build_devset

FIELDS = {"group", "model", "system_prompt", "prompt", "response", "label"}


@pytest.fixture(scope="module")
def items():
    path = training.DATA_DIR / training.MODEL_ANSWERS
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def split():
    return split_groups(load_labelled(model_answers=True), 0)


def test_shape_labels_and_models(items):
    assert len(items) >= 300
    for n, item in enumerate(items, 1):
        assert set(item) == FIELDS, n
        assert item["label"] in {"compliance", "safe", "ambiguous"}, n
        assert item["system_prompt"] in {"prevention", "redirection", "default"}, n
    counts = collections.Counter((i["model"], i["label"]) for i in items)
    # Both models, and both training labels for each: the head sees how each complies and declines.
    for model in ("qwen2.5-coder-0.5b", "smollm2-135m"):
        assert counts[model, "compliance"] >= 15 and counts[model, "safe"] >= 15, model
    assert len({(i["model"], i["prompt"]) for i in items}) == len(items)  # one answer per request and model


def test_every_request_is_a_training_request_and_none_is_checked_on(items, split):
    train, dev = split
    harmful_train = {(r["group"], r["prompt"]) for r in train if r["prompt_harmful"] == 1}
    missing = [n for n, i in enumerate(items, 1) if (i["group"], i["prompt"].strip()) not in harmful_train]
    assert not missing, f"lines whose request is not a harmful training request of its group: {missing[:10]}"
    dev_prompts = {r["prompt"] for r in dev}
    assert not [n for n, i in enumerate(items, 1) if i["prompt"].strip() in dev_prompts]


def test_compliance_and_safe_answers_become_rows_and_ambiguous_ones_do_not(items, split):
    train, dev = split
    rows = [r for r in train if r["source"] == "model-answers"]
    assert not [r for r in dev if r["source"] == "model-answers"]
    labels = collections.Counter(i["label"] for i in items)
    by_kind = collections.Counter((r["kind"], r["label"], r["prompt_harmful"]) for r in rows)
    assert by_kind == {("model compliance", 1, 1): labels["compliance"], ("model safe answer", 0, 1): labels["safe"]}


def test_they_are_opt_in_and_leave_the_dev_set_alone():
    """The shipped recipe does not train on them (``judge-train --model-answers`` does); with them, the
    dev rows are the same rows, so dev figures compare across the two."""
    assert not [r for r in load_labelled() if r["source"] == "model-answers"]
    train, dev = build_devset(0)
    train_ma, dev_ma = build_devset(0, model_answers=True)
    assert dev_ma == dev
    added = [r for r in train_ma if r["source"] == "model-answers"]
    assert added and len(train_ma) > len(train) + len(added)  # their harmful answers also get suffixed copies


def test_the_file_is_what_its_script_asks():
    """``benchmarks/make_judge_model_answers.py`` made the file: same requests, same order, same system
    prompt per request (the answers themselves need the models; re-generating SmolLM2's matched)."""
    path = Path(__file__).resolve().parents[4] / "benchmarks" / "make_judge_model_answers.py"
    spec = importlib.util.spec_from_file_location("make_judge_model_answers", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    expected = [{k: v for k, v in row.items() if k != "condition"}
                for model in ("qwen2.5-coder-0.5b", "smollm2-135m") for row in script.plan(model)]
    path = training.DATA_DIR / training.MODEL_ANSWERS
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert [{k: i[k] for k in ("group", "model", "system_prompt", "prompt")} for i in items] == expected
