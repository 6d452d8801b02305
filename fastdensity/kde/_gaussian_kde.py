"""``gaussian_kde``: a drop-in for ``scipy.stats.gaussian_kde`` on the fast KDE engines (CPU or GPU).

The API, attributes, error messages and output dtypes follow scipy (``scipy/stats/_kde.py``); the
density sums run on the tiled Numba engine (``_kde_cpu.kde_logsum``) or, for CuPy data or points, on
the CUDA engine (``_kde_cuda.kde_logsum``, kernels/kde.cu), in log space. What differs is listed in
the class docstring.

What it refuses (dataset, weights, degenerate covariances) and scipy's messages are in
``_gaussian_kde_checks.py``. The numbers are prepared the same way on both engines (``_prepare``
and ``_log_density`` in ``_gaussian_kde_engines.py``, written once against the array namespace):
the training set is whitened once per bandwidth with scipy's own triangular solve (so that its coordinates are scipy's, bit for bit, on the CPU), cached, and each
call whitens only its points. On the CPU every BLAS/LAPACK call of this module runs on one thread:
OpenBLAS's idle worker threads spin for a while after a parallel call and took a core from the Numba
kernel that followed (measured: 1.3x slower evaluation at d = 1 on two cores).
"""

from __future__ import annotations

import operator

import numpy as np
from scipy import linalg, special
from scipy.stats import multivariate_normal

from .._backend import _namespace, to_host_numpy
from .._backend._dispatch import validate_backend
from ._gaussian_kde_checks import (
    HOST_ONLY, SCIPY_BW, check_dataset, check_enough_points, check_weights, cholesky_or_explain,
)
from ._gaussian_kde_engines import (
    _HOST, _as_real_array, _check_finite, _check_random_state, _log_density, _output_dtype, _prepare,
    _sum_cov_cholesky, _vecdot, engine_for_dataset, engine_for_points, runs_on_host,
)

__all__ = ["gaussian_kde"]


class gaussian_kde:
    """Kernel density estimate with Gaussian kernels, a drop-in for ``scipy.stats.gaussian_kde``.

    Parameters
    ----------
    dataset : array_like, shape (d, n) or (n,)
        Data points, one per *column*; 1-D input is one-dimensional data. NumPy arrays,
        array-likes and torch CPU tensors stay on the host; CuPy arrays (and torch CUDA tensors,
        shared through DLPack) stay on their GPU.
    bw_method : None, "scott", "silverman", scalar or callable, optional
        How to compute the bandwidth ``factor``: a rule of thumb, the factor itself, or a
        callable taking this object and returning it. None means "scott".
    weights : array_like, shape (n,), optional
        Non-negative weights of the data points (normalised to sum to 1). Default: equal.
    backend : {"auto", "cpu", "cuda"}, keyword-only, default "auto"
        Not in scipy. "auto" follows ``dataset``; "cuda" uploads a host dataset to the current GPU
        (needs CuPy: ``pip install fastdensity[cuda12]`` or ``[cuda13]``); "cpu" refuses GPU data
        and GPU points (they are never copied to the host silently).

    Attributes
    ----------
    dataset, d, n, neff, weights, factor, covariance, inv_cov, cho_cov, log_det
        As in scipy: ``covariance`` is the weighted data covariance times ``factor**2``,
        ``cho_cov`` its lower Cholesky factor, ``log_det`` is scipy's
        ``2 * sum(log(diag(cho_cov * sqrt(2*pi))))`` = log det(2π · covariance), and ``inv_cov``
        is recomputed from ``dataset`` on each access. On the GPU ``dataset`` and ``weights`` are
        CuPy arrays; the (d, d) ``covariance``, ``cho_cov`` and ``inv_cov`` are NumPy arrays.

    Methods
    -------
    evaluate / __call__ / pdf, logpdf, resample, integrate_gaussian, integrate_box_1d,
    integrate_box, integrate_kde, marginal, set_bandwidth, covariance_factor, scotts_factor,
    silverman_factor : the same signatures, results, output dtypes and error messages as scipy's.

    Notes
    -----
    **The GPU.** With a CuPy dataset, or CuPy points, ``evaluate``/``pdf``/``__call__``/``logpdf``
    run on the CUDA engine (kernels/kde.cu) of the points' GPU and return a CuPy array (a torch
    CUDA tensor for torch CUDA points). Which combinations work:

    * GPU dataset, GPU points: on the GPU; the whitened training set is built there once per
      bandwidth (cached).
    * host dataset, GPU points: the whitened training set is uploaded once (cached per device) and
      the sums run on the points' GPU; CuPy result. (``backend="cpu"`` refuses this instead.)
    * GPU dataset, host points: the points are uploaded and the sums run on the dataset's GPU; the
      (m,) result comes back as a NumPy array, as for host points anywhere.
    * ``resample`` of a GPU kde draws on the device (CuPy's generator, seeded by one number drawn
      from ``seed``; the same seed repeats the draw, but the numbers are not scipy's) and returns a
      CuPy array. ``marginal`` and ``set_bandwidth`` work on the GPU. ``integrate_gaussian``,
      ``integrate_box_1d``, ``integrate_box`` and ``integrate_kde`` have no GPU implementation and
      raise ``NotImplementedError`` saying how to build a host kde.

    The dataset is validated on the device (only scalars and (d, d) reductions come to the host).
    The sums run in float64 on both engines (CuPy has no long double: GPU results are float64).

    **How this differs from scipy:**

    * ``logpdf`` is computed in log space with a running maximum: a point far from all data gets
      a finite, correct log density where scipy's sum underflows (its ``evaluate`` gives 0 and
      its ``logpdf`` may give ``-inf``). ``evaluate`` is ``exp(logpdf)``, so it agrees with scipy
      to rounding and is 0 exactly where the density underflows float64.
    * Accuracy. The whitened coordinates are scipy's own (the same triangular solve of the same
      numbers), so for data within a few standard deviations of the origin the results agree
      with scipy's to the engine's rounding (a few 1e-15 relative near the data, measured; up to
      about 1e-16·|log p| further out, where scipy's own rounding is of that size too). A
      dimension whose mean is more than 8 standard deviations from the origin is first centred
      on its mean (exactly: x − mean is exact for every point within 4σ), because whitening the
      raw coordinates there loses digits: for data at 300σ from the origin scipy's densities are
      off by ~4e-13 relative, ours by ~1e-14 (measured against a long-double oracle); at 1e6
      with unit spread scipy's ``logpdf`` is only ~1e-10 accurate. There the two differ by
      scipy's error.
    * Output dtypes follow scipy's rule (``np.common_type(covariance, points)``: float64, or long
      double for long double points, data or bandwidth factor), but long double results carry
      float64 precision (scipy too whitens in float64; it sums in long double). Results are NumPy
      arrays also for torch CPU input. ``dataset`` keeps the dtype it was given, as in scipy.
      Boolean points raise scipy's ``TypeError``.
    * Degenerate data, for which scipy raises ``LinAlgError`` from inside its Cholesky
      factorisation (scipy issue #10205) or accepts by chance -- constant dimensions, collinear
      dimensions, or no more points than dimensions -- raise ``numpy.linalg.LinAlgError`` (a
      subclass of ``ValueError``) that begins with scipy's message and goes on to name the
      offending dimension and the remedies. Data that are collinear to within rounding
      (1 - R² < 1e-13 for a dimension regressed on the preceding ones) are rejected. More
      dimensions than points raise ``LinAlgError`` too (scipy: ``ValueError``), with scipy's
      message first.
    * Invalid input raises ``ValueError`` (or ``TypeError`` for non-real dtypes) instead of
      producing NaN: NaN or infinity in the points, the mean or covariance of
      ``integrate_gaussian``; weights that are negative, non-finite or with fewer than two
      positive entries; a bandwidth factor that is not a positive finite number. Where scipy
      raises, our message begins with scipy's (and NumPy's, e.g. "negative dimensions are not
      allowed" for ``resample(-1)``), then says what to change. ``integrate_kde`` of something
      that is not a kde raises ``TypeError`` (scipy: ``AttributeError``).
    * The whitened training set is cached between evaluations and rebuilt whenever ``dataset``,
      ``cho_cov`` or the weights are *reassigned* (as ``set_bandwidth`` does); modifying those
      arrays in place is not detected.
    * ``inv_cov`` does not overwrite ``factor`` as a side effect.
    * ``integrate_gaussian`` and ``integrate_kde`` run on the same engine (parallel, O(n + m)
      memory, underflow-proof) instead of a Python loop; the results agree to rounding.
      ``integrate_box_1d`` and ``integrate_box`` also work for long double data (in float64),
      where scipy raises ``TypeError``.
    """

    def __init__(self, dataset, bw_method=None, weights=None, *, backend="auto"):
        validate_backend(backend)
        self.backend = backend
        engine = engine_for_dataset(backend, dataset)
        self._engine = engine
        self._dataset_kind = _namespace.array_kind(dataset)
        self.dataset = check_dataset(engine, dataset)
        self.d, self.n = self.dataset.shape

        if weights is not None:
            self._weights, self._neff = check_weights(engine, weights, self.n)

        check_enough_points(self.d, self.n)
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
            raise ValueError(f"{SCIPY_BW} Got {bw_method!r}")
        try:
            self._compute_covariance()
        except BaseException:
            for k in ("covariance_factor", "_bw_method"):
                self.__dict__.pop(k, None)
            self.__dict__.update(saved)
            raise

    def _data_cov(self):
        return self._engine.cov(self.dataset, self.weights)

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
            self._data_cho_cov = cholesky_or_explain(self._engine, self.dataset, self.weights, cov)
            self._data_covariance = cov
        self.factor = factor
        self.covariance = self._data_covariance * factor**2
        self.cho_cov = (self._data_cho_cov * factor).astype(np.float64)
        self.log_det = 2 * np.log(np.diag(self.cho_cov * np.sqrt(2 * np.pi))).sum()

    @property
    def inv_cov(self):
        """Inverse of ``covariance``, recomputed from ``dataset`` (as scipy does)."""
        factor = self.covariance_factor()
        return linalg.inv(self._data_cov()) / factor**2

    @property
    def weights(self):
        """The normalised weights (n,), equal ones by default (a CuPy array on the GPU)."""
        try:
            return self._weights
        except AttributeError:
            xp = self._engine.xp
            self._weights = xp.ones(self.n) / self.n
            return self._weights

    @property
    def neff(self):
        """The effective number of points, ``1 / sum(weights**2)``."""
        try:
            return self._neff
        except AttributeError:
            self._neff = 1 / self._engine.inv_neff(self.weights)
            return self._neff

    # ------------------------------------------------------------------ evaluation

    def _state(self, engine, device_id):
        """The cached :class:`_State` on ``engine`` (and GPU ``device_id``) for the current
        ``dataset``, ``cho_cov`` and ``weights``; built on first use after any of them changes."""
        key = (self.dataset, self.cho_cov, self.weights)
        cache = self.__dict__.get("_cache")
        if cache is None or any(a is not b for a, b in zip(cache[0], key)):
            cache = self._cache = (key, {})
        states = cache[1]
        where = (engine.name, device_id)
        if where not in states:
            # on a GPU: host data uploaded, another GPU's copied, once
            data, w = engine.here(self.dataset, device_id), engine.here(self.weights, device_id)
            states[where] = _prepare(engine, data, w, self.cho_cov)
        return states[where]

    def _evaluate(self, points, log):
        """log densities (``log``) or densities at ``points``, where the points or the data are."""
        kind = _namespace.array_kind(points)
        engine = engine_for_points(self._engine, kind, self.backend)
        xp = engine.xp
        if not kind.on_gpu:  # the caller's own dtype, read before an upload to a GPU dataset
            points = _as_real_array(points, "points")
        pts = engine.asarray(points, "points")
        # scipy's dtype rule on the caller's dtype (long double host points stay long double;
        # GPU points come back in float64, but a non-numeric dtype is refused as scipy does)
        out_dtype = _output_dtype(self.covariance, (pts if kind.on_gpu else points).dtype)
        if pts.ndim > 2:
            raise ValueError(f"points must be 1-D or 2-D (d, m); got an array of shape {pts.shape}")
        pts = xp.atleast_2d(pts)
        d, m = pts.shape
        if d != self.d:
            if d == 1 and m == self.d:
                # points was passed in as a row vector
                pts = pts.reshape(self.d, 1)
            else:
                raise ValueError(f"points have dimension {d}, dataset has dimension {self.d}")
        pts = pts.astype(xp.float64, copy=False)
        _check_finite(xp, pts, "points")
        with engine.on(pts):
            result = _log_density(engine, self._state(engine, engine.device_id(pts)), pts)
            if not log:
                result = xp.exp(result)
        return engine.to_caller(result, kind, out_dtype)

    def logpdf(self, x):
        """Log of the estimated pdf at points ``x`` ((d, m), or (m,) when d == 1, or one (d,) point).

        Finite wherever the density is positive, also far from all data (computed in log space).
        Returns ``np.common_type(covariance, x)`` (float64 or long double), as scipy; a CuPy array
        (float64) for CuPy points.
        """
        return self._evaluate(x, log=True)

    def evaluate(self, points):
        """The estimated pdf at ``points`` ((d, m), or (m,) when d == 1, or one (d,) point).

        Raises ValueError if the dimension of the points differs from that of the KDE. dtype and
        array type as for :meth:`logpdf`.
        """
        return self._evaluate(points, log=False)

    __call__ = evaluate

    def pdf(self, x):
        """The estimated pdf at ``x``; an alias for :meth:`evaluate`."""
        return self.evaluate(x)

    # ------------------------------------------------------------------ integrals

    def _require_host(self, method, *others):
        for kde in (self,) + others:
            if not runs_on_host(kde):
                raise NotImplementedError(HOST_ONLY.format(method=method))

    def integrate_gaussian(self, mean, cov):
        """∫ kde(x) N(x; mean, cov) dx. Raises ValueError if mean or cov have the wrong dimension."""
        self._require_host("integrate_gaussian")
        mean = np.atleast_1d(np.squeeze(_as_real_array(mean, "mean")))
        cov = np.atleast_2d(_as_real_array(cov, "cov"))
        if mean.shape != (self.d,):
            raise ValueError(f"mean does not have dimension {self.d}")
        if cov.shape != (self.d, self.d):
            raise ValueError(f"covariance does not have dimension {self.d}")
        out_dtype = np.result_type(self.dataset.dtype, mean.dtype, np.float64)
        mean, cov = mean.astype(np.float64), cov.astype(np.float64)
        _check_finite(np, mean, "mean")
        _check_finite(np, cov, "cov")
        chol = _sum_cov_cholesky(np.asarray(self.covariance, dtype=np.float64) + cov)
        state = _prepare(_HOST, self.dataset, self.weights, chol)
        log_val = _log_density(_HOST, state, mean[:, None])
        return out_dtype.type(np.exp(log_val[0]))

    def integrate_box_1d(self, low, high):
        """∫ kde(x) dx over [low, high] for a 1-D KDE (ValueError otherwise)."""
        self._require_host("integrate_box_1d")
        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1D pdfs")
        low, high = to_host_numpy(low), to_host_numpy(high)
        data = np.asarray(self.dataset, dtype=np.float64)
        stdev = np.float64(np.ravel(np.sqrt(self.covariance))[0])
        normalized_low = np.ravel((low - data) / stdev)
        normalized_high = np.ravel((high - data) / stdev)
        delta = special.ndtr(normalized_high) - special.ndtr(normalized_low)
        return _vecdot(self.weights, delta)

    def integrate_box(self, low_bounds, high_bounds, maxpts=None, *, rng=None):
        """∫ kde(x) dx over the box [low_bounds, high_bounds], with scipy's
        ``multivariate_normal.cdf`` (randomised quasi-Monte Carlo for d > 1: pass ``rng``)."""
        self._require_host("integrate_box")
        low_bounds = _as_real_array(low_bounds, "low_bounds")
        high_bounds = _as_real_array(high_bounds, "high_bounds")
        data_t = np.asarray(self.dataset, dtype=np.float64).T
        low, high = low_bounds - data_t, high_bounds - data_t
        values = multivariate_normal.cdf(
            high, lower_limit=low, cov=np.asarray(self.covariance, dtype=np.float64), maxpts=maxpts,
            rng=rng,
        )
        return _vecdot(values, self.weights, axis=-1)

    def integrate_kde(self, other):
        """∫ self(x) other(x) dx for another gaussian_kde of the same dimension."""
        try:
            other_d = other.d
            other_n = other.n
        except AttributeError as exc:
            raise TypeError(f"{exc}: `other` must be a gaussian_kde; got {type(other).__name__}") from exc
        self._require_host("integrate_kde", other)
        if other_d != self.d:
            raise ValueError("KDEs are not the same dimensionality")
        small, large = (other, self) if other_n < self.n else (self, other)
        sum_cov = np.asarray(small.covariance + large.covariance, dtype=np.float64)
        chol = _sum_cov_cholesky(sum_cov)
        state = _prepare(_HOST, np.asarray(large.dataset), np.asarray(large.weights), chol)
        log_vals = _log_density(_HOST, state, np.asarray(small.dataset, dtype=np.float64))
        with np.errstate(divide="ignore"):
            log_w_small = np.log(small.weights)
        out_dtype = np.result_type(small.dataset.dtype, large.dataset.dtype, np.float64)
        return out_dtype.type(np.exp(special.logsumexp(log_w_small + log_vals)))

    # ------------------------------------------------------------------ sampling, marginals

    def resample(self, size=None, seed=None):
        """Draw ``size`` points (default ``int(neff)``) from the estimate, shape (d, size).

        On the host: scipy's algorithm and random streams (the same ``seed`` gives the same numbers
        as scipy; dtype ``result_type(dataset, float64)``). ``seed`` is None (NumPy's global
        RandomState), an int (a new RandomState), or a Generator/RandomState used as is. A GPU kde
        draws on the device, seeded by one number drawn from ``seed``, and returns float64 in the
        dataset's array type (CuPy for CuPy data).
        """
        if size is None:
            size = int(self.neff)
        else:
            try:
                size = operator.index(size)
            except TypeError as exc:
                raise TypeError(f"`size` must be an integer or None; got {size!r}") from exc
            if size < 0:
                raise ValueError(
                    f"negative dimensions are not allowed: `size` must be non-negative; got {size}"
                )
        random_state = _check_random_state(seed)
        return self._engine.to_caller(self._engine.resample(self, size, random_state), self._dataset_kind)

    def marginal(self, dimensions):
        """A gaussian_kde of the dimensions ``dimensions`` (int or 1-D ints; the rest integrated
        out), with the same bandwidth factor and weights (on the same device)."""
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
        dataset = self.dataset[self._engine.xp.asarray(dims)]
        return gaussian_kde(dataset, bw_method=self.covariance_factor(), weights=self.weights,
                            backend=self.backend)
