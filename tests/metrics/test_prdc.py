"""PRDC against the ``prdc`` package (which forms N × N matrices), tile-size and engine
invariance, memory, exact ties, and the device code path (run here on torch CPU tensors)."""

from __future__ import annotations

import contextlib
import io
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

prdc_package = pytest.importorskip("prdc")

from fastdensity.knn._knn_cpu import knn_distances  # noqa: E402
from fastdensity.metrics import prdc  # noqa: E402
from fastdensity.metrics._prdc import _ball_counts_device, _prdc_device, ball_counts  # noqa: E402

KEYS = ("precision", "recall", "density", "coverage")


def reference(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the sizes
        return {key: float(v) for key, v in prdc_package.compute_prdc(real, fake, k).items()}


def assert_same(got, expected):
    assert set(got) == set(KEYS)
    for key in ("precision", "recall", "coverage"):  # fractions of counts: exact
        assert got[key] == expected[key], key
    assert got["density"] == pytest.approx(expected["density"], rel=1e-12)


def gaussian_sets(n_real, n_fake, d, seed, shift=0.3, scale=1.2):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n_real, d)), rng.standard_normal((n_fake, d)) * scale + shift


@pytest.mark.parametrize(
    "n_real, n_fake, d, k",
    [(300, 250, 2, 5), (200, 310, 4, 3), (1100, 1300, 16, 5), (150, 120, 64, 10), (40, 60, 4, 1)],
)
def test_matches_prdc_package(n_real, n_fake, d, k):
    real, fake = gaussian_sets(n_real, n_fake, d, seed=d + k)
    assert_same(prdc(real, fake, nearest_k=k), reference(real, fake, k))


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_ties_and_duplicates_on_an_integer_grid(k):
    # Small integers: every distance is exact in both implementations, and many are equal
    # (points on ball boundaries, duplicated points, zero radii).
    rng = np.random.default_rng(k)
    real = rng.integers(0, 4, (300, 3)).astype(np.float64)
    fake = rng.integers(0, 4, (250, 3)).astype(np.float64)
    assert_same(prdc(real, fake, nearest_k=k), reference(real, fake, k))


@given(
    seed=st.integers(0, 2**32 - 1),
    n_real=st.integers(7, 40),  # the package needs nearest_k + 2 rows (argpartition's bound)
    n_fake=st.integers(7, 40),
    d=st.sampled_from([1, 2, 4]),
    k=st.integers(1, 5),
    levels=st.integers(1, 5),
)
def test_matches_prdc_package_on_random_grids(seed, n_real, n_fake, d, k, levels):
    # Half-integers on a small grid: exact distances in both implementations, many ties.
    rng = np.random.default_rng(seed)
    real = rng.integers(0, levels + 1, (n_real, d)) / 2.0
    fake = rng.integers(0, levels + 1, (n_fake, d)) / 2.0
    assert_same(prdc(real, fake, nearest_k=k, batch_size=int(rng.integers(1, 50))), reference(real, fake, k))


def numpy_prdc(real, fake, k):
    """Oracle for sizes the package refuses: the definitions with full distance matrices."""
    drr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    dff = np.sqrt(((fake[:, None] - fake[None]) ** 2).sum(-1))
    drf = np.sqrt(((real[:, None] - fake[None]) ** 2).sum(-1))
    r_real = np.sort(drr, axis=1)[:, k]
    r_fake = np.sort(dff, axis=1)[:, k]
    inside = drf < r_real[:, None]
    return {
        "precision": float(inside.any(0).mean()),
        "recall": float((drf < r_fake[None]).any(1).mean()),
        "density": float(inside.sum(0).mean() / k),
        "coverage": float((drf.min(1) < r_real).mean()),
    }


def test_smallest_sets_nearest_k_plus_one_rows():
    real, fake = gaussian_sets(4, 5, 2, seed=17)
    assert_same(prdc(real, fake, nearest_k=3), numpy_prdc(real, fake, 3))


def test_fake_copies_of_real_points():
    real, _ = gaussian_sets(200, 1, 4, seed=5)
    fake = np.vstack([real[:80], real[:80] + 1e-3])
    assert_same(prdc(real, fake, nearest_k=4), reference(real, fake, 4))
    same = prdc(real, real, nearest_k=4)
    assert_same(same, reference(real, real, 4))
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0


@pytest.mark.parametrize("batch_size", [2, 7, 100, 5000])
def test_batch_size_does_not_change_the_result(batch_size):
    real, fake = gaussian_sets(150, 130, 4, seed=6)
    assert prdc(real, fake, nearest_k=5, batch_size=batch_size) == prdc(real, fake, nearest_k=5)


def test_engines_and_threads_agree():
    real, fake = gaussian_sets(1500, 1200, 2, seed=7)
    base = prdc(real, fake, nearest_k=5, algorithm="brute", n_jobs=1)
    assert prdc(real, fake, nearest_k=5, algorithm="kd_tree") == base
    assert prdc(real, fake, nearest_k=5, algorithm="auto", n_jobs=2) == base


@pytest.mark.parametrize("scale", [2.0**-320, 2.0**310])
def test_extreme_scales(scale):
    # Power-of-two scaling is exact, so the answer must not move; outside the screen's range every
    # pair is computed exactly.
    real, fake = gaussian_sets(120, 100, 4, seed=8)
    assert prdc(real * scale, fake * scale, nearest_k=3) == prdc(real, fake, nearest_k=3)


def test_ball_counts_match_brute_force():
    rng = np.random.default_rng(9)
    queries, centres = rng.standard_normal((90, 5)), rng.standard_normal((70, 5))
    radii = rng.uniform(0.5, 2.5, 70)
    D = np.sqrt(((queries[:, None] - centres[None]) ** 2).sum(-1))
    np.testing.assert_array_equal(ball_counts(queries, centres, radii, 16), (D < radii[None]).sum(1))


def test_memory_is_linear():
    # prdc would hold 8000² float64 = 512 MB per matrix; a tile is 256 × 512 float64 per thread.
    real, fake = gaussian_sets(8000, 8000, 4, seed=10)
    prdc(real[:50], fake[:50], nearest_k=5)  # compile outside the measurement
    tracemalloc.start()
    try:
        prdc(real, fake, nearest_k=5)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.05 * 8000**2 * 8, f"peak {peak / 2**20:.1f} MiB"


def test_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    real, fake = gaussian_sets(200, 150, 4, seed=11)
    assert prdc(torch.from_numpy(real), torch.from_numpy(fake), nearest_k=5) == prdc(real, fake, nearest_k=5)


def test_device_code_path_on_torch_cpu():
    # The GPU path's array code, run on CPU tensors with the CPU kNN standing in for the op.
    torch = pytest.importorskip("torch")

    def knn(queries, train, k):
        dist, ind = knn_distances(queries.numpy(), train.numpy(), k)
        return torch.from_numpy(dist), torch.from_numpy(ind)

    real, fake = gaussian_sets(300, 260, 4, seed=12)
    for bs in (1000, 37):
        assert_same(_prdc_device(torch.from_numpy(real), torch.from_numpy(fake), 5, bs, knn), reference(real, fake, 5))
    grid_real = np.random.default_rng(13).integers(0, 3, (200, 2)).astype(np.float64)
    grid_fake = np.random.default_rng(14).integers(0, 3, (150, 2)).astype(np.float64)
    assert_same(_prdc_device(torch.from_numpy(grid_real), torch.from_numpy(grid_fake), 3, 64, knn),
                reference(grid_real, grid_fake, 3))
    radii = torch.full((260,), 0.9, dtype=torch.float64)
    np.testing.assert_array_equal(
        _ball_counts_device(torch.from_numpy(real), torch.from_numpy(fake), radii, 50).numpy(),
        ball_counts(real, fake, radii.numpy(), 50),
    )


def test_errors():
    X = np.zeros((5, 2))
    with pytest.raises(ValueError, match="real_features needs at least 6 samples"):
        prdc(X, np.ones((10, 2)), nearest_k=5)
    with pytest.raises(ValueError, match="they must match"):
        prdc(np.ones((10, 2)), np.ones((10, 3)), nearest_k=2)
    with pytest.raises(ValueError, match="fake_features contains NaN"):
        prdc(np.ones((10, 2)), np.full((10, 2), np.nan), nearest_k=2)
    with pytest.raises(ValueError, match="nearest_k must be a positive integer"):
        prdc(X, X, nearest_k=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        prdc(X, X, nearest_k=1, batch_size=0)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        prdc(X, X, nearest_k=1, algorithm="ball_tree")
    with pytest.raises(ValueError, match="2-D array"):
        prdc(np.ones(10), np.ones(10), nearest_k=1)


@pytest.mark.gpu
def test_cuda_inputs_match_cpu():
    import cupy

    real, fake = gaussian_sets(3000, 2500, 16, seed=15)
    expected = prdc(real, fake, nearest_k=5)
    got = prdc(cupy.asarray(real), cupy.asarray(fake), nearest_k=5)
    assert got == pytest.approx(expected, rel=1e-12)
    torch = pytest.importorskip("torch")
    got = prdc(torch.from_numpy(real).cuda(), torch.from_numpy(fake).cuda(), nearest_k=5)
    assert got == pytest.approx(expected, rel=1e-12)


def test_float32_features_are_computed_in_float64():
    real, fake = gaussian_sets(300, 280, 16, seed=16)
    real32, fake32 = real.astype(np.float32), fake.astype(np.float32)
    got = prdc(real32, fake32, nearest_k=5)
    assert got == prdc(real32.astype(np.float64), fake32.astype(np.float64), nearest_k=5)
    assert_same(got, reference(real32.astype(np.float64), fake32.astype(np.float64), 5))
