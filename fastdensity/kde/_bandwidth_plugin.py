"""The plug-in bandwidth matrix ``bandwidth="plugin"``: Duong & Hazelton's (2003, J. Nonparametric
Statistics 15(1), 17–30) two-stage plug-in with the SAMSE pilot, the algorithm of R's ``ks::Hpi(x,
pilot="samse", pre="sphere")`` (Duong's ``selector.R``: ``Hpi``, ``psifun2``, ``gsamse``), here
with exact pair sums; in 1-D the same stages are Wand & Jones's two-stage direct plug-in (KernSmooth's
``dpik``, which ``ks::hpi`` calls), on data scaled by min(sd, IQR / 1.349) as ``dpik`` does.

For the gaussian kernel, AMISE(H) = (4π)^(−d/2) / (n |H|^(1/2)) + ¼ Σ_ijkl H_ij H_kl ψ_ijkl with the
fourth-order density functionals ψ_r = ∫ D^r f · f. On pre-sphered data x* = S^(−1/2) (x − x̄):

1. a common pilot g₆ for the sixth-order functionals, SAMSE-optimal under a normal reference
   (ψ₈ of N(0, I)), then ψ̂₆(g₆) for the even sixth-order multi-indices;
2. a common pilot g₄, SAMSE-optimal given ψ̂₆, then ψ̂₄(g₄) for every fourth-order multi-index;
3. H* minimising the estimated AMISE over H* = A² (A symmetric, by BFGS from the normal-scale
   bandwidth), and H = S^(1/2) H* S^(1/2).

ψ̂_r(g) = n⁻² Σ_i Σ_j D^r φ_{g²I}(x*_i − x*_j) (the diagonal included, as ks's ``kfe``), with
D^r φ_{g²I}(u) = g^(−|r|) Π_k He_{r_k}(u_k / g) φ_{g²I}(u) for even |r| (He the Hermite polynomials):
O(n²) pairs, in blocks, for the C(d + 3, 4) fourth-order indices (126 in 6-D). SAMSE (Duong &
Hazelton 2003, Duong's thesis): with K_r = D^r φ_I(0) and P_r = Σ_j ψ_(r + 2e_j) over the even
multi-indices r of order m, B₁ = (2m + 2d) Σ K², B₂ = (m + d − 2) Σ K P, B₃ = Σ P², the pilot is
g = (γ n)^(−1/(m + d + 2)), γ = (−B₂ + √(B₂² + 4 B₁ B₃)) / (2 B₁).

Weights: pairs count w_i w_j / (Σw)², the covariance and quartiles are weighted (as "sj"), n is Kish's
effective size; equal weights give the unweighted result. ks's ``Hpi`` bins the data for d ≤ 4 and
its default pilot for d > 2 is "dscalar": this is the algorithm of ``Hpi(x, pilot="samse",
binned=FALSE)``, written from the formulas above; it has not been compared with ks's numbers (no R
here, and no published values were found). The 1-D case is checked against Wand & Jones's formulas.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import minimize

from .._backend._validation import check_sample_weight
from ._bandwidth_sj import _weighted_quantiles

__all__ = ["plugin_bandwidth_matrix"]

_BLOCK_PAIRS = 1 << 19  # pairs per block of the functional sums (~ 8 (d (top + 4) + 4) bytes each)


def _multi_indices(order, d, even=False):
    """Every d-tuple of non-negative integers summing to ``order`` (only all-even ones if ``even``)."""
    out = []
    for cut in itertools.combinations(range(order + d - 1), d - 1):
        parts = np.diff((-1,) + cut + (order + d - 1,)) - 1
        if not even or np.all(parts % 2 == 0):
            out.append(tuple(int(p) for p in parts))
    return out


def _hermite(z, top):
    """He_0 … He_top (probabilists') of every entry of z: shape (top + 1,) + z.shape."""
    out = np.empty((top + 1,) + z.shape)
    out[0] = 1.0
    if top >= 1:
        out[1] = z
    for m in range(1, top):
        out[m + 1] = z * out[m] - m * out[m - 1]
    return out


def _phi_deriv_at_zero(r, s):
    """D^r φ_{s² I}(0): Π_k (−1)^(r_k/2) (r_k − 1)!! s^(−r_k) · (2π s²)^(−d/2); 0 if some r_k is odd."""
    if any(k % 2 for k in r):
        return 0.0
    value = (2.0 * math.pi * s * s) ** (-len(r) / 2.0)
    for k in r:
        value *= (-1) ** (k // 2) * float(np.prod(np.arange(k - 1, 0, -2, dtype=np.float64))) / s**k
    return value


def _functionals(X, w, g, indices):
    """ψ̂_r(g) for each multi-index r in ``indices`` (all of one even order), weights w (Σ = 1).

    The pairs i < j are formed by blocks of rows (about ``_BLOCK_PAIRS`` pairs at a time)."""
    n, d = X.shape
    top = max(max(r) for r in indices)
    order = sum(indices[0])
    sums = np.zeros(len(indices))
    step = max(1, _BLOCK_PAIRS // max(n, 1))
    for a in range(0, n - 1, step):
        b = min(n, a + step)
        upper = np.arange(a, n)[None, :] > np.arange(a, b)[:, None]  # j > i
        z = ((X[a:b, None, :] - X[None, a:, :]) / g)[upper]  # (p, d)
        e = np.exp(-0.5 * np.sum(z * z, axis=1)) * (w[a:b, None] * w[None, a:])[upper]
        He = _hermite(z, top)  # (top + 1, p, d)
        for k_index, r in enumerate(indices):
            prod = e.copy()
            for k in range(d):
                if r[k]:
                    prod *= He[r[k], :, k]
            sums[k_index] += np.sum(prod)
    norm = (2.0 * math.pi * g * g) ** (-d / 2.0) * g ** (-order)
    diagonal = np.array([_phi_deriv_at_zero(r, g) for r in indices]) * float(np.sum(w * w))
    return 2.0 * sums * norm + diagonal


def _samse_pilot(order, d, neff, psi_next):
    """Duong & Hazelton's SAMSE pilot for the functionals of ``order`` (4 or 6), given the function
    ``psi_next(r)`` of the functionals of order + 2."""
    even = _multi_indices(order, d, even=True)
    K = np.array([_phi_deriv_at_zero(r, 1.0) for r in even])
    P = np.array([sum(psi_next(tuple(np.add(r, 2 * np.eye(d, dtype=int)[j]))) for j in range(d)) for r in even])
    B1 = (2 * order + 2 * d) * float(np.sum(K * K))
    B2 = (order + d - 2) * float(np.sum(K * P))
    B3 = float(np.sum(P * P))
    gamma = (-B2 + math.sqrt(B2 * B2 + 4.0 * B1 * B3)) / (2.0 * B1)
    return (gamma * neff) ** (-1.0 / (order + d + 2))


def _psi4_tensor(X, w, neff):
    """The (d, d, d, d) tensor ψ̂_(e_i + e_j + e_k + e_l) of the two-stage plug-in on sphered X."""
    d = X.shape[1]
    g6 = _samse_pilot(6, d, neff, lambda r: _phi_deriv_at_zero(r, math.sqrt(2.0)))  # ψ₈ of N(0, I)
    even6 = _multi_indices(6, d, even=True)
    psi6 = dict(zip(even6, _functionals(X, w, g6, even6)))
    g4 = _samse_pilot(4, d, neff, lambda r: psi6[r])
    idx4 = _multi_indices(4, d)
    psi4 = dict(zip(idx4, _functionals(X, w, g4, idx4)))
    T = np.empty((d,) * 4)
    for ijkl in itertools.product(range(d), repeat=4):
        T[ijkl] = psi4[tuple(np.bincount(ijkl, minlength=d))]
    return T


def _check(X, weights):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"the plug-in bandwidth needs data of shape (n, d); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("the plug-in bandwidth: the data contain NaN or infinite values")
    w = check_sample_weight(weights, X.shape[0], xp=np, name="weights")
    if w is None:
        w = np.ones(X.shape[0])
    keep = w > 0
    X, w = X[keep], w[keep] / float(np.sum(w[keep]))
    if X.shape[0] < X.shape[1] + 2:
        raise ValueError(
            f"the plug-in bandwidth in {X.shape[1]} dimensions needs at least {X.shape[1] + 2} points "
            f"with positive weight; got {X.shape[0]}. Use \"scott\" or pass a bandwidth"
        )
    return X, w


def plugin_bandwidth_matrix(X, weights=None) -> np.ndarray:
    """The plug-in bandwidth matrix (d, d) of the gaussian kernel (its covariance) for data X (n, d)
    with optional non-negative weights; the module docstring has the algorithm.

    Raises ValueError for too few points, a singular covariance, or estimated functionals whose
    AMISE has no minimum (suggesting "scott")."""
    X, w = _check(X, weights)
    n, d = X.shape
    neff = 1.0 / float(np.sum(w * w))
    mean = w @ X
    Xc = X - mean
    S = (Xc.T * w) @ Xc / (1.0 - float(np.sum(w * w)))  # unbiased weighted covariance
    if d == 1:  # dpik: scale by min(sd, IQR / 1.349)
        order = np.argsort(X[:, 0], kind="stable")
        q1, q3 = _weighted_quantiles(X[order, 0], w[order], [0.25, 0.75])
        sd = math.sqrt(S[0, 0])
        scale = min(sd, (q3 - q1) / 1.349) if q3 > q1 else sd
        if not scale > 0:
            raise ValueError('the plug-in bandwidth needs at least 2 distinct values; use "scott" or pass a bandwidth')
        T = _psi4_tensor(Xc / scale, w, neff)
        psi4 = float(T[0, 0, 0, 0])
        if not psi4 > 0:
            raise ValueError('the plug-in estimate of ψ₄ is not positive on these data; use "scott" or "sj"')
        h = (1.0 / (2.0 * math.sqrt(math.pi) * psi4 * neff)) ** 0.2
        return np.array([[(h * scale) ** 2]])
    vals, vecs = np.linalg.eigh(S)
    if not vals[0] > 1e-12 * vals[-1]:
        raise ValueError(
            "the data covariance is singular (constant or collinear features), so the data cannot be "
            'sphered for the plug-in bandwidth; drop those features or use "scott" with a float bandwidth'
        )
    S_half = (vecs * np.sqrt(vals)) @ vecs.T
    X_star = Xc @ (vecs / np.sqrt(vals)) @ vecs.T
    T = _psi4_tensor(X_star, w, neff).reshape(d * d, d * d)
    H_star = _minimise_amise(T, d, neff)
    H = S_half @ H_star @ S_half
    return 0.5 * (H + H.T)


def _minimise_amise(T, d, neff):
    """argmin over H = A² (A symmetric) of (4π)^(−d/2) / (n |H|^(1/2)) + ¼ vec(H)ᵀ T vec(H)."""
    rows, cols = np.tril_indices(d)
    c_var = (4.0 * math.pi) ** (-d / 2.0) / neff

    def unpack(v):
        A = np.zeros((d, d))
        A[rows, cols] = v
        A[cols, rows] = v
        return A @ A

    def amise(v):
        H = unpack(v)
        det = np.linalg.det(H)
        if not det > 0:
            return np.inf
        h = H.reshape(-1)
        return c_var / math.sqrt(det) + 0.25 * float(h @ T @ h)

    start_scale = (4.0 / (neff * (d + 2))) ** (1.0 / (d + 4))  # √ of the normal-scale Hns
    v0 = (start_scale * np.eye(d))[rows, cols]
    f0 = amise(v0)
    result = minimize(lambda v: amise(v) / f0, v0, method="BFGS", options={"gtol": 1e-10, "maxiter": 1000})
    H = unpack(result.x)
    eig = np.linalg.eigvalsh(H)
    if not (np.all(np.isfinite(H)) and eig[0] > 0 and eig[-1] < 100.0 * start_scale**2 and result.fun > 0):
        raise ValueError(
            'the estimated AMISE of the plug-in bandwidth has no minimum on these data (its fourth-order '
            'functionals are too noisy); use "scott" or "cv"'
        )
    return H
