"""Fixtures shared by the Dask tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client():
    """A real ``distributed.LocalCluster``: two worker processes of one thread each, per module."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()
