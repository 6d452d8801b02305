"""Binned FFT densities on a regular grid (d ≤ 3): the layout, the sampled kernel, the padded real
FFT convolution, and ``KernelDensity.evaluate_grid``.

The density f(x) = Σ_j w_j K_H(x − x_j) / Σ_j w_j is approximated at the grid nodes g by the
binned estimate f̃(g) = Σ_m c_m K_H(g − m): the weights c are the linearly binned, normalised
sample weights (``_fft_binning``) and K_H is sampled on the node offsets out to the radius where
k(r) / k(0) < 2^-60 (the support of a compact kernel), in the original coordinates, so any
bandwidth matrix H works. The sum over m is a linear convolution, done as a circular one on a
zero-padded grid of ``scipy.fft.next_fast_len(n_i + L_i)`` points per axis (L_i the kernel's
half-width in nodes; n_i + L_i is the least size at which no wrap-around reaches a node) with
real FFTs: ``scipy.fft`` on the host, ``cupyx.scipy.fft`` for CuPy arrays.

The FFT's rounding floor: the computed convolution y = c ⊛ K differs from the exact one by at
most F = 16 u log2(N) (‖c‖₂‖K‖₁ + 3‖c‖₁‖K‖₂) everywhere (u = 2^-53, N the padded size). From the
normwise error of each transform, ‖δX‖₂ ≤ γ‖X‖₂ with γ ≈ 7 u log2 N (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., §24.1; the constant doubled here), Parseval
(‖DFT a‖₂ = √N ‖a‖₂), ‖DFT a‖∞ ≤ ‖a‖₁, Young's ‖c ⊛ K‖₂ ≤ ‖c‖₁‖K‖₂ and ‖δy‖∞ ≤ ‖δy‖₂. Values at
or below F are rounding noise and are never logged.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend._columns import column_extremes
from ._engine import engine_for
from ._fft_binning import bin_linear_cpu, bin_linear_xp, extremes_cpu
from ._kernels import log_kernel_norm

# The padded FFT of one grid may have at most this many points (512 MiB per float64 array; the
# convolution holds a few such arrays at once).
MAX_FFT_POINTS = 1 << 26
DEFAULT_GRID_POINTS = {1: 1024, 2: 256, 3: 64}
ROUNDING = 2.0**-53


def fft_rounding(padded, xp, a, b):
    """The rounding floor F of the convolution of ``a`` (in ``xp``) and ``b`` (NumPy) by FFT on a
    padded grid of shape ``padded``: 16 u log2(N) (‖a‖₂‖b‖₁ + 3‖a‖₁‖b‖₂)."""
    a1, a2 = float(xp.sum(xp.abs(a))), float(xp.sqrt(xp.sum(a * a)))
    b1, b2 = float(np.sum(np.abs(b))), float(np.sqrt(np.sum(b * b)))
    return 16.0 * ROUNDING * math.log2(max(math.prod(padded), 2)) * (a2 * b1 + 3.0 * a1 * b2)


def fft_module(xp):
    """``scipy.fft`` for NumPy, ``cupyx.scipy.fft`` for CuPy."""
    if xp is np:
        import scipy.fft

        return scipy.fft
    import importlib

    return importlib.import_module("cupyx.scipy.fft")


def _fft_options(xp):
    if xp is not np:
        return {}
    import numba

    return {"workers": numba.get_num_threads()}


def next_fast_len(n, real):
    import scipy.fft

    return int(scipy.fft.next_fast_len(int(n), real=real))


def padded_shape(shape, half):
    """The FFT size per axis: the least fast length ≥ n_i + L_i (the last axis for a real FFT)."""
    d = len(shape)
    return tuple(next_fast_len(n + L, real=(i == d - 1)) for i, (n, L) in enumerate(zip(shape, half)))


def check_fft_size(padded, what):
    total = math.prod(padded)
    if total > MAX_FFT_POINTS:
        gib = total * 8 / 2**30
        raise ValueError(
            f"{what}: the grid needs a padded FFT of {' x '.join(map(str, padded))} = {total:,} points "
            f"({gib:.1f} GiB per float64 array); the limit is {MAX_FFT_POINTS:,} points. Ask for fewer "
            "grid points (a wide bandwidth also widens the padding)"
        )


def _lower_inverse(L):
    """L⁻¹ of a small lower-triangular L by forward substitution (no LAPACK call: right after a
    Numba parallel region, a BLAS thread pool's wake-up costs milliseconds on a busy machine)."""
    d = L.shape[0]
    A = np.zeros((d, d))
    for j in range(d):
        A[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, d):
            A[i, j] = -sum(L[i, k] * A[k, j] for k in range(j, i)) / L[i, i]
    return A


def bandwidth_geometry(est):
    """(A = L⁻¹, diag(H), diag(H⁻¹), log c_n) of the fitted bandwidth, float64 on the host."""
    L = est._bandwidth_cholesky()
    d = L.shape[0]
    A = _lower_inverse(L)
    H_diag = np.sum(L * L, axis=1)
    Hinv_diag = np.sum(A * A, axis=0)
    log_cn = log_kernel_norm(est.kernel, d) - float(np.sum(np.log(np.diag(L))))
    return A, H_diag, Hinv_diag, log_cn


def data_extremes(est):
    """Per-feature (min, max) of the training data, float64 on the host (cached per fit)."""
    cache = est._cache()
    if "extremes" not in cache:
        from .._backend._device import to_host

        X = est.training_data_
        low, high = extremes_cpu(X) if type(X) is np.ndarray else column_extremes(X)
        cache["extremes"] = (np.asarray(to_host(low), dtype=np.float64), np.asarray(to_host(high), dtype=np.float64))
    return cache["extremes"]


def offset_radii(A, step, half):
    """Whitened lengths ‖L⁻¹ u‖ of the node offsets u = m ∘ step, |m_i| ≤ L_i (host array of
    shape 2L + 1)."""
    d = len(step)
    axes = []
    for i in range(d):
        u = np.arange(-half[i], half[i] + 1, dtype=np.float64) * step[i]
        axes.append(u.reshape([-1 if k == i else 1 for k in range(d)]))
    r2 = 0.0
    for k in range(d):
        z = sum(A[k, i] * axes[i] for i in range(d) if A[k, i] != 0.0)
        r2 = r2 + z * z
    return np.sqrt(np.broadcast_to(r2, tuple(2 * L + 1 for L in half)))


def _place(xp, window, padded, half):
    """The centred ``window`` laid out for a circular convolution: offset o at index o mod P."""
    d = len(padded)
    out = xp.zeros(padded, dtype=xp.float64)
    window = xp.asarray(window)
    for corner in range(2**d):
        src, dst = [], []
        for i in range(d):
            L = half[i]
            if (corner >> i) & 1:  # negative offsets −L..−1 → the end
                src.append(slice(0, L))
                dst.append(slice(padded[i] - L, padded[i]))
            else:  # offsets 0..L → the start
                src.append(slice(L, 2 * L + 1))
                dst.append(slice(0, L + 1))
        out[tuple(dst)] = window[tuple(src)]
    return out


def separable_factors(kernel, A, step, half):
    """The gaussian window k(‖L⁻¹u‖) = Π_i exp(−(A_ii u_i)² / 2) as one 1-D factor per axis where
    A = L⁻¹ is diagonal (per-feature bandwidths), else None; d ≥ 2 only (in 1-D it is the window)."""
    d = len(step)
    if kernel != "gaussian" or d < 2 or np.any(A[~np.eye(d, dtype=bool)] != 0.0):
        return None
    return tuple(np.exp(-0.5 * (np.arange(-half[i], half[i] + 1, dtype=np.float64) * step[i] * A[i, i]) ** 2)
                 for i in range(d))


def _spectrum(xp, fft, opts, window, factors, padded, half):
    """The real FFT of the placed ``window``; from its 1-D ``factors`` where given: the outer
    product of their transforms (full ones, a real one on the last axis), d 1-D FFTs instead of
    one of N points (the same normwise rounding, log2 N = Σ log2 N_i)."""
    d = len(padded)
    if factors is None:
        return fft.rfftn(_place(xp, window, padded, half), axes=tuple(range(d)), **opts)
    spectrum = None
    for i, factor in enumerate(factors):
        placed = _place(xp, factor, (padded[i],), (half[i],))
        axis = (fft.rfft if i == d - 1 else fft.fft)(placed, **opts)
        axis = axis.reshape([-1 if k == i else 1 for k in range(d)])
        spectrum = axis if spectrum is None else spectrum * axis
    return spectrum


def convolve(xp, counts, windows, padded, half, factors=None):
    """[counts ⊛ window for each window] on the grid of ``counts``, by padded real FFTs;
    ``factors``: None, or per window None or its separable 1-D factors (``separable_factors``)."""
    fft = fft_module(xp)
    opts = _fft_options(xp)
    axes = tuple(range(counts.ndim))
    spectrum = fft.rfftn(counts, s=padded, axes=axes, **opts)
    crop = tuple(slice(0, n) for n in counts.shape)
    out = []
    for i, window in enumerate(windows):
        kernel = _spectrum(xp, fft, opts, window, None if factors is None else factors[i], padded, half)
        kernel *= spectrum
        out.append(fft.irfftn(kernel, s=padded, axes=axes, **opts)[crop])
    return out


def binned_weights(est, lo, step, shape):
    """Normalised linearly binned sample weights of the training data (Σ over all rows = 1) on
    the grid (``lo``, ``step``, ``shape``), in the training data's namespace."""
    X = est.training_data_
    engine = engine_for(X)
    w = est.sample_weight_
    if engine.xp is np:
        counts = bin_linear_cpu(X, None if w is None else np.asarray(w, dtype=np.float64), lo, step, shape)
    else:
        counts = bin_linear_xp(engine.xp, X, w, lo, step, shape)
    total = float(X.shape[0]) if w is None else float(engine.xp.sum(w))
    counts /= total
    return counts


def grid_shape(grid_points, d):
    """One node count ≥ 2 per axis from ``grid_points`` (an int, one int per axis, or None)."""
    if grid_points is None:
        return (DEFAULT_GRID_POINTS[d],) * d
    values = [grid_points] * d if isinstance(grid_points, numbers.Integral) and not isinstance(grid_points, bool) \
        else grid_points
    try:
        values = list(values)
    except TypeError:
        raise TypeError(f"grid_points must be an int or a sequence of {d} ints; got {grid_points!r}") from None
    if len(values) != d or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
        raise ValueError(f"grid_points must be an int or a sequence of {d} ints (one per feature); got {grid_points!r}")
    if min(values) < 2:
        raise ValueError(f"grid_points must be at least 2 per feature; got {grid_points!r}")
    return tuple(int(v) for v in values)


def grid_bounds(bounds, d):
    """(low, high) float64 (d,) arrays from ``bounds``: d pairs, or one pair when d = 1."""
    try:
        arr = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"bounds must be None or {d} (low, high) pairs; got {bounds!r}") from None
    if d == 1 and arr.shape == (2,):
        arr = arr.reshape(1, 2)
    if arr.shape != (d, 2):
        raise ValueError(f"bounds must be None or {d} (low, high) pairs, shape ({d}, 2); got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or not np.all(arr[:, 0] < arr[:, 1]):
        raise ValueError(f"bounds must be finite with low < high in every feature; got {arr.tolist()}")
    return arr[:, 0].copy(), arr[:, 1].copy()
