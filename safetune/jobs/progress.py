"""A job's progress bar: answers as the engine finishes them, and those that never reach it."""

from __future__ import annotations

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar in responses, fed by the engine's ``on_batch`` (generated and cached answers) and by
    ``evaluate`` for candidates the evaluator answers from its result cache (they reach no engine)."""

    def __init__(self, engine, total: int, desc: str, enabled: bool):
        self.bar = tqdm(total=total, unit="resp", desc=desc, disable=not enabled, dynamic_ncols=True)
        engine.on_batch = self.bar.update

    def evaluate(self, evaluator, configs):
        """``evaluator.evaluate(configs)``, every response of every configuration counted once."""
        before = self.bar.n
        results = evaluator.evaluate(configs)
        self.bar.update(max(0, len(configs) * evaluator.responses_per_candidate - (self.bar.n - before)))
        return results

    def note(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def resize(self, total: int) -> None:
        self.bar.total = total
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()
