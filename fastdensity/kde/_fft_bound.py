"""The smoothness of each unit kernel, for the error bound of binned, interpolated densities.

Linear binning and multilinear interpolation replace a function φ on a grid cell B by its
multilinear interpolant Iφ from the cell's corners. Where φ is C¹ with bounded second
derivatives on B (W^{2,∞}), the classical bound (tensor-product linear interpolation; each
one-dimensional interpolation has weights ≥ 0 that sum to 1, so the errors add up) is

    |φ − Iφ| ≤ Σ_i δ_i² / 8 · sup_B |∂_i² φ|,                                          (1)

and wherever φ is not smooth on B, still |φ − Iφ| ≤ sup_B φ − inf_B φ, since Iφ is a convex
combination of values of φ.                                                              (2)

For the kernel K_H(u) = c_n k(‖L⁻¹u‖) (c_n = c_d |L|⁻¹, H = L Lᵀ), with z = L⁻¹u and r = ‖z‖,
∂_i² K_H = c_n e_iᵀ L⁻ᵀ ∇²k L⁻¹ e_i, and the Hessian of a radial profile has the eigenvalues
k''(r) (radially) and k'(r)/r (tangentially), so

    |∂_i² K_H(u)| ≤ c_n (H⁻¹)_ii σ₂(r),   σ₂(r) = max(|k''(r)|, |k'(r)| / r).

Each kernel below gives σ₂ on its smooth pieces, the radii where it is not W^{2,∞} (its
*singular* radii: the jump of the tophat at 1, the kinks of epanechnikov and cosine at 1, the
cone points of exponential and linear at 0 and the kink of linear at 1) and the points inside a
smooth piece where σ₂ has a local maximum, so that the supremum of σ₂ over a range of radii
[a, b] is the largest of σ₂(a), σ₂(b) and σ₂ at those points. Every profile is non-increasing in
r, so k ranges over [k(b), k(a)] there.

:func:`cell_bound` turns this into β_ρ(r): a bound on |φ − Iφ| over a whitened ball of radius ρ
around a whitened offset of length r, which ``_fft_score`` convolves with the binned weights.
"""

from __future__ import annotations

import math

import numpy as np

from ._kernels import COMPACT_KERNELS, kernel_profile_log

# k(r) / k(0) below this is zero at float64's resolution: the sampled kernel stops there.
NEGLIGIBLE = 2.0**-60  # ≈ 8.7e-19, far below float64's epsilon (2.2e-16) relative to the peak


def support_radius(kernel: str) -> float:
    """The unit radius beyond which k(r) / k(0) < :data:`NEGLIGIBLE` (1 for compact kernels)."""
    if kernel in COMPACT_KERNELS:
        return 1.0
    if kernel == "gaussian":  # exp(−r²/2) = NEGLIGIBLE
        return math.sqrt(-2.0 * math.log(NEGLIGIBLE))
    if kernel == "exponential":
        return -math.log(NEGLIGIBLE)
    raise ValueError(f"unknown kernel {kernel!r}")


def padding_radius(kernel: str) -> float:
    """How far (in unit radii) ``evaluate_grid`` pads the data's range by default: the support of
    a compact kernel, else the radius where k(r) / k(0) ≈ 3.4e-4 (4 for the gaussian, 8 for the
    exponential; KDEpy pads its gaussian by about 3.9 standard deviations)."""
    if kernel in COMPACT_KERNELS:
        return 1.0
    return {"gaussian": 4.0, "exponential": 8.0}[kernel]


def profile(kernel: str, r):
    """k(r), the unit-scale profile (0 outside the support of a compact kernel)."""
    with np.errstate(over="ignore"):
        return np.exp(kernel_profile_log(kernel, r))


# σ₂ on the smooth pieces; the compact kernels' formulas hold on [0, 1] (its left limit at 1)
# and are 0 beyond.
def _sigma2_raw(kernel: str, r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kernel == "gaussian":
            return np.maximum(np.abs(r * r - 1.0), 1.0) * np.exp(-0.5 * r * r)
        if kernel == "exponential":  # k'' = e^-r, |k'|/r = e^-r / r
            return np.where(r > 0, np.maximum(1.0, 1.0 / np.where(r > 0, r, 1.0)), np.inf) * np.exp(-r)
        inside = r <= 1.0
        if kernel == "tophat":
            val = np.zeros_like(r)
        elif kernel == "epanechnikov":  # 1 − r²: k'' = −2, k'/r = −2
            val = np.full_like(r, 2.0)
        elif kernel == "linear":  # 1 − r: k'' = 0, |k'|/r = 1/r
            val = np.where(r > 0, 1.0 / np.where(r > 0, r, 1.0), np.inf)
        elif kernel == "cosine":  # k'' = −(π/2)² cos(πr/2), |k'|/r = (π/2) sin(πr/2) / r ≤ (π/2)²
            half_pi = 0.5 * math.pi
            sinc = np.where(r > 0, np.sin(half_pi * r) / np.where(r > 0, r, 1.0), half_pi)
            val = np.maximum(half_pi**2 * np.cos(half_pi * r), half_pi * sinc)
        elif kernel == "biweight":  # (1 − r²)²: k'' = 12r² − 4, |k'|/r = 4(1 − r²)
            val = np.maximum(np.abs(12.0 * r * r - 4.0), 4.0 * (1.0 - r * r))
        elif kernel == "triweight":  # (1 − r²)³: k'' = (1 − r²)(30r² − 6), |k'|/r = 6(1 − r²)²
            s = 1.0 - r * r
            val = np.maximum(np.abs(s * (30.0 * r * r - 6.0)), 6.0 * s * s)
        else:
            raise ValueError(f"unknown kernel {kernel!r}")
        return np.where(inside, val, 0.0)


SINGULAR_RADII = {
    "gaussian": (), "biweight": (), "triweight": (),
    "tophat": (1.0,), "epanechnikov": (1.0,), "cosine": (1.0,),
    "exponential": (0.0,), "linear": (0.0, 1.0),
}

# Interior local maxima of σ₂ (the compact kernels' value at 1 is their left limit there).
_CRITICAL_RADII = {
    "gaussian": (math.sqrt(3.0),),  # (r² − 1) e^{−r²/2} peaks at √3
    "biweight": (1.0,),
    "triweight": (math.sqrt(0.6),),  # |(1 − t)(30t − 6)| peaks at t = r² = 0.6
}


def smooth_order(kernel: str) -> int:
    """2 where the kernel is W^{2,∞} everywhere (the bound is O(δ²)), else 0."""
    return 0 if SINGULAR_RADII[kernel] else 2


def sigma2_sup(kernel: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sup of σ₂ over the radii [a, b] (0 ≤ a ≤ b), on ranges that hold no singular radius."""
    out = np.maximum(_sigma2_raw(kernel, a), _sigma2_raw(kernel, b))
    for c in _CRITICAL_RADII.get(kernel, ()):
        inside = (a <= c) & (c <= b)
        out = np.where(inside, np.maximum(out, float(_sigma2_raw(kernel, np.array(c)))), out)
    return out


def cell_bound(kernel: str, r: np.ndarray, rho: float, curvature: float) -> np.ndarray:
    """β_ρ(r) / c_n: a bound on |φ − Iφ| / c_n for φ = K_H over a whitened ball of radius ``rho``
    around a whitened offset of length ``r``, for a cell whose interpolation error is (1) with
    ``curvature`` = Σ_i δ_i² (H⁻¹)_ii / 8 (where the ball meets no singular radius), or (2)."""
    r = np.asarray(r, dtype=np.float64)
    a = np.maximum(r - rho, 0.0)
    b = r + rho
    singular = np.zeros(r.shape, dtype=bool)
    for s in SINGULAR_RADII[kernel]:
        singular |= (a <= s) & (s <= b)
    # (2) sharpened: φ and Iφ both lie in [inf φ, sup φ] = [k(b), k(a)] (every profile is
    # non-increasing), valid everywhere; (1) where the ball holds no singular radius.
    oscillation = profile(kernel, a) - profile(kernel, b)
    smooth = curvature * sigma2_sup(kernel, a, np.where(singular, a, b))
    return np.where(singular, oscillation, np.minimum(smooth, oscillation))
