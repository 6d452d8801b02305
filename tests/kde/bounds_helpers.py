"""Reference pieces for the bounded-KDE tests: a brute-force NumPy reflection estimator, an
independent fold, and Gauss–Legendre quadrature over pieces on which the density is smooth."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import logsumexp

from fastdensity.kde._kernels import kernel_profile_log, log_kernel_norm

GL_NODES, GL_WEIGHTS = np.polynomial.legendre.leggauss(8)  # exact for polynomials of degree <= 15


def fold_ref(y, a, b):
    """The point of [a, b] in the orbit of y under the reflections at a and b (a loop, not a formula)."""
    y = float(y)
    while y < a or y > b:
        if y < a:
            y = 2 * a - y
        if y > b:
            y = 2 * b - y
    return y


def plain_log_density(X, w, kernel, H, lam, Q):
    """log f̂ of the unbounded KDE at Q, brute force (weights w, adaptive factors lam)."""
    n, d = X.shape
    L = np.linalg.cholesky(H)
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    lam = np.ones(n) if lam is None else np.asarray(lam, dtype=np.float64)
    diff = Q[:, None, :] - X[None, :, :]
    white = np.linalg.solve(L, diff.reshape(-1, d).T).T.reshape(len(Q), n, d)
    r = np.linalg.norm(white, axis=2) / lam
    logk = kernel_profile_log(kernel, r) - d * np.log(lam) + np.log(w / w.sum())
    return logsumexp(logk, axis=1) + log_kernel_norm(kernel, d) - np.sum(np.log(np.diag(L)))


def feature_images(a, b, tiles):
    """(scale, shift) of every image of one feature: the identity, one reflection per finite bound,
    and for two bounds every tile |m| <= tiles, derived by composing reflections numerically."""
    if np.isinf(a) and np.isinf(b):
        return [(1.0, 0.0)]
    if np.isinf(b):
        return [(1.0, 0.0), (-1.0, 2 * a)]
    if np.isinf(a):
        return [(1.0, 0.0), (-1.0, 2 * b)]
    out = {(1.0, 0.0)}
    frontier = [(1.0, 0.0)]
    for _ in range(2 * tiles):  # words in the two reflections z -> 2a - z, z -> 2b - z
        new = []
        for s, t in frontier:
            for c in (a, b):
                g = (-s, 2 * c - t)  # reflect after (s, t): z -> 2c - (s z + t)
                if g not in out:
                    out.add(g)
                    new.append(g)
        frontier = new
    return sorted(out)


def reflected_log_density(X, w, kernel, H, lam, Q, low, high, tiles=10):
    """The reflection estimator log Σ_g f̂(g q) for q in the box, -inf outside, with many images."""
    Q = np.asarray(Q, dtype=np.float64)
    inside = np.all((Q >= low) & (Q <= high), axis=1)
    out = np.full(len(Q), -np.inf)
    per = [feature_images(low[i], high[i], tiles) for i in range(Q.shape[1])]
    terms = []
    for combo in itertools.product(*per):
        s = np.array([c[0] for c in combo])
        t = np.array([c[1] for c in combo])
        terms.append(plain_log_density(X, w, kernel, H, lam, Q[inside] * s + t))
    out[inside] = logsumexp(np.stack(terms), axis=0)
    return out


def pieces(breaks, a, b, max_len):
    """Sorted cut points of [a, b]: the breaks inside, and more so that no piece exceeds max_len."""
    cuts = np.unique(np.concatenate([[a, b], np.asarray(breaks)[(breaks > a) & (breaks < b)]]))
    out = [cuts[0]]
    for lo, hi in zip(cuts[:-1], cuts[1:]):
        k = int(np.ceil((hi - lo) / max_len))
        out.extend(lo + (hi - lo) * np.arange(1, k + 1) / k)
    return np.array(out)


def gauss_nodes(cuts):
    """Nodes and weights of the 8-point Gauss–Legendre rule on every piece [cuts[i], cuts[i+1]]."""
    lo, hi = cuts[:-1, None], cuts[1:, None]
    x = 0.5 * (hi + lo) + 0.5 * (hi - lo) * GL_NODES
    return x, 0.5 * (hi - lo) * GL_WEIGHTS


def integrate_1d(kde, cuts):
    """∫ exp(score) over [cuts[0], cuts[-1]] by Gauss–Legendre on each piece; and the per-piece masses."""
    x, wts = gauss_nodes(cuts)
    dens = np.exp(kde.score_samples(x.reshape(-1, 1))).reshape(x.shape)
    per_piece = np.sum(dens * wts, axis=1)
    return float(np.sum(per_piece)), per_piece


def integrate_2d(kde, cuts_x, cuts_y, batch=1 << 18):
    """∫∫ exp(score) by the tensor 8 × 8 Gauss–Legendre rule on every cell of the two cut lists
    (the nodes scored in batches of ``batch`` rows)."""
    x, wx = gauss_nodes(cuts_x)
    y, wy = gauss_nodes(cuts_y)
    xs, wxs, ys, wys = x.ravel(), wx.ravel(), y.ravel(), wy.ravel()
    rows = max(1, batch // len(xs))
    total = 0.0
    for j in range(0, len(ys), rows):
        yj, wj = ys[j: j + rows], wys[j: j + rows]
        q = np.column_stack([np.tile(xs, len(yj)), np.repeat(yj, len(xs))])
        dens = np.exp(kde.score_samples(q)).reshape(len(yj), len(xs))
        total += float(wj @ (dens @ wxs))
    return total


def cell_masses_2d(kde, edges_x, edges_y, per_cell=8):
    """Probability of each cell of the grid edges_x × edges_y (quadrature with sub-cells)."""
    out = np.empty((len(edges_x) - 1, len(edges_y) - 1))
    for i in range(len(edges_x) - 1):
        for j in range(len(edges_y) - 1):
            cx = np.linspace(edges_x[i], edges_x[i + 1], per_cell + 1)
            cy = np.linspace(edges_y[j], edges_y[j + 1], per_cell + 1)
            out[i, j] = integrate_2d(kde, cx, cy)
    return out
