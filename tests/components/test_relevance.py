"""The relevance module: cosine per pair through a Lightning predict loop; empty response = 0."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from safetune.components.relevance import RelevanceModule  # noqa: E402


def test_relevance_orders_answers_and_zeroes_empty():
    module = RelevanceModule()
    q = "How do I bake bread?"
    scores = module.score(
        [q, q, q, q],
        ["Mix flour, water, yeast and salt, knead, let the dough rise, then bake it at 220 C.",
         "The stock market closed higher on Tuesday after the central bank's announcement.",
         "", "   "],
    )
    assert scores[0] > 0.4 > scores[1]  # an on-topic answer beats an unrelated one
    assert scores[2] == 0.0 and scores[3] == 0.0
    assert module.score([], []).shape == (0,)
