"""The numbers behind ``gaussian_kde`` on either engine: the fitted state (whitened, centred
training set, log weights, the Cholesky factor of the kernel covariance), the host (NumPy, Numba)
and device (CuPy, CUDA) engines that hold the array-specific steps, and the preparation and log
density written once against them. ``_gaussian_kde.py`` is the scipy-compatible API on top.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import threading
from typing import NamedTuple

import numpy as np
from scipy import linalg

from .._backend import _namespace, get_op, to_host_numpy
from .._backend._dispatch import resolve_backend


# scipy's message (users match on it); ours adds the specifics and the remedy after it.
_SCIPY_NOT_FINITE = "array must not contain infs or NaNs"
_LOG_2PI = math.log(2.0 * math.pi)

# A dimension is centred on its mean before whitening only when |mean| > _CENTRE_SIGMAS · σ: then
# x − mean is exact (Sterbenz) for every x within |mean|/2 of the mean (every point within 4σ), and
# the raw coordinates would have cost at least a digit. Nearer the origin the raw coordinates are
# kept, and they are scipy's own, so that both give the same sums to the engine's rounding.
_CENTRE_SIGMAS = 8.0


def _vecdot(a, b, axis=-1):
    """scipy's ``np_vecdot``: ``np.vecdot`` where NumPy has it (same rounding as scipy)."""
    if hasattr(np, "vecdot"):
        return np.vecdot(a, b, axis=axis)
    return np.sum(a * b, axis=axis)  # pragma: no cover - NumPy < 2


_BLAS = {"controller": None, "depth": 0, "limiter": None}


@contextlib.contextmanager
def _one_blas_thread():
    """Run the enclosed BLAS/LAPACK calls on one thread (see the module docstring).

    The (d, d) factorisations and the O(d²·m) triangular solves here gain nothing from threads;
    parallel OpenBLAS leaves its workers spinning, which slows the Numba sums that follow. The
    limit (threadpoolctl, a scikit-learn dependency) is process-wide while it lasts, so it is
    applied from the main thread only, nested calls sharing one limit: OpenBLAS did not always
    take back its thread count when the limit was set and lifted from several threads at once
    (measured), and a lost restore would leave the process on one BLAS thread. Calls from other
    threads run unlimited (correct, only without the speed-up)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _BLAS["depth"] == 0:
        if _BLAS["controller"] is None:
            from threadpoolctl import ThreadpoolController

            _BLAS["controller"] = ThreadpoolController()
        _BLAS["limiter"] = _BLAS["controller"].limit(limits=1, user_api="blas")
    _BLAS["depth"] += 1
    try:
        yield
    finally:
        _BLAS["depth"] -= 1
        if _BLAS["depth"] == 0:
            _BLAS["limiter"].restore_original_limits()
            _BLAS["limiter"] = None


def _check_random_state(seed):
    """scipy's ``check_random_state``, so that ``resample`` draws exactly scipy's numbers."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (numbers.Integral, np.integer)):
        return np.random.RandomState(seed)
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    raise ValueError(
        f"'{seed}' cannot be used to seed a numpy.random.RandomState instance; pass None, an int, "
        "a numpy.random.Generator or a numpy.random.RandomState"
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


def _check_finite(xp, arr, name):
    if arr.dtype.kind == "f" and not bool(xp.isfinite(arr).all()):
        raise ValueError(
            f"{_SCIPY_NOT_FINITE}: `{name}` contains NaN or infinite values; remove or impute them first"
        )


def _output_dtype(covariance, points_dtype):
    """scipy's ``_get_output_dtype``: ``np.common_type(covariance, points)`` (float64, or long
    double when the covariance or the points are long double)."""
    try:
        return np.dtype(np.common_type(np.empty(0, covariance.dtype), np.empty(0, points_dtype)))
    except TypeError as exc:
        raise TypeError(
            f"{exc}: `points` has dtype {np.dtype(points_dtype)}; pass numbers (e.g. points.astype(float))"
        ) from None


# ---------------------------------------------------------------------------------- the engines


class _State(NamedTuple):
    """What one evaluation needs, on one engine and device, for one bandwidth factor ``chol``."""

    chol: np.ndarray  # (d, d) lower Cholesky factor of the kernel covariance (host)
    centre: np.ndarray  # (d,) host; zeros where the raw coordinates are kept
    train_t: object  # (d, n') whitened training points with positive weight, C-contiguous float64
    log_w: object  # (n',) their log weights
    log_norm: float  # −d/2 log 2π − log |chol|


class _HostEngine:
    """NumPy arrays, the Numba engine; scipy's triangular solve (one BLAS thread)."""

    name = "cpu"
    xp = np

    def __reduce__(self):  # pickled and copied as the module's one instance
        return "_HOST"

    def asarray(self, x, name):
        return _as_real_array(x, name)

    def here(self, arr, device_id):
        return arr

    def to_host(self, a):
        return np.asarray(a)

    def to_caller(self, result, kind, out_dtype=None):
        """A result of host points in scipy's dtype (``out_dtype``: long double stays long double)."""
        return result if out_dtype is None else result.astype(out_dtype, copy=False)

    def on(self, arr):
        return contextlib.nullcontext()

    def device_id(self, arr):
        return None

    def solve(self, chol, b):
        """L⁻¹ b for (d, k) float64 b, (d, k) result (Fortran order: its transpose is C-contiguous)."""
        with _one_blas_thread():
            return linalg.solve_triangular(chol, b, lower=True, check_finite=False)

    def cov(self, data, weights):
        with np.errstate(over="ignore", invalid="ignore"), _one_blas_thread():
            return np.atleast_2d(np.cov(data, rowvar=1, bias=False, aweights=weights))

    def inv_neff(self, w):
        return _vecdot(w, w)

    def resample(self, kde, size, random_state):
        """scipy's algorithm and random streams: the same ``seed`` gives scipy's numbers."""
        norm = np.transpose(
            random_state.multivariate_normal(np.zeros((kde.d,), float), kde.covariance, size=size)
        )
        indices = random_state.choice(kde.n, size=size, p=kde.weights)
        means = kde.dataset[:, indices]
        return means + norm


class _DeviceEngine:
    """CuPy arrays on their GPU, the CUDA engine (kernels/kde.cu); CuPy's triangular solve."""

    name = "cuda"

    def __reduce__(self):  # pickled and copied as the module's one instance
        return "_DEVICE"

    @property
    def xp(self):
        from .._backend._cuda import require_cupy

        return require_cupy("gaussian_kde on the GPU")

    def asarray(self, x, name):
        """CuPy arrays (and torch CUDA tensors, through DLPack) as they are; host data uploaded."""
        from .._backend._convert import to_device_cupy

        cp = self.xp
        if _namespace.array_kind(x).on_gpu:
            arr = to_device_cupy(x)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"`{name}` must contain real numbers; got dtype {arr.dtype}")
            return arr
        arr = _as_real_array(x, name)
        if arr.dtype.itemsize > 8:  # long double: CuPy has none
            arr = arr.astype(np.float64)
        return cp.asarray(arr)

    def to_host(self, a):
        """A small reduction's result ((d,) or (d, d)) on the host."""
        return a.get() if hasattr(a, "get") else np.asarray(a)

    def to_caller(self, result, kind, out_dtype=None):
        """GPU callers get float64 in their array type (CuPy has no long double); host points
        evaluated on a GPU dataset get a host array in scipy's dtype."""
        if kind.on_gpu or out_dtype is None:  # float64 on the GPU, whatever out_dtype says
            from .._backend._convert import from_device_cupy

            return from_device_cupy(result, kind)
        return self.to_host(result).astype(out_dtype, copy=False)

    def on(self, arr):
        return arr.device

    def device_id(self, arr):
        return arr.device.id

    def here(self, arr, device_id):
        """``arr`` on GPU ``device_id`` (called inside that device's context)."""
        cp = self.xp
        if isinstance(arr, cp.ndarray):
            return arr if arr.device.id == device_id else arr.copy()
        return self.asarray(arr, "dataset")

    def solve(self, chol, b):
        from cupyx.scipy.linalg import solve_triangular

        return solve_triangular(self.xp.asarray(chol), b, lower=True)

    def cov(self, data, weights):
        """``np.cov(data, aweights=weights)`` (ddof 1) on the device, (d, d) on the host; written
        out because CuPy's ``cov`` documents no support for ``aweights``."""
        cp = self.xp
        x = data.astype(cp.float64)
        w = weights.astype(cp.float64)
        v1 = w.sum()
        xc = x - (x * w).sum(axis=1, keepdims=True) / v1
        fact = v1 - (w * w).sum() / v1
        return np.atleast_2d(self.to_host((xc * w) @ xc.T / fact))

    def inv_neff(self, w):
        return np.float64(float((w * w).sum()))

    def resample(self, kde, size, random_state):
        """Draws on the device (CuPy's generator, seeded by one draw from ``random_state``)."""
        from ._kde_device import sample

        cp = self.xp
        draw = getattr(random_state, "integers", None) or random_state.randint
        seed = int(draw(0, 2**63 - 1, dtype=np.int64))
        with kde.dataset.device:
            train = kde.dataset.T.astype(cp.float64)
            out = sample(train, kde.weights, None, kde.cho_cov, "gaussian", int(size), seed)
            return cp.ascontiguousarray(out.T)


_HOST = _HostEngine()
_DEVICE = _DeviceEngine()


def engine_for_dataset(backend, dataset):
    """The engine a ``gaussian_kde`` keeps its data on, from ``backend`` and the dataset's type."""
    return _DEVICE if resolve_backend(backend, _namespace.array_kind(dataset)) == "cuda" else _HOST


def engine_for_points(fitted, kind, backend):
    """The engine that evaluates points of ``kind``: GPU points on the GPU (they are never copied
    to the host silently), host points on the dataset's engine ``fitted``."""
    if not kind.on_gpu:
        return fitted
    if backend == "cpu":
        raise TypeError(
            f"backend='cpu' was asked for, but the points are a {kind.namespace} array on "
            "the GPU; GPU arrays are never copied to the host silently. Move the points to "
            "the host yourself (cupy.asnumpy, .cpu()) or use backend='auto'"
        )
    return _DEVICE


def runs_on_host(kde):
    """True when ``kde``'s dataset and engine are on the host (the integrals run only there)."""
    return getattr(kde, "_engine", _HOST) is _HOST and not _namespace.array_kind(kde.dataset).on_gpu


def _centre(engine, data, weights):
    """The (d,) host centre: the weighted mean of the dimensions that lie far from the origin
    (|mean| > _CENTRE_SIGMAS·σ), 0 for the others."""
    with np.errstate(over="ignore", invalid="ignore"):  # near 1.8e308: inf, and then no centring
        mean = (data * weights).sum(axis=1)
        var = ((data - mean[:, None]) ** 2 * weights).sum(axis=1)
        mean, var = engine.to_host(mean), engine.to_host(var)
        return np.where(np.abs(mean) > _CENTRE_SIGMAS * np.sqrt(var), mean, 0.0)


def _whiten(engine, chol, data, centre):
    """L⁻¹ (x − centre) for the columns of the float64 (d, k) ``data``, as (d, k)."""
    if np.any(centre):
        data = data - engine.xp.asarray(centre)[:, None]
    return engine.solve(chol, data)


def _prepare(engine, dataset, weights, chol):
    """The :class:`_State` of ``dataset`` (d, n) with ``weights`` (n,) and kernel factor ``chol``,
    on ``engine`` (inside the device context of the target device for the GPU)."""
    xp = engine.xp
    data = dataset.astype(xp.float64, copy=False)
    w = weights.astype(xp.float64, copy=False)
    centre = _centre(engine, data, w)
    train_t = xp.ascontiguousarray(_whiten(engine, chol, data, centre))
    keep = w > 0
    if not bool(keep.all()):  # zero weights contribute exactly nothing: drop those points
        train_t = xp.ascontiguousarray(train_t[:, keep])
        w = w[keep]
    log_norm = -0.5 * chol.shape[0] * _LOG_2PI - float(np.sum(np.log(np.diag(chol))))
    return _State(chol, centre, train_t, xp.log(w), log_norm)


def _log_density(engine, state, points):
    """log Σ_j w_j N(p_i − x_j; 0, L Lᵀ) for float64 points (d, m) on ``engine``: float64 (m,)."""
    queries = _whiten(engine, state.chol, points, state.centre).T
    kde_logsum = get_op("kde_logsum", engine.name)
    return kde_logsum(queries, None, state.log_w, "gaussian", train_t=state.train_t) + state.log_norm


def _sum_cov_cholesky(cov):
    try:
        with _one_blas_thread():
            return linalg.cholesky(cov, lower=True)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError(
            f"{exc}: the sum of the kernel covariance and the other covariance is not positive "
            "definite; pass a symmetric positive semi-definite covariance"
        ) from exc
