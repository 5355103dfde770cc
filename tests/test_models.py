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
