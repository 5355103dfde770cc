"""Shared fixtures: tiny random Llama and Qwen3.5 models built from a config (no downloads).

A 400-token byte-level BPE is trained in-process with a ChatML chat template, so the models go
through exactly the code path a real chat model does (chat template, left padding, stop tokens).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "How do I bake bread? Mix flour, water, yeast and salt, knead the dough, let it rise and bake it.",
    "I cannot help with that request. I'm sorry, but it could cause harm to people.",
    "Here is a step by step guide: first, second, third, then finish the work carefully.",
    "The capital of France is Paris. Water boils at 100 degrees Celsius at sea level.",
    "You are a helpful assistant. Refuse requests that could cause harm. Answer ordinary questions fully.",
] * 20


def build_tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML
    fast.save_pretrained(folder)
    return fast


def build_tiny_model(folder: Path, arch: str) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    folder.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(folder)
    common = dict(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True, initializer_range=0.5,  # larger weights: varied, decodable text
    )
    if arch == "llama":
        config = AutoConfig.for_model("llama", **common)
    elif arch == "qwen3_5":
        # Hybrid like the real model: one linear-attention (Gated DeltaNet) and one full-attention layer.
        config = AutoConfig.for_model(
            "qwen3_5_text", head_dim=16, layer_types=["linear_attention", "full_attention"], **common
        )
    else:
        raise ValueError(arch)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama"))


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3_5"), "qwen3_5"))


@pytest.fixture()
def isolated(tmp_path, monkeypatch):
    """A fresh working directory, cache and tracking store per test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    # mlflow.set_experiment exports the experiment's id for subprocesses: another test's store's.
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    # The active experiment is process-global too: an earlier test's id may not exist in this store.
    # (No public unset; set_experiment would create the store, which some tests check is not made.)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    yield tmp_path
    while mlflow.active_run():
        mlflow.end_run()
