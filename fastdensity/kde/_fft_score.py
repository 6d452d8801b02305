"""``algorithm="fft"``: scoring by multilinear interpolation of a fine binned grid, with a bound.

The grid covers the training data's box padded by the kernel's support (compact kernels) or by
6 (gaussian) or 12 (exponential) bandwidths along each axis, and holds two fields, both
convolutions of the binned weights c by padded real FFTs (``_fft_grid``): the binned density f̃ = c ⊛ K_H and an error bound B = c ⊛ (β_D + β_2D), where β_ρ (from
``_fft_bound.cell_bound``) bounds the multilinear interpolation error of one kernel over a
whitened ball of radius ρ around an offset, and D = Σ_i δ_i √((H⁻¹)_ii) is the whitened diameter
of a cell (δ the node spacing). For a query x in a cell with corners g and interpolation weights
λ, the returned density f̂(x) = Σ λ_g f̃(g) satisfies

    |f̂(x) − f(x)| ≤ E(x) = Σ λ_g B(g) + E₀:

* binning: f̃(g) − f(g) = Σ_j w_j [I K_H(g − ·) − K_H(g − ·)](x_j), each term bounded over x_j's
  cell, which lies within whitened distance D of each of its corners m, by β_D(g − m); summed
  with x_j's binning weights this is (c ⊛ β_D)(g);
* interpolation: f(x) − Σ λ_g f(g) = Σ_j w_j [K_H(· − x_j) − I K_H(· − x_j)](x), bounded over the
  query's cell by β_D(g − x_j) ≤ β_2D(g − m) for each corner m of x_j's cell, hence by
  (c ⊛ β_2D)(g) for every corner g of the query's cell;
* E₀: the FFTs' rounding floors (``fft_rounding``) of both fields and the kernel's cut beyond the
  sampled window (K_H and β there are below their values at its edge radius).

β uses the smaller of (1) and (2) of ``_fft_bound`` away from the kernel's non-smooth radii, and
(2), the kernel's oscillation over the ball, near them. So the bound is O(δ²) relative to the
density for the gaussian, biweight and triweight kernels, and adapts to the data for the others:
their O(δ) part is the weight of the training points whose kink, jump or cone point lies within
about 2D of the query's cell. In 2-D and 3-D the kernels with a kink or jump (tophat,
epanechnikov, linear, cosine; exponential at its cone point) need a loose ``rtol`` (about 1e-2 to
1e-1) for the grid to answer most queries within the scoring budget; the rest go to the exact
engine, so the guarantee holds at any ``rtol``, at the exact engine's cost.

A query is answered from the grid when E(x) ≤ atol + rtol (f̂(x) − E(x)), which guarantees
|f̂ − f| ≤ atol + rtol f; every other query (outside the grid, or with too large a bound, as in
the far tails or where a compact kernel's density is 0) is computed by the exact engine.
"""

from __future__ import annotations

import math

import numpy as np

from ._engine import engine_for
from ._fft_bound import NEGLIGIBLE, cell_bound, padding_radius, profile, smooth_order, support_radius
from ._kernels import COMPACT_KERNELS
from ._fft_grid import (
    bandwidth_geometry, binned_weights, check_fft_size, convolve, data_extremes, fft_rounding, offset_radii,
    padded_shape,
)

# atol = rtol = 0 (exact values, the defaults) mean this relative tolerance for algorithm="fft".
DEFAULT_RTOL = 1e-3
# The most points of the padded FFT of the scoring grid, per number of features (2^24: 128 MiB per
# float64 array, a few seconds to build on 2 cores; for 10⁵ normal points in 2-D with Scott's
# bandwidth it answers every query of the bulk at rtol = 1e-3, where 2^22 answered almost none).
SCORING_BUDGET = {1: 1 << 20, 2: 1 << 24, 3: 1 << 24}


def tolerances(est):
    """(atol, rtol) that the fft scoring guarantees."""
    atol, rtol = float(est.atol), float(est.rtol)
    if atol == 0.0 and rtol == 0.0:
        rtol = DEFAULT_RTOL
    return atol, rtol


def _layout(s, lo, span, H_diag, Hinv_diag, r_unit):
    """The grid for spacing s (in units of √H_ii per axis): (step, shape, half, padded, D, curvature)."""
    step = s * np.sqrt(H_diag)
    shape = np.maximum(np.ceil(span / step).astype(np.int64) + 1, 2)
    D = float(np.sum(step * np.sqrt(Hinv_diag)))
    curvature = float(np.sum(step * step * Hinv_diag)) / 8.0
    edge = r_unit + 2.0 * D  # the window's radius: β_2D vanishes (compact) or is negligible beyond
    half = np.minimum(shape - 1, np.ceil(edge * np.sqrt(H_diag) / step)).astype(np.int64)
    padded = padded_shape(tuple(int(n) for n in shape), tuple(int(L) for L in half))
    return step, tuple(int(n) for n in shape), tuple(int(L) for L in half), padded, D, curvature, edge


def plan_scoring_grid(est):
    """The scoring grid's layout: the finest spacing within :data:`SCORING_BUDGET` but no finer
    than the tolerance needs (s = ¼ √(rtol/d) bandwidths for the smooth kernels, rtol/(10 d) for
    the others)."""
    d = est.n_features_in_
    A, H_diag, Hinv_diag, log_cn = bandwidth_geometry(est)
    r_unit = support_radius(est.kernel)
    data_lo, data_hi = data_extremes(est)
    # The data's box padded by 1.5 × evaluate_grid's padding (6 bandwidths for the gaussian, 12
    # for the exponential, the support of a compact kernel): queries beyond go to the exact engine.
    pad_unit = padding_radius(est.kernel) * (1.0 if est.kernel in COMPACT_KERNELS else 1.5)
    reach = pad_unit * np.sqrt(H_diag)
    lo, hi = data_lo - reach, data_hi + reach
    span = hi - lo
    _, rtol = tolerances(est)
    rtol = rtol if rtol > 0 else DEFAULT_RTOL
    s_tol = 0.25 * math.sqrt(rtol / d) if smooth_order(est.kernel) == 2 else 0.1 * rtol / d
    budget = SCORING_BUDGET[d]
    s_budget = float(np.prod((span + 2 * reach) / np.sqrt(H_diag)) / budget) ** (1.0 / d)
    s = max(s_tol, s_budget)
    while True:
        layout = _layout(s, lo, span, H_diag, Hinv_diag, r_unit)
        if math.prod(layout[3]) <= budget:
            break
        s *= 1.05
    check_fft_size(layout[3], "algorithm='fft'")
    step, shape, half, padded, D, curvature, edge = layout
    return dict(lo=lo, step=step, shape=shape, half=half, padded=padded, D=D, curvature=curvature,
                edge=edge, A=A, log_cn=log_cn)


def build_scoring_grid(est):
    """The two fields (f̃ and B, stacked as (2, N) in the training data's namespace) and E₀."""
    plan = plan_scoring_grid(est)
    X = est.training_data_
    engine = engine_for(X)
    xp = engine.xp
    kernel = est.kernel
    cn = math.exp(plan["log_cn"])
    with engine.scope(X, est.n_jobs):
        counts = binned_weights(est, plan["lo"], plan["step"], plan["shape"])
        r = offset_radii(plan["A"], plan["step"], plan["half"])
        D, curvature = plan["D"], plan["curvature"]
        window = cn * profile(kernel, r)
        beta = cn * (cell_bound(kernel, r, D, curvature) + cell_bound(kernel, r, 2 * D, curvature))
        density, bound = convolve(xp, counts, [window, beta], plan["padded"], plan["half"])
        # Offsets outside the window lie beyond the edge radius (or beyond the grid): there K_H
        # and β are 0 for a compact kernel, and below their (decreasing) values at the edge else.
        edge = np.array(plan["edge"])
        cut = 0.0 if kernel in COMPACT_KERNELS else cn * float(
            profile(kernel, edge) + cell_bound(kernel, edge, D, curvature)
            + cell_bound(kernel, edge, 2 * D, curvature) + NEGLIGIBLE)
        e0 = (fft_rounding(plan["padded"], xp, counts, window)
              + fft_rounding(plan["padded"], xp, counts, beta) + cut)
        fields = xp.stack([density.reshape(-1), xp.maximum(bound, 0.0).reshape(-1)])
    return dict(lo=plan["lo"], step=plan["step"], shape=plan["shape"], fields=fields, e0=e0,
                namespace=xp)


def scoring_grid(est, xp):
    """The cached scoring grid, its fields in namespace ``xp``."""
    cache = est._cache()
    if "fft_grid" not in cache:
        cache["fft_grid"] = build_scoring_grid(est)
    grid = cache["fft_grid"]
    if grid["namespace"] is not xp:
        key = ("fft_fields", xp.__name__)
        if key not in cache:
            from .._backend._device import to_host

            cache[key] = xp.asarray(to_host(grid["fields"])) if xp is not np else np.asarray(to_host(grid["fields"]))
        return grid, cache[key]
    return grid, grid["fields"]


def interpolate(xp, grid, fields, X):
    """(f̂, Σ λ B, inside) at the rows of ``X`` (m, d): multilinear interpolation of both fields;
    ``inside`` marks the rows within the grid (the others get zeros)."""
    shape = grid["shape"]
    d = len(shape)
    lo = xp.asarray(grid["lo"])
    inv = xp.asarray(1.0 / grid["step"])
    sizes = xp.asarray(np.asarray(shape, dtype=np.float64))
    t = (X.astype(xp.float64) - lo) * inv
    inside = xp.all((t >= 0) & (t <= sizes - 1), axis=1)
    t = xp.where(inside[:, None], t, 0.0)
    k = xp.minimum(xp.floor(t), sizes - 2).astype(xp.int64)
    f = t - k
    strides = [math.prod(shape[i + 1:]) for i in range(d)]
    out = xp.zeros((2, X.shape[0]), dtype=xp.float64)
    for corner in range(2**d):
        index = xp.zeros(X.shape[0], dtype=xp.int64)
        weight = xp.ones(X.shape[0], dtype=xp.float64)
        for i in range(d):
            up = (corner >> (d - 1 - i)) & 1
            index = index + (k[:, i] + up) * strides[i]
            weight = weight * (f[:, i] if up else 1.0 - f[:, i])
        out += weight * fields[:, index]
    out *= inside
    return out[0], out[1], inside


def fft_log_density(est, engine, X):
    """Log densities of validated queries ``X`` (m, d) by the fft algorithm (float64, ``engine.xp``)."""
    from ._fft_checks import check_grid_model

    check_grid_model(est, X.shape[1], "algorithm='fft'")  # also after set_params without a refit
    xp = engine.xp
    grid, fields = scoring_grid(est, xp)
    atol, rtol = tolerances(est)
    if xp is np:
        from ._fft_interp_cpu import interpolate_cpu

        value, bound, inside = interpolate_cpu(grid, fields, X)
    else:
        value, bound, inside = interpolate(xp, grid, fields, X)
    # plus the rounding of the interpolation itself (2^d terms of each field, a few ulps each)
    error = bound + grid["e0"] + 2.0**-50 * (xp.abs(value) + bound)
    ok = inside & (value > error) & (error <= atol + rtol * (value - error))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xp.log(xp.where(ok, value, 1.0))
    rest = xp.nonzero(~ok)[0]
    if rest.shape[0]:
        out[rest] = engine.log_density(est, X[rest])
    return out
