"""Shared test configuration: hypothesis profiles, the GPU marker policy and fresh GPU test inputs."""

from __future__ import annotations

import os
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, settings

# Derandomised in CI so that a red run can be reproduced; a few more examples locally.
settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@lru_cache(maxsize=1)
def _gpu_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver, no device: all mean "no GPU" here
        return False


def pytest_runtest_setup(item):
    # get_closest_marker, not ``"gpu" in item.keywords``: keywords also hold parametrize ids.
    if item.get_closest_marker("gpu") is None or _gpu_available():
        return
    if os.environ.get("FASTDENSITY_REQUIRE_GPU") == "1":
        pytest.fail("FASTDENSITY_REQUIRE_GPU=1 but no usable CUDA GPU with CuPy was found")
    pytest.skip("needs a CUDA GPU and CuPy")


@pytest.fixture(autouse=True)
def _fresh_inputs_in_gpu_tests(request):
    """GPU tests draw fresh random inputs (``random_inputs``); every other test, fixed ones."""
    import random_inputs

    random_inputs.FRESH = request.node.get_closest_marker("gpu") is not None
    yield
    random_inputs.FRESH = False
