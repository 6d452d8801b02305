"""Property tests (hypothesis) for KernelDensity: invariances that must hold for any data.

Examples stay in d ∈ {1, 2} and the dtypes/kernels the reference tests compile already, so that
the property tests add no Numba compilation of their own.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import fastdensity
from fastdensity import KernelDensity
from fastdensity.kde import _kde_cpu
from fastdensity.kde._kde_cpu import TILE, kde_logsum
from fastdensity.kde._kernels import COMPACT_KERNELS, KERNELS, kernel_profile_log

coords = st.floats(-3.0, 3.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def problems(draw, min_n=1, max_n=25, d=None, weighted=None):
    """(X, Y, kernel, bandwidth, weights): bandwidth a float, per-feature array or matrix."""
    d = draw(st.sampled_from([1, 2])) if d is None else d
    n = draw(st.integers(min_n, max_n))
    X = draw(arrays(np.float64, (n, d), elements=coords))
    Y = draw(arrays(np.float64, (draw(st.integers(1, 8)), d), elements=coords))
    kernel = draw(st.sampled_from(KERNELS))
    kind = draw(st.sampled_from(["scalar", "per_feature", "matrix"]))
    if kind == "scalar":
        bandwidth = draw(st.floats(0.2, 3.0))
    elif kind == "per_feature":
        bandwidth = np.array(draw(st.lists(st.floats(0.2, 3.0), min_size=d, max_size=d)))
    else:
        A = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=d * d, max_size=d * d))).reshape(d, d)
        bandwidth = A @ A.T + draw(st.floats(0.1, 2.0)) * np.eye(d)
    if weighted is None:
        weighted = draw(st.booleans())
    w = np.array(draw(st.lists(st.floats(0.01, 10.0), min_size=n, max_size=n))) if weighted else None
    return X, Y, kernel, bandwidth, w


def bandwidth_matrix(bandwidth, d):
    b = np.asarray(bandwidth, dtype=np.float64)
    return b**2 * np.eye(d) if b.ndim == 0 else np.diag(b**2) if b.ndim == 1 else b


def pair_radii(X, Y, H, lam=None):
    """r for every (query, training) pair in the metric H⁻¹, divided by λ_j: (m, n)."""
    P = np.linalg.inv(H)
    diff = Y[:, None, :] - X[None, :, :]
    r = np.sqrt(np.maximum(np.einsum("mni,ij,mnj->mn", diff, P, diff), 0.0))
    return r if lam is None else r / np.asarray(lam)[None, :]


def edge_distance(X, Y, H, lam=None):
    """min |r − 1| over the pairs: how close a pair is to a compact kernel's edge."""
    return float(np.min(np.abs(pair_radii(X, Y, H, lam) - 1.0)))


def assume_clear_of_edges(X, Y, kernel, bandwidth, margin=1e-7, lam=None):
    """Pairs at r ≈ 1 of a compact kernel flip between a tiny term and zero with the last bit
    of any rearranged arithmetic; such examples say nothing about the property under test."""
    if kernel in COMPACT_KERNELS:
        assume(edge_distance(X, Y, bandwidth_matrix(bandwidth, X.shape[1]), lam) > margin)


def assert_same_density(a, b, atol=1e-12, rtol=1e-12):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
    assert not np.isnan(a).any() and not np.isnan(b).any()
    finite = np.isfinite(a)
    np.testing.assert_allclose(a[finite], b[finite], atol=atol, rtol=rtol)


# --------------------------------------------------------------------------- invariances
@given(problems(), st.randoms(use_true_random=False))
def test_permuting_training_rows_changes_nothing(problem, rand):
    X, Y, kernel, bandwidth, w = problem
    assume_clear_of_edges(X, Y, kernel, bandwidth)
    perm = np.arange(len(X))
    rand.shuffle(perm)
    a = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w).score_samples(Y)
    b = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(
        X[perm], sample_weight=None if w is None else w[perm]).score_samples(Y)
    assert_same_density(a, b)


@given(problems(max_n=12, weighted=False), st.data())
def test_integer_weights_equal_repeated_rows(problem, data):
    X, Y, kernel, bandwidth, _ = problem
    assume_clear_of_edges(X, Y, kernel, bandwidth)
    counts = np.array(data.draw(st.lists(st.integers(0, 4), min_size=len(X), max_size=len(X))))
    assume(counts.sum() > 0)
    a = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=counts.astype(float)).score_samples(Y)
    b = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(np.repeat(X, counts, axis=0)).score_samples(Y)
    assert_same_density(a, b)


@given(problems(weighted=True), st.floats(1e-6, 1e6))
def test_scaling_all_weights_changes_nothing(problem, scale):
    X, Y, kernel, bandwidth, w = problem
    a = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w).score_samples(Y)
    b = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w * scale).score_samples(Y)
    assert_same_density(a, b)


@given(problems(), st.booleans())
def test_adaptive_is_invariant_to_weight_scale_and_row_order(problem, reverse):
    X, Y, kernel, bandwidth, w = problem
    assume_clear_of_edges(X, X, kernel, bandwidth)
    kde = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=True).fit(X, sample_weight=w)
    order = np.arange(len(X))[::-1] if reverse else np.arange(len(X))
    w2 = None if w is None else 3.0 * w[order]
    kde2 = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=True).fit(X[order], sample_weight=w2)
    np.testing.assert_allclose(kde2.adaptive_factors_, kde.adaptive_factors_[order], rtol=1e-10)
    assume_clear_of_edges(X, Y, kernel, bandwidth, margin=1e-7, lam=kde.adaptive_factors_)
    assert_same_density(kde.score_samples(Y), kde2.score_samples(Y), atol=1e-10, rtol=1e-10)


# ------------------------------------------------------------------------ thread count
# The engine runs a serial driver below SERIAL_BELOW_PAIRS pairs; the tests below lower that
# threshold (a Python-level constant read at each call) so that small problems take the parallel
# driver whose thread count is under test.
def _thread_spy(monkeypatch):
    """Record numba's thread count at each launch of the parallel unrolled engine."""
    seen = []
    engine = _kde_cpu.kde_logsum_unrolled

    def spy(*args):
        seen.append(numba.get_num_threads())
        return engine(*args)

    monkeypatch.setattr(_kde_cpu, "SERIAL_BELOW_PAIRS", 0)
    monkeypatch.setattr(_kde_cpu, "kde_logsum_unrolled", spy)
    return seen


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
@given(problems(min_n=1, max_n=40, d=2), st.integers(1, 300))
def test_thread_count_gives_bit_identical_results(problem, m):
    X, _, kernel, bandwidth, w = problem
    Y = np.random.default_rng(m).normal(scale=2.0, size=(m, 2))  # enough queries to split
    with pytest.MonkeyPatch.context() as mp:
        seen = _thread_spy(mp)
        one = KernelDensity(kernel=kernel, bandwidth=bandwidth, n_jobs=1).fit(X, sample_weight=w).score_samples(Y)
        two = KernelDensity(kernel=kernel, bandwidth=bandwidth, n_jobs=2).fit(X, sample_weight=w).score_samples(Y)
        assert seen == [1, 2]
    # Below the threshold again: the serial driver gives the same bits.
    serial = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w).score_samples(Y)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(serial, one)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_n_jobs_sets_the_engine_thread_count(monkeypatch):
    seen = _thread_spy(monkeypatch)
    X = np.random.default_rng(0).normal(size=(30, 2))
    for n_jobs, expected in [(1, 1), (2, 2), (-1, numba.config.NUMBA_NUM_THREADS)]:
        KernelDensity(n_jobs=n_jobs).fit(X).score_samples(X)
        assert seen[-1] == expected
    before = numba.get_num_threads()
    KernelDensity(n_jobs=1).fit(X).score_samples(X)
    assert numba.get_num_threads() == before  # restored afterwards


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_threads_context_governs_an_estimator_left_at_n_jobs_none(monkeypatch):
    # fastdensity.threads(n) "runs the enclosed fastdensity calls on n threads"; an estimator
    # whose n_jobs was not set must not override it.
    seen = _thread_spy(monkeypatch)
    X = np.random.default_rng(0).normal(size=(30, 2))
    kde = KernelDensity().fit(X)
    with fastdensity.threads(1):
        kde.score_samples(X)
    assert seen[-1] == 1


# ---------------------------------------------------------------------------- tile size
@given(
    st.integers(1, 3 * TILE + 50),
    st.data(),
    st.sampled_from(KERNELS),
)
def test_tiling_splits_combine_exactly(n, data, kernel):
    """log Σ over all of train = logaddexp of the sums over train[:k] and train[k:], wherever k
    falls relative to the tile boundaries (the engine's tiles of TILE points move with k)."""
    rng = np.random.default_rng(n)
    train = rng.normal(size=(n, 2)) * 0.5
    queries = rng.normal(size=(17, 2)) * 0.7
    log_w = rng.normal(size=n)
    k = data.draw(st.integers(0, n))
    assume(kernel not in COMPACT_KERNELS or edge_distance(train, queries, np.eye(2)) > 1e-7)
    whole = kde_logsum(queries, train, log_w, kernel)
    parts = [kde_logsum(queries, train[a:b], log_w[a:b], kernel) for a, b in ((0, k), (k, n)) if b > a]
    combined = parts[0] if len(parts) == 1 else np.logaddexp(parts[0], parts[1])
    assert_same_density(whole, combined, atol=1e-13, rtol=1e-13)


@given(st.integers(0, 2 * TILE), st.sampled_from(KERNELS))
def test_shifting_points_across_tile_boundaries_changes_nothing(shift, kernel):
    """Rotate the training rows so that each point lands in a different tile position."""
    rng = np.random.default_rng(7)
    n = 2 * TILE + 123
    train = rng.normal(size=(n, 1))
    queries = np.linspace(-4, 4, 33)[:, None]
    log_w = rng.normal(size=n)
    assume(kernel not in COMPACT_KERNELS or edge_distance(train, queries, np.eye(1)) > 1e-7)
    base = kde_logsum(queries, train, log_w, kernel)
    rolled = kde_logsum(queries, np.roll(train, shift, axis=0), np.roll(log_w, shift), kernel)
    assert_same_density(base, rolled, atol=1e-13, rtol=1e-13)


def test_float32_tiles_accumulate_in_float64():
    """One tile of points at the query (sum 512) and 3000 tiles of far points whose tile sums
    (~5e-6 each) are below half a float32 ulp of the running total: accumulated in float32 they
    would all vanish (a 3e-5 relative loss); in float64 they are kept."""
    far_r = np.sqrt(2 * np.log(1e8))  # gaussian k = 1e-8
    n_far = 3000 * TILE
    angle = np.linspace(0.0, 2 * np.pi, n_far, endpoint=False)
    train = np.concatenate([np.zeros((TILE, 2)), far_r * np.column_stack([np.cos(angle), np.sin(angle)])])
    queries = np.zeros((1, 2))
    a = kde_logsum(queries.astype(np.float32), train.astype(np.float32), None, "gaussian")
    b = kde_logsum(queries, train.astype(np.float32).astype(np.float64), None, "gaussian")
    assert b[0] - np.log(TILE) > 2e-5  # the far tiles matter at this level
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------- dtype
def _dlogk_dr(kernel, r):
    """|d log k / dr| at r < 1 (compact) or any r: how a rounding of r moves log k."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "gaussian": r,
            "exponential": np.ones_like(r),
            "tophat": np.zeros_like(r),
            "epanechnikov": 2 * r / (1 - r * r),
            "biweight": 4 * r / (1 - r * r),
            "triweight": 6 * r / (1 - r * r),
            "linear": 1 / (1 - r),
            "cosine": 0.5 * np.pi * np.tan(0.5 * np.pi * r),
        }[kernel]


def float32_error_bound(X, Y, kernel, H, w):
    """First-order bound on |log p₃₂ − log p₆₄| per query: each term's log moves by
    |d log k/dr|·Δr, with Δr from rounding whitened coordinates and r² to float32; the sum of
    the terms moves by their share-weighted average; plus float32 sums and the final rounding."""
    L = np.linalg.cholesky(H)
    Xw = np.linalg.solve(L, X.T).T
    Yw = np.linalg.solve(L, Y.T).T
    r = np.sqrt(((Yw[:, None, :] - Xw[None, :, :]) ** 2).sum(-1))
    eps = 2.0**-24
    scale = np.abs(Yw).max(1)[:, None] + np.abs(Xw).max(1)[None, :]
    dr = 4 * eps * X.shape[1] * (scale + r)
    log_w = np.zeros(len(X)) if w is None else np.log(w)
    log_terms = kernel_profile_log(kernel, r) + log_w[None, :]
    inside = np.isfinite(log_terms)
    top = np.max(np.where(inside, log_terms, -np.inf), axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):
        share = np.where(inside, np.exp(log_terms - np.where(np.isfinite(top), top, 0.0)), 0.0)
    share /= np.maximum(share.sum(1, keepdims=True), 1e-300)
    r_in = np.minimum(r, 1 - 1e-12) if kernel in COMPACT_KERNELS else r
    term_err = np.where(inside, _dlogk_dr(kernel, r_in) * dr, 0.0)
    return np.sum(share * term_err, axis=1) + 64 * eps * len(X) ** 0.5 + 1e-6


@given(problems(d=2))
def test_float32_agrees_with_float64(problem):
    X, Y, kernel, bandwidth, w = problem
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    X64, Y64 = X32.astype(np.float64), Y32.astype(np.float64)  # the same numbers
    H = bandwidth_matrix(bandwidth, 2)
    # Pairs whose float32 r² may round across the edge of a compact kernel decide nothing.
    assume_clear_of_edges(X64, Y64, kernel, bandwidth, margin=1e-4)
    kde32 = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X32, sample_weight=w)
    kde64 = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X64, sample_weight=w)
    a = kde32.score_samples(Y32)
    b = kde64.score_samples(Y64)
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
    finite = np.isfinite(b)
    bound = float32_error_bound(X64, Y64, kernel, H, w) + 2.0**-23 * np.abs(b)
    excess = np.abs(a[finite].astype(np.float64) - b[finite]) - bound[finite]
    assert np.all(excess <= 0), (np.abs(a - b), bound)
