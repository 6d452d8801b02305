"""``gaussian_kde``: a drop-in for ``scipy.stats.gaussian_kde`` on the fast KDE engine.

The API, attributes and results follow scipy (``scipy/stats/_kde.py``); the density sums run on
the tiled Numba engine (``_kde_cpu.kde_logsum``) in log space. What differs is listed in the
class docstring.
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np
from scipy import linalg, special
from scipy.stats import multivariate_normal

from .._backend import to_host_numpy
from ._kde_cpu import kde_logsum

__all__ = ["gaussian_kde"]

_LOG_2PI = math.log(2.0 * math.pi)
# A dimension whose variance left after regressing it on the preceding dimensions is below this
# fraction of its own variance (1 - R² < 1e-13, about 450 float64 ulps) is collinear with them to
# working precision: the Cholesky factorisation of such a covariance succeeds or fails by rounding.
_SINGULAR_RTOL = 1e-13

_DEGENERATE_REMEDY = (
    "gaussian_kde needs data that span all d dimensions. Drop the constant or collinear "
    "dimensions (or project the data onto its principal components), add a little jitter "
    "to the data, or pass more points than dimensions."
)


def _vecdot(a, b, axis=-1):
    """scipy's ``np_vecdot``: ``np.vecdot`` where NumPy has it (same rounding as scipy)."""
    if hasattr(np, "vecdot"):
        return np.vecdot(a, b, axis=axis)
    return np.sum(a * b, axis=axis)  # pragma: no cover - NumPy < 2


def _check_random_state(seed):
    """scipy's ``check_random_state``, so that ``resample`` draws exactly scipy's numbers."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (numbers.Integral, np.integer)):
        return np.random.RandomState(seed)
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    raise ValueError(
        f"seed must be None, an int, a numpy.random.Generator or a numpy.random.RandomState; "
        f"got {seed!r}"
    )


def _as_real_array(x, name):
    """``x`` (array-like or torch CPU tensor) as a real NumPy array; other dtypes are refused."""
    arr = to_host_numpy(x)
    if arr.dtype.kind == "O":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"`{name}` must contain real numbers; got an object array") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"`{name}` must contain real numbers; got dtype {arr.dtype}")
    return arr


def _check_finite(arr, name):
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"`{name}` contains NaN or infinite values; remove or impute them first")


def _whiten_data(chol, data):
    """Centre (d, 1) and whitened data L⁻¹(x − centre), (d, n) contiguous float64.

    Centring before whitening keeps the differences q − x accurate for data far from the origin
    (scipy whitens the raw coordinates, which loses digits when the offset dwarfs the spread)."""
    data = np.asarray(data, dtype=np.float64)
    centre = np.mean(data, axis=1, keepdims=True)
    white = linalg.solve_triangular(chol, data - centre, lower=True, check_finite=False)
    return centre, np.ascontiguousarray(white)


def _log_gaussian_sum(chol, centre, train_t, log_w, points):
    """log Σ_j w_j N(p_i − x_j; 0, L Lᵀ) for points (d, m) on the engine, given the whitened data."""
    queries = np.ascontiguousarray(
        linalg.solve_triangular(chol, points - centre, lower=True, check_finite=False).T
    )
    logsum = kde_logsum(queries, train_t.T, log_w, "gaussian", train_t=train_t)
    return logsum - 0.5 * chol.shape[0] * _LOG_2PI - np.sum(np.log(np.diag(chol)))


def _sum_cov_cholesky(cov):
    try:
        return linalg.cholesky(cov, lower=True)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            "the sum of the kernel covariance and the other covariance is not positive "
            "definite; pass a symmetric positive semi-definite covariance"
        ) from exc


class gaussian_kde:
    """Kernel density estimate with Gaussian kernels, a drop-in for ``scipy.stats.gaussian_kde``.

    Parameters
    ----------
    dataset : array_like, shape (d, n) or (n,)
        Data points, one per *column*; 1-D input is one-dimensional data. NumPy arrays,
        array-likes and torch CPU tensors are accepted.
    bw_method : None, "scott", "silverman", scalar or callable, optional
        How to compute the bandwidth ``factor``: a rule of thumb, the factor itself, or a
        callable taking this object and returning it. None means "scott".
    weights : array_like, shape (n,), optional
        Non-negative weights of the data points (normalised to sum to 1). Default: equal.

    Attributes
    ----------
    dataset, d, n, neff, weights, factor, covariance, inv_cov, cho_cov, log_det
        As in scipy: ``covariance`` is the weighted data covariance times ``factor**2``,
        ``cho_cov`` its lower Cholesky factor, ``log_det`` is scipy's
        ``2 * sum(log(diag(cho_cov * sqrt(2*pi))))`` = log det(2π · covariance), and ``inv_cov``
        is recomputed from ``dataset`` on each access.

    Methods
    -------
    evaluate / __call__ / pdf, logpdf, resample, integrate_gaussian, integrate_box_1d,
    integrate_box, integrate_kde, marginal, set_bandwidth, covariance_factor, scotts_factor,
    silverman_factor : the same signatures and results as scipy's.

    Notes
    -----
    How this differs from scipy:

    * ``logpdf`` is computed in log space with a running maximum: a point far from all data gets
      a finite, correct log density where scipy's sum underflows (its ``evaluate`` gives 0 and
      its ``logpdf`` may give ``-inf``). ``evaluate`` is ``exp(logpdf)``, so it agrees with scipy
      to rounding and is 0 exactly where the density underflows float64.
    * Data and points are centred on the data mean before whitening, so data far from the origin
      (offset ≫ spread) keep their digits; scipy whitens raw coordinates and, e.g., for data at
      1e6 with unit spread is only ~1e-10 accurate in ``logpdf``.
    * All arithmetic is float64, whatever the dtype of ``dataset`` or the points (scipy also works
      in float64 for float16/float32/integer input, because the kernel covariance is float64);
      results are float64 NumPy arrays, also for torch input (scipy returns long double for long
      double points). ``dataset`` keeps the dtype it was given, as in scipy.
    * Degenerate data, for which scipy raises ``LinAlgError`` from inside its Cholesky
      factorisation (scipy issue #10205) -- constant dimensions, collinear dimensions, or no more
      points than dimensions -- raise ``numpy.linalg.LinAlgError``, which is a subclass of
      ``ValueError``, with a message naming the offending dimension and the remedies: drop the
      constant or collinear dimensions (or project onto principal components), add jitter, or pass
      more points. Data that are collinear to within rounding (1 - R² < 1e-13 for a dimension
      regressed on the preceding ones), which scipy accepts or rejects by chance, are rejected.
    * Invalid input raises ``ValueError`` (or ``TypeError`` for non-real dtypes) instead of
      producing NaN or a NumPy error: an empty dataset, NaN or infinity in the dataset, the
      points or the Gaussian of ``integrate_gaussian``; weights that are not 1-D, of the wrong
      length, negative, non-finite or with fewer than two positive entries; a bandwidth factor
      that is not a positive finite number.
    * The whitened training set is cached between evaluations and rebuilt whenever ``dataset``,
      ``cho_cov`` or the weights are *reassigned* (as ``set_bandwidth`` does); modifying those
      arrays in place is not detected.
    * ``inv_cov`` does not overwrite ``factor`` as a side effect.
    * ``integrate_gaussian`` and ``integrate_kde`` run on the same engine (parallel, O(n + m)
      memory, underflow-proof) instead of a Python loop; the results agree to rounding.
    """

    def __init__(self, dataset, bw_method=None, weights=None):
        data = _as_real_array(dataset, "dataset")
        if data.ndim > 2:
            raise ValueError(
                f"`dataset` must be 1-D (n,) or 2-D (d, n) with one point per column; "
                f"got an array of shape {data.shape}"
            )
        data = np.atleast_2d(data)
        if data.size == 0:
            raise ValueError(f"`dataset` is empty (shape {data.shape}); pass at least two points")
        if not data.size > 1:
            raise ValueError("`dataset` input should have multiple elements.")
        _check_finite(data, "dataset")
        self.dataset = data
        self.d, self.n = self.dataset.shape

        if weights is not None:
            w = np.atleast_1d(_as_real_array(weights, "weights")).astype(float)
            if w.ndim != 1:
                raise ValueError(f"`weights` input should be one-dimensional; got shape {w.shape}")
            if len(w) != self.n:
                raise ValueError(
                    f"`weights` input should be of length n = {self.n} (one per data point); "
                    f"got length {len(w)}"
                )
            if not np.all(np.isfinite(w)):
                raise ValueError("`weights` contains NaN or infinite values")
            if np.any(w < 0):
                raise ValueError("`weights` must be non-negative; got negative entries")
            total = np.sum(w)
            if not total > 0:
                raise ValueError("`weights` are all zero; at least two must be positive")
            if np.count_nonzero(w) < 2:
                raise ValueError(
                    "`weights` has only one positive entry; a kernel covariance needs at least "
                    "two points with positive weight"
                )
            w /= total
            self._weights = w
            self._neff = 1 / _vecdot(w, w)

        if self.d > self.n:
            raise np.linalg.LinAlgError(
                f"Number of dimensions ({self.d}) is greater than number of samples ({self.n}). "
                "This results in a singular data covariance matrix. Note that `gaussian_kde` "
                "interprets each *column* of `dataset` to be a point; consider transposing the "
                f"input to `dataset`. {_DEGENERATE_REMEDY}"
            )
        self.set_bandwidth(bw_method=bw_method)

    # ------------------------------------------------------------------ bandwidth

    def scotts_factor(self):
        """Scott's factor, ``neff**(-1/(d+4))``."""
        return np.power(self.neff, -1.0 / (self.d + 4))

    def silverman_factor(self):
        """Silverman's factor, ``(neff*(d+2)/4)**(-1/(d+4))``."""
        return np.power(self.neff * (self.d + 2.0) / 4.0, -1.0 / (self.d + 4))

    #  Default method to calculate bandwidth, can be overwritten by subclass (as in scipy).
    covariance_factor = scotts_factor
    covariance_factor.__doc__ = """Computes the bandwidth factor `factor`.
        The default is `scotts_factor`.  A subclass can overwrite this
        method to provide a different method, or set it through a call to
        `set_bandwidth`."""

    def set_bandwidth(self, bw_method=None):
        """Choose the bandwidth factor: "scott", "silverman", a scalar, a callable taking this
        object, or None to keep the current ``covariance_factor``. On an error nothing changes."""
        saved = {k: self.__dict__[k] for k in ("covariance_factor", "_bw_method") if k in self.__dict__}
        if bw_method is None:
            pass
        elif isinstance(bw_method, str) and bw_method == "scott":
            self.covariance_factor = self.scotts_factor
        elif isinstance(bw_method, str) and bw_method == "silverman":
            self.covariance_factor = self.silverman_factor
        elif np.isscalar(bw_method) and not isinstance(bw_method, str):
            self._bw_method = "use constant"
            self.covariance_factor = lambda: bw_method
        elif callable(bw_method):
            self._bw_method = bw_method
            self.covariance_factor = lambda: self._bw_method(self)
        else:
            raise ValueError(
                f"`bw_method` should be 'scott', 'silverman', a scalar or a callable; got {bw_method!r}"
            )
        try:
            self._compute_covariance()
        except BaseException:
            for k in ("covariance_factor", "_bw_method"):
                self.__dict__.pop(k, None)
            self.__dict__.update(saved)
            raise

    def _data_cov(self):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.atleast_2d(np.cov(self.dataset, rowvar=1, bias=False, aweights=self.weights))

    def _compute_covariance(self):
        """Kernel covariance and its Cholesky factor from ``covariance_factor()`` (as scipy)."""
        factor = self.covariance_factor()
        if (
            np.ndim(factor) != 0
            or isinstance(factor, (str, bytes))
            or np.iscomplexobj(factor)
            or not np.isfinite(factor)
            or not factor > 0
        ):
            raise ValueError(f"the bandwidth factor must be a positive finite number; got {factor!r}")
        if not hasattr(self, "_data_cho_cov"):
            cov = self._data_cov()
            self._data_cho_cov = self._cholesky_or_explain(cov)
            self._data_covariance = cov
        self.factor = factor
        self.covariance = self._data_covariance * factor**2
        self.cho_cov = (self._data_cho_cov * factor).astype(np.float64)
        self.log_det = 2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()

    def _cholesky_or_explain(self, cov):
        """Lower Cholesky factor of the data covariance, or an error that says what is wrong."""
        if not np.all(np.isfinite(cov)):
            raise ValueError(
                "the data covariance overflowed (values too large for float64); rescale the data"
            )
        var = np.diag(cov)
        # Exactly constant over the points that carry weight (np.cov may round such a
        # dimension's variance to a tiny positive number), or zero variance.
        used = self.dataset[:, self.weights > 0]
        constant = np.flatnonzero(np.all(used == used[:, :1], axis=1) | (var <= 0))
        if constant.size:
            raise np.linalg.LinAlgError(
                f"dimension(s) {constant.tolist()} of `dataset` are constant (zero weighted "
                f"variance), so the data covariance is singular. {_DEGENERATE_REMEDY}"
            )
        try:
            chol = linalg.cholesky(cov, lower=True)
            bad = np.flatnonzero(np.diag(chol) ** 2 < _SINGULAR_RTOL * var)
            first = int(bad[0]) if bad.size else -1
        except np.linalg.LinAlgError:
            (potrf,) = linalg.get_lapack_funcs(("potrf",), (cov,))
            _, info = potrf(cov, lower=True)
            first = max(int(info) - 1, 0)
            chol = None
        if first >= 0:
            raise np.linalg.LinAlgError(
                f"the data lie in a lower-dimensional subspace: dimension {first} of `dataset` is "
                f"(to working precision) a linear function of dimensions {list(range(first))}, "
                f"so the data covariance is singular. {_DEGENERATE_REMEDY}"
            )
        return chol

    @property
    def inv_cov(self):
        """Inverse of ``covariance``, recomputed from ``dataset`` (as scipy does)."""
        factor = self.covariance_factor()
        return linalg.inv(self._data_cov()) / factor**2

    @property
    def weights(self):
        try:
            return self._weights
        except AttributeError:
            self._weights = np.ones(self.n) / self.n
            return self._weights

    @property
    def neff(self):
        try:
            return self._neff
        except AttributeError:
            self._neff = 1 / _vecdot(self.weights, self.weights)
            return self._neff

    # ------------------------------------------------------------------ evaluation

    def _points(self, points):
        """Points as a float64 (d, m) array, reshaped exactly as scipy does."""
        pts = _as_real_array(points, "points")
        if pts.ndim > 2:
            raise ValueError(f"points must be 1-D or 2-D (d, m); got an array of shape {pts.shape}")
        pts = np.atleast_2d(pts)
        d, m = pts.shape
        if d != self.d:
            if d == 1 and m == self.d:
                # points was passed in as a row vector
                pts = np.reshape(pts, (self.d, 1))
            else:
                raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        pts = pts.astype(np.float64, copy=False)
        _check_finite(pts, "points")
        return pts

    def _engine_state(self):
        """The centre, the whitened training set ((d, n) contiguous) and the log weights, cached."""
        key = (self.dataset, self.cho_cov, self.weights)
        cache = getattr(self, "_cache", None)
        if cache is None or any(a is not b for a, b in zip(cache[0], key)):
            centre, train_t = _whiten_data(self.cho_cov, self.dataset)
            with np.errstate(divide="ignore"):
                log_w = np.log(self.weights)
            cache = (key, centre, train_t, log_w)
            self._cache = cache
        return cache[1:]

    def logpdf(self, x):
        """Log of the estimated pdf at points ``x`` ((d, m), or (m,) when d == 1, or one (d,) point).

        Finite wherever the density is positive, also far from all data (computed in log space).
        """
        centre, train_t, log_w = self._engine_state()
        return _log_gaussian_sum(self.cho_cov, centre, train_t, log_w, self._points(x))

    def evaluate(self, points):
        """The estimated pdf at ``points`` ((d, m), or (m,) when d == 1, or one (d,) point).

        Raises ValueError if the dimension of the points differs from that of the KDE.
        """
        return np.exp(self.logpdf(points))

    __call__ = evaluate

    def pdf(self, x):
        """The estimated pdf at ``x``; an alias for :meth:`evaluate`."""
        return self.evaluate(x)

    # ------------------------------------------------------------------ integrals

    def integrate_gaussian(self, mean, cov):
        """∫ kde(x) N(x; mean, cov) dx. Raises ValueError if mean or cov have the wrong dimension."""
        mean = np.atleast_1d(np.squeeze(_as_real_array(mean, "mean"))).astype(np.float64)
        cov = np.atleast_2d(_as_real_array(cov, "cov")).astype(np.float64)
        if mean.shape != (self.d,):
            raise ValueError(f"mean does not have dimension {self.d}")
        if cov.shape != (self.d, self.d):
            raise ValueError(f"covariance does not have dimension {self.d}")
        _check_finite(mean, "mean")
        _check_finite(cov, "cov")
        _, _, log_w = self._engine_state()
        chol = _sum_cov_cholesky(self.covariance + cov)
        centre, train_t = _whiten_data(chol, self.dataset)
        log_val = _log_gaussian_sum(chol, centre, train_t, log_w, mean[:, None])
        return np.float64(np.exp(log_val[0]))

    def integrate_box_1d(self, low, high):
        """∫ kde(x) dx over [low, high] for a 1-D KDE (ValueError otherwise)."""
        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1D pdfs")
        low, high = to_host_numpy(low), to_host_numpy(high)
        stdev = np.ravel(np.sqrt(self.covariance))[0]
        normalized_low = np.ravel((low - self.dataset) / stdev)
        normalized_high = np.ravel((high - self.dataset) / stdev)
        delta = special.ndtr(normalized_high) - special.ndtr(normalized_low)
        return _vecdot(self.weights, delta)

    def integrate_box(self, low_bounds, high_bounds, maxpts=None, *, rng=None):
        """∫ kde(x) dx over the box [low_bounds, high_bounds], with scipy's
        ``multivariate_normal.cdf`` (randomised quasi-Monte Carlo for d > 1: pass ``rng``)."""
        low_bounds = _as_real_array(low_bounds, "low_bounds")
        high_bounds = _as_real_array(high_bounds, "high_bounds")
        low, high = low_bounds - self.dataset.T, high_bounds - self.dataset.T
        values = multivariate_normal.cdf(
            high, lower_limit=low, cov=self.covariance, maxpts=maxpts, rng=rng
        )
        return _vecdot(values, self.weights, axis=-1)

    def integrate_kde(self, other):
        """∫ self(x) other(x) dx for another gaussian_kde of the same dimension."""
        try:
            other_d = other.d
            other_n = other.n
        except AttributeError as exc:
            raise TypeError(f"`other` must be a gaussian_kde; got {type(other).__name__}") from exc
        if other_d != self.d:
            raise ValueError("KDEs are not the same dimensionality")
        small, large = (other, self) if other_n < self.n else (self, other)
        sum_cov = small.covariance + large.covariance
        with np.errstate(divide="ignore"):
            log_w_large = np.log(large.weights)
            log_w_small = np.log(small.weights)
        chol = _sum_cov_cholesky(sum_cov)
        centre, train_t = _whiten_data(chol, large.dataset)
        log_vals = _log_gaussian_sum(
            chol, centre, train_t, log_w_large, np.asarray(small.dataset, dtype=np.float64)
        )
        return np.float64(np.exp(special.logsumexp(log_w_small + log_vals)))

    # ------------------------------------------------------------------ sampling, marginals

    def resample(self, size=None, seed=None):
        """Draw ``size`` points (default ``int(neff)``) from the estimate, shape (d, size).

        Uses scipy's algorithm and random streams: the same ``seed`` gives the same numbers as
        scipy. ``seed`` is None (NumPy's global RandomState), an int (a new RandomState), or a
        Generator/RandomState used as is.
        """
        if size is None:
            size = int(self.neff)
        else:
            try:
                size = operator.index(size)
            except TypeError as exc:
                raise TypeError(f"`size` must be an integer or None; got {size!r}") from exc
            if size < 0:
                raise ValueError(f"`size` must be non-negative; got {size}")
        random_state = _check_random_state(seed)
        norm = np.transpose(
            random_state.multivariate_normal(np.zeros((self.d,), float), self.covariance, size=size)
        )
        indices = random_state.choice(self.n, size=size, p=self.weights)
        means = self.dataset[:, indices]
        return means + norm

    def marginal(self, dimensions):
        """A gaussian_kde of the dimensions ``dimensions`` (int or 1-D ints; the rest integrated
        out), with the same bandwidth factor and weights."""
        dims = np.atleast_1d(to_host_numpy(dimensions)).copy()
        if not np.issubdtype(dims.dtype, np.integer):
            raise ValueError(
                "Elements of `dimensions` must be integers - the indices of the marginal "
                "variables being retained."
            )
        if dims.ndim != 1:
            raise ValueError(f"`dimensions` must be an int or a 1-D array; got shape {dims.shape}")
        n = len(self.dataset)  # number of dimensions
        original_dims = dims.copy()
        dims[dims < 0] = n + dims[dims < 0]
        if len(np.unique(dims)) != len(dims):
            raise ValueError("All elements of `dimensions` must be unique.")
        i_invalid = (dims < 0) | (dims >= n)
        if np.any(i_invalid):
            raise ValueError(
                f"Dimensions {original_dims[i_invalid]} are invalid for a distribution in {n} "
                "dimensions."
            )
        return gaussian_kde(self.dataset[dims], bw_method=self.covariance_factor(),
                            weights=self.weights)
