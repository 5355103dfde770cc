"""Every registered judge against the judge conformance suite (safetune/testing/judges.py): the two
offline ones as shipped, the model-backed ones on tiny random models of their architectures."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402

from safetune.components.judges import get_judge, judge_names  # noqa: E402
from safetune.testing.judges import JudgeSuite  # noqa: E402

OFFLINE = ("heuristic", "safetune")


@pytest.fixture(scope="module", params=judge_names())
def judge(request):
    if request.param in OFFLINE:
        return get_judge(request.param)
    return request.getfixturevalue("lm_judges")[request.param]


class TestJudges(JudgeSuite):
    pass


def test_every_registered_judge_is_in_the_suite():
    assert set(judge_names()) == {"heuristic", "safetune", "llama-guard", "harmbench-classifier", "criteria"}
