"""Mixture tests: scikit-learn's reference fits run with one BLAS thread.

Its small matrix products gain nothing from threads, and on a busy 2-core machine OpenBLAS's
spinning threads make a 900-row reference fit take seconds instead of milliseconds. fastdensity's
engine runs on Numba's threads, which this does not touch.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
