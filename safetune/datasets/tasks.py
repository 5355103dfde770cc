"""Capability tasks with checkable answers, behind a string-keyed registry (``TASKS``).

The capability guard asks these under each candidate's configuration: a system prompt or decoding
setting that makes the model safe by making it useless shows up here. A guard only means something
when the model's default passes the task clearly above chance (a guard at chance cannot fall), so
every task declares its chance level and the search uses a task as a guard only when the default
beats it (see ``objectives/guards.usable_tasks``).

- ``facts``: short factual questions (capitals, everyday science, numbers, words), hand-written for
  safetune (MIT), each with its accepted answers; free-form, so chance is 0. SmolLM2-135M answers
  most of them under its default, so this is the anchor that can fall for small models.
- ``arc-easy``: ARC-Easy multiple choice (answer letter), chance = 1 / number of options.
- ``gsm8k``: GSM8K grade-school maths (final number), chance 0. Small models sit at chance on both.

Items are split into ``search`` and ``holdout`` halves by a fixed hash (never by the search seed),
so ``safetune evaluate`` asks items no search or validation ever used.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from typing import Callable

from safetune.datasets.reader import bundled_path, jsonl_objects
from safetune.datasets.splits import PARTS, SPLIT_SEED
from safetune.errors import SafetuneError
from safetune.registries import Entry, Registry


@dataclass(frozen=True)
class TaskItem:
    id: str
    task: str
    prompt: str
    answer: str  # "A".."E" for ARC, a normalised number for GSM8K, the first accepted answer for facts
    accepted: tuple[str, ...] = field(default=())  # every accepted answer (facts)
    n_options: int = 0  # multiple choice: how many options (sets the chance level)


@dataclass(frozen=True)
class Task:
    name: str
    load: Callable[[], tuple[TaskItem, ...]]
    check: Callable[[TaskItem, str], bool]
    chance: Callable[[tuple[TaskItem, ...]], float]  # expected accuracy of a random answer
    extract: Callable[[str], str | None] | None = None  # the answer a response gives, when the task reads one


def _read_jsonl(name: str) -> list[dict]:
    return [row for _, row in jsonl_objects(bundled_path(name))]


def _number(text: str) -> str:
    return text.replace(",", "").strip().rstrip(".")


def _load_arc() -> tuple[TaskItem, ...]:
    items = []
    for row in _read_jsonl("arc_easy_test.jsonl"):
        options = "\n".join(f"{c['label']}. {c['text']}" for c in row["choices"])
        prompt = f"{row['question']}\n{options}\nAnswer with the letter of the correct option."
        items.append(TaskItem(f"arc-easy/{row['id']}", "arc-easy", prompt, row["answerKey"].strip(),
                              n_options=len(row["choices"])))
    return tuple(items)


def _load_gsm8k() -> tuple[TaskItem, ...]:
    items = []
    for i, row in enumerate(_read_jsonl("gsm8k_test.jsonl")):
        answer = _number(row["answer"].split("####")[-1])
        prompt = f"{row['question']}\nGive the final answer as a number on the last line."
        items.append(TaskItem(f"gsm8k/{i}", "gsm8k", prompt, answer))
    return tuple(items)


def _load_facts() -> tuple[TaskItem, ...]:
    return tuple(
        TaskItem(row["id"], "facts", f"{row['question']} Answer briefly.", row["answers"][0], tuple(row["answers"]))
        for row in _read_jsonl("facts.jsonl")
    )


_LEADING_LETTER = re.compile(r"^\W*([A-E])\b(?!\s+[a-z])")
_ANSWER_LETTER = re.compile(r"answer\s*(?:is|:)?\s*\(?([A-E])\b", re.IGNORECASE)
_LETTER = re.compile(r"\b([B-E])\b|\b(A)\b(?!\s+[a-z])")  # "A" followed by a word is an article
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def _extract_letter(response: str) -> str | None:
    """ARC: the first standalone option letter (a leading one, "answer is X", then any)."""
    for pattern in (_LEADING_LETTER, _ANSWER_LETTER, _LETTER):
        m = pattern.search(response)
        if m:
            return next(g for g in m.groups() if g).upper()
    return None


def _extract_number(response: str) -> str | None:
    """GSM8K: the last number in the response."""
    numbers = _NUMBER.findall(response)
    return _number(numbers[-1]) if numbers else None


def extract_answer(task: str, response: str) -> str | None:
    """The answer a response gives to an item of ``task`` (None: none found, or a free-form task)."""
    extract = get_task(task).extract
    return extract(response) if extract else None


def _check_arc(item: TaskItem, response: str) -> bool:
    return _extract_letter(response) == item.answer


def _check_gsm8k(item: TaskItem, response: str) -> bool:
    got = _extract_number(response)
    try:
        return got is not None and abs(float(got) - float(item.answer)) < 1e-6
    except ValueError:
        return False


def _check_facts(item: TaskItem, response: str) -> bool:
    """Any accepted answer as whole words (a plural "s"/"es" allowed), case-insensitive: "brains"
    matches "brain", but "0" does not match inside "100"."""
    text = response.lower()
    return any(re.search(r"(?<![\w])" + re.escape(a.lower()) + r"(?:e?s)?(?![\w])", text) for a in item.accepted)


TASKS = Registry("capability task", {
    "facts": Entry(Task("facts", _load_facts, _check_facts, lambda items: 0.0),
                   "short factual questions, free-form answer (hand-written, MIT)"),
    "arc-easy": Entry(Task("arc-easy", _load_arc, _check_arc,
                           lambda items: sum(1 / max(1, it.n_options) for it in items) / max(1, len(items)),
                           _extract_letter), "ARC-Easy multiple choice, answer letter"),
    "gsm8k": Entry(Task("gsm8k", _load_gsm8k, _check_gsm8k, lambda items: 0.0, _extract_number),
                   "GSM8K, final number"),
})


def get_task(name: str) -> Task:
    return TASKS.load(name)


@functools.lru_cache(maxsize=None)
def load_task(name: str) -> tuple[TaskItem, ...]:
    return get_task(name).load()


def _rank(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def task_split(name: str, part: str) -> tuple[TaskItem, ...]:
    """``search`` or ``holdout`` half of a task (fixed hash order, independent of any search seed)."""
    if part not in PARTS:
        raise SafetuneError(f"unknown split part {part!r}; use one of: {', '.join(PARTS)}")
    items = load_task(name)
    if part == "all":
        return items
    holdout = {it.id for it in sorted(items, key=lambda it: _rank(SPLIT_SEED, it.id))[: len(items) // 2]}
    return tuple(it for it in items if (it.id in holdout) == (part == "holdout"))


def sample_tasks(names, n_per_task: int, seed: int = 0, part: str = "search",
                 exclude: frozenset[str] | set[str] = frozenset()) -> tuple[TaskItem, ...]:
    """A deterministic sample of n items per task from one part of its split, skipping ``exclude``."""
    out = []
    for name in names:
        items = [it for it in task_split(name, part) if it.id not in exclude]
        out.extend(sorted(items, key=lambda it: _rank(seed, it.id))[:n_per_task])
    return tuple(out)


def is_correct(item: TaskItem, response: str) -> bool:
    return get_task(item.task).check(item, response)


def chance_level(task: str, items) -> float:
    return get_task(task).chance(tuple(items))
