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


@pytest.fixture
def threaded_scheduler(request):
    """Run the test on dask's threaded scheduler, unless it uses the cluster's ``client`` (which is
    the scheduler there). Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``."""
    if "client" in request.fixturenames:
        yield
        return
    import dask

    with dask.config.set(scheduler="threads"):
        yield
