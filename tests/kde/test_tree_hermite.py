"""The gaussian kernel's Hermite expansions over tree nodes (``_tree_hermite``): each node's
value within its stated error bound of the direct sum, at every distance and tolerance; the
bounded engine using them stays within ``atol + rtol · p`` of the exact engine (d = 1, 2, weights,
a full bandwidth matrix, float32 data) and uses them where they pay.

The direct node sums here are float64 sums of at most a few thousand terms exp(−x) with x ≤ 745:
their own rounding is below (2 · 745 · 5 + n_node) u relative, about 1e-12, far below the bounds
checked (≥ 1e-9 relative), so a test fails if the stated bound does.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity import KernelDensity
from fastdensity.kde._engine_cpu import CPU_ENGINE
from fastdensity.kde._tree_bounds_cpu import hermite_index, kde_logsum_bounded
from fastdensity.kde._tree_hermite import ORDER, hermite_sum


def _index(d, n=6000, seed=0, weights=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.uniform(0.1, 3.0, n) if weights else None
    est = KernelDensity(bandwidth=0.15, algorithm="tree", rtol=1e-6).fit(X, sample_weight=w)
    return CPU_ENGINE.tree_index(est, np.float64)


@pytest.mark.parametrize("d", sorted(ORDER))
@pytest.mark.parametrize("weights", [False, True])
def test_node_value_within_its_bound(d, weights):
    index = _index(d, weights=weights)
    herm = hermite_index(index)
    assert herm is not None and herm.moments.shape[0] > 0
    rng = np.random.default_rng(1)
    nodes = np.flatnonzero(herm.slot >= 0)
    P = herm.order
    hv, g, r, t = np.empty((d, P)), np.empty(d), np.empty(d), np.empty(d)
    used = 0
    for node in rng.choice(nodes, size=min(12, nodes.size), replace=False):
        k = herm.slot[node]
        s, e = index.start[node], index.end[node]
        pts, w = index.train_t[:, s:e].T, index.weights[s:e]
        W = float(index.wsum[node])
        for dist in (0.0, 0.5, 2.0, 4.0, 7.0):
            direction = rng.standard_normal(d)
            q = herm.center[k] + dist * direction / np.linalg.norm(direction)
            exact = float(np.sum(w * np.exp(-0.5 * np.sum((pts - q) ** 2, axis=1))))
            for rel in (1e-3, 1e-6, 1e-9):
                allowed = rel * max(exact, 1e-300)
                val, err = hermite_sum(q, k, W, allowed, P, herm.center, herm.halfw, herm.count,
                                       herm.moments, herm.tail, hv, g, r, t)
                if np.isfinite(err):
                    used += 1
                    assert err <= allowed
                    assert abs(val - exact) <= err, (node, dist, rel, val, exact, err)
    assert used > 0  # the test exercised accepted expansions


def test_bound_is_refused_below_the_rounding():
    index = _index(2)
    herm = hermite_index(index)
    k = int(np.max(herm.slot))
    node = int(np.flatnonzero(herm.slot == k)[0])
    hv, g, r, t = np.empty((2, herm.order)), np.empty(2), np.empty(2), np.empty(2)
    val, err = hermite_sum(herm.center[k].copy(), k, float(index.wsum[node]), 1e-300, herm.order,
                           herm.center, herm.halfw, herm.count, herm.moments, herm.tail, hv, g, r, t)
    assert err == np.inf


def test_no_expansions_where_they_do_not_apply():
    assert hermite_index(_index(3)) is None
    X = np.random.default_rng(2).standard_normal((3000, 2))
    est = KernelDensity(bandwidth=0.2, adaptive=True, algorithm="tree", rtol=1e-4).fit(X)
    assert hermite_index(CPU_ENGINE.tree_index(est, np.float64)) is None


def _check(tree_logp, exact_logp, rtol, atol, rho=1e-10):
    """|p_tree − p_exact| ≤ atol + rtol p_exact + ρ p_exact; ρ: both engines' float64 roundings
    (sums of ≤ 20000 terms, as in the module docstring: below 1e-10 relative)."""
    rel = np.abs(np.expm1(tree_logp - exact_logp))
    with np.errstate(over="ignore", divide="ignore"):
        allowed = (np.exp(np.log(atol) - exact_logp) if atol > 0 else 0.0) + rtol + rho
    assert np.all(np.isfinite(tree_logp))
    assert np.all(rel <= allowed), float(np.max(rel - allowed))


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("rtol,atol", [(1e-6, 0.0), (1e-3, 0.0), (1e-8, 1e-6)])
def test_engine_with_expansions_holds_the_tolerance(d, rtol, atol):
    rng = np.random.default_rng(3 + d)
    n = 20000
    X = np.vstack([rng.standard_normal((n // 2, d)), rng.standard_normal((n - n // 2, d)) * 0.3 + 2.0])
    w = rng.uniform(0.2, 5.0, n)
    Q = rng.standard_normal((400, d)) * 1.5
    # wide enough that nodes of many points fit in two bandwidths: the expansions are used
    bw = np.array([[0.09, 0.03], [0.03, 0.06]]) if d == 2 else 0.2  # a full matrix at d = 2
    kw = dict(bandwidth=bw)
    tree = KernelDensity(algorithm="tree", rtol=rtol, atol=atol, **kw).fit(X, sample_weight=w)
    exact = KernelDensity(algorithm="exact", **kw).fit(X, sample_weight=w)
    assert tree.effective_algorithm_ == "tree"
    _check(tree.score_samples(Q), exact.score_samples(Q), rtol, atol)


def test_engine_uses_expansions_and_scans_less():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((40000, 2))
    est = KernelDensity(bandwidth=0.3, algorithm="tree", rtol=1e-6).fit(X)
    index = CPU_ENGINE.tree_index(est, np.float64)
    q = np.ascontiguousarray(index.train_t[:, ::400].T)
    _, with_h = kde_logsum_bounded(q, index, "gaussian", 1e-6, 0.0, return_counts=True)
    _, without = kde_logsum_bounded(q, index, "gaussian", 1e-6, 0.0, return_counts=True, hermite=False)
    assert np.all(with_h[:, 3] > 0)  # every query replaced some node by its expansion
    assert without[:, 2].sum() == 0
    assert with_h[:, 1].sum() < 0.5 * without[:, 1].sum()
    # and there, where the expansions carry most of each sum, the densities hold the bound
    Q = X[::400] + 0.01
    exact = KernelDensity(bandwidth=0.3, algorithm="exact").fit(X)
    _check(est.score_samples(Q), exact.score_samples(Q), 1e-6, 0.0)


def test_float32_data_with_expansions():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((20000, 2)).astype(np.float32)
    Q = rng.standard_normal((300, 2)).astype(np.float32)
    tree = KernelDensity(bandwidth=0.1, algorithm="tree", rtol=1e-5).fit(X)
    exact = KernelDensity(bandwidth=0.1, algorithm="exact").fit(X.astype(np.float64))
    lt = tree.score_samples(Q)
    le = exact.score_samples(Q.astype(np.float64))
    assert lt.dtype == np.float32
    # the log density rounded to float32: half an ulp of |log p| more
    _check(lt.astype(np.float64), le, 1e-5, 0.0, 1e-10 + np.finfo(np.float32).eps * np.max(np.abs(le)))
