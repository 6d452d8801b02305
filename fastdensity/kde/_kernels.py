"""The kernel table: each kernel's profile, normalisation, support, variance and radial sampler.

Every kernel is radial: K(x) = c_d · k(‖x‖) with a unit-scale profile ``k``. The profiles and the
d-dimensional normalisations of the first six are scikit-learn's (``sklearn/neighbors/
_binary_tree.pxi.tp``, ``_log_kernel_norm``); biweight and triweight follow the same pattern,
k(r) = (1 − r²)^p on r < 1 with p = 2, 3. The normaliser is

    1 / c_d = S_{d−1} ∫₀^∞ k(r) r^{d−1} dr,   S_{d−1} = 2 π^{d/2} / Γ(d/2),

and a radius with density ∝ k(r) r^{d−1} times a uniform direction draws from the kernel, which is
how :func:`sample_unit_kernel` samples every kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.special import betaln

from .._backend._validation import Options, check_parameter

KERNELS = (
    "gaussian",
    "tophat",
    "epanechnikov",
    "exponential",
    "linear",
    "cosine",
    "biweight",
    "triweight",
)

# Kernels that vanish outside the unit ball (exactly -inf log density there).
COMPACT_KERNELS = frozenset({"tophat", "epanechnikov", "linear", "cosine", "biweight", "triweight"})

# Each kernel's integer code, the one numbering of the Numba engines (a compile-time branch on it),
# the CUDA launcher (a template argument) and the enum in kernels/kde.cu, which
# tests/kde/test_kernel_codes.py checks against this table.
KERNEL_CODES = {name: code for code, name in enumerate(KERNELS)}
(GAUSSIAN, TOPHAT, EPANECHNIKOV, EXPONENTIAL, LINEAR, COSINE, BIWEIGHT, TRIWEIGHT) = (
    KERNEL_CODES[name] for name in KERNELS)
COMPACT_CODES = tuple(sorted(KERNEL_CODES[name] for name in COMPACT_KERNELS))


def log_unit_ball_volume(d: int) -> float:
    """log V_d, the volume of the unit ball in d dimensions."""
    return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def log_unit_sphere_area(d: int) -> float:
    """log S_{d−1}, the surface area of the unit sphere in d dimensions."""
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


def _log_radial_integral(kernel: str, d: int, power: int) -> float:
    """log ∫₀^∞ k(r) r^{power} dr for the unit-scale profile of ``kernel``."""
    a = power + 1.0  # ∫ k(r) r^{a-1} dr
    if kernel == "gaussian":  # ∫ e^{-r²/2} r^{a-1} dr = 2^{a/2-1} Γ(a/2)
        return (0.5 * a - 1.0) * math.log(2.0) + math.lgamma(0.5 * a)
    if kernel == "exponential":  # Γ(a)
        return math.lgamma(a)
    if kernel == "tophat":  # 1/a
        return -math.log(a)
    if kernel == "linear":  # B(a, 2)
        return float(betaln(a, 2.0))
    if kernel in ("epanechnikov", "biweight", "triweight"):  # ∫ (1-r²)^p r^{a-1} = B(a/2, p+1)/2
        p = {"epanechnikov": 1, "biweight": 2, "triweight": 3}[kernel]
        return float(betaln(0.5 * a, p + 1.0)) - math.log(2.0)
    if kernel == "cosine":
        return math.log(_cosine_moment(power))
    raise ValueError(f"unknown kernel {kernel!r}")


def _cosine_moment(power: int) -> float:
    """∫₀¹ cos(π r / 2) r^power dr by the recurrence from integrating by parts twice.

    I_m = (2/π) − m(m−1)(2/π)² I_{m−2},  I_0 = 2/π,  I_1 = 2/π − (2/π)².
    """
    c = 2.0 / math.pi
    i_even, i_odd = c, c - c * c
    values = [i_even, i_odd]
    for m in range(2, power + 1):
        values.append(c - m * (m - 1) * c * c * values[m - 2])
    return values[power]


@lru_cache(maxsize=None)
def log_kernel_norm(kernel: str, d: int) -> float:
    """log c_d: the log normalising constant of the unit-scale kernel in ``d`` dimensions.

    With bandwidth h the density is c_d h^{-d} k(‖x‖/h); a bandwidth matrix H = L Lᵀ gives
    c_d |L|^{-1} k(‖L^{-1} x‖).
    """
    if kernel == "cosine" and d > 40:
        # The alternating recurrence loses precision at high powers; integrate directly.
        from scipy.integrate import quad

        val, _ = quad(lambda r: math.cos(0.5 * math.pi * r) * r ** (d - 1), 0.0, 1.0, epsabs=0, epsrel=1e-13)
        return -(log_unit_sphere_area(d) + math.log(val))
    return -(log_unit_sphere_area(d) + _log_radial_integral(kernel, d, d - 1))


@lru_cache(maxsize=None)
def kernel_coordinate_variance(kernel: str, d: int) -> float:
    """Variance of one coordinate of a draw from the unit-scale kernel in ``d`` dimensions.

    E[x_i²] = E[r²]/d, with E[r²] = ∫ k r^{d+1} / ∫ k r^{d−1}. Bandwidth rules of thumb give the
    kernel's standard deviation; dividing by the square root of this turns it into the kernel's
    scale, so that "scott" means the same smoothing whatever the kernel.
    """
    if kernel == "cosine" and d > 40:
        from scipy.integrate import quad

        num, _ = quad(lambda r: math.cos(0.5 * math.pi * r) * r ** (d + 1), 0.0, 1.0, epsrel=1e-13)
        den, _ = quad(lambda r: math.cos(0.5 * math.pi * r) * r ** (d - 1), 0.0, 1.0, epsrel=1e-13)
        return num / den / d
    log_ratio = _log_radial_integral(kernel, d, d + 1) - _log_radial_integral(kernel, d, d - 1)
    return math.exp(log_ratio) / d


def kernel_profile_log(kernel: str, r, xp=np):
    """log k(r) of the unit kernel for r ≥ 0, in the array namespace ``xp`` (NumPy or CuPy): the
    reference for tests and the host/array-API paths (the bounds' images among them); −inf
    outside a compact kernel's support."""
    r = xp.asarray(r, dtype=xp.float64)
    if kernel == "gaussian":
        return -0.5 * r * r
    if kernel == "exponential":
        return -r
    inside = r < 1.0
    rr = xp.where(inside, r, 0.0)  # no log of a negative number outside the support
    if kernel == "tophat":
        value = xp.zeros_like(rr)
    elif kernel == "epanechnikov":
        value = xp.log1p(-rr * rr)
    elif kernel == "biweight":
        value = 2.0 * xp.log1p(-rr * rr)
    elif kernel == "triweight":
        value = 3.0 * xp.log1p(-rr * rr)
    elif kernel == "linear":
        value = xp.log1p(-rr)
    elif kernel == "cosine":
        value = xp.log(xp.cos(0.5 * math.pi * rr))
    else:
        raise ValueError(f"unknown kernel {kernel!r}")
    return xp.where(inside, value, -xp.inf)


def _sample_radius(kernel: str, d: int, size: int, rng: np.random.Generator, xp=np, uniform=None):
    """Radii with density ∝ k(r) r^{d−1}.

    ``rng`` draws (``chisquare``, ``gamma``, ``beta``) and ``xp`` builds the arrays: NumPy with a
    ``numpy.random.Generator``, or CuPy with a ``cupy.random.RandomState`` on the device (then
    ``uniform=rs.random_sample``; None: ``rng.random``)."""
    uniform = rng.random if uniform is None else uniform
    if kernel == "gaussian":
        return xp.sqrt(rng.chisquare(d, size))
    if kernel == "exponential":
        return rng.gamma(d, 1.0, size)
    if kernel == "tophat":
        return rng.beta(d, 1.0, size)
    if kernel == "linear":
        return rng.beta(d, 2.0, size)
    if kernel in ("epanechnikov", "biweight", "triweight"):
        p = {"epanechnikov": 1, "biweight": 2, "triweight": 3}[kernel]
        return xp.sqrt(rng.beta(0.5 * d, p + 1.0, size))
    if kernel == "cosine":
        # Rejection from Beta(d, 2) ∝ (1−r) r^{d−1}: cos(πr/2) = sin(π(1−r)/2) ≤ (π/2)(1−r),
        # acceptance sin(πu/2)/(πu/2) with u = 1 − r, never below 2/π.
        out = xp.empty(size)
        filled = 0
        while filled < size:
            need = size - filled
            batch = int(need * 1.6) + 16
            r = rng.beta(d, 2.0, batch)
            u = 0.5 * np.pi * (1.0 - r)
            ratio = xp.where(u > 0, xp.sin(u) / xp.where(u > 0, u, 1.0), 1.0)
            keep = r[uniform(batch) < ratio][:need]
            out[filled : filled + keep.size] = keep
            filled += int(keep.size)
        return out
    raise ValueError(f"unknown kernel {kernel!r}")


def sample_unit_kernel(kernel: str, d: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``size`` points (size, d) from the unit-scale kernel in ``d`` dimensions."""
    if kernel == "gaussian":
        return rng.standard_normal((size, d))
    direction = rng.standard_normal((size, d))
    norms = np.linalg.norm(direction, axis=1, keepdims=True)
    # A zero normal vector has probability zero; guard anyway so that no NaN can appear.
    norms[norms == 0.0] = 1.0
    direction /= norms
    return direction * _sample_radius(kernel, d, size, rng)[:, None]


def sample_unit_kernel_pnorm(kernel: str, d: int, size: int, rng: np.random.Generator, p: float) -> np.ndarray:
    """Draw ``size`` points (size, d) from the density ∝ k(‖u‖_p), the unit kernel under the
    p-norm (p > 0, or ``math.inf`` for the max-norm).

    Any density of the form g(‖u‖) factors into a radius r = ‖u‖ with density ∝ g(r) r^(d−1)
    (the volume of the ball of radius r is ∝ r^d, whatever the norm) and an independent direction
    u / ‖u‖ distributed by the cone measure of the unit ball. A draw z with i.i.d. coordinates of
    density ∝ exp(−|z_i|^p) has density ∝ exp(−‖z‖_p^p), a function of ‖z‖_p, so z / ‖z‖_p is
    such a direction (|z_i|^p ~ Gamma(1/p), a random sign); for the max-norm z is uniform on the
    cube. The radius is the euclidean one, :func:`_sample_radius`.
    """
    if math.isinf(p):
        z = rng.uniform(-1.0, 1.0, (size, d))
        norms = np.max(np.abs(z), axis=1, keepdims=True)
    else:
        z = rng.gamma(1.0 / p, 1.0, (size, d)) ** (1.0 / p)
        z *= np.where(rng.random((size, d)) < 0.5, -1.0, 1.0)
        norms = np.sum(np.abs(z) ** p, axis=1, keepdims=True) ** (1.0 / p)
    norms[norms == 0.0] = 1.0  # probability zero; no NaN either way
    return z / norms * _sample_radius(kernel, d, size, rng)[:, None]


@dataclass(frozen=True)
class KernelInfo:
    name: str
    compact: bool


def sample_unit_metric(kernel, d, size, gen, metric, p, vec, mat):
    """(size, d) draws of the unit kernel k(D(u, 0)) under a metric of a norm (D(u, 0) = ‖u‖)."""
    if metric == "euclidean":
        return sample_unit_kernel(kernel, d, size, gen)
    if metric in ("seuclidean", "mahalanobis"):
        # D(u, 0) = ‖A u‖₂ (A = diag(V)^(-1/2), or Aᵀ A = VI): u = A⁻¹ z for a euclidean draw z.
        z = sample_unit_kernel(kernel, d, size, gen)
        if metric == "seuclidean":
            return z * np.sqrt(vec)
        try:
            factor = cholesky(mat, lower=True)  # VI = F Fᵀ: ‖Fᵀ u‖ = D(u, 0), u = F⁻ᵀ z
        except np.linalg.LinAlgError:
            raise NotImplementedError(
                "sampling with a mahalanobis metric needs a positive-definite VI (a singular one "
                "leaves the kernel unbounded along its null space)"
            ) from None
        return solve_triangular(factor, z.T, lower=True, trans="T").T
    order = {"manhattan": 1.0, "chebyshev": math.inf}.get(metric, p)
    u = sample_unit_kernel_pnorm(kernel, d, size, gen, order)
    if vec is not None:  # (Σ w_i |u_i|^p)^(1/p) = ‖w^(1/p) u‖_p
        u = u / vec ** (1.0 / order)
    return u


def check_kernel(kernel) -> str:
    return check_parameter("kernel", kernel, Options(KERNELS))
