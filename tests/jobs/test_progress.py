"""The job progress bar (jobs/progress.py) by hand: what it shows is what the evaluations account for."""

from safetune.jobs.progress import Progress


class Engine:
    on_batch = None


class Evaluator:
    """Answers ``per`` responses per configuration; ``reaching`` of them reach the engine (the rest
    come from the result cache)."""

    def __init__(self, engine, per, reaching):
        self.engine, self.responses_per_candidate, self.reaching = engine, per, reaching

    def evaluate(self, configs):
        if self.reaching:
            self.engine.on_batch(self.reaching * len(configs))
        return list(configs)


def test_the_bar_shows_what_the_evaluations_account_for():
    engine = Engine()
    bar = Progress(engine, 4 * 3, "test", enabled=True)
    assert bar.evaluate(Evaluator(engine, 3, 0), ["default"]) == ["default"]  # all from the result cache
    assert bar.bar.n == bar.done == 3
    engine.on_batch(3)  # the default re-read under its calibration: not a new response
    bar.evaluate(Evaluator(engine, 3, 1), ["a", "b"], per_candidate=1)  # a race's first slice
    assert bar.bar.n == bar.done == 5
    bar.skip(2)  # b raced out: its rest is never asked for
    bar.evaluate(Evaluator(engine, 3, 3), ["a"], per_candidate=2)  # a's rest; its slice is read again
    assert bar.bar.n == bar.done == 7 and bar.bar.total == 10
    bar.expect(0)  # the job ends here
    assert bar.bar.total == 7
    engine.on_batch(1)
    bar.close()
    assert bar.bar.n == bar.bar.total == 7
