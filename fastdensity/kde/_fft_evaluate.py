"""``KernelDensity.evaluate_grid``: the binned FFT log density on a regular grid (d ≤ 3)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._backend import array_kind, get_op
from .._backend._validation import Options, check_parameter
from ._fft_checks import check_grid_model
from ._fft_direct_cpu import convolve_separable, direct_cost
from ._engine import engine_for
from ._fft_bound import NEGLIGIBLE, padding_radius, profile, support_radius
from ._kernels import COMPACT_KERNELS
from ._fft_grid import (
    bandwidth_geometry, binned_weights, check_fft_size, convolve, data_extremes,
    fft_rounding, grid_bounds, grid_shape, offset_radii, padded_shape, separable_factors,
)


def plan_grid(est, grid_points, bounds):
    """The checked layout: (lo, step, shape) of the output grid and of the extended grid that is
    binned (the output grid plus whole cells on each side, out to the training data that lie
    within the kernel's reach of it), the kernel's half-widths and the padded FFT shape."""
    d = est.n_features_in_
    check_grid_model(est, d, "evaluate_grid")
    shape = np.array(grid_shape(grid_points, d))
    A, H_diag, Hinv_diag, log_cn = bandwidth_geometry(est)
    reach = support_radius(est.kernel) * np.sqrt(H_diag)  # beyond it along an axis, K < 2^-60 K(0)
    data_lo, data_hi = data_extremes(est)
    if bounds is None:
        pad = padding_radius(est.kernel) * np.sqrt(H_diag)
        lo, hi = data_lo - pad, data_hi + pad
    else:
        lo, hi = grid_bounds(bounds, d)
    step = (hi - lo) / (shape - 1)
    if not np.all(step > 0) or not np.all(np.isfinite(step)):
        raise ValueError(f"bounds give grid spacings {step.tolist()}; they must be positive and finite")
    below = np.ceil(np.maximum(lo - np.maximum(data_lo, lo - reach), 0.0) / step).astype(np.int64)
    above = np.ceil(np.maximum(np.minimum(data_hi, hi + reach) - hi, 0.0) / step).astype(np.int64)
    ext_shape = shape + below + above
    half = np.minimum(ext_shape - 1, np.ceil(reach / step)).astype(np.int64)
    padded = padded_shape(tuple(int(n) for n in ext_shape), tuple(int(L) for L in half))
    check_fft_size(padded, "evaluate_grid")
    return dict(lo=lo, step=step, shape=tuple(int(n) for n in shape), ext_lo=lo - below * step,
                ext_shape=tuple(int(n) for n in ext_shape), below=below, half=tuple(int(L) for L in half),
                padded=padded, A=A, log_cn=log_cn)


BELOW_FLOOR = ("-inf", "recompute")


# A scipy.fft call costs about this many flops' worth of time besides its transform (argument
# checks, plan lookup, the result's allocation: 10–15 µs measured 2026-12-07 on 2 cores, where
# its transforms ran at about 5 GFlop/s).
FFT_CALL_FLOPS = 5e4


def direct_is_cheaper(plan) -> bool:
    """Whether the separable direct convolution (``_fft_direct_cpu``) costs at most the padded
    FFTs: its multiply-adds against the three transforms' 2.5 N log2 N flops each plus their call
    overhead (per unit the two ran at about the same rate on 2 cores, measured 2026-12-07:
    256 × 256 nodes with 45-tap factors, 5.9·10⁶ multiply-adds in 0.5–1.1 ms against 9.9·10⁶
    flops of FFT in 0.6–1.4 ms; 1-D, 1,024 nodes and 121 taps: 0.013 ms against 0.04 ms)."""
    N = math.prod(plan["padded"])
    fft_flops = 3 * (2.5 * N * math.log2(max(N, 2)) + FFT_CALL_FLOPS)
    return direct_cost(plan["ext_shape"], plan["shape"], plan["half"]) <= fft_flops


def window_factors(est, plan, window, xp):
    """The window as one 1-D factor per axis, on the host: the window itself in 1-D, a
    per-feature gaussian's factors (``separable_factors``) in 2-D and 3-D; None otherwise (a
    non-separable window, or device arrays). Both the direct convolution and the FFT's spectrum
    use them."""
    if xp is not np:
        return None
    if len(plan["shape"]) == 1:
        return (window,)
    return separable_factors(est.kernel, plan["A"], plan["step"], plan["half"])


def evaluate_grid(est, grid_points=None, bounds=None, below_floor="-inf"):
    """(coordinates, log density) of the binned FFT estimate; see ``KernelDensity.evaluate_grid``."""
    check_is_fitted(est, "training_data_")
    check_parameter("below_floor", below_floor, Options(BELOW_FLOOR))
    plan = plan_grid(est, grid_points, bounds)
    X = est.training_data_
    engine = engine_for(X)
    xp = engine.xp
    with engine.scope(X, est.n_jobs):
        counts = binned_weights(est, plan["ext_lo"], plan["step"], plan["ext_shape"])
        r = offset_radii(plan["A"], plan["step"], plan["half"])
        window = profile(est.kernel, r)  # unit peak; c_n is applied in log space
        factors = window_factors(est, plan, window, xp)
        if factors is not None and direct_is_cheaper(plan):
            # one axis at a time: exact to a few hundred ulps relative, no rounding floor
            values = convolve_separable(counts, factors, plan["half"], plan["below"], plan["shape"])
            floor = NEGLIGIBLE  # the kernel cut where k < 2^-60 (unit peak, Σ c ≤ 1)
        else:
            (values,) = convolve(xp, counts, [window], plan["padded"], plan["half"], [factors])
            crop = tuple(slice(int(b), int(b) + n) for b, n in zip(plan["below"], plan["shape"]))
            values = values[crop]
            # the FFT's rounding floor, plus the kernel cut where k < 2^-60 (unit peak, Σ c ≤ 1)
            floor = fft_rounding(plan["padded"], xp, counts, window) + NEGLIGIBLE
        log_density = _honest_log(est, engine, xp, values, floor, counts, window, plan, below_floor)
    dtype = np.float32 if X.dtype == np.float32 else np.float64
    coords = tuple(xp.asarray(lo + step * np.arange(n), dtype=dtype)
                   for lo, step, n in zip(plan["lo"], plan["step"], plan["shape"]))
    kind = getattr(est, "_fit_kind", None) or array_kind(X)
    out = log_density.astype(dtype)
    return tuple(engine.to_caller(c, kind) for c in coords), engine.to_caller(out, kind)


def _honest_log(est, engine, xp, values, floor, counts, window, plan, below_floor):
    """log c_n f̃ at the nodes, f̃ the FFT result; where f̃ ≤ ``floor`` (rounding noise) the binned
    sum Σ_m c_m k(‖L⁻¹(g − m)‖) is redone directly in log space by the exact engine's sum over the
    occupied nodes of the extended grid. For a compact kernel, the nodes that no occupied node's
    kernel reaches are found first by convolving the 0/1 occupancy with the 0/1 window (integer
    counts, exact to far better than ½ by the FFT's floor) and get −inf without a sum."""
    noisy = values <= floor
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xp.log(xp.where(noisy, 1.0, values)) + plan["log_cn"]
    if not bool(xp.any(noisy)):
        return out
    if est.kernel in COMPACT_KERNELS:
        occupancy = (counts > 0).astype(xp.float64)
        (reached,) = convolve(xp, occupancy, [(window > 0).astype(np.float64)], plan["padded"], plan["half"])
        crop = tuple(slice(int(b), int(b) + n) for b, n in zip(plan["below"], plan["shape"]))
        unreached = noisy & (reached[crop] < 0.5)
        out[unreached] = -np.inf
        noisy = noisy & ~unreached
        if not bool(xp.any(noisy)):
            return out
    if below_floor == "-inf":
        out[noisy] = -np.inf
        return out
    flat_counts = counts.reshape(-1)
    occupied = xp.nonzero(flat_counts > 0)[0]
    if occupied.shape[0] and xp is np:  # pruned by blocks, without loss (``_fft_tails_cpu``)
        from ._fft_tails_cpu import log_binned_sum

        noisy_index = np.stack(np.nonzero(noisy), axis=1) + plan["below"]
        out[noisy] = log_binned_sum(counts, plan["ext_lo"], plan["step"], plan["A"], est._centre(), est.kernel,
                                    noisy_index) + plan["log_cn"]
        return out
    if occupied.shape[0] == 0:  # no training point within the kernel's reach: the exact engine
        nodes = xp.stack(xp.nonzero(noisy), axis=1) * xp.asarray(plan["step"]) + xp.asarray(plan["lo"])
        out[noisy] = engine.log_density(est, nodes)
        return out
    node_index = xp.stack(xp.unravel_index(occupied, plan["ext_shape"]), axis=1)
    noisy_index = xp.stack(xp.nonzero(noisy), axis=1) + xp.asarray(plan["below"])
    centre = xp.asarray(est._centre())
    ext_lo = xp.asarray(plan["ext_lo"])
    step = xp.asarray(plan["step"])
    A_t = xp.asarray(np.ascontiguousarray(plan["A"].T))
    train = ((node_index * step + ext_lo) - centre) @ A_t  # whitened node coordinates (rows)
    queries = ((noisy_index * step + ext_lo) - centre) @ A_t
    kde_logsum = get_op("kde_logsum", engine.name)
    direct = kde_logsum(xp.ascontiguousarray(queries), None, xp.log(flat_counts[occupied]), est.kernel, None,
                        train_t=xp.ascontiguousarray(train.T))
    out[noisy] = direct + plan["log_cn"]
    return out
