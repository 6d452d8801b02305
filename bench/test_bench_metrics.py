"""pytest-benchmark suites for fastdensity.metrics and the generative models' training step.

    pytest bench/test_bench_metrics.py                               # time (a minute or so)
    FASTDENSITY_BENCH_QUICK=1 pytest bench --benchmark-disable       # CI: every body once

PRDC at N real = N fake, d = 64 (the kNN engine and the tiled ball counting), FID from features
at d = 512 (two covariances, eigh and an SVD in float64), KID with 100 subsets of 1000, and one
epoch of VAE training on the digits (the Trainer's loop). ``bench/compare_metrics.py`` times PRDC
against the prdc package in one process (time and peak memory); ``bench/generative_vae.py``
compares the Trainer with a hand-written torch loop.

These are measurements, not assertions: no test fails because the machine is slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fastdensity.metrics import fid, kid, prdc

pytest.importorskip("pytest_benchmark")

QUICK = os.environ.get("FASTDENSITY_BENCH_QUICK", "") not in ("", "0")
PRDC_N = 1_000 if QUICK else 10_000
FID_N, FID_D = (600, 64) if QUICK else (10_000, 512)
KID_SUBSET = 200 if QUICK else 1000


def _features(n, d, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((n, d)) * 1.1 + 0.05


def test_prdc(benchmark):
    real, fake = _features(PRDC_N, 64, 0)
    benchmark.extra_info.update(n=PRDC_N, d=64, nearest_k=5)
    result = benchmark.pedantic(prdc, args=(real, fake), kwargs={"nearest_k": 5}, rounds=1 if QUICK else 3)
    assert 0.0 <= result["precision"] <= 1.0


def test_fid(benchmark):
    real, fake = _features(FID_N, FID_D, 1)
    benchmark.extra_info.update(n=FID_N, d=FID_D)
    value = benchmark.pedantic(fid, args=(real, fake), rounds=1 if QUICK else 3)
    assert value > 0.0


def test_kid(benchmark):
    real, fake = _features(max(KID_SUBSET, 2_000 if not QUICK else 400), 64, 2)
    benchmark.extra_info.update(subsets=100, subset_size=KID_SUBSET, d=64)
    result = benchmark.pedantic(kid, args=(real, fake), kwargs={"subset_size": KID_SUBSET, "random_state": 0},
                                rounds=1 if QUICK else 3)
    assert np.isfinite(result.mean)


def test_vae_training_epoch(benchmark):
    pytest.importorskip("torch")
    from fastdensity.datasets import load_digits
    from fastdensity.generative import VAE

    X = load_digits(binarize=True, split="train")
    benchmark.extra_info.update(n=X.shape[0], batch_size=128, epochs=1)

    def one_epoch():
        return VAE(max_epochs=1, random_state=0, progress=False).fit(X)

    vae = benchmark.pedantic(one_epoch, rounds=1 if QUICK else 5)
    assert len(vae.loss_history_) == 1
