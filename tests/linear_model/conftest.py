import pytest


@pytest.fixture
def sm():
    """statsmodels' api, the peer of the Gauss-Markov tests: only the tests that compare
    with it skip where it is missing."""
    return pytest.importorskip("statsmodels.api")
