"""KernelDensity against brute-force NumPy oracles, scikit-learn and numerical integration.

The oracle is written independently of the engine: distances come from H⁻¹ (``np.linalg.inv``)
rather than a Cholesky whitening, log|H|^½ from ``slogdet``, the sum from
``scipy.special.logsumexp`` over an explicit (m, n) matrix of log terms.

Numba compiles one specialisation per (kernel, dtype, d): this file uses d ∈ {1, 2, 3} for
float64, d ∈ {1, 2} for float32 and d = 20 (the buffered path) for two kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial.legendre import leggauss
from scipy import integrate
from scipy.special import logsumexp

from fastdensity import KernelDensity
from fastdensity.kde._kde_cpu import MAX_UNROLLED_D, TILE
from fastdensity.kde._kernels import COMPACT_KERNELS, KERNELS, kernel_profile_log, log_kernel_norm

SKLEARN_KERNELS = ("gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine")
BANDWIDTH_KINDS = ("scalar", "per_feature", "matrix")

# |log p_ours − log p_ref| allowed, i.e. the relative error allowed on the density.
TOL = {np.float64: 1e-12, np.float32: 1e-5}


# ------------------------------------------------------------------------------- oracle
def bandwidth_for(kind: str, d: int, rng: np.random.Generator):
    """(parameter passed to KernelDensity, bandwidth matrix H it means)."""
    if kind == "scalar":
        h = 0.8
        return h, h * h * np.eye(d)
    if kind == "per_feature":
        h = rng.uniform(0.5, 1.2, size=d)
        return h, np.diag(h * h)
    A = rng.normal(size=(d, d))
    H = 0.5 * (A @ A.T) / d + 0.4 * np.eye(d)
    H = 0.5 * (H + H.T)
    return H, H


def pair_radii(X, Y, H, lam=None):
    """‖·‖ in the metric H⁻¹ for every (query, training) pair, divided by λ_j: (m, n)."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    P = np.linalg.inv(np.asarray(H, dtype=np.float64))
    diff = Y[:, None, :] - X[None, :, :]
    r = np.sqrt(np.maximum(np.einsum("mni,ij,mnj->mn", diff, P, diff), 0.0))
    if lam is not None:
        r = r / np.asarray(lam)[None, :]
    return r


def ref_log_density(X, Y, kernel, H, weights=None, lam=None):
    """log Σ_j w_j c_d |λ_j² H|^-½ k(‖H^-½ (y − x_j)‖ / λ_j) / Σ_j w_j, by brute force."""
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    lam_arr = np.ones(n) if lam is None else np.asarray(lam, dtype=np.float64)
    r = pair_radii(X, Y, H, lam)
    sign, logdet = np.linalg.slogdet(np.asarray(H, dtype=np.float64))
    assert sign > 0
    with np.errstate(divide="ignore"):
        log_terms = np.log(w)[None, :] - d * np.log(lam_arr)[None, :] + kernel_profile_log(kernel, r)
    return logsumexp(log_terms, axis=1) - np.log(w.sum()) + log_kernel_norm(kernel, d) - 0.5 * logdet


def ref_abramson(X, kernel, H, weights=None):
    """Abramson's λ_j from the brute-force pilot: λ_j = (f̃(x_j) / g)^(-1/2), log g = Σ ŵ log f̃."""
    n = X.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    log_pilot = ref_log_density(X, X, kernel, H, w)
    log_g = np.sum(w * log_pilot) / np.sum(w)
    return np.exp(-0.5 * (log_pilot - log_g))


def assert_logdens_close(ours, ref, atol, rtol=0.0):
    """Same −inf pattern exactly; finite values within atol + rtol·|ref| (log space)."""
    ours = np.asarray(ours, dtype=np.float64)
    assert not np.any(np.isnan(ours)), "NaN log density"
    assert not np.any(np.isposinf(ours)), "+inf log density"
    np.testing.assert_array_equal(np.isneginf(ours), np.isneginf(ref), err_msg="-inf pattern differs")
    finite = np.isfinite(ref)
    np.testing.assert_allclose(ours[finite], ref[finite], rtol=rtol, atol=atol)


def away_from_boundary(X, Y, H, kernel, lam=None, margin=1e-6):
    """True unless a pair sits within ``margin`` of a compact kernel's edge (r = 1), where the
    last bit of rounding decides between a tiny term and exactly zero."""
    return kernel not in COMPACT_KERNELS or np.min(np.abs(pair_radii(X, Y, H, lam) - 1.0)) > margin


def assert_away_from_boundary(X, Y, H, kernel, lam=None, margin=1e-6):
    assert away_from_boundary(X, Y, H, kernel, lam, margin), "test data too close to the support edge"


def first_good_draw(seed, draw, ok, tries=200):
    """draw(rng) for the first seed from ``seed`` on whose data satisfies ok(*data): a choice of
    test data made before looking at any result of the estimator."""
    for s in range(seed, seed + tries):
        data = draw(np.random.default_rng(s))
        if ok(*data):
            return data
    raise AssertionError("no test data away from the support edge")


def make_data(rng, n, m, d, dtype):
    X = rng.normal(size=(n, d)).astype(dtype)
    # Queries: some training points, some near the data, some beyond every support.
    Y = np.concatenate([X[:3], rng.normal(scale=1.3, size=(m - 5, d)), 12.0 + rng.normal(size=(2, d))])
    return X, Y.astype(dtype)


# ------------------------------------------------------------------------ kernel table
def test_kernel_table_profiles_match_textbook_formulas():
    r = np.array([0.0, 0.1, 0.5, 0.9, 0.999, 1.0, 1.5, 7.0])
    inside = r < 1
    expected = {
        "gaussian": np.exp(-0.5 * r**2),
        "tophat": np.where(inside, 1.0, 0.0),
        "epanechnikov": np.where(inside, 1 - r**2, 0.0),
        "exponential": np.exp(-r),
        "linear": np.where(inside, 1 - r, 0.0),
        "cosine": np.where(inside, np.cos(np.pi * r / 2), 0.0),
        "biweight": np.where(inside, (1 - r**2) ** 2, 0.0),
        "triweight": np.where(inside, (1 - r**2) ** 3, 0.0),
    }
    assert set(expected) == set(KERNELS)
    for kernel, k in expected.items():
        np.testing.assert_allclose(np.exp(kernel_profile_log(kernel, r)), k, rtol=1e-14, atol=0, err_msg=kernel)
    assert COMPACT_KERNELS == set(KERNELS) - {"gaussian", "exponential"}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_log_kernel_norm_matches_radial_quadrature(kernel, d):
    # 1/c_d = S_{d-1} ∫ k(r) r^{d-1} dr, with the radial integral done by quad.
    upper = 1.0 if kernel in COMPACT_KERNELS else np.inf
    radial, _ = integrate.quad(
        lambda r: math.exp(kernel_profile_log(kernel, np.array(r))) * r ** (d - 1), 0.0, upper,
        epsabs=0, epsrel=1e-13, limit=200,
    )
    log_sphere = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    assert log_kernel_norm(kernel, d) == pytest.approx(-(log_sphere + math.log(radial)), abs=1e-11)


# ------------------------------------------------------------------- brute-force oracle
@pytest.mark.parametrize("kernel", KERNELS)
# float32 in d = 2 only: one Numba compilation per (kernel, dtype, d).
@pytest.mark.parametrize(("dtype", "d"), [(np.float64, 1), (np.float64, 2), (np.float64, 3), (np.float32, 2)],
                         ids=["f64-1d", "f64-2d", "f64-3d", "f32-2d"])
@pytest.mark.parametrize("bw_kind", BANDWIDTH_KINDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_matches_bruteforce_reference(kernel, dtype, d, bw_kind, weighted):
    def draw(rng):
        X, Y = make_data(rng, 41, 29, d, dtype)
        bandwidth, H = bandwidth_for(bw_kind, d, rng)
        w = rng.uniform(0.05, 3.0, size=len(X)) if weighted else None
        return X, Y, bandwidth, H, w

    margin = 1e-6 if dtype is np.float64 else 1e-3
    X, Y, bandwidth, H, w = first_good_draw(
        1000 + 7 * d + 100 * BANDWIDTH_KINDS.index(bw_kind), draw,
        lambda X, Y, bandwidth, H, w: away_from_boundary(X, Y, H, kernel, margin=margin))

    kde = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w)
    ours = kde.score_samples(Y)
    assert ours.dtype == dtype and ours.shape == (len(Y),)
    ref = ref_log_density(X, Y, kernel, H, w)
    # float32: the rounding of r² grows with r², so the tolerance in log space has a relative part.
    assert_logdens_close(ours, ref, atol=TOL[dtype], rtol=0.0 if dtype is np.float64 else 1e-6)
    if kernel in COMPACT_KERNELS:
        assert np.isneginf(ours[-2:]).all()  # the two queries beyond every support
    else:
        assert np.isfinite(ours).all()
    np.testing.assert_allclose(kde.bandwidth_matrix_, H, rtol=1e-15)
    assert kde.score(Y) == pytest.approx(float(np.sum(ours.astype(np.float64))), rel=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_many_tiles_and_zero_weights_match_reference(kernel):
    # n spans several training tiles (not a multiple of TILE); some weights are exactly zero.
    rng = np.random.default_rng(5)
    n = 2 * TILE + 77
    X = rng.normal(size=(n, 2))
    Y = rng.normal(scale=1.5, size=(40, 2))
    w = rng.uniform(0.0, 2.0, size=n)
    w[rng.choice(n, 100, replace=False)] = 0.0
    H = np.array([[0.3, 0.1], [0.1, 0.2]])
    assert_away_from_boundary(X, Y, H, kernel)
    ours = KernelDensity(kernel=kernel, bandwidth=H).fit(X, sample_weight=w).score_samples(Y)
    assert_logdens_close(ours, ref_log_density(X, Y, kernel, H, w), atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
def test_zero_weight_points_do_not_count(kernel):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(30, 2))
    Y = rng.normal(size=(20, 2))
    w = np.ones(30)
    w[:10] = 0.0
    a = KernelDensity(kernel=kernel, bandwidth=0.9).fit(X, sample_weight=w).score_samples(Y)
    b = KernelDensity(kernel=kernel, bandwidth=0.9).fit(X[10:]).score_samples(Y)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-13)


@pytest.mark.parametrize("kernel", ["tophat", "epanechnikov", "linear", "cosine", "biweight", "triweight"])
def test_exact_neg_inf_pattern_of_compact_kernels(kernel):
    # Training points on a line, queries placed at known distances (in bandwidths) from them.
    h = 0.5
    X = np.array([[0.0, 0.0], [3.0, 0.0]])  # six bandwidths apart
    # Left of x_0 at these distances (in bandwidths); r = 1 exactly is outside (k(1) = 0).
    offsets = np.array([0.0, 0.3, 0.999, 1.0, 1.001, 1.5, 2.0, 4.5])
    Y = np.stack([-offsets * h, np.zeros_like(offsets)], axis=1)
    # Between the points: 3 bandwidths from both; near x_1 only (0.82 bandwidths); far above.
    Y = np.concatenate([Y, [[1.5, 0.0], [2.6, 0.1], [1.5, 2.0]]])
    ours = KernelDensity(kernel=kernel, bandwidth=h).fit(X).score_samples(Y)
    expected_inf = np.array([False, False, False, True, True, True, True, True, True, False, True])
    np.testing.assert_array_equal(np.isneginf(ours), expected_inf)
    ref = ref_log_density(X, Y, kernel, h * h * np.eye(2))
    assert_logdens_close(ours, ref, atol=1e-12)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_far_away_queries(kernel, dtype):
    # 1e3 bandwidths away: every term underflows a plain exp; the log-space path must take over.
    rng = np.random.default_rng(3)
    h = 0.5
    X = rng.normal(size=(25, 2)).astype(dtype)
    w = rng.uniform(0.1, 2.0, size=25)
    direction = np.array([0.6, -0.8])
    Y = (np.array([1e3 * h, 50 * h, 1e2 * h, 3e3 * h])[:, None] * direction[None, :]).astype(dtype)
    ours = KernelDensity(kernel=kernel, bandwidth=h).fit(X, sample_weight=w).score_samples(Y)
    ref = ref_log_density(X, Y, kernel, h * h * np.eye(2), w)
    if kernel in COMPACT_KERNELS:
        assert np.isneginf(ours).all()
    else:
        assert np.isfinite(ours).all() and np.isfinite(ref).all()
        # Relative in log space: the log densities are as large as -2e7.
        np.testing.assert_allclose(ours, ref, rtol=1e-12 if dtype is np.float64 else 1e-6, atol=TOL[dtype])
        assert np.all(np.diff(ours[[1, 2, 0, 3]].astype(np.float64)) < 0)  # farther → lower


def test_far_query_in_a_sum_dominated_by_one_remote_point():
    # Query near one isolated heavy-tailed point but far from the bulk: the sum must keep it.
    X = np.concatenate([np.zeros((50, 1)), [[200.0]]])
    Y = np.array([[200.0], [100.0], [-300.0]])
    for kernel in ("gaussian", "exponential"):
        ours = KernelDensity(kernel=kernel, bandwidth=1.0).fit(X).score_samples(Y)
        ref = ref_log_density(X, Y, kernel, np.eye(1))
        np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------ scikit-learn
# Not cosine in even d, where scikit-learn's normaliser is wrong (test_cosine_even_d_integrates_to_one).
@pytest.mark.parametrize(("kernel", "d"), [(k, d) for k in SKLEARN_KERNELS for d in (1, 2, 3)
                                           if not (k == "cosine" and d % 2 == 0)])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_matches_scikit_learn(kernel, d, weighted):
    from sklearn.neighbors import KernelDensity as SKKernelDensity

    rng = np.random.default_rng(20 + d)
    X = rng.normal(size=(60, d))
    Y = np.concatenate([rng.normal(scale=1.2, size=(30, d)), X[:5]])
    w = rng.uniform(0.1, 2.0, size=60) if weighted else None
    assert_away_from_boundary(X, Y, 0.7**2 * np.eye(d), kernel)
    theirs = SKKernelDensity(kernel=kernel, bandwidth=0.7, atol=0, rtol=0).fit(X, sample_weight=w).score_samples(Y)
    ours = KernelDensity(kernel=kernel, bandwidth=0.7).fit(X, sample_weight=w).score_samples(Y)
    assert_logdens_close(ours, theirs, atol=1e-10)


def test_cosine_even_d_integrates_to_one():
    # Where scikit-learn's cosine normaliser is wrong (d = 2), ours integrates to 1 (also covered
    # with weights, matrices and adaptive bandwidths in test_integrates_to_one_2d).
    kde = KernelDensity(kernel="cosine", bandwidth=0.6).fit(np.array([[0.0, 0.0], [0.5, 0.2]]))
    assert integrate_2d(kde) == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------- integration
_GL_NODES, _GL_WEIGHTS = leggauss(24)
# Radius (in kernel scales) beyond which a non-compact kernel's mass is below 1e-13 in d ≤ 2.
_TAIL_RADIUS = {"gaussian": 9.0, "exponential": 36.0}


def _point_matrices(kde):
    lam = np.ones(len(kde.training_data_)) if kde.adaptive_factors_ is None else kde.adaptive_factors_
    return lam[:, None, None] ** 2 * kde.bandwidth_matrix_[None, :, :]


# Graded offsets (in kernel scales) around each centre for the unbounded kernels' pieces.
_GRADED = np.array([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 5.5, 7.0, 9.0, 12.0, 16.0, 21.0, 28.0, 36.0])


def _gauss_legendre(breaks, smooth_ends=False):
    """Nodes and weights of 24-point Gauss–Legendre on every piece between sorted ``breaks``.

    ``smooth_ends`` maps each piece by the smoothstep x = a + (b − a)(3u² − 2u³), whose zero
    derivative at both ends turns the (x − a)^(p+½) edges of a support ellipse into polynomials."""
    lo, hi = breaks[:-1, None], breaks[1:, None]
    u = 0.5 * (_GL_NODES[None, :] + 1.0)
    wu = 0.5 * _GL_WEIGHTS[None, :]
    if smooth_ends:
        return lo + (hi - lo) * (3 * u**2 - 2 * u**3), (hi - lo) * 6 * u * (1 - u) * wu
    return lo + (hi - lo) * u, (hi - lo) * wu


def _graded_breaks(lo, hi, centres, scales, extra):
    pts = [np.array([lo, hi]), np.asarray(extra, dtype=np.float64)]
    pts += [c + s * np.concatenate([-_GRADED, [0.0], _GRADED]) for c, s in zip(centres, scales)]
    return np.unique(np.clip(np.concatenate(pts), lo, hi))


def _breaks_1d(kde, graded=True):
    centres = kde.training_data_[:, 0].astype(np.float64)
    scales = np.sqrt(_point_matrices(kde)[:, 0, 0])
    radius = _TAIL_RADIUS.get(kde.kernel, 1.0)
    edges = np.concatenate([centres, centres - radius * scales, centres + radius * scales])
    if kde.kernel in COMPACT_KERNELS or not graded:
        return np.unique(edges)
    return _graded_breaks(edges.min(), edges.max(), centres, scales, edges)


def integrate_1d_quad(kde):
    """∫ exp(score_samples) by scipy quad on every piece between the breakpoints (x_j, x_j ± λ_j h)."""

    def f(x):
        return float(np.exp(kde.score_samples(np.array([[x]]))[0]))

    breaks = _breaks_1d(kde, graded=False)  # quad subdivides the smooth tails itself
    return sum(integrate.quad(f, a, b, epsabs=1e-13, epsrel=1e-12, limit=200)[0] for a, b in zip(breaks[:-1], breaks[1:]))


def integrate_1d(kde):
    """The same integral by 24-point Gauss–Legendre on every piece, in one vectorised call: exact
    for the piecewise-polynomial kernels, spectrally accurate for the smooth pieces of the others."""
    xs, wx = _gauss_legendre(_breaks_1d(kde))
    return float(np.sum(wx.ravel() * np.exp(kde.score_samples(xs.reshape(-1, 1)))))


def integrate_2d(kde, chunk=200_000):
    """∫∫ exp(score_samples) by nested Gauss–Legendre: in x over pieces between the support
    ellipses' tangents (smoothstep-mapped), in y over pieces between each ellipse's crossings
    of the line, so that compact polynomial kernels are integrated exactly piece by piece;
    unbounded kernels get pieces graded around the centres out to a negligible tail."""
    centres = kde.training_data_.astype(np.float64)
    mats = _point_matrices(kde)
    radius = _TAIL_RADIUS.get(kde.kernel, 1.0)
    compact = kde.kernel in COMPACT_KERNELS
    sx = np.sqrt(mats[:, 0, 0])
    sy = np.sqrt(mats[:, 1, 1])
    precisions = np.linalg.inv(mats / radius**2)  # support (or tail cut) ellipse: vᵀ P v ≤ 1
    x_lo, x_hi = np.min(centres[:, 0] - radius * sx), np.max(centres[:, 0] + radius * sx)
    y_lo, y_hi = np.min(centres[:, 1] - radius * sy), np.max(centres[:, 1] + radius * sy)
    tangents = np.concatenate([centres[:, 0], centres[:, 0] - radius * sx, centres[:, 0] + radius * sx])
    if compact:
        x_breaks = np.unique(tangents)
    else:
        x_breaks = _graded_breaks(x_lo, x_hi, centres[:, 0], sx, tangents)
    xs, wx = _gauss_legendre(x_breaks, smooth_ends=True)

    points, weights = [], []
    a, b, e = precisions[:, 0, 0], precisions[:, 0, 1], precisions[:, 1, 1]
    for x, w_x in zip(xs.ravel(), wx.ravel()):
        dx = x - centres[:, 0]
        mid = centres[:, 1] - b * dx / e  # nearest point of the line to each centre (cusps)
        disc = (b * dx) ** 2 - e * (a * dx**2 - 1.0)
        root = np.sqrt(np.maximum(disc, 0.0))[disc > 0] / e[disc > 0]
        crossings = np.concatenate([mid[disc > 0] - root, mid[disc > 0] + root, mid])
        if compact:
            y_breaks = np.unique(np.clip(np.concatenate([[y_lo, y_hi], crossings]), y_lo, y_hi))
        else:
            y_breaks = _graded_breaks(y_lo, y_hi, mid, sy, crossings)
        ys, wy = _gauss_legendre(y_breaks)
        points.append(np.column_stack([np.full(ys.size, x), ys.ravel()]))
        weights.append(w_x * wy.ravel())
    points = np.concatenate(points)
    weights = np.concatenate(weights)
    total = 0.0
    for i in range(0, len(points), chunk):
        total += float(np.sum(weights[i : i + chunk] * np.exp(kde.score_samples(points[i : i + chunk]))))
    return total


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("adaptive", [False, True], ids=["fixed", "adaptive"])
def test_integrates_to_one_1d(kernel, adaptive):
    rng = np.random.default_rng(8)
    X = np.array([[-1.0], [-0.4], [0.1], [0.35], [2.2]])
    w = rng.uniform(0.2, 2.0, size=len(X))
    kde = KernelDensity(kernel=kernel, bandwidth=0.45, adaptive=adaptive).fit(X, sample_weight=w)
    assert integrate_1d(kde) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("kernel", ["gaussian", "cosine", "linear", "tophat"])
def test_integrates_to_one_1d_scipy_quad(kernel):
    # The same check with scipy's adaptive quadrature (one call per point, so fewer cases).
    X = np.array([[-1.0], [-0.4], [0.1], [0.35], [2.2]])
    kde = KernelDensity(kernel=kernel, bandwidth=0.45, adaptive=kernel in ("cosine", "linear")).fit(
        X, sample_weight=[0.5, 1.0, 2.0, 1.0, 0.3])
    assert integrate_1d_quad(kde) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("config", ["scalar", "matrix", "matrix_adaptive"])
def test_integrates_to_one_2d(kernel, config):
    X = np.array([[0.0, 0.0], [0.7, 0.3], [-0.5, 1.1], [0.2, -0.9]])
    w = np.array([1.0, 2.5, 0.5, 1.5])
    if config == "scalar":
        kde = KernelDensity(kernel=kernel, bandwidth=0.6)
    else:
        H = np.array([[0.36, 0.15], [0.15, 0.2]])
        kde = KernelDensity(kernel=kernel, bandwidth=H, adaptive=config == "matrix_adaptive")
    kde.fit(X, sample_weight=w)
    if config == "matrix_adaptive":
        assert np.ptp(kde.adaptive_factors_) > 0.05  # the bandwidths really differ per point
    # Exact up to rounding for the polynomial kernels; the linear kernel's cone at each centre
    # limits the quadrature to ~1e-9.
    assert integrate_2d(kde) == pytest.approx(1.0, abs=1e-8 if kernel == "linear" else 1e-12)


# ------------------------------------------------------------------------ buffered path
@pytest.mark.parametrize(
    ("kernel", "dtype", "adaptive"),
    [("gaussian", np.float64, False), ("gaussian", np.float32, False), ("epanechnikov", np.float64, False),
     ("gaussian", np.float64, True), ("epanechnikov", np.float64, True)],
)
def test_high_dimension_buffered_path(kernel, dtype, adaptive):
    d = 20
    assert d > MAX_UNROLLED_D
    n = TILE + 190  # two tiles
    h = 5.0 if kernel == "epanechnikov" else np.random.default_rng(0).uniform(1.5, 2.5, size=d)
    H = np.diag(np.broadcast_to(np.asarray(h, dtype=np.float64), (d,)) ** 2)

    def draw(rng):
        X = rng.normal(size=(n, d)).astype(dtype)
        # Queries: more than one query block, some near the data, two far from it.
        Y = np.concatenate([X[:5], rng.normal(size=(140, d)), 30 + rng.normal(size=(2, d))]).astype(dtype)
        w = rng.uniform(0.1, 2.0, size=n)
        lam = ref_abramson(X, kernel, H, w) if adaptive else None
        return X, Y, w, lam

    X, Y, w, lam = first_good_draw(12, draw, lambda X, Y, w, lam: away_from_boundary(X, Y, H, kernel, lam))
    kde = KernelDensity(kernel=kernel, bandwidth=h, adaptive=adaptive).fit(X, sample_weight=w)
    ours = kde.score_samples(Y)
    assert ours.dtype == dtype
    ref = ref_log_density(X, Y, kernel, H, w, lam)
    if kernel == "epanechnikov":
        assert np.isneginf(ref).sum() >= 2 and np.isfinite(ref).sum() > 50
    assert_logdens_close(ours, ref, atol=TOL[dtype], rtol=1e-12 if dtype is np.float64 else 1e-6)


# ------------------------------------------------------------------------------ adaptive
@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("bw_kind", BANDWIDTH_KINDS)
def test_adaptive_matches_abramson_reference(kernel, bw_kind):
    rng = np.random.default_rng(30 + BANDWIDTH_KINDS.index(bw_kind))
    # Clustered data, so that the pilot density (and λ) varies a lot.
    X = np.concatenate([rng.normal(scale=0.3, size=(30, 2)), rng.normal(loc=2.5, scale=1.0, size=(15, 2))])
    Y = np.concatenate([X[:4], rng.normal(loc=1.0, scale=1.5, size=(30, 2)), [[9.0, 9.0]]])
    w = rng.uniform(0.2, 2.0, size=len(X))
    bandwidth, H = bandwidth_for(bw_kind, 2, rng)
    kde = KernelDensity(kernel=kernel, bandwidth=bandwidth, adaptive=True).fit(X, sample_weight=w)

    lam = ref_abramson(X, kernel, H, w)
    assert np.ptp(lam) > 0.3
    np.testing.assert_allclose(kde.adaptive_factors_, lam, rtol=1e-11)
    # Weighted geometric mean of the pilot at the data is g, so Σ ŵ_j log λ_j = 0.
    assert np.sum(w * np.log(kde.adaptive_factors_)) / np.sum(w) == pytest.approx(0.0, abs=1e-12)
    assert_away_from_boundary(X, Y, H, kernel, lam)
    ours = kde.score_samples(Y)
    assert_logdens_close(ours, ref_log_density(X, Y, kernel, H, w, lam), atol=1e-12)
    # The fixed-bandwidth estimate differs: adaptive really changes the answer.
    fixed = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(X, sample_weight=w).score_samples(Y[:4])
    assert np.max(np.abs(fixed - ours[:4])) > 1e-3


def test_adaptive_float32_matches_reference():
    rng = np.random.default_rng(44)
    X = rng.normal(size=(50, 2)).astype(np.float32)
    Y = rng.normal(size=(20, 2)).astype(np.float32)
    kde = KernelDensity(kernel="gaussian", bandwidth=0.5, adaptive=True).fit(X)
    H = 0.25 * np.eye(2)
    lam = ref_abramson(X, "gaussian", H)
    np.testing.assert_allclose(kde.adaptive_factors_, lam, rtol=1e-5)
    assert_logdens_close(kde.score_samples(Y), ref_log_density(X, Y, "gaussian", H, None, lam), atol=2e-5)


# ---------------------------------------------------------------------- bandwidth rules
def test_rule_bandwidths_scale_with_the_data():
    pytest.importorskip("fastdensity.kde._bandwidth")
    rng = np.random.default_rng(50)
    X = rng.normal(size=(300, 2)) * np.array([1.0, 10.0])
    for rule in ("scott", "silverman"):
        H = KernelDensity(bandwidth=rule).fit(X).bandwidth_matrix_
        H_scaled = KernelDensity(bandwidth=rule).fit(X * 3.0).bandwidth_matrix_
        np.testing.assert_allclose(H_scaled, 9.0 * H, rtol=1e-10)
        assert H[1, 1] / H[0, 0] == pytest.approx(np.var(X[:, 1]) / np.var(X[:, 0]), rel=1e-6)


@pytest.mark.parametrize("kernel", ["gaussian", "epanechnikov"])
def test_scott_rule_matches_scipy_gaussian_kde_covariance(kernel):
    # "scott" is scipy's factor times the data covariance, expressed as the kernel's covariance.
    pytest.importorskip("fastdensity.kde._bandwidth")
    from scipy.stats import gaussian_kde

    from fastdensity.kde._kernels import kernel_coordinate_variance

    rng = np.random.default_rng(51)
    X = rng.normal(size=(200, 2)) @ np.array([[1.0, 0.4], [0.0, 0.7]])
    kde = KernelDensity(kernel=kernel, bandwidth="scott").fit(X)
    scipy_cov = gaussian_kde(X.T, bw_method="scott").covariance
    np.testing.assert_allclose(kde.bandwidth_matrix_ * kernel_coordinate_variance(kernel, 2), scipy_cov, rtol=1e-10)
    if kernel == "gaussian":
        Y = rng.normal(size=(10, 2))
        np.testing.assert_allclose(kde.score_samples(Y), gaussian_kde(X.T).logpdf(Y.T), rtol=1e-10)


@pytest.mark.parametrize("rule", ["scott", "silverman", "isj", "cv"])
def test_rules_give_a_density_that_integrates_to_one(rule):
    pytest.importorskip("fastdensity.kde._bandwidth")
    rng = np.random.default_rng(52)
    X = np.concatenate([rng.normal(size=(60, 1)), rng.normal(loc=4.0, scale=0.5, size=(40, 1))])
    kde = KernelDensity(kernel="epanechnikov", bandwidth=rule).fit(X)
    assert isinstance(kde.bandwidth_, float) and 0.01 < kde.bandwidth_ < 3.0
    assert kde.bandwidth_matrix_ == pytest.approx(np.array([[kde.bandwidth_**2]]), rel=1e-12)
    assert integrate_1d(kde) == pytest.approx(1.0, abs=1e-12)
