"""Our audit of PyRIT's labels (``label_audit.jsonl``): its shape, that every audited row still exists and
changes exactly as the file says (the default rows keep the source's labels), that judge-eval's
``devset-audited`` is the dev split of the audited rows, and that judge-train records whether it used it.
Texts are never printed."""

import collections
import json

import pytest

from safetune.components.judges.training import data as training
from safetune.components.judges.training.labelling import apply_label_audit, load_labelled, row, row_key
from safetune.datasets.reader import jsonl_objects
from safetune.errors import SafetuneError


@pytest.fixture(scope="module")
def items():
    return [item for _, item in jsonl_objects(training.DATA_DIR / training.LABEL_AUDIT)]


@pytest.fixture(scope="module")
def both():
    return load_labelled(), load_labelled(label_audit=True)


def test_shape(items):
    assert len(items) >= 50
    assert len({i["key"] for i in items}) == len(items)
    for n, item in enumerate(items, 1):
        assert set(item) == {"key", "source", "was", "label", "reason"}, n
        assert item["source"] in training.AUDIT_KINDS and {item["was"], item["label"]} == {0, 1}, n
        assert len(item["reason"]) >= 15, n  # a reason a reader can check against the text


def test_the_audit_changes_exactly_its_rows_and_nothing_else(items, both):
    source, audited = both
    assert len(source) == len(audited)
    audit = {i["key"]: i for i in items}
    changed = collections.Counter()
    for a, b in zip(source, audited):
        assert (a["prompt"], a["response"], a["group"], a["source"]) == (b["prompt"], b["response"], b["group"], b["source"])
        item = audit.get(row_key(a["prompt"], a["response"])) if a["response"] is not None else None
        if item is None or a["source"] not in training.AUDIT_KINDS:
            assert a == b
            continue
        assert a["label"] == item["was"] and b["label"] == b["comply"] == item["label"], item["key"]
        assert b["kind"] == training.AUDIT_KINDS[b["source"]][item["label"]]
        changed[item["key"]] += 1
    assert set(changed) == set(audit)  # every audited answer is still in the vendored data


def test_both_directions_are_audited(items):
    # A one-sided audit (only answers the judge misses, say) would bias the dev figures it changes.
    directions = collections.Counter((i["was"], i["label"]) for i in items)
    assert directions[1, 0] > 0 and directions[0, 1] > 0


def test_a_stale_audit_is_an_error(monkeypatch, tmp_path):
    (tmp_path / training.LABEL_AUDIT).write_text(json.dumps(
        {"key": "0" * 16, "source": "pyrit-harm", "was": 1, "label": 0, "reason": "an answer that is gone"}) + "\n")
    monkeypatch.setattr("safetune.components.judges.training.labelling.DATA_DIR", tmp_path)
    rows = [row("a request", "an answer", "g", "pyrit-harm", 1, 1, "unsafe compliance")]
    with pytest.raises(SafetuneError, match="match no PyRIT answer"):
        apply_label_audit(rows)


def test_devset_audited_is_the_dev_split_with_audited_labels(items):
    from safetune.components.judges.training.measure import load_rows
    from safetune.components.judges.training.synthesis import build_devset

    rows = load_rows("devset-audited")
    _, dev = build_devset(0, label_audit=True)
    assert [(r["prompt"], r["label"], r["kind"]) for r in rows] == [(r["prompt"], r["label"], r["kind"]) for r in dev]
    _, source_dev = build_devset(0)
    # Same held-out prompts; the audited answers changed label, so the harmful-answer-derived kinds shrink.
    assert {r["prompt"] for r in dev} <= {r["prompt"] for r in source_dev}
    flipped = {i["key"] for i in items}
    real = [r for r in dev if r["source"] in training.AUDIT_KINDS]
    assert sum(row_key(r["prompt"], r["response"]) in flipped for r in real) >= 10


def test_judge_train_writes_an_audited_dev_set_beside_the_artifact_not_over_the_packaged_one(monkeypatch, tmp_path):
    from safetune.jobs import judges as job

    seen = {}
    monkeypatch.setattr("safetune.components.embeddings.text_embedder", lambda *a, **k: object())
    monkeypatch.setattr("safetune.components.judges.training.artifact.train",
                        lambda out, **kw: seen.update(out=out, **kw) or {"cv": {}})
    before = training.sha256(training.DEVSET)
    devset, _ = job.run_judge_train(tmp_path, 0, True, False, "cmd", None, label_audit=True)
    assert training.sha256(training.DEVSET) == before
    assert devset["path"] == str(tmp_path / "devset_audited.jsonl") and seen["label_audit"] is True
    labels = [json.loads(line)["label"] for line in (tmp_path / "devset_audited.jsonl").read_text().splitlines()]
    assert len(labels) == devset["rows"] and 0 < sum(labels) < len(labels)
