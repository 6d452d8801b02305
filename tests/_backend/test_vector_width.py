"""The 512-bit vector preference: applied in a fresh process on AVX-512 hosts, never over a user's
own Numba CPU settings, never after Numba has compiled something."""

from __future__ import annotations

import os
import subprocess
import sys

import llvmlite.binding as llvm
import pytest

HAS_AVX512 = bool(llvm.get_host_cpu_features().get("avx512f", False))
PROBE = "import fastdensity, numba.core.config as c; print(repr(c.CPU_FEATURES))"


def _features_in_fresh_process(code, **env_overrides):
    env = {k: v for k, v in os.environ.items()
           if k not in ("FASTDENSITY_KEEP_NUMBA_FEATURES", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    env.update(env_overrides)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(not HAS_AVX512, reason="the host has no AVX-512")
def test_applied_on_avx512_hosts():
    assert _features_in_fresh_process(PROBE).endswith(",-prefer-256-bit'")


def test_opt_out_and_user_settings_are_respected():
    assert _features_in_fresh_process(PROBE, FASTDENSITY_KEEP_NUMBA_FEATURES="1") == "None"
    host = llvm.get_host_cpu_features().flatten()
    assert _features_in_fresh_process(PROBE, NUMBA_CPU_FEATURES=host) == repr(host)


def test_not_applied_after_numba_compiled_something():
    code = ("import numba\n@numba.njit\ndef f(x):\n    return x + 1\nf(1)\n" + PROBE)
    assert _features_in_fresh_process(code) == "None"
