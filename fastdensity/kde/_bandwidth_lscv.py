"""Cross-validated bandwidth matrices: least squares ("lscv", "lscv_diag") and likelihood ("mlcv",
"mlcv_diag"), full or diagonal, for the gaussian kernel (its covariance H; other kernels get the
same covariance, converted as the rules are).

With weights w (Σw = 1; equal weights 1/n) and the leave-one-out estimate
f̂₋ᵢ(x) = Σ_{j≠i} w_j φ_H(x − X_j) / (1 − w_i):

* LSCV(H) = ∫ f̂² − 2 Σ_i w_i f̂₋ᵢ(X_i) = Σ_ij w_i w_j φ_{2H}(X_i − X_j) − 2 Σ_i w_i f̂₋ᵢ(X_i), the
  unbiased estimate of the integrated squared error minus ∫f² (Rudemo 1982, Bowman 1984; the
  multivariate form of Sain, Baggerly & Scott 1994, as ``ks::Hlscv``'s ``lscv.mat``);
* MLCV(H) = Σ_i w_i log f̂₋ᵢ(X_i), maximised (Habbema et al. 1974, Duin 1976).

Each is optimised by BFGS over H = L Lᵀ, L lower triangular with a log-diagonal ("lscv", "mlcv") or
H diagonal with log entries ("…_diag"), from the normal-scale matrix (4 / (n (d + 2)))^(2/(d+4)) S.
The pairs are formed once (O(n²) memory, limited to 1 GiB: n up to about 5000 in 2-D).
LSCV is known to be variable and to have local minima (Wand & Jones 1995, §4.7). Duplicated points
make both criteria unbounded as H → 0 (ks warns of the same): they raise, as does an optimum whose
matrix has shrunk below 1e-6 of the start's scale.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize

from .._backend._validation import check_sample_weight

__all__ = ["CV_MATRIX_RULES", "cv_bandwidth_matrix"]

CV_MATRIX_RULES = ("lscv", "lscv_diag", "mlcv", "mlcv_diag")
_MEMORY_LIMIT = 2**30  # bytes of pair arrays (about n = 5000 in 2-D)


def _check(X, weights, rule):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] < 3:
        raise ValueError(f'bandwidth "{rule}" needs at least 3 points of shape (n, d); got shape {X.shape}')
    if not np.all(np.isfinite(X)):
        raise ValueError(f'bandwidth "{rule}": the data contain NaN or infinite values')
    w = check_sample_weight(weights, X.shape[0], xp=np, name="weights")
    if w is None:
        w = np.ones(X.shape[0])
    keep = w > 0
    X, w = X[keep], w[keep] / float(np.sum(w[keep]))
    if X.shape[0] < X.shape[1] + 2:
        raise ValueError(
            f'bandwidth "{rule}" in {X.shape[1]} dimensions needs at least {X.shape[1] + 2} points with '
            f"positive weight; got {X.shape[0]}"
        )
    return X, w


class _Pairs:
    """The differences X_i − X_j (i < j) and their weights, formed once; each criterion with its
    gradient with respect to L (H = L Lᵀ).

    For a sum F = Σ_p a_p φ_{cH}(u_p): ∂F/∂H = ½ Σ_p a_p φ_p (L⁻ᵀ z_p z_pᵀ L⁻¹ / c − H⁻¹), z = L⁻¹ u,
    and ∂F/∂L = 2 (∂F/∂H) L."""

    def __init__(self, X, w):
        n = X.shape[0]
        self.i, self.j = np.triu_indices(n, 1)
        self.D = X[self.i] - X[self.j]
        self.ww = w[self.i] * w[self.j]
        self.w = w
        self.n, self.d = X.shape

    def _z(self, L):
        Z = solve_triangular(L, self.D.T, lower=True, check_finite=False)  # (d, P)
        return Z, np.sum(Z * Z, axis=0)

    def _grad_L(self, L, Z, a, c, total):
        """∂/∂L of Σ_p a_p φ_{cH}(u_p) (given as ``total``), from the terms a_p φ_p (``a``)."""
        Linv = solve_triangular(L, np.eye(self.d), lower=True, check_finite=False)
        M = (Z * a) @ Z.T / c  # Σ a φ z zᵀ / c
        G_H = 0.5 * (Linv.T @ M @ Linv - total * (Linv.T @ Linv))
        return 2.0 * G_H @ L

    def lscv(self, L):
        """LSCV(H) and its gradient with respect to L."""
        Z, q = self._z(L)
        d = self.d
        c = (2.0 * math.pi) ** (-d / 2.0) / float(np.prod(np.diagonal(L)))  # φ_H(0)
        k2 = c * 2.0 ** (-d / 2.0) * np.exp(-q / 4.0)  # φ_{2H}(u_p)
        k1 = c * np.exp(-q / 2.0)  # φ_H(u_p)
        a1 = self.ww * (1.0 / (1.0 - self.w[self.i]) + 1.0 / (1.0 - self.w[self.j]))
        t2 = 2.0 * self.ww * k2
        t1 = -2.0 * a1 * k1
        diag = float(np.sum(self.w * self.w)) * c * 2.0 ** (-d / 2.0)
        value = diag + float(np.sum(t2)) + float(np.sum(t1))
        grad = (self._grad_L(L, Z, t2, 2.0, diag + float(np.sum(t2)))  # diag: z = 0, only −H⁻¹
                + self._grad_L(L, Z, t1, 1.0, float(np.sum(t1))))
        return value, grad

    def mlcv(self, L):
        """Σ_i w_i log f̂₋ᵢ(X_i) and its gradient with respect to L."""
        if not hasattr(self, "_order"):  # each point's pairs, grouped by point, built once
            rows = np.concatenate([self.i, self.j])
            self._order = np.argsort(rows, kind="stable")
            self._starts = np.searchsorted(rows[self._order], np.arange(self.n))
            self._counts = np.diff(np.r_[self._starts, rows.size])
            self._log_w_other = np.log(np.concatenate([self.w[self.j], self.w[self.i]]))[self._order]
        Z, q = self._z(L)
        d = self.d
        log_c = -0.5 * d * math.log(2.0 * math.pi) - float(np.sum(np.log(np.diagonal(L))))
        terms = self._log_w_other - 0.5 * np.concatenate([q, q])[self._order]
        top = np.maximum.reduceat(terms, self._starts)  # every point has n − 1 ≥ 2 pairs
        log_sum = top + np.log(np.add.reduceat(np.exp(terms - np.repeat(top, self._counts)), self._starts))
        log_loo = log_sum + log_c - np.log1p(-self.w)  # log f̂₋ᵢ(X_i)
        value = float(self.w @ log_loo)
        # ∂/∂H: pair p = (i, j) enters f̂₋ᵢ with w_j φ_p / (1 − w_i) and f̂₋ⱼ with w_i φ_p / (1 − w_j);
        # log(w_i · w_j φ_p / ((1 − w_i) f̂₋ᵢ)) = log w_j − q/2 − log_sum_i + log w_i.
        lw = np.log(self.w)
        a = (np.exp(lw[self.i] + lw[self.j] - q / 2.0 - log_sum[self.i])
             + np.exp(lw[self.i] + lw[self.j] - q / 2.0 - log_sum[self.j]))
        return value, self._grad_L(L, Z, a, 1.0, float(np.sum(a)))


def cv_bandwidth_matrix(X, weights=None, rule="lscv") -> np.ndarray:
    """The cross-validated bandwidth matrix (d, d) of the gaussian kernel (its covariance) by
    ``rule`` in :data:`CV_MATRIX_RULES`; the module docstring has the criteria.

    Raises ValueError for too few points, a singular covariance, or a degenerate optimum."""
    if rule not in CV_MATRIX_RULES:
        raise ValueError(f"rule must be one of {CV_MATRIX_RULES}; got {rule!r}")
    X, w = _check(X, weights, rule)
    n, d = X.shape
    if np.unique(X, axis=0).shape[0] < n:
        raise ValueError(
            f'bandwidth "{rule}": the data have duplicated points (ties), where the cross-validation '
            'criterion is unbounded as H → 0; use "plugin", "scott" or "cv" (or jitter the data)'
        )
    neff = 1.0 / float(np.sum(w * w))
    Xc = X - w @ X
    S = (Xc.T * w) @ Xc / (1.0 - float(np.sum(w * w)))
    diagonal = rule.endswith("_diag")
    if diagonal:
        S = np.diag(np.diag(S))
    vals = np.linalg.eigvalsh(S)
    if not vals[0] > 1e-12 * vals[-1]:
        raise ValueError(
            f'bandwidth "{rule}": the data covariance is singular (constant or collinear features); '
            "drop those features or pass a bandwidth"
        )
    L0 = np.linalg.cholesky((4.0 / (neff * (d + 2))) ** (2.0 / (d + 4)) * S)
    memory = n * (n - 1) // 2 * (d + 6) * 8  # the pair differences and the per-pair work arrays
    if memory > _MEMORY_LIMIT:
        raise ValueError(
            f'bandwidth "{rule}" keeps the n(n − 1)/2 pair differences in memory: n = {n} in {d}-D needs '
            f"about {memory / 2**30:.1f} GiB (limit {_MEMORY_LIMIT / 2**30:.0f} GiB); subsample the data, "
            'or use "plugin" or "cv"'
        )
    pairs = _Pairs(Xc, w)
    rows, cols = np.tril_indices(d)
    on_diag = rows == cols

    def unpack(v):
        L = np.zeros((d, d))
        if diagonal:
            L[np.arange(d), np.arange(d)] = np.exp(v)
        else:
            vals = np.where(on_diag, np.exp(v), v)
            L[rows, cols] = vals
        return L

    v0 = np.log(np.diagonal(L0)) if diagonal else np.where(on_diag, np.log(np.diagonal(L0)[rows]), L0[rows, cols])
    def grad_v(G_L, v):
        if diagonal:
            return np.diagonal(G_L) * np.exp(v)
        g = G_L[rows, cols]
        return np.where(on_diag, g * np.exp(v), g)

    sign = 1.0 if rule.startswith("lscv") else -1.0  # minimise LSCV, maximise the likelihood
    criterion = pairs.lscv if sign > 0 else pairs.mlcv
    f0 = abs(criterion(L0)[0]) or 1.0

    def objective(v):
        with np.errstate(all="ignore"):
            try:
                value, G_L = criterion(unpack(v))
            except np.linalg.LinAlgError:  # a step to a singular L: reject it
                return np.inf, np.zeros_like(v)
            g = sign * grad_v(G_L, v) / f0
        if not (np.isfinite(value) and np.all(np.isfinite(g))):
            return np.inf, np.zeros_like(v)
        return sign * value / f0, g

    result = minimize(objective, v0, jac=True, method="BFGS", options={"gtol": 1e-9, "maxiter": 500})
    L = unpack(result.x)
    H = L @ L.T
    scale0 = float(np.max(np.diagonal(L0)))
    usable = np.all(np.isfinite(H)) and np.isfinite(result.fun)
    if not (usable and np.min(np.linalg.eigvalsh(H)) > (1e-6 * scale0) ** 2):
        raise ValueError(
            f'the "{rule}" criterion has no usable optimum on these data (duplicated points or a '
            'degenerate minimum); use "scott", "plugin" or "cv"'
        )
    return H
