"""Reference probes: the machine's own rates, timed in the same run as fastdensity's ops.

A throughput figure on a shared machine means little alone: the same code runs at half speed
when another process holds a core. Dividing an op's rate by a probe timed next to it on the same
threads gives an *efficiency* that moves with the code, not with the machine's load.

Two probes, written here and independent of fastdensity's kernels, so that a regression in our
own code (our vectorised exp, our tiling) shows as a drop of efficiency instead of moving the
yardstick with it:

* ``exp``: a Numba-parallel sum of a vectorised exp (its own polynomial, not fastdensity's) over a
  cache-resident array, on the same threading layer and thread count as the KDE kernels (the
  floor of the exp-bound ops: one exp per pair evaluation);
* ``dgemm``: a float64 matrix product through NumPy's BLAS (the floor of the distance- and
  linear-algebra-bound ops: kNN, mixtures, FID, PRDC).

Each probe call takes about ``target_s`` seconds; its rate is exps/s or flop/s, per second of
the chosen clock: ``"wall"`` (elapsed time) or ``"cpu"`` (the process's CPU time, which another
process holding a core does not inflate: the clock of the CI guard, on one thread).
"""

from __future__ import annotations

import time

import numpy as np

TIMERS = {"wall": time.perf_counter, "cpu": time.process_time}


def check_clock(clock: str) -> str:
    if clock not in TIMERS:
        raise ValueError(f"clock must be one of {sorted(TIMERS)}; got {clock!r}")
    return clock


EXP_BLOCK = 4096  # values per block: the whole array (64 KiB) stays in L2
DGEMM_SIZE = 256


def _exp_kernel():
    # Compiled on first use so that importing fastdensity compiles nothing.
    from numba import njit, prange

    # A vectorised exp of its own, as the KDE kernels have theirs: exp(x) = exp(x/8)^8 with exp(x/8)
    # by its degree-7 Taylor polynomial (relative error about 1e-11 on [-1, 0]), straight-line FMAs
    # that LLVM vectorises like the KDE's inner loop. A scalar libm exp would not track the KDE on
    # a loaded machine: vector and scalar code slow down by different factors when other
    # processes share the cores' vector units (seen here: the KDE-to-libm ratio fell 20 % at load
    # 10 while the DGEMM-probed ops rose 20 %).
    @njit(parallel=True, fastmath=True, cache=True)
    def exp_sum(values, n_blocks):
        partial = np.zeros(n_blocks)
        for block in prange(n_blocks):
            shift = block * 1e-9  # blocks differ, so the compiler cannot hoist the loop
            total = 0.0
            for i in range(values.shape[0]):
                y = (values[i] - shift) * 0.125
                p = 1.0 + y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (
                    1.0 / 120.0 + y * (1.0 / 720.0 + y * (1.0 / 5040.0)))))))
                p = p * p
                p = p * p
                total += p * p
            partial[block] = total
        return partial.sum()

    return exp_sum


class Probes:
    """The two probes, calibrated once so that one call takes about ``target_s`` seconds."""

    def __init__(self, target_s: float = 0.05, clock: str = "wall"):
        self.target_s = float(target_s)
        self.clock = check_clock(clock)
        self._exp_sum = _exp_kernel()
        self._values = -np.linspace(0.0, 1.0, EXP_BLOCK)
        rng = np.random.default_rng(0)
        self._a = rng.standard_normal((DGEMM_SIZE, DGEMM_SIZE))
        self._b = rng.standard_normal((DGEMM_SIZE, DGEMM_SIZE))
        self._exp_blocks = self._calibrate(self._time_exp, 16)
        self._gemm_reps = self._calibrate(self._time_gemm, 1)

    def _time_exp(self, n_blocks):
        timer = TIMERS[self.clock]
        start = timer()
        self._exp_sum(self._values, n_blocks)
        return timer() - start

    def _time_gemm(self, reps):
        timer = TIMERS[self.clock]
        start = timer()
        for _ in range(reps):
            np.dot(self._a, self._b)
        return timer() - start

    def _calibrate(self, timed, units):
        timed(units)  # compile / warm the BLAS
        while True:
            elapsed = timed(units)
            if elapsed >= self.target_s / 4 or units > 1 << 30:
                break
            units *= 2
        return max(1, int(units * self.target_s / max(elapsed, 1e-9)))

    def rate(self, kind: str) -> float:
        """One timed call of probe ``kind`` ("exp" or "dgemm"); returns its rate per second."""
        if kind == "exp":
            elapsed = self._time_exp(self._exp_blocks)
            return self._exp_blocks * EXP_BLOCK / elapsed
        if kind == "dgemm":
            elapsed = self._time_gemm(self._gemm_reps)
            return self._gemm_reps * 2.0 * DGEMM_SIZE**3 / elapsed
        raise ValueError(f"unknown probe {kind!r}; expected 'exp' or 'dgemm'")


PROBE_UNITS = {"exp": "exp/s", "dgemm": "flop/s"}
