"""Threads and processes under each Numba threading layer: never abort, never hang.

Each check runs in a fresh interpreter (a process has one threading layer, chosen when it is
first loaded) with ``NUMBA_THREADING_LAYER`` set, under a timeout, so that a hang fails the test
instead of stalling CI. The kernels are compiled and cached once in this process first (the
``warm_cache`` fixture), so that each child only loads them: a few seconds each.

Layers that cannot be loaded here (TBB without the ``tbb`` package) are skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the guard is POSIX-only (see _threading_layer)")

# Small data that still runs every kernel's parallel driver: KDE above SERIAL_BELOW_PAIRS
# (2**20 pairs), the mixture above PARALLEL_MIN_CHUNKS * CHUNK (8192) rows.
_SETUP = textwrap.dedent(
    """
    import json, os, sys, threading, warnings
    import numpy as np
    import fastdensity as fd
    from fastdensity._backend import _threading_layer as tl

    warnings.simplefilter("ignore")  # the 5-iteration mixture does not converge, on purpose
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1200, 2))
    Q = rng.standard_normal((1000, 2))
    XG = np.vstack([rng.standard_normal((5000, 2)), rng.standard_normal((5000, 2)) + 4.0])
    QG = rng.standard_normal((9000, 2)) * 2.0
    models = {
        "kde": (fd.KernelDensity(bandwidth=0.4).fit(X), Q),
        "knn": (fd.KNNDensity(n_neighbors=5).fit(X), Q),
        "gmm": (fd.GaussianMixture(2, max_iter=5, tol=0.0, random_state=0).fit(XG), QG),
    }
    reference = {name: m.score_samples(q) for name, (m, q) in models.items()}
    """
)


_DESCRIBE = "import json, fastdensity\nfrom fastdensity._backend import _threading_layer as tl\n" \
            "print(json.dumps(tl.describe()))"


def _describe(layer: str | None, prefix: str = "") -> dict:
    return json.loads(_run(prefix + _DESCRIBE, layer, timeout=120).stdout.strip().splitlines()[-1])


def _run(code: str, layer: str | None, *, timeout: float, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    if layer is not None:
        env["NUMBA_THREADING_LAYER"] = layer
    # Its own session, so that a hang is ended with everything it started (pool workers too).
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # a hang is a failure, never a stalled run
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"layer {layer}: no result after {timeout} s (hung?)\nstdout: {stdout}\n"
                    f"stderr: {stderr[-3000:]}")
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    if check and proc.returncode != 0:
        pytest.fail(f"layer {layer}: exit status {proc.returncode}\nstdout: {proc.stdout}\n"
                    f"stderr: {proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def warm_cache():
    """Compile (and cache on disk) every kernel the children run, in this process."""
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the 5-iteration mixture does not converge, on purpose
        exec(_SETUP, namespace)
    return True


_LAYERS = ["workqueue", "omp", "tbb"]


@pytest.fixture(scope="module", params=_LAYERS)
def layer(request, warm_cache):
    if request.param == "tbb" and _describe("tbb")["layer"] != "tbb":
        pytest.skip("the TBB threading layer cannot be loaded here (pip install tbb)")
    return request.param


_THREADS = _SETUP + textwrap.dedent(
    """
    from concurrent.futures import ThreadPoolExecutor

    def score(i):
        name = sorted(models)[i % 3]
        model, q = models[name]
        return name, model.score_samples(q)

    with ThreadPoolExecutor(4) as pool:  # 16 calls per model from 4 threads at once
        results = list(pool.map(score, range(48)))
    bad = [name for name, got in results if not np.array_equal(got, reference[name])]
    print(json.dumps({"describe": tl.describe(), "calls": len(results), "different": bad}))
    """
)


def test_threads_hammering_score_samples_give_identical_results(layer):
    proc = _run(_THREADS, layer, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["describe"]["layer"] == layer
    assert out["calls"] == 48
    assert out["different"] == []


_FORK = _SETUP + textwrap.dedent(
    """
    import multiprocessing as mp

    def child_scores(name):
        model, q = models[name]
        return name, model.score_samples(q).tolist(), tl.describe()["guard"]

    # Another thread keeps entering parallel regions while the pool forks, so that the fork can
    # happen while it holds the guard.
    stop = threading.Event()
    def busy():
        while not stop.is_set():
            models["kde"][0].score_samples(Q)
    worker = threading.Thread(target=busy)
    worker.start()
    try:
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map(child_scores, sorted(models) * 2)
    finally:
        stop.set()
        worker.join()
    bad = [name for name, got, _ in results if not np.array_equal(np.array(got), reference[name])]
    print(json.dumps({"describe": tl.describe(), "child_guards": sorted({g or "none" for _, _, g in results}),
                      "results": len(results), "different": bad}))
    """
)


def test_fork_pool_after_use_completes(layer):
    proc = _run(_FORK, layer, timeout=120)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["results"] == 6
    assert out["different"] == []
    assert "fork() called from a process already using GNU OpenMP" not in proc.stderr
    if layer == "omp":  # GNU OpenMP cannot run in a forked child: the child runs regions in-caller
        assert out["child_guards"] == ["in-caller"]


def test_default_layer_is_chosen_at_import_and_a_users_choice_is_kept():
    # Unchosen: TBB where it loads (as Numba would pick), else workqueue, never GNU OpenMP.
    if _describe("tbb")["layer"] == "tbb":
        expected = {"layer": "tbb", "chosen_by": "fastdensity", "guard": None}
    else:
        expected = {"layer": "workqueue", "chosen_by": "fastdensity", "guard": "serialise"}
    assert _describe(None) == expected
    kept = _describe("omp")
    assert kept["layer"] == "omp" and kept["chosen_by"] == "NUMBA_THREADING_LAYER"
    kept = _describe(None, prefix="import numba\nnumba.config.THREADING_LAYER = 'omp'\n")
    assert kept["layer"] == "omp" and kept["chosen_by"] == "numba.config.THREADING_LAYER"
    priority = "import numba\nnumba.config.THREADING_LAYER_PRIORITY = ['omp', 'tbb', 'workqueue']\n"
    kept = _describe(None, prefix=priority)
    assert kept["layer"] == "omp" and kept["chosen_by"] == "numba.config.THREADING_LAYER_PRIORITY"


def test_nested_parallel_region_under_workqueue_fails_fast_instead_of_hanging():
    # workqueue cannot nest regions; the guard must hand a nested region to the layer (which
    # aborts with its message) rather than wait for the mutex its own caller holds.
    code = textwrap.dedent(
        """
        import numpy as np, numba, fastdensity

        @numba.njit(parallel=True)
        def inner(x):
            for i in numba.prange(x.shape[0]):
                x[i] += 1.0

        @numba.njit(parallel=True)
        def outer(z):
            for i in numba.prange(z.shape[0]):
                inner(z[i])

        outer(np.zeros((4, 8)))
        """
    )
    proc = _run(code, "workqueue", timeout=120, check=False)
    assert proc.returncode != 0
    assert "workqueue threading layer is terminating" in proc.stderr


def test_describe_in_this_process():
    import numba

    from fastdensity._backend import _threading_layer as tl

    info = tl.describe()
    assert info["layer"] == numba.threading_layer()
    if info["layer"] == "omp":
        from numba.np.ufunc import omppool

        expected = "pass" if omppool.openmp_vendor == "GNU" else None
    else:
        expected = {"workqueue": "serialise", "tbb": None}[info["layer"]]
    assert info["guard"] == expected
    np.testing.assert_equal(tl.configure(), info)  # configuring again changes nothing
