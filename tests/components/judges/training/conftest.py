import pytest

from safetune.components.judges.training.data import xstest_prompt_words


@pytest.fixture(scope="session")
def xstest_word_sets():
    """XSTest's prompts as content-word sets: hand-written data must stay away from them."""
    sets = xstest_prompt_words()
    if sets is None:
        pytest.skip("XSTest completions CSV not available")
    assert len(sets) == 450
    return sets

