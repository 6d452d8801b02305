"""``KernelDensity``: a superset of scikit-learn's estimator on the exact tiled engine (CPU or GPU)."""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._backend import array_kind, to_host_numpy
from .._backend._columns import column_extremes
from .._backend._convert import float64_total
from .._backend._dispatch import BACKENDS
from .._backend._estimator_input import check_estimator_X
from .._backend._threads import resolve_n_jobs
from .._backend._validation import (
    Boolean, Check, CheckedLater, Integer, Options, Real, check_parameter, validate_parameters,
)
from . import _bandwidth
from ._bandwidth_isj import isj_bandwidth
from ._metric_spec import METRIC_ALIASES, METRIC_PARAMS, SAMPLEABLE_METRICS, VALID_METRICS, metric_spec
from ._engine import engine_for
from ._kernels import KERNELS, kernel_coordinate_variance
from ._weights import equal_weights

from ._algorithm import ALGORITHMS as _ALGORITHMS, check_algorithm, resolve_algorithm
_RULES = ("scott", "silverman", "isj", "cv")
_EUCLIDEAN = ("euclidean", "l2")

def _check_metric_name(metric):
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string; got {metric!r}")
    if metric not in VALID_METRICS:
        why = " (a Python distance function per pair is not supported)" if metric == "pyfunc" else ""
        raise ValueError(f"metric must be one of {VALID_METRICS}; got {metric!r}{why}")
    return metric


def _check_metric_params(params):
    if not isinstance(params, dict):
        raise TypeError(f"metric_params must be a dict or None; got {type(params).__name__}")
    return params


def _squared_bandwidth(h):
    """h² (float or per-feature array) as the bandwidth matrix's diagonal; refuses an h whose
    square leaves float64's normal range (h beyond about 1.3e154 overflows, below about 1.5e-154
    underflows), where the matrix would be inf or lose its digits."""
    if np.ndim(h) == 0:  # Python floats: no errstate needed (a product overflows to inf quietly)
        squared = float(h) * float(h)
        ok = math.isfinite(squared) and squared >= sys.float_info.min
    else:
        with np.errstate(over="ignore", under="ignore"):
            squared = np.asarray(h, dtype=np.float64) ** 2
        ok = bool(np.all(np.isfinite(squared)) and np.all(squared >= np.finfo(np.float64).tiny))
    if not ok:
        raise ValueError(
            f"bandwidth {h!r} is outside the range whose square float64 holds (about 1.5e-154 to "
            "1.3e154); rescale the data"
        )
    return squared


class KernelDensity(BaseEstimator):
    """Kernel density estimation, exact and fast; a superset of scikit-learn's ``KernelDensity``.

    Densities are computed exactly by a tiled, parallel Numba engine with a vectorised
    exponential (several times faster than approximate tree codes and tens of times faster than
    exact ones), or by a k-d tree (see ``algorithm``): exactly over the points within the support
    for the compact kernels, within a guaranteed ``rtol``/``atol`` for the gaussian and
    exponential kernels. Log densities are underflow-proof: a point far from all data
    gets its finite, correct log density (scikit-learn and scipy return ``-inf`` there); compact
    kernels give exactly ``-inf`` outside their support.

    Parameters
    ----------
    bandwidth : float, array of shape (d,), array of shape (d, d) or str, default=1.0
        * float h: the kernel's scale, as in scikit-learn (the density of a point x is
          Σ_j w_j c_d h^-d k(‖x − x_j‖ / h) / Σ_j w_j).
        * array of shape (d,): one scale per feature.
        * array of shape (d, d): a symmetric positive-definite bandwidth matrix H; the data are
          whitened once with its Cholesky factor L (H = L Lᵀ) and the unit kernel is applied:
          c_d |L|^-1 k(‖L^-1 (x − x_j)‖). A scalar h is H = h² I.
        * "scott", "silverman": the rule's factor times the (weighted) data covariance, as
          ``scipy.stats.gaussian_kde`` does, converted so that the kernel's covariance equals it
          whatever the kernel. Unlike scikit-learn, whose rules ignore the data's scale
          (scikit-learn issues #25623, #26658).
        * "isj": improved Sheather–Jones (Botev, Grotowski & Kroese 2010), 1-D data only.
        * "cv": maximum leave-one-out likelihood over a grid of multiples (0.05 to 3) of the
          Scott bandwidth matrix, every candidate evaluated in one pass over the pairs.
    algorithm : {"auto", "exact", "tree", "kd_tree", "ball_tree"}, default="auto"
        * "exact": the tiled engine sums every pair.
        * "tree" (euclidean metric, CPU; ``ValueError`` for other metrics and GPU data): a k-d
          tree over the whitened training data, built at ``fit`` with ``leaf_size`` points per
          leaf at most. Compact kernels: a sum over only the points within each query's
          support, the same terms as "exact", so the same result to rounding (a few units of
          the working dtype's roundoff relative to the support's weight), ``-inf`` outside the
          support. Gaussian and exponential kernels: each density within ``atol + rtol ×`` the
          density, guaranteed (node bounds safe for rounding, Gray & Moore's budget; computed
          in float64 whatever the dtype, the float64 rounding of the exact parts on top, as in
          "exact"); with ``rtol = atol = 0`` nothing can be left out and "exact" runs.
        * "auto": "tree" where it applies and a cost model (a few training points run through
          the tree at ``fit``) predicts it cheaper than "exact", else "exact"; always "exact"
          for GPU data, other metrics, the gaussian and exponential kernels with
          ``rtol = atol = 0`` and fewer than 2048 training points. ``effective_algorithm_``
          says which runs.
        * "kd_tree", "ball_tree": scikit-learn's names, accepted for compatibility; they choose
          as "auto" does (the results are the same, so nothing changes for their users).
    kernel : {"gaussian", "tophat", "epanechnikov", "exponential", "linear", "cosine", \
"biweight", "triweight"}, default="gaussian"
        scikit-learn's six kernels with identical definitions, plus biweight (1 − r²)² and
        triweight (1 − r²)³. The cosine kernel is normalised correctly in every dimension
        (scikit-learn's normaliser is wrong in even dimensions).
    metric : str, default="euclidean"
        The distance D in the kernel k(D(x, x_j) / h): scikit-learn's choices for its
        ``KernelDensity`` (:data:`VALID_METRICS`): "euclidean"/"l2"; "manhattan"/"cityblock"/"l1";
        "chebyshev"/"infinity"; "minkowski"/"p" (``metric_params={"p": p, "w": w}``, p > 0, default
        2, optional non-negative feature weights w: (Σ w_i |x_i − y_i|^p)^(1/p)); "seuclidean"
        (``{"V": V}``); "mahalanobis" (``{"VI": VI}`` or ``{"V": V}``); "haversine" (2-D data, rows
        (latitude, longitude) in radians, the great-circle angle); "hamming", "canberra",
        "braycurtis"; the boolean metrics "jaccard", "dice", "rogerstanimoto"/"sokalmichener",
        "russellrao", "sokalsneath" (nonzero counts as True). The formulas are scikit-learn's
        ``DistanceMetric``'s. Not "pyfunc" (a Python function per pair).

        The euclidean metric runs the whitened fast path and takes every bandwidth; every other
        metric runs an exact Numba-parallel kernel on the CPU with a scalar ``bandwidth`` (a float,
        "scott" or "silverman"), with ``adaptive`` and weights, and raises ``ValueError`` for
        per-feature or matrix bandwidths, "isj", "cv" and GPU data.

        **Normalisation, as scikit-learn**: whatever the metric, the kernel is normalised with the
        euclidean formula, c_d h^-d k(D(x, x_j) / h) (c_d of the euclidean unit kernel in d
        dimensions; also the per-point factor λ_j^-d for ``adaptive``), so log densities equal
        scikit-learn's ``KernelDensity(metric=..., rtol=0, atol=0)`` to rounding (the cosine
        kernel in even dimensions excepted, see ``kernel``). For every non-euclidean metric this
        density does **not** integrate to 1: it integrates to c_d / c_d^D with c_d^D the normaliser
        of the metric's own unit ball (for instance 2^d / V_d for the chebyshev metric and the
        tophat kernel); under haversine the data live on the sphere in (latitude, longitude)
        coordinates, and the density integrates to 1 neither over dlat dlon nor over the
        sphere's area (approximately over the area for h ≪ 1); the discrete metrics (hamming,
        the boolean ones) take finitely many values and give no density at all, only a score.
        Minkowski with p < 1 is not a metric (no triangle inequality): the sums here are exact,
        while scikit-learn's tree, which prunes by the triangle inequality, is not.
    atol, rtol : float, default=0
        Non-negative finite tolerances on the density (NaN and negative values raise
        ``ValueError``): every density p̂ is within ``atol + rtol · p`` of the exact p. The exact
        engine and the compact kernels' tree meet any tolerance; the gaussian and exponential
        kernels' tree uses them (see ``algorithm``). scikit-learn's default tolerances are the
        same (0); unlike its trees, this bound holds.
    breadth_first : bool, default=True
        Accepted for compatibility; no effect.
    leaf_size : int, default=40
        The largest leaf of the k-d tree of ``algorithm="tree"`` (leaves hold between half of it
        and it); no effect on the exact engine.
    metric_params : dict or None, default=None
        The metric's parameters (see ``metric``); none for the others.
    adaptive : bool, default=False
        Abramson's square-root law: point j gets bandwidth matrix λ_j² H with
        λ_j = (f̃(x_j) / g)^(-1/2), f̃ a pilot estimate with the global bandwidth and g the
        weighted geometric mean of f̃ over the data.
    backend : {"auto", "cpu", "cuda"}, default="auto"
        Where to compute: "auto" follows the data (NumPy arrays and torch CPU tensors run on the
        CPU, CuPy arrays and torch CUDA tensors on their GPU, torch tensors through DLPack without a
        copy); "cuda" also runs host data on the current GPU. Results come back in the caller's
        array type and device. Fitted on a GPU, the fitted arrays stay there (``training_data_`` is
        a CuPy array) and ``sample`` draws there; scoring data on the other device moves the fitted
        state once (cached). Every ``bandwidth`` works on the GPU: "cv" computes its leave-one-out
        sums there; "isj" (1-D) bins the column on the host. The CUDA backend needs CuPy
        (``pip install fastdensity[cuda12]`` or ``[cuda13]``).
    n_jobs : int or None, default=None
        Threads for the engine (None or -1: all cores).

    Attributes
    ----------
    bandwidth_ : float or ndarray
        The bandwidth used: a float for a scalar bandwidth and for the rules on 1-D data, the
        (d,) array for per-feature bandwidths, else the (d, d) bandwidth matrix.
    bandwidth_matrix_ : ndarray of shape (d, d)
        H, always.
    training_data_ : ndarray of shape (n, d)
    sample_weight_ : ndarray of shape (n,) or None
    adaptive_factors_ : ndarray of shape (n,) or None
        Abramson's λ_j when ``adaptive=True``.
    effective_algorithm_ : str
        "exact" or "tree": the engine chosen at ``fit`` for the training data's dtype (see
        ``algorithm``); queries of the other dtype use the same engine (a tree is built for them
        at their first score).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on data with string column names.
    """

    def __init__(
        self,
        *,
        bandwidth=1.0,
        algorithm="auto",
        kernel="gaussian",
        metric="euclidean",
        atol=0,
        rtol=0,
        breadth_first=True,
        leaf_size=40,
        metric_params=None,
        adaptive=False,
        backend="auto",
        n_jobs=None,
    ):
        self.bandwidth = bandwidth
        self.algorithm = algorithm
        self.kernel = kernel
        self.metric = metric
        self.atol = atol
        self.rtol = rtol
        self.breadth_first = breadth_first
        self.leaf_size = leaf_size
        self.metric_params = metric_params
        self.adaptive = adaptive
        self.backend = backend
        self.n_jobs = n_jobs

    # ----------------------------------------------------------------------------- validation
    _constraints = {
        "bandwidth": CheckedLater("_bandwidth_matrix"),
        "algorithm": Options(_ALGORITHMS),
        "kernel": Options(KERNELS),
        "metric": Check(_check_metric_name),
        "atol": Real(0),
        "rtol": Real(0),
        "breadth_first": Boolean(),
        "leaf_size": Integer(1),
        "metric_params": Check(_check_metric_params, none=True),
        "adaptive": Boolean(),
        "backend": Options(BACKENDS),
        "n_jobs": Check(resolve_n_jobs),
    }

    def _validate_params(self):
        validate_parameters(self)
        name = METRIC_ALIASES.get(self.metric, self.metric)
        allowed = METRIC_PARAMS.get(name, ())
        unknown = sorted(set(self.metric_params or {}) - set(allowed))
        if unknown:
            raise ValueError(
                f"metric_params {unknown} are not parameters of metric={self.metric!r}; it takes "
                f"{list(allowed) if allowed else 'none'}"
            )

    # ------------------------------------------------------------------------------------ fit
    def fit(self, X, y=None, sample_weight=None):
        """Fit the estimator to ``X`` (n, d) with optional non-negative ``sample_weight`` (n,).

        Returns ``self``.
        """
        self._validate_params()
        X, kind, _ = _check_X(self, X, reset=True)
        self._fit_kind = kind
        engine = engine_for(X)
        metric = self._metric_spec(X.shape[1])[0]
        engine.check_metric(self, metric, fitting=True)
        check_algorithm(self, engine, metric)
        with engine.scope(X, self.n_jobs):
            sample_weight, bandwidth_used, H, pilot_weights, chol = engine.fit_bandwidth(self, X, sample_weight)
            self.training_data_ = X
            self.sample_weight_ = sample_weight
            self.bandwidth_ = bandwidth_used
            self.bandwidth_matrix_ = H
            self.adaptive_factors_ = None
            self._clear_cache()
            if chol is not None:  # the engine factored H already (its overflow check needs L)
                self._cache()["chol"] = chol
            self._bandwidth_cholesky()  # factored once per fit, read by the state and by sample
            self.effective_algorithm_ = resolve_algorithm(self, engine, metric, pilot=self.adaptive)
            if self.adaptive:  # Abramson's factors from the fixed-bandwidth pilot
                pilot = engine.log_density(self, X)
                self.adaptive_factors_ = _bandwidth.abramson_from_pilot(pilot, pilot_weights, xp=engine.xp)
                self._clear_cache()
                self.effective_algorithm_ = resolve_algorithm(self, engine, metric)
        return self

    def _bandwidth_matrix(self, X, weights):
        """(bandwidth_, H) for the ``bandwidth`` parameter on data X."""
        n, d = X.shape
        bw = self.bandwidth
        if self._metric_spec(d)[0] != "euclidean":
            return self._metric_bandwidth(X, weights)
        if isinstance(bw, str):
            if bw not in _RULES:
                raise ValueError(f"bandwidth must be a positive number, an array or one of {_RULES}; got {bw!r}")

            X64 = np.asarray(X, dtype=np.float64)
            if bw in ("scott", "silverman"):
                H = _bandwidth.rule_bandwidth_matrix(X64, weights, bw, self.kernel)
            elif bw == "isj":
                if d != 1:
                    raise ValueError(
                        f'bandwidth="isj" is for 1-D data; X has {d} features. Use "scott", '
                        '"silverman" or "cv"'
                    )
                sigma = isj_bandwidth(X64[:, 0], weights)
                H = np.array([[sigma**2 / kernel_coordinate_variance(self.kernel, 1)]])
            else:  # cv
                H0 = _bandwidth.rule_bandwidth_matrix(X64, weights, "scott", self.kernel)
                X_white = _bandwidth.whiten(_bandwidth.cholesky_bandwidth(H0), X64)
                factor, _ = _bandwidth.cv_bandwidth_factor(X_white, weights, self.kernel)
                H = factor**2 * H0
            used = float(np.sqrt(H[0, 0])) if d == 1 else H
            return used, H
        if bw is None or isinstance(bw, bool):
            raise TypeError(
                f"bandwidth must be a positive number, a (d,) or (d, d) array, or one of {_RULES}; got {bw!r}"
            )
        if isinstance(bw, numbers.Real):
            if not (np.isfinite(bw) and bw > 0):
                raise ValueError(f"bandwidth must be positive and finite; got {bw!r}")
            return float(bw), np.eye(d) * _squared_bandwidth(bw)
        try:
            arr = np.array(to_host_numpy(bw), dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"bandwidth must be a number, an array or a string; got {type(bw).__name__}") from None
        if arr.ndim == 0:
            if not (np.isfinite(arr) and arr > 0):
                raise ValueError(f"bandwidth must be positive and finite; got {bw!r}")
            return float(arr), np.eye(d) * _squared_bandwidth(arr)
        if not np.all(np.isfinite(arr)):
            raise ValueError("bandwidth array must be finite")
        if arr.shape == (d,):
            if not np.all(arr > 0):
                raise ValueError("per-feature bandwidths must all be positive")
            return arr, np.diag(_squared_bandwidth(arr))
        if arr.shape == (d, d):
            if not np.allclose(arr, arr.T, rtol=1e-10, atol=0):
                raise ValueError("the bandwidth matrix must be symmetric")
            return arr, arr
        raise ValueError(
            f"bandwidth array must have shape ({d},) for per-feature bandwidths or ({d}, {d}) for a "
            f"bandwidth matrix; got shape {arr.shape}"
        )

    def _metric_bandwidth(self, X, weights):
        """(bandwidth_, H = h² I) for a non-euclidean metric: a float h, or "scott"/"silverman" as a
        scalar, the rule's factor times the root mean of the per-feature (weighted) variances,
        divided by the kernel's coordinate standard deviation."""
        n, d = X.shape
        bw = self.bandwidth
        if isinstance(bw, str) and bw in ("scott", "silverman"):

            X64 = np.asarray(X, dtype=np.float64)
            _bandwidth._check_support(X64, None if equal_weights(weights) else weights)
            h = _bandwidth.scalar_rule_bandwidth(X64, weights, bw, self.kernel)
            return h, np.eye(d) * h**2
        if isinstance(bw, numbers.Real) and not isinstance(bw, bool):
            if not (np.isfinite(bw) and bw > 0):
                raise ValueError(f"bandwidth must be positive and finite; got {bw!r}")
            return float(bw), np.eye(d) * _squared_bandwidth(bw)
        raise ValueError(
            f"metric={self.metric!r} takes a scalar bandwidth: a positive float, 'scott' or "
            f"'silverman'; got {bw!r} (per-feature and matrix bandwidths, 'isj' and 'cv' are for the "
            "euclidean metric)"
        )

    def _metric_spec(self, d):
        """(name, p, vec, mat) of the metric for d features, its parameters checked."""
        return metric_spec(self.metric, self.metric_params, d)

    # ------------------------------------------------------------------------ engine state
    def _cache(self):
        """The engines' prepared states of this fit (per dtype and device) and the bandwidth's
        Cholesky factor, built on first use."""
        cache = getattr(self, "_engine_cache", None)
        if cache is None:
            cache = self._engine_cache = {}
        return cache

    def _clear_cache(self):
        self._engine_cache = {}

    def _centre(self):
        """The fixed point subtracted before whitening, from the training data and the queries
        alike: the midpoint of the training data's bounding box (float64 (d,) on the host; its
        halves are added, so it never overflows). Densities depend only on differences, so the
        centre changes nothing but rounding: whitened coordinates stay of the size of the data's
        spread, not of its distance from the origin (which loses every digit in float32, and
        several in float64, for data far from the origin)."""
        cache = self._cache()
        if "centre" not in cache:
            from .._backend._device import to_host

            low, high = (np.asarray(to_host(a), dtype=np.float64) for a in column_extremes(self.training_data_))
            cache["centre"] = low / 2 + high / 2
        return cache["centre"]

    def _bandwidth_cholesky(self):
        """L with ``bandwidth_matrix_`` = L Lᵀ, factored once per fit."""
        cache = self._cache()
        if "chol" not in cache:
            cache["chol"] = _bandwidth.cholesky_bandwidth(self.bandwidth_matrix_)
        return cache["chol"]

    # ---------------------------------------------------------------------------- scoring
    def score_samples(self, X):
        """Log density of each row of ``X`` (m, d); float32 in → float32 out, else float64.

        Finite far from the data for the gaussian and exponential kernels; exactly ``-inf``
        outside the support of compact kernels.
        """
        check_is_fitted(self, "training_data_")
        X, kind, _ = _check_X(self, X, reset=False)
        engine = engine_for(X)
        engine.check_metric(self, self._metric_spec(X.shape[1])[0], fitting=False)
        with engine.scope(X, self.n_jobs):
            log_density = engine.log_density(self, X)
            if X.dtype == np.float32:
                log_density = log_density.astype(np.float32)
        return engine.to_caller(log_density, kind)

    def score(self, X, y=None):
        """Total log-likelihood of ``X`` (a sum, as in scikit-learn's ``KernelDensity``)."""
        return float64_total(self.score_samples(X))

    # --------------------------------------------------------------------------- sampling
    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points (n_samples, d) from the fitted density.

        Works for every kernel, with weights, per-feature and full bandwidths and adaptive
        bandwidths: pick a training point by weight, then add a draw from its kernel.

        Under a metric of a norm (manhattan, chebyshev, minkowski, seuclidean, mahalanobis) the
        draws follow the normalised density ∝ Σ_j w_j k(D(x, x_j) / h): a radius with density
        ∝ k(r) r^(d−1) times a direction from the cone measure of the metric's unit ball
        (scikit-learn instead draws euclidean kernels whatever the metric, for two kernels).
        Under haversine and the discrete metrics there is no such density on R^d: they raise
        ``NotImplementedError``. Fitted on a
        GPU, the draw happens there (CuPy's generator) and comes back as a CuPy array or a torch
        CUDA tensor, as the data passed to ``fit`` was; otherwise as a NumPy array. Equal
        ``sample_weight`` (every weight the same) draw exactly the points drawn without weights for
        the same ``random_state``.
        """
        check_is_fitted(self, "training_data_")
        n_samples = check_parameter("n_samples", n_samples, Integer(0))
        metric, p, vec, mat = self._metric_spec(self.n_features_in_)
        if metric not in SAMPLEABLE_METRICS:
            raise NotImplementedError(
                f"sampling with metric={self.metric!r} is not implemented: its kernel has no density "
                f"on R^d to draw from; sampling works for the metrics {SAMPLEABLE_METRICS}"
            )
        if metric == "minkowski" and vec is not None and not np.all(vec > 0):
            raise NotImplementedError(
                "sampling with a weighted minkowski metric needs every weight w > 0 (a zero weight "
                "leaves the kernel unbounded along that feature)"
            )
        rng = check_random_state(random_state)
        # A NumPy Generator seeded from the legacy RandomState keeps random_state semantics.
        seed = rng.randint(0, 2**63 - 1, dtype=np.int64)
        engine = engine_for(self.training_data_)
        out = engine.sample(self, int(n_samples), int(seed))
        # In the type of the data passed to fit when that was on a GPU (a CuPy array, a torch CUDA
        # tensor on its device); NumPy otherwise, host callers of backend="cuda" included.
        kind = getattr(self, "_fit_kind", None) or array_kind(self.training_data_)
        return engine.to_caller(out, kind if kind.on_gpu else array_kind(None))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _check_X(est, X, reset):
    """``check_estimator_X`` without warnings for data near ±1.8e308 (scikit-learn's finiteness
    check sums X first, which overflows harmlessly there: it then checks element-wise)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return check_estimator_X(est, X, reset=reset)


__all__ = ["KernelDensity", "KERNELS", "VALID_METRICS"]
