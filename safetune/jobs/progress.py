"""A job's progress bar: answers as the engine finishes them, and those that never reach it."""

from __future__ import annotations

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar in responses, fed by the engine's ``on_batch`` (generated and cached answers) and by
    ``evaluate`` for candidates the evaluator answers from its result cache (they reach no engine)."""

    def __init__(self, engine, total: int, desc: str, enabled: bool):
        self.bar = tqdm(total=total, unit="resp", desc=desc, disable=not enabled, dynamic_ncols=True)
        engine.on_batch = self.bar.update

    def evaluate(self, evaluator, configs, per_candidate: int | None = None):
        """``evaluator.evaluate(configs)``, counted as ``per_candidate`` responses per configuration
        (default: all of the evaluator's). The engine moves the bar while it works; afterwards the count
        is set exactly, since answers the result cache held never reach the engine and answers a race's
        first slice already counted reach it again from the generation cache."""
        per = evaluator.responses_per_candidate if per_candidate is None else per_candidate
        before = self.bar.n
        results = evaluator.evaluate(configs)
        self.bar.update(before + len(configs) * per - self.bar.n)
        return results

    def note(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def resize(self, total: int) -> None:
        self.bar.total = total
        self.bar.refresh()

    def skip(self, responses: int) -> None:
        """Responses the bar's total counted that will never be asked for (raced-out candidates' rest)."""
        self.resize(self.bar.total - responses)

    def close(self) -> None:
        self.bar.close()
