"""One BLAS thread for these tests: on shared 2-core runners multi-threaded OpenBLAS
spins against other jobs and small factorisations slow down tenfold."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield
