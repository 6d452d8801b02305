"""Normal and MultivariateNormal against scipy.stats and a high-precision (mpmath) reference."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from scipy.stats import ortho_group

from fastdensity.parametric import MultivariateNormal, Normal

COVARIANCE_TYPES = ["full", "diag", "spherical"]


def _correlated(rng, n, d):
    return rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)


# ------------------------------------------------------------------------------------ Normal
def test_normal_fit_and_logpdf_match_scipy():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.5, size=400)
    model = Normal().fit(x)
    loc, scale = stats.norm.fit(x)
    np.testing.assert_allclose([model.mean_, model.std_], [loc, scale], rtol=1e-12)
    np.testing.assert_allclose(model.var_, scale**2, rtol=1e-12)
    queries = np.concatenate([x[:50], [-1e3, 0.0, 1e3]])
    np.testing.assert_allclose(model.score_samples(queries), stats.norm.logpdf(queries, loc, scale), rtol=1e-12)
    np.testing.assert_allclose(model.cdf(queries), stats.norm.cdf(queries, loc, scale), rtol=1e-12)
    q = np.linspace(0.01, 0.99, 7)
    np.testing.assert_allclose(model.ppf(q), stats.norm.ppf(q, loc, scale), rtol=1e-12)


def test_normal_accepts_1d_and_column_and_list_input():
    x = np.random.default_rng(1).normal(size=30)
    a, b, c = Normal().fit(x), Normal().fit(x[:, None]), Normal().fit(list(x))
    assert a.mean_ == b.mean_ == c.mean_ and a.var_ == b.var_ == c.var_
    assert a.n_features_in_ == 1
    np.testing.assert_array_equal(a.score_samples(x[:5]), a.score_samples(x[:5, None]))


def test_normal_weighted_fit_equals_repeated_rows():
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    w = rng.integers(0, 4, size=40)
    weighted = Normal().fit(x, sample_weight=w)
    repeated = Normal().fit(np.repeat(x, w))
    np.testing.assert_allclose([weighted.mean_, weighted.var_], [repeated.mean_, repeated.var_], rtol=1e-12)
    scaled = Normal().fit(x, sample_weight=w * 7.5)
    np.testing.assert_allclose([scaled.mean_, scaled.var_], [weighted.mean_, weighted.var_], rtol=1e-12)


def test_normal_reg_covar_and_constant_data():
    x = np.full(5, 2.0)
    with pytest.raises(ValueError, match="constant.*reg_covar"):
        Normal().fit(x)
    with pytest.raises(ValueError, match="1 sample"):
        Normal().fit([[1.0]])
    model = Normal(reg_covar=0.25).fit(x)
    assert model.mean_ == 2.0 and model.var_ == 0.25
    with pytest.raises(ValueError, match="reg_covar must be a non-negative"):
        Normal(reg_covar=-1.0).fit(np.arange(3.0))


def test_normal_rejects_several_features():
    with pytest.raises(ValueError, match="univariate distribution.*got 2 features"):
        Normal().fit(np.ones((4, 2)))


def test_normal_aic_bic():
    x = np.random.default_rng(3).normal(size=50)
    model = Normal().fit(x)
    total = np.sum(stats.norm.logpdf(x, model.mean_, model.std_))
    assert model.score(x) == pytest.approx(total / 50, rel=1e-12)
    assert model.aic(x) == pytest.approx(-2 * total + 2 * 2, rel=1e-12)
    assert model.bic(x) == pytest.approx(-2 * total + 2 * np.log(50), rel=1e-12)
    # Frequency weights: the same as repeated rows.
    w = np.arange(50) % 3
    np.testing.assert_allclose(model.bic(x, sample_weight=w), model.bic(np.repeat(x, w)), rtol=1e-12)
    np.testing.assert_allclose(model.score(x, sample_weight=w), model.score(np.repeat(x, w)), rtol=1e-12)


def test_normal_sampling_moments_and_dtype():
    model = Normal().fit(np.array([-1.0, 0.5, 3.0, 4.0]))
    draws = model.sample(40_000, random_state=np.random.default_rng(4))
    assert draws.shape == (40_000, 1) and draws.dtype == np.float64
    assert abs(draws.mean() - model.mean_) < 5 * model.std_ / np.sqrt(40_000)
    assert abs(draws.var() / model.var_ - 1) < 5 * np.sqrt(2 / 40_000)
    assert Normal().fit(np.float32([1, 2, 4])).sample(3, random_state=0).dtype == np.float32
    np.testing.assert_array_equal(model.sample(5, random_state=7), model.sample(5, random_state=7))


def test_float32_in_float32_out():
    x = np.random.default_rng(5).normal(size=20)
    model = Normal().fit(x)
    out = model.score_samples(x.astype(np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, model.score_samples(x), rtol=1e-6)


def test_torch_cpu_tensors_in_and_out():
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(6).normal(size=(30, 3))
    model = MultivariateNormal().fit(torch.from_numpy(X))
    out = model.score_samples(torch.from_numpy(X))
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), MultivariateNormal().fit(X).score_samples(X), rtol=1e-12)


# ------------------------------------------------------------------------ MultivariateNormal
def _scipy_covariance(model, d):
    if model.covariance_type == "full":
        return model.covariance_
    return np.diag(np.broadcast_to(model.covariance_, (d,)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mvn_matches_scipy(covariance_type):
    rng = np.random.default_rng(10)
    X = _correlated(rng, 300, 4)
    model = MultivariateNormal(covariance_type=covariance_type, reg_covar=0.0).fit(X)
    mean = X.mean(axis=0)
    cov = np.cov(X.T, bias=True)
    expected = {"full": cov, "diag": np.diag(cov), "spherical": np.mean(np.diag(cov))}[covariance_type]
    np.testing.assert_allclose(model.mean_, mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.covariance_, expected, rtol=1e-11, atol=1e-13)
    reference = stats.multivariate_normal(model.mean_, _scipy_covariance(model, 4))
    queries = np.vstack([X[:40], rng.normal(size=(5, 4)) * 10])
    np.testing.assert_allclose(model.score_samples(queries), reference.logpdf(queries), rtol=1e-12)
    assert model.n_parameters_ == {"full": 4 + 10, "diag": 8, "spherical": 5}[covariance_type]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mvn_reg_covar_is_added_to_the_diagonal(covariance_type):
    X = _correlated(np.random.default_rng(11), 100, 3)
    plain = MultivariateNormal(covariance_type=covariance_type, reg_covar=0.0).fit(X)
    reg = MultivariateNormal(covariance_type=covariance_type, reg_covar=0.5).fit(X)
    added = np.eye(3) * 0.5 if covariance_type == "full" else 0.5
    np.testing.assert_allclose(reg.covariance_, plain.covariance_ + added, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mvn_weighted_equals_repeated_and_scale_free(covariance_type):
    rng = np.random.default_rng(12)
    X = _correlated(rng, 50, 3)
    w = rng.integers(0, 4, size=50)
    weighted = MultivariateNormal(covariance_type=covariance_type).fit(X, sample_weight=w)
    repeated = MultivariateNormal(covariance_type=covariance_type).fit(np.repeat(X, w, axis=0))
    scaled = MultivariateNormal(covariance_type=covariance_type).fit(X, sample_weight=0.01 * w)
    for other in (repeated, scaled):
        np.testing.assert_allclose(weighted.mean_, other.mean_, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(weighted.covariance_, other.covariance_, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(weighted.score_samples(X), other.score_samples(X), rtol=1e-11)


def test_mvn_singular_covariance_names_the_remedies():
    X = np.random.default_rng(13).normal(size=(20, 2))
    X = np.column_stack([X, X[:, 0] + X[:, 1]])  # collinear
    with pytest.raises(ValueError, match="not positive definite.*reg_covar.*diag"):
        MultivariateNormal(reg_covar=0.0).fit(X)
    with pytest.raises(ValueError, match="not positive definite.*scale the data"):
        MultivariateNormal(reg_covar=0.0).fit(X[:2])  # fewer samples than features
    with pytest.raises(ValueError, match="not positive definite"):
        MultivariateNormal(covariance_type="diag", reg_covar=0.0).fit(np.ones((5, 2)))
    # The default reg_covar makes both fits work.
    assert np.all(np.isfinite(MultivariateNormal().fit(X).score_samples(X)))
    assert np.all(np.isfinite(MultivariateNormal().fit(X[:1]).score_samples(X)))


def test_mvn_parameter_errors():
    X = np.ones((3, 2)) + np.eye(3, 2)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        MultivariateNormal(covariance_type="tied").fit(X)
    with pytest.raises(ValueError, match="reg_covar must be a non-negative"):
        MultivariateNormal(reg_covar=float("nan")).fit(X)
    with pytest.raises(ValueError, match="expecting 2 features"):
        MultivariateNormal().fit(X).score_samples(np.ones((2, 3)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mvn_sampling_moments(covariance_type):
    rng = np.random.default_rng(14)
    model = MultivariateNormal(covariance_type=covariance_type).fit(_correlated(rng, 200, 3))
    n = 50_000
    draws = model.sample(n, random_state=rng)
    assert draws.shape == (n, 3)
    cov = _scipy_covariance(model, 3)
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(draws.mean(axis=0) - model.mean_) < 5 * sd / np.sqrt(n))
    assert np.all(np.abs(np.cov(draws.T) - cov) < 6 * np.outer(sd, sd) * np.sqrt(2 / n))


def test_mvn_aic_bic():
    X = _correlated(np.random.default_rng(15), 80, 3)
    model = MultivariateNormal(reg_covar=0.0).fit(X)
    total = np.sum(stats.multivariate_normal(model.mean_, model.covariance_).logpdf(X))
    assert model.aic(X) == pytest.approx(-2 * total + 2 * 9, rel=1e-12)
    assert model.bic(X) == pytest.approx(-2 * total + 9 * np.log(80), rel=1e-12)


# --------------------------------------------------------------- ill-conditioned covariance
mpmath.mp.dps = 40


def _mp_log_density_of_mle(X, w, queries):
    """Log density of the exact weighted MLE normal of (X, w), in 40-digit arithmetic."""
    n, d = X.shape
    W = [mpmath.mpf(float(v)) for v in w]
    total = mpmath.fsum(W)
    rows = [[mpmath.mpf(float(v)) for v in row] for row in X]
    mean = [mpmath.fsum(W[i] * rows[i][j] for i in range(n)) / total for j in range(d)]
    centered = [[row[j] - mean[j] for j in range(d)] for row in rows]
    cov = mpmath.matrix(d, d)
    for a in range(d):
        for b in range(a + 1):
            cov[a, b] = cov[b, a] = mpmath.fsum(W[i] * centered[i][a] * centered[i][b] for i in range(n)) / total
    L = mpmath.cholesky(cov)
    half_log_det = mpmath.fsum(mpmath.log(L[i, i]) for i in range(d))
    out = []
    for q in queries:
        z = mpmath.lu_solve(L, mpmath.matrix([mpmath.mpf(float(q[j])) - mean[j] for j in range(d)]))
        out.append(float(-mpmath.fsum(v**2 for v in z) / 2 - half_log_det - d * mpmath.log(2 * mpmath.pi) / 2))
    return np.array(out)


@given(seed=st.integers(0, 2**32 - 1), d=st.integers(2, 5), log_scale=st.floats(-3, 3))
def test_mvn_ill_conditioned_covariance_is_accurate(seed, d, log_scale):
    # Covariance with condition number 1e10 in a random orientation. Factoring the rounded
    # covariance would lose ~κ·ε = 1e-6 in the log densities; the QR-based factor keeps ~1e-10.
    rng = np.random.default_rng(seed)
    eigenvalues = np.geomspace(1.0, 1e-10, d) * 10.0**log_scale
    rotation = ortho_group.rvs(d, random_state=rng)
    chol = rotation * np.sqrt(eigenvalues)
    n = 40
    X = rng.normal(size=d) * np.sqrt(eigenvalues[0]) + rng.normal(size=(n, d)) @ chol.T
    w = rng.integers(1, 4, size=n).astype(float)
    model = MultivariateNormal(reg_covar=0.0).fit(X, sample_weight=w)
    assert 1e9 < np.linalg.cond(model.covariance_) < 1e11
    queries = np.vstack([X[:8], X[:4] + 3 * rng.normal(size=(4, d)) @ chol.T])
    reference = _mp_log_density_of_mle(X, w, queries)
    error = np.abs(model.score_samples(queries) - reference)
    assert np.all(error <= 1e-8 * (1 + np.abs(reference))), error.max()
