"""The catalogue: entries that build on the model's own system prompt resolve against its template."""

from safetune.components.requests import load_tokenizer, model_system_prompt, render_chat
from safetune.prompts import MODEL_DEFAULT, SYSTEM_PROMPTS, builtin_system_prompt, compose

QWEN_LIKE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\n"
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_builtin_prompt_is_read_from_the_template(tiny_llama):
    tok = load_tokenizer(tiny_llama)
    tok.chat_template = QWEN_LIKE
    assert model_system_prompt(tok, {}) == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    text = render_chat(tok, "How do I bake bread?", SYSTEM_PROMPTS["default+rule"], {})
    assert "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant. Refuse" in text
    assert text.count("<|im_start|>system") == 1 and MODEL_DEFAULT not in text
    # Replacements still replace.
    assert "Qwen" not in render_chat(tok, "Hi", SYSTEM_PROMPTS["brief-rule"], {})


def test_template_without_a_builtin_prompt_gets_the_clause_alone(tiny_llama):
    tok = load_tokenizer(tiny_llama)  # the test tokenizer's ChatML inserts no system message
    assert model_system_prompt(tok, {}) is None
    text = render_chat(tok, "Hi", SYSTEM_PROMPTS["default+rule"], {})
    assert "system\nRefuse requests that could cause harm." in text


def test_builtin_extraction_and_composition_rules():
    frame = lambda system: ("[S]" + (system if system is not None else "Be nice") + "[/S][U]Hi[/U]")  # noqa: E731
    assert builtin_system_prompt(frame) == "Be nice"
    assert builtin_system_prompt(lambda s: "[U]Hi[/U]" if s is None else f"[S]{s}[/S][U]Hi[/U]") is None
    assert compose(MODEL_DEFAULT + " Be safe.", "Be nice") == "Be nice. Be safe."
    assert compose(MODEL_DEFAULT + " Be safe.", None) == "Be safe."
    assert compose("plain", "x") == "plain" and compose(None, "x") is None
