"""A job's progress bar: answers as the engine finishes them, and those that never reach it."""

from __future__ import annotations

from tqdm.auto import tqdm


class Progress:
    """A tqdm bar in responses. The engine's ``on_batch`` moves it while answers are generated or read
    from the generation cache; what it *shows* after each ``evaluate`` is ``done``, the responses the
    job's evaluations account for. So answers the result cache held (they reach no engine) count, and
    answers read again (a race's first slice inside the full evaluation, the default's re-aggregation
    under its calibration) count once."""

    def __init__(self, engine, total: int, desc: str, enabled: bool):
        self.bar = tqdm(total=total, unit="resp", desc=desc, disable=not enabled, dynamic_ncols=True)
        self.done = 0
        engine.on_batch = self.bar.update

    def evaluate(self, evaluator, configs, per_candidate: int | None = None):
        """``evaluator.evaluate(configs)``, accounted as ``per_candidate`` responses per configuration
        (default: all of the evaluator's)."""
        results = evaluator.evaluate(configs)
        self.done += len(configs) * (evaluator.responses_per_candidate if per_candidate is None else per_candidate)
        self._settle()
        return results

    def note(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def expect(self, remaining: int) -> None:
        """From here on, ``remaining`` more responses (the total once the default dropped some tasks)."""
        self.bar.total = self.done + remaining
        self._settle()

    def skip(self, responses: int) -> None:
        """Responses the total counted that will never be asked for (raced-out candidates' rest)."""
        self.bar.total -= responses
        self.bar.refresh()

    def close(self) -> None:
        self._settle()
        self.bar.close()

    def _settle(self) -> None:
        self.bar.update(self.done - self.bar.n)
