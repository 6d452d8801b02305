"""Serial and parallel drivers compiled from one body (fastdensity._backend._numba_drivers)."""

import numba
import numpy as np
import pytest
from numba import prange

from fastdensity._backend._numba_drivers import serial_and_parallel


def _scaled_roots(x, out):
    for i in prange(x.shape[0]):
        out[i] = np.sqrt(x[i]) * (i + 1)


SERIAL, PARALLEL = serial_and_parallel(_scaled_roots, cache=False)


def test_twins_compute_the_same_bits():
    x = np.random.default_rng(3).uniform(size=10_007)
    a, b = np.empty_like(x), np.empty_like(x)
    SERIAL(x, a)
    PARALLEL(x, b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.sqrt(x) * np.arange(1, x.size + 1))


def test_only_one_twin_is_threaded():
    assert PARALLEL.targetoptions.get("parallel") is True
    assert not SERIAL.targetoptions.get("parallel")


def test_twins_have_their_own_cache_names():
    # Numba names cache files by qualified name; one name for both would let a cached parallel
    # build stand in for the serial one (and back).
    assert SERIAL.py_func.__qualname__ == "_scaled_roots_serial"
    assert PARALLEL.py_func.__qualname__ == "_scaled_roots"
    assert SERIAL.py_func.__code__ is PARALLEL.py_func.__code__  # one body


def test_parallel_is_set_by_the_helper():
    with pytest.raises(TypeError, match="sets `parallel` itself"):
        serial_and_parallel(_scaled_roots, parallel=False)


@pytest.mark.parametrize("module, serial, parallel", [
    ("fastdensity.kde._kde_cpu", "kde_logsum_unrolled_serial", "kde_logsum_unrolled"),
    ("fastdensity.kde._kde_cpu", "kde_logsum_buffered_serial", "kde_logsum_buffered"),
    ("fastdensity.kde._kde_metric_cpu", "kde_logsum_metric_serial", "kde_logsum_metric_parallel"),
    ("fastdensity.mixture._mixture_cpu", "_gmm_pass_serial", "_gmm_pass_parallel"),
    ("fastdensity.mixture._kmeans_cpu", "_lloyd_pass_serial", "_lloyd_pass_parallel"),
])
def test_engine_drivers_share_one_body(module, serial, parallel):
    import importlib

    mod = importlib.import_module(module)
    s, p = getattr(mod, serial), getattr(mod, parallel)
    assert isinstance(s, numba.core.registry.CPUDispatcher)
    assert s.py_func.__code__ is p.py_func.__code__
    assert p.targetoptions.get("parallel") is True and not s.targetoptions.get("parallel")
