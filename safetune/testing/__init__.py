"""Reusable conformance suites, one per kind of component (optuna's ``testing/`` is the model).

Every search algorithm, engine and judge sits behind a small declared interface and a registry;
these suites say what "behaves like one" means. A new implementation registered under a name runs
the suite of its kind by adding its name to the parametrisation in ``tests/conformance/``:

* ``algorithms.AlgorithmSuite``: the ask/tell contract on analytic toy objectives (``toys``);
* ``engines.EngineSuite``: order, identity, cache and progress of ``Engine.generate``;
* ``judges.JudgeSuite``: the batched ``Judge.judge`` contract and its verdict fields.

The suites are plain classes of ``test_*`` methods that use fixtures a test module provides;
nothing in the package imports this folder.
"""
