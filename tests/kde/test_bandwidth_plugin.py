"""bandwidth="plugin": Duong & Hazelton's two-stage SAMSE plug-in matrix; its functionals against a
brute-force oracle, its AMISE minimiser against the normal reference's closed form, Wand & Jones's
1-D two-stage plug-in, affine equivariance, weights and the estimator hook."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermeval

from fastdensity import KernelDensity
from fastdensity.kde._bandwidth_plugin import (
    _functionals,
    _minimise_amise,
    _multi_indices,
    _phi_deriv_at_zero,
    plugin_bandwidth_matrix,
)
from fastdensity.kde._kernels import kernel_coordinate_variance


def _normal_reference(X):
    """The AMISE-optimal gaussian bandwidth matrix of N(μ, Σ): (4 / (n (d + 2)))^(2/(d+4)) Σ."""
    n, d = X.shape
    return (4.0 / (n * (d + 2))) ** (2.0 / (d + 4)) * np.atleast_2d(np.cov(X.T))


def _correlated(rng, n, d):
    A = rng.standard_normal((d, d)) + 2 * np.eye(d)
    return rng.standard_normal((n, d)) @ A.T + rng.uniform(-3, 3, d)


def test_functionals_equal_a_brute_force_oracle():
    # ψ̂_r(g) = n⁻² Σ_i Σ_j D^r φ_{g²I}(X_i − X_j), D^r φ from NumPy's own Hermite evaluation.
    rng = np.random.default_rng(60)
    X = rng.standard_normal((60, 3))
    w = rng.uniform(0.5, 2.0, 60)
    w /= w.sum()
    g = 0.7
    indices = _multi_indices(4, 3)
    assert len(indices) == math.comb(3 + 3, 4)
    Z = (X[:, None, :] - X[None, :, :]) / g
    phi = np.exp(-0.5 * np.sum(Z * Z, axis=-1)) / (2 * math.pi * g * g) ** 1.5
    for r, ours in zip(indices, _functionals(X, w, g, indices)):
        D = phi * g ** -sum(r)
        for k, rk in enumerate(r):
            D = D * hermeval(Z[..., k], [0] * rk + [1])
        assert ours == pytest.approx(w @ D @ w, rel=1e-11, abs=1e-13 * np.abs(D).max())


def test_amise_minimiser_on_exact_normal_functionals_is_the_normal_reference():
    # With the exact ψ of N(0, I) (ψ_r = D^r φ_{2I}(0)) the AMISE is minimised by the closed form
    # (4 / (n (d + 2)))^(2/(d+4)) I; BFGS to a gradient of 1e-10 of the scaled AMISE gives ~1e-6.
    for d in (2, 3):
        T = np.empty((d,) * 4)
        for ijkl in np.ndindex(*T.shape):
            T[ijkl] = _phi_deriv_at_zero(tuple(np.bincount(ijkl, minlength=d)), math.sqrt(2.0))
        n = 1000.0
        H = _minimise_amise(T.reshape(d * d, d * d), d, n)
        np.testing.assert_allclose(H, (4 / (n * (d + 2))) ** (2 / (d + 4)) * np.eye(d), rtol=1e-6, atol=1e-8)


def _wand_jones_two_stage(x):
    """Wand & Jones (1995, §3.6.1) two-stage direct plug-in for the gaussian kernel, exact sums:
    the scale min(sd, IQR/1.349) as KernSmooth's dpik, ψ₈ normal-scale, ψ̂₆, ψ̂₄, then h."""
    n = x.size
    q1, q3 = np.quantile(x, [0.25, 0.75])
    s = min(np.std(x, ddof=1), (q3 - q1) / 1.349)
    D = x[:, None] - x[None, :]

    def psi(r, g):
        u = D / g
        return np.sum(hermeval(u, [0] * r + [1]) * np.exp(-u * u / 2)) / (math.sqrt(2 * math.pi) * g ** (r + 1) * n * n)

    psi8 = 105 / (32 * math.sqrt(math.pi) * s**9)
    g1 = (30 / (math.sqrt(2 * math.pi) * psi8 * n)) ** (1 / 9)  # −2 K⁽⁶⁾(0) / (ψ₈ n)
    g2 = (-6 / (math.sqrt(2 * math.pi) * psi(6, g1) * n)) ** (1 / 7)  # −2 K⁽⁴⁾(0) / (ψ̂₆ n)
    return (1 / (2 * math.sqrt(math.pi) * psi(4, g2) * n)) ** 0.2


@pytest.mark.parametrize("dist", ["normal", "gamma", "bimodal"])
def test_one_dimension_is_wand_jones_two_stage_plug_in(dist):
    rng = np.random.default_rng(61)
    x = {"normal": rng.standard_normal(400), "gamma": rng.gamma(2.0, 1.0, 400),
         "bimodal": np.concatenate([rng.normal(-2, 0.5, 200), rng.normal(1, 1, 200)])}[dist]
    H = plugin_bandwidth_matrix(x[:, None])
    # The same sums in a different order: rounding of n² terms in float64.
    assert math.sqrt(H[0, 0]) == pytest.approx(_wand_jones_two_stage(x), rel=1e-10)


@pytest.mark.parametrize("d", [2, 3])
def test_normal_data_near_the_normal_reference_optimum(d):
    # The SAMSE plug-in's relative error is O(n^(−4/(d+12))) (Duong & Hazelton 2003): ≈ 0.11 at
    # n = 2000, d = 2 and 0.13 for d = 3; eigenvalues of H_ns⁻¹ H within 25% is ~2 of those.
    rng = np.random.default_rng(62 + d)
    X = _correlated(rng, 2000, d)
    ratio = np.linalg.eigvals(np.linalg.solve(_normal_reference(X), plugin_bandwidth_matrix(X))).real
    assert np.all(np.abs(ratio - 1) < 0.25), ratio


def test_equivariance_under_scaling_shifts_and_permutations():
    # Sphering and isotropic pilots make H(c P x + b) = c² P H(x) Pᵀ exactly (to rounding and the
    # optimiser's tolerance). Not under general linear maps: the SAMSE pilot sums squared
    # functionals over the distinct multi-indices (as Duong's gsamse), which a rotation of the
    # sphered data changes (by about 2% of H on this sample).
    rng = np.random.default_rng(64)
    X = np.concatenate([rng.normal(-1, 0.5, (150, 2)), rng.normal(1, 1.0, (150, 2))]) @ np.array([[1.0, 0.4], [0.0, 0.8]])
    H = plugin_bandwidth_matrix(X)
    np.testing.assert_allclose(plugin_bandwidth_matrix(3.0 * X + [5.0, -2.0]), 9.0 * H, rtol=1e-6)
    np.testing.assert_allclose(plugin_bandwidth_matrix(X[:, ::-1]), H[::-1, ::-1], rtol=1e-6)


def test_weights():
    rng = np.random.default_rng(65)
    X = _correlated(rng, 300, 2)
    H = plugin_bandwidth_matrix(X)
    np.testing.assert_array_equal(plugin_bandwidth_matrix(X, np.full(300, 4.0)), H)
    w = rng.uniform(0.2, 3.0, 300)
    np.testing.assert_allclose(plugin_bandwidth_matrix(X, 7.0 * w), plugin_bandwidth_matrix(X, w), rtol=1e-8)
    X_more = np.vstack([X, [[40.0, -40.0]]])
    np.testing.assert_array_equal(plugin_bandwidth_matrix(X_more, np.r_[np.ones(300), 0.0]), H)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_kernel_density_plugin_hook(kernel):
    rng = np.random.default_rng(66)
    X = _correlated(rng, 300, 2)
    kde = KernelDensity(bandwidth="plugin", kernel=kernel).fit(X)
    np.testing.assert_allclose(kde.bandwidth_matrix_ * kernel_coordinate_variance(kernel, 2),
                               plugin_bandwidth_matrix(X), rtol=1e-14)
    x = X[:, :1]
    kde1 = KernelDensity(bandwidth="plugin").fit(x)
    assert kde1.bandwidth_ == pytest.approx(math.sqrt(plugin_bandwidth_matrix(x)[0, 0]), rel=1e-15)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"in 3 dimensions needs at least 5 points with positive weight; got 4"):
        plugin_bandwidth_matrix(np.random.default_rng(67).standard_normal((4, 3)))
    X = np.random.default_rng(68).standard_normal((50, 1))
    with pytest.raises(ValueError, match="covariance is singular"):
        plugin_bandwidth_matrix(np.hstack([X, 2 * X]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        plugin_bandwidth_matrix(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0], [2.0, 0.0]]))
    with pytest.raises(ValueError, match="at least 2 distinct values"):
        plugin_bandwidth_matrix(np.full((20, 1), 3.0))


@pytest.mark.parametrize("rule,d", [("plugin", 2), ("sj", 1), ("mlcv_diag", 2)])
def test_model_file_round_trip(tmp_path, rule, d):
    from fastdensity import load, save

    X = np.random.default_rng(69).standard_normal((120, d))
    kde = KernelDensity(bandwidth=rule).fit(X)
    save(kde, tmp_path / "model.npz")
    loaded = load(tmp_path / "model.npz")
    assert loaded.get_params()["bandwidth"] == rule
    np.testing.assert_array_equal(loaded.bandwidth_matrix_, kde.bandwidth_matrix_)
    np.testing.assert_array_equal(loaded.score_samples(X[:10]), kde.score_samples(X[:10]))
