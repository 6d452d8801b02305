"""The gaussian and exponential kernels' bounded tree (``_tree_bounds_cpu``): every density within
``atol + rtol · p`` of the exact engine's, for several tolerances, dimensions, weights, adaptive
bandwidths and float32 data; the exact engine when both tolerances are 0.

The guarantee covers the approximation; on top come the float64 roundings of both engines (the
exact engine is not the true sum either). Per term, exp(−x) of a computed argument: x's relative
error is at most (d + 3) u, so the term's at most (x (d + 3) + 4) u with x ≤ 708 (below, the term
underflows and weighs less than 1e-307 of its weight); sums of K non-negative terms add (K − 1) u:
K ≤ TILE + n / TILE in the exact engine, ≤ leaf_size + the nodes (at most 2 n) in the tree. Hence
the relative allowance ρ = u (2 · 708 (d + 3) + 2 TILE + 2 n / TILE + 2 leaf_size + 4 n + 16),
about 1e-12 here: far below the tolerances tested, so the test fails if the bound does.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde._bandwidth import whiten
from fastdensity.kde._engine_cpu import CPU_ENGINE
from fastdensity.kde._kde_cpu import TILE
from fastdensity.kde._tree_bounds_cpu import atol_in_sum_units, kde_logsum_bounded


def _rho(n, d, leaf_size=40):
    u = np.finfo(np.float64).eps / 2
    return u * (2 * 708 * (d + 3) + 2 * TILE + 2 * n / TILE + 2 * leaf_size + 4 * n + 16)


def _data(n, m, d, seed):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.standard_normal((n // 2, d)), rng.standard_normal((n - n // 2, d)) * 0.5 + 2.0])
    Q = rng.standard_normal((m, d)) * 1.5
    return X, Q


def _check_bound(tree, exact, rtol, atol, rho):
    """|p_tree − p_exact| ≤ atol + rtol p_exact + ρ p_exact, computed in log space."""
    tree = tree.astype(np.float64)
    rel = np.abs(np.expm1(tree - exact))
    with np.errstate(over="ignore", divide="ignore"):
        allowed = (np.exp(np.log(atol) - exact) if atol > 0 else 0.0) + rtol + rho * (1 + rtol)
    assert np.all(np.isfinite(tree)) and np.all(np.isfinite(exact))
    assert np.all(rel <= allowed), float(np.max(rel - allowed))


def _fit_pair(X, w=None, **params):
    tree = KernelDensity(algorithm="tree", **params).fit(X, sample_weight=w)
    exact = KernelDensity(algorithm="exact", **{k: v for k, v in params.items() if k not in ("rtol", "atol")})
    return tree, exact.fit(X, sample_weight=w)


@pytest.mark.parametrize("kernel", ["gaussian", "exponential"])
@pytest.mark.parametrize("rtol", [1e-2, 1e-4, 1e-6])
def test_rtol_holds_d2(kernel, rtol):
    X, Q = _data(4000, 300, 2, seed=1)
    tree, exact = _fit_pair(X, kernel=kernel, bandwidth=0.2, rtol=rtol)
    assert tree.effective_algorithm_ == "tree"
    _check_bound(tree.score_samples(Q), exact.score_samples(Q), rtol, 0.0, _rho(len(X), 2))


@pytest.mark.parametrize(("d", "rtol", "atol_factor"), [(1, 1e-3, 0.0), (3, 1e-5, 0.0), (5, 1e-3, 1e-2),
                                                        (2, 0.0, 1e-3)])
def test_rtol_and_atol_hold_other_dims(d, rtol, atol_factor):
    X, Q = _data(3000, 200, d, seed=2)
    exact = KernelDensity(bandwidth=0.4, algorithm="exact").fit(X)
    le = exact.score_samples(Q)
    atol = atol_factor * float(np.exp(np.median(le)))  # a fraction of a typical density
    tree = KernelDensity(bandwidth=0.4, algorithm="tree", rtol=rtol, atol=atol).fit(X)
    _check_bound(tree.score_samples(Q), le, rtol, atol, _rho(len(X), d))


def test_bound_holds_weighted_adaptive_matrix_bandwidth():
    rng = np.random.default_rng(3)
    X, Q = _data(3000, 300, 2, seed=3)
    w = rng.uniform(0.0, 4.0, len(X))
    w[::5] = 0.0
    H = np.array([[0.05, 0.02], [0.02, 0.08]])
    tree, exact = _fit_pair(X, w, bandwidth=H, adaptive=True, rtol=1e-4)
    # the pilot of adaptive bandwidths is exact: the same factors to the last bit
    np.testing.assert_array_equal(tree.adaptive_factors_, exact.adaptive_factors_)
    _check_bound(tree.score_samples(Q), exact.score_samples(Q), 1e-4, 0.0, _rho(len(X), 2))


def test_float32_data_bounded_in_float64():
    """A float32 model's tree sums in float64: within the bound of the float64 exact density of
    the same values, then rounded to float32 (half an ulp of each log density more)."""
    X, Q = _data(3000, 200, 2, seed=4)
    X32, Q32 = X.astype(np.float32), Q.astype(np.float32)
    tree = KernelDensity(bandwidth=0.3, algorithm="tree", rtol=1e-5).fit(X32)
    exact = KernelDensity(bandwidth=0.3, algorithm="exact").fit(X32.astype(np.float64))
    lt = tree.score_samples(Q32)
    le = exact.score_samples(Q32.astype(np.float64))
    assert lt.dtype == np.float32
    rho = _rho(len(X), 2) + np.finfo(np.float32).eps * np.max(np.abs(le))
    _check_bound(lt, le, 1e-5, 0.0, rho)


def test_far_queries_get_the_exact_engines_finite_log_density():
    X, _ = _data(3000, 1, 2, seed=5)
    Q = np.array([[60.0, -40.0], [1e4, 3.0]])
    tree, exact = _fit_pair(X, bandwidth=0.3, rtol=1e-3)
    lt, le = tree.score_samples(Q), exact.score_samples(Q)
    assert np.all(np.isfinite(lt))
    np.testing.assert_allclose(lt, le, rtol=1e-12)


def test_zero_tolerances_run_the_exact_engine():
    X, Q = _data(3000, 100, 2, seed=6)
    tree = KernelDensity(bandwidth=0.3, algorithm="tree").fit(X)
    exact = KernelDensity(bandwidth=0.3, algorithm="exact").fit(X)
    assert tree.effective_algorithm_ == "exact"
    np.testing.assert_array_equal(tree.score_samples(Q), exact.score_samples(Q))


@pytest.mark.parametrize(("rtol", "max_fraction"), [(1e-2, 0.5), (1e-6, 0.9)])
def test_the_tree_leaves_points_out(rtol, max_fraction):
    """The bound is met by pruning, not by scanning everything."""
    X, Q = _data(8000, 200, 2, seed=7)
    est = KernelDensity(bandwidth=0.1, algorithm="tree", rtol=rtol).fit(X)
    index = CPU_ENGINE.tree_index(est, np.float64)
    q = whiten(est._bandwidth_cholesky(), Q - est._centre())
    log_norm = CPU_ENGINE.state(est, np.float64)[4]
    _, counts = kde_logsum_bounded(q, index, "gaussian", rtol, atol_in_sum_units(0.0, log_norm, index.shift),
                                   return_counts=True)
    assert np.mean(counts[:, 1]) < max_fraction * len(X)


def test_auto_picks_the_tree_for_a_tolerance_and_many_points():
    X, Q = _data(40000, 200, 2, seed=8)
    est = KernelDensity(bandwidth=0.05, rtol=1e-3).fit(X)
    assert est.effective_algorithm_ == "tree"
    exact = KernelDensity(bandwidth=0.05, algorithm="exact").fit(X)
    _check_bound(est.score_samples(Q), exact.score_samples(Q), 1e-3, 0.0, _rho(len(X), 2))
