"""``KernelDensity``: a superset of scikit-learn's estimator on the exact tiled engine (CPU or GPU)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from .._backend import array_kind
from .._backend._columns import column_extremes
from .._backend._convert import float64_total
from .._backend._dask import rows_accept_dask
from .._backend._dispatch import BACKENDS
from .._backend._estimator_input import check_estimator_X
from .._backend._threads import resolve_n_jobs
from .._backend._validation import (
    Boolean, Check, CheckedLater, Integer, Options, Real, check_parameter, validate_parameters,
)
from . import _bandwidth, _boundary
from ._bounds_spec import BOUNDARY_METHODS, check_bounds_for_data, check_bounds_param
from ._kde_bandwidth import bandwidth_matrix
from ._metric_spec import METRIC_ALIASES, METRIC_PARAMS, SAMPLEABLE_METRICS, VALID_METRICS, metric_spec
from ._engine import engine_for
from ._engine_dask import not_on_sharded_fit, scores_sharded_fit
from ._kernels import KERNELS

from ._algorithm import ALGORITHMS as _ALGORITHMS, check_algorithm, resolve_algorithm
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


class KernelDensity(BaseEstimator):
    """Kernel density estimation, exact and fast; a superset of scikit-learn's ``KernelDensity``.

    Densities are computed exactly by a tiled, parallel Numba engine with a vectorised
    exponential (several times faster than approximate tree codes and tens of times faster than
    exact ones), or by a k-d tree (see ``algorithm``): exactly over the points within the support
    for the compact kernels, within a guaranteed ``rtol``/``atol`` for the gaussian and
    exponential kernels. Log densities are underflow-proof: a point far from all data
    gets its finite, correct log density (scikit-learn and scipy return ``-inf`` there); compact
    kernels give exactly ``-inf`` outside their support. ``algorithm="fft"`` (d ≤ 3) scores from a
    binned FFT grid within a stated tolerance instead, and :meth:`evaluate_grid` returns the binned
    density on a regular grid.

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
        * "sj": Sheather–Jones solve-the-equation (1991), 1-D only: R's ``bw.SJ(x)`` (its binning,
          pilots and root finder: R's value to its printed digits), with weights as an extension.
          On rounded or tied data (a step δ, like Old Faithful's eruption times) "isj" and "sj"
          take no root below δ and fall back to max(Silverman, δ) with a ``UserWarning``.
        * "plugin": Duong & Hazelton's (2003) plug-in matrix (``ks::Hpi(x, pilot="samse")``,
          exact O(n²) functionals); in 1-D Wand & Jones's two-stage plug-in (``ks::hpi``).
        * "lscv", "lscv_diag" / "mlcv", "mlcv_diag": full or diagonal matrices minimising
          least-squares cross-validation / maximising the leave-one-out likelihood (BFGS, O(n²)
          per step). These, "plugin", "isj" and "sj" are the gaussian kernel's, converted to the
          kernel as the rules are.
        * "cv": maximum leave-one-out likelihood over a grid of multiples (0.05 to 3) of the
          Scott bandwidth matrix, every candidate evaluated in one pass over the pairs.
    algorithm : {"auto", "exact", "tree", "kd_tree", "ball_tree", "fft"}, default="auto"
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
        * "fft" (d ≤ 3, euclidean metric, fixed bandwidth; any kernel, weights and bandwidth):
          ``score_samples`` interpolates a fine binned FFT grid of the density (built once per
          fit) with a stated bound E(x) on its error (binning, interpolation, FFT rounding,
          kernel cut; see ``fastdensity.kde._fft_score``), and answers a query from the grid
          only when E(x) ≤ ``atol`` + ``rtol`` (p̂ − E(x)), which guarantees |p̂ − p| ≤ ``atol`` +
          ``rtol`` p; with ``atol`` = ``rtol`` = 0 it takes ``rtol`` = 1e-3 (|Δ log p| ≲ 1e-3).
          Queries outside the grid or with too large a bound (far tails, the zero density of
          compact kernels) are computed by the exact engine. The grid has at most 2^20 (1-D) or
          2^24 padded points and takes up to a few seconds to build on 2 cores; where that is
          too coarse for the tolerance (3-D with bandwidths small against the data's range;
          kernels with a kink or jump in 2-D and 3-D at rtol below about 1e-2), most queries go
          to the exact engine.
        * "auto": "tree" where it applies and a cost model (a few training points run through
          the tree at ``fit``) predicts it cheaper than "exact", else "exact"; always "exact"
          for GPU data, other metrics, the gaussian and exponential kernels with
          ``rtol = atol = 0`` and (no tree) fewer than 2048 training points. With ``rtol`` > 0
          it also weighs "fft" (CPU, d ≤ 3, euclidean, fixed bandwidth, gaussian, biweight or
          triweight kernel, where the grid's predicted bound is within rtol / 2; its build
          counted against n queries; ``fastdensity.kde._algorithm``), so with the defaults
          ``rtol = atol = 0`` it stays exact. ``effective_algorithm_`` says which runs.
        * "kd_tree", "ball_tree": scikit-learn's names, accepted for compatibility; they choose
          as "auto" does between "exact" and "tree", never "fft" (the results are the same, so
          nothing changes for their users).
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
        kernels' tree and ``algorithm="fft"`` use them (see ``algorithm``). scikit-learn's
        default tolerances are the same (0); unlike its trees, this bound holds.
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
        sums there; "isj" and "sj" (1-D) bin the column on the host; "plugin" and the
        cross-validated matrices ("lscv", "mlcv", …) sum pairs of a host copy. The CUDA backend needs CuPy
        (``pip install fastdensity[cuda12]`` or ``[cuda13]``).
    n_jobs : int or None, default=None
        Threads for the engine (None or -1: all cores).
    bounds : sequence of d entries, array of shape (d, 2) or None, default=None
        A box domain for bounded data: per feature None or ``(low, high)``, either end None or
        ±inf for a one-sided bound (``(0, None)`` is [0, ∞)); low < high and the training data
        inside, else ``ValueError``. Log density ``-inf`` outside the box; ``sample`` draws inside.
        The bandwidth rules ignore the bounds. Euclidean metric only.
    boundary : {"reflection"}, default="reflection"
        "reflection": f̂ summed at x and at its mirror images in the faces (every repeated
        reflection for two-sided features), which integrates to 1 over the box for every kernel,
        weight and bandwidth (full, adaptive: the pilot is reflected too); ``sample`` folds f̂'s
        draws into the box, exactly. Compact kernels are exact, the gaussian and exponential
        leave out images of total mass below 2^-60; over 4096 images per query raise
        ``ValueError`` in ``fit``. Details: ``fastdensity/kde/_boundary.py``.

    Attributes
    ----------
    bandwidth_ : float or ndarray
        The bandwidth used: a float for a scalar bandwidth and for the rules on 1-D data, the
        (d,) array for per-feature bandwidths, else the (d, d) bandwidth matrix.
    bandwidth_matrix_ : ndarray of shape (d, d)
        H, always.
    training_data_ : ndarray of shape (n, d)
        A dask array when fitted on one (never gathered).
    sample_weight_ : ndarray of shape (n,) or None
        A dask array with the training rows' chunks when fitted on a dask array.
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
        bounds=None,
        boundary="reflection",
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
        self.bounds = bounds
        self.boundary = boundary

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
        "bounds": Check(check_bounds_param, none=True),  # per-feature count and data: in fit
        "boundary": Options(BOUNDARY_METHODS),
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

        ``X`` may be a dask array (NumPy chunks; ``sample_weight`` None, NumPy or dask): its row
        chunks stay where they are and are summed per shard (``fastdensity.kde._engine_dask``
        lists what it supports). Returns ``self``.
        """
        self._validate_params()
        X, kind, _ = _check_X(self, X, reset=True, allow_dask=True)
        self._fit_kind = kind
        engine = engine_for(X)
        metric = self._metric_spec(X.shape[1])[0]
        engine.check_metric(self, metric, fitting=True)
        check_algorithm(self, engine, metric, X.shape[1])
        check_bounds_for_data(self, X)
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
                pilot = _boundary.log_density(self, engine, X)  # the reflected pilot with bounds
                self.adaptive_factors_ = _bandwidth.abramson_from_pilot(pilot, pilot_weights, xp=engine.xp)
                self._clear_cache()
                self.effective_algorithm_ = resolve_algorithm(self, engine, metric)
            if self.bounds is not None:
                _boundary.reflection_plan(self)  # refuses a kernel too wide for the box
        return self

    def _bandwidth_matrix(self, X, weights):
        """(bandwidth_, H) for the ``bandwidth`` parameter on data X (``_kde_bandwidth``)."""
        return bandwidth_matrix(self, X, weights)

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
    @scores_sharded_fit  # fitted on a dask array: summed per shard (_engine_dask)
    @rows_accept_dask
    def score_samples(self, X):
        """Log density of each row of ``X`` (m, d); float32 in → float32 out, else float64.

        Finite far from the data for the gaussian and exponential kernels; exactly ``-inf``
        outside the support of compact kernels, and outside the ``bounds``.
        """
        check_is_fitted(self, "training_data_")
        X, kind, _ = _check_X(self, X, reset=False)
        engine = engine_for(X)
        engine.check_metric(self, self._metric_spec(X.shape[1])[0], fitting=False)
        with engine.scope(X, self.n_jobs):
            # bounds: the reflection estimator over the algorithm's unbounded densities
            log_density = _boundary.log_density(self, engine, X)
            if X.dtype == np.float32:
                log_density = log_density.astype(np.float32)
        return engine.to_caller(log_density, kind)

    @not_on_sharded_fit  # the binned grid needs every training row in one place
    def evaluate_grid(self, grid_points=None, bounds=None, *, below_floor="-inf"):
        """Log density on a regular grid by linear binning and convolution (d ≤ 3 features).

        Parameters
        ----------
        grid_points : int, sequence of d ints or None, default=None
            Nodes per feature (at least 2); None: 1024 in 1-D, 256 × 256, 64 × 64 × 64.
        bounds : None or sequence of d (low, high) pairs, default=None
            The first and last node per feature; None: the training data's range padded by the
            kernel's support (compact kernels) or by 4 bandwidths (gaussian) or 8 (exponential)
            along each axis.
        below_floor : {"-inf", "recompute"}, default="-inf"
            The nodes where the FFT result is at or below its rounding floor F (see below: about
            1e-10 of the peak for 256 × 256; for a non-compact kernel, the far corners of a 2-D or
            3-D grid around round data). "-inf": −inf there, meaning "the binned density is below
            F, not resolved" (exactly 0 where a compact kernel covers no binned weight).
            "recompute": their binned sum redone in log space (on the CPU pruned by blocks to a
            relative 2^-30, ``_fft_tails_cpu``; on a GPU over all occupied nodes), finite for the
            gaussian and exponential kernels; it costs about those nodes × the occupied nodes near
            them: 40 ms more for 256 × 256 around 10⁶ normal points (18,000 such nodes), but
            seconds in 3-D (64³: 140,000 such nodes, 13 s on 2 cores).

        Returns
        -------
        coords : tuple of d arrays of shape (grid_points_i,)
        log_density : array of shape grid_points
            In the training data's dtype (float32 → float32). Any kernel, weights and bandwidth
            (scalar, per feature or matrix); euclidean metric and fixed bandwidth only.

        The value is the binned estimate Σ_m c_m K_H(g − m), c the linearly binned normalised
        weights (training points outside the grid within the kernel's reach of it are binned on
        extra nodes); its error against the exact density is the linear-binning error, at most
        Σ_i δ_i² (H⁻¹)_ii sup σ₂ c_n / 8 for the smooth kernels (``fastdensity.kde._fft_bound``).
        The kernel is sampled out to where it falls below 2^-60 of its peak. Where the FFT result
        is at or below its rounding floor F = 16 u log2(N) (‖c‖₂‖K‖₁ + 3‖c‖₁‖K‖₂) (``_fft_grid``),
        no log of rounding noise is returned (see ``below_floor``); where no training point lies
        within the kernel's reach of the grid at all, "recompute" asks the exact engine. Below
        2^-60 of the kernel's peak, a recomputed node may miss training points farther than the
        kernel's reach from the grid (those are not binned).
        A grid whose padded FFT exceeds 2^26 points raises ``ValueError`` before any work.
        On the CPU, a separable window (any kernel in 1-D; the gaussian with per-feature
        bandwidths) is convolved directly, one axis at a time, where that costs no more than the
        FFTs (a narrow window: the default grids at Scott's bandwidth); its nodes are exact to a
        few hundred ulps relative, so there F is only the kernel's cut, 2^-60 of its peak
        (``_fft_direct_cpu``).
        """
        from ._fft_evaluate import evaluate_grid

        return evaluate_grid(self, grid_points, bounds, below_floor)

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
        the same ``random_state``. With ``bounds`` the draws are folded into the box (exact draws
        of the reflection estimator).
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
        out = _boundary.fold(self, engine, engine.sample(self, int(n_samples), int(seed)))
        # In the type of the data passed to fit when that was on a GPU (a CuPy array, a torch CUDA
        # tensor on its device); NumPy otherwise, host callers of backend="cuda" included.
        kind = getattr(self, "_fit_kind", None) or array_kind(self.training_data_)
        return engine.to_caller(out, kind if kind.on_gpu else array_kind(None))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _check_X(est, X, reset, allow_dask=False):
    """``check_estimator_X`` without warnings for data near ±1.8e308 (scikit-learn's finiteness
    check sums X first, which overflows harmlessly there: it then checks element-wise)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return check_estimator_X(est, X, reset=reset, allow_dask=allow_dask)


__all__ = ["KernelDensity", "KERNELS", "VALID_METRICS"]
