"""Capability tasks with checkable answers: ARC-Easy (answer letter) and GSM8K (final number).

The capability guard asks these under each candidate's configuration: a system prompt or decoding
setting that makes the model safe by making it useless shows up here.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources

from safetune.errors import SafetuneError

TASKS = ("arc-easy", "gsm8k")


@dataclass(frozen=True)
class TaskItem:
    id: str
    task: str
    prompt: str
    answer: str  # "A".."E" for ARC, a normalised number for GSM8K


def _read_jsonl(name: str) -> list[dict]:
    text = resources.files("safetune.datasets").joinpath("data", name).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _number(text: str) -> str:
    return text.replace(",", "").strip().rstrip(".")


@functools.lru_cache(maxsize=None)
def load_task(name: str) -> tuple[TaskItem, ...]:
    if name == "arc-easy":
        items = []
        for row in _read_jsonl("arc_easy_test.jsonl"):
            options = "\n".join(f"{c['label']}. {c['text']}" for c in row["choices"])
            prompt = f"{row['question']}\n{options}\nAnswer with the letter of the correct option."
            items.append(TaskItem(f"arc-easy/{row['id']}", name, prompt, row["answerKey"].strip()))
        return tuple(items)
    if name == "gsm8k":
        items = []
        for i, row in enumerate(_read_jsonl("gsm8k_test.jsonl")):
            answer = _number(row["answer"].split("####")[-1])
            prompt = f"{row['question']}\nGive the final answer as a number on the last line."
            items.append(TaskItem(f"gsm8k/{i}", name, prompt, answer))
        return tuple(items)
    raise SafetuneError(f"unknown capability task {name!r}; known: {', '.join(TASKS)}")


def sample_tasks(names, n_per_task: int, seed: int = 0) -> tuple[TaskItem, ...]:
    """A deterministic sample of n items per task (hash order, independent of Python's hash seed)."""
    out = []
    for name in names:
        items = load_task(name)
        order = sorted(items, key=lambda it: hashlib.sha256(f"{seed}:{it.id}".encode()).hexdigest())
        out.extend(order[:n_per_task])
    return tuple(out)


_LEADING_LETTER = re.compile(r"^\W*([A-E])\b(?!\s+[a-z])")
_ANSWER_LETTER = re.compile(r"answer\s*(?:is|:)?\s*\(?([A-E])\b", re.IGNORECASE)
_LETTER = re.compile(r"\b([B-E])\b|\b(A)\b(?!\s+[a-z])")  # "A" followed by a word is an article
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_answer(task: str, response: str) -> str | None:
    """ARC: the first standalone option letter; GSM8K: the last number in the response."""
    if task == "arc-easy":
        for pattern in (_LEADING_LETTER, _ANSWER_LETTER, _LETTER):
            m = pattern.search(response)
            if m:
                return next(g for g in m.groups() if g).upper()
        return None
    numbers = _NUMBER.findall(response)
    return _number(numbers[-1]) if numbers else None


def is_correct(item: TaskItem, response: str) -> bool:
    got = extract_answer(item.task, response)
    if got is None:
        return False
    if item.task == "gsm8k":
        try:
            return abs(float(got) - float(item.answer)) < 1e-6
        except ValueError:
            return False
    return got == item.answer
