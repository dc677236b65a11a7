"""Progress bars (``sketchlearn._progress``) and the verbose runs that show them."""

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from sketchlearn._progress import progress_bar, progress_range
from sketchlearn.completion import AltMinCompleter


def test_bars_only_when_verbose_and_there_is_work():
    assert progress_bar(0, 5, "x") is None
    assert progress_bar(1, 0, "x") is None
    bar = progress_bar(1, 3, "halving", unit="round")
    assert bar.total == 3 and bar.unit == "round"
    bar.close()
    assert progress_range(3, 0, "x") == range(3)
    assert list(progress_range(3, 1, "x")) == [0, 1, 2]


def test_verbose_completion_shows_a_bar(capsys):
    rng = np.random.default_rng(0)
    M = rng.normal(size=(20, 2)) @ rng.normal(size=(2, 15))
    M[rng.random(M.shape) < 0.3] = np.nan
    with pytest.warns(ConvergenceWarning):  # tol=0 and 3 sweeps: it cannot converge
        AltMinCompleter(rank=2, max_iter=3, tol=0.0, verbose=1, random_state=0).fit(M)
    assert "AltMin" in capsys.readouterr().err
