"""Dask arrays on a real ``distributed.LocalCluster`` with two worker processes: query results
and a GaussianMixture fit equal the in-memory ones, and a worker killed in the middle of a computation is survived (the scheduler reruns its tasks) with the same
result."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from fastdensity import GaussianMixture, KernelDensity  # noqa: E402

RTOL = 1e-12  # the same per-row code on the same numbers (see test_dask_queries.py)


def _data(n, m, d, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((m, d)) * 1.3


def test_results_equal_in_memory_on_worker_processes(client):
    X, Q = _data(2000, 3000, 2, seed=0)
    lazy_Q = da.from_array(Q, chunks=(500, 2))
    kde = KernelDensity(bandwidth="scott").fit(X)
    gmm = GaussianMixture(n_components=3, random_state=0).fit(X)
    got_kde, got_proba, got_score = client.compute(
        [kde.score_samples(lazy_Q), gmm.predict_proba(lazy_Q), gmm.score_samples(lazy_Q).sum()], sync=True
    )
    np.testing.assert_allclose(got_kde, kde.score_samples(Q), rtol=RTOL)
    np.testing.assert_allclose(got_proba, gmm.predict_proba(Q), rtol=RTOL, atol=1e-300)
    np.testing.assert_allclose(got_score, gmm.score_samples(Q).sum(), rtol=RTOL)
    # score() reduces on the workers through the client that is current
    np.testing.assert_allclose(kde.score(lazy_Q), kde.score(Q), rtol=RTOL)


def test_gmm_fit_on_worker_processes_equals_in_memory(client):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    X, _ = _data(6000, 10, 3, seed=3)
    X[:2000] += 5.0
    start = GaussianMixture(n_components=2, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
        params = dict(n_components=2, max_iter=15, tol=0.0, weights_init=start.weights_,
                      means_init=start.means_, precisions_init=start.precisions_)
        in_memory = GaussianMixture(**params).fit(X)
        on_cluster = GaussianMixture(**params).fit(da.from_array(X, chunks=(1000, 3)))
    np.testing.assert_allclose(on_cluster.means_, in_memory.means_, rtol=1e-10)
    np.testing.assert_allclose(on_cluster.covariances_, in_memory.covariances_, rtol=1e-10)
    np.testing.assert_allclose(on_cluster.lower_bound_, in_memory.lower_bound_, rtol=1e-10)


def test_a_worker_killed_mid_computation_is_survived(client):
    X, Q = _data(20000, 40000, 2, seed=2)
    kde = KernelDensity(bandwidth=0.3).fit(X)
    want = kde.score_samples(Q)
    future = client.compute(kde.score_samples(da.from_array(Q, chunks=(1000, 2))))
    deadline = time.monotonic() + 60
    while not any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # some chunks done, others running
    assert not future.done(), "the computation ended before a worker could be killed; make it longer"
    victim_pid = next(iter(client.run(os.getpid).values()))
    os.kill(victim_pid, signal.SIGKILL)  # the nanny restarts the worker; its tasks are rerun
    np.testing.assert_allclose(future.result(timeout=120), want, rtol=RTOL)
