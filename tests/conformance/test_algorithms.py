"""Every registered search algorithm against the ask/tell contract (safetune/testing/algorithms.py)."""

import pytest

from safetune.search.registry import algorithm_names, get_algorithm
from safetune.testing.algorithms import AlgorithmSuite


@pytest.fixture(params=algorithm_names())
def make_algorithm(request):
    return lambda: get_algorithm(request.param)


class TestAlgorithms(AlgorithmSuite):
    pass


def test_every_algorithm_is_in_the_suite():
    assert algorithm_names() == ["nsga2", "random", "lagrangian"]
