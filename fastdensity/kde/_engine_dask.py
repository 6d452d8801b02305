"""The Dask engine of ``KernelDensity``: a training set held as a dask array stays sharded.

``fit`` makes one pass over the row blocks (``_dask_moments``: data and weight checks, Σw, the
weighted moments for "scott"/"silverman", the column extremes that centre the whitening), two for
a rule (the second counts rows whose whitened coordinates overflow, the CPU engine's check); only
(d, d)-sized totals come back. The bandwidth, its factor L, the centre and the normaliser are
global, from those totals, so each shard's partial sum is a term of the in-memory sum:

    log p(q) = log c − log|L| + logsumexp_s ( log Σ_{j ∈ s} (w_j / Σw) k(‖L⁻¹(q − x_j)‖) ),

the inner term the CPU engine's ``kde_logsum`` on the shard's whitened rows (a task on the worker
holding the shard), the outer log-sum-exp a balanced tree of ``np.logaddexp`` per query chunk
(depth log₂ of the shards). So densities equal the in-memory fit's to rounding.

The shards' whitened state (rows (d, n_s) in the working dtype, log weights) is built on first
use per dtype and persisted (``dask.persist``: on the workers under ``distributed``, in this
process otherwise), one key per shard, cached in the estimator until the next ``fit``. The small
shared part (L, the centre, the kernel, the normaliser) enters each graph as one named key.

This module has the engine shape of ``_engine.py`` for ``fit`` and ``sample`` (chosen from the
training array by :func:`_engine.engine_for`); scoring goes through :func:`scores_sharded_fit`,
a decorator of ``score_samples`` that routes a dask-fitted model here, because the estimator
chooses the scoring engine from the *queries'* type, and a NumPy or dask query on a sharded model
must run here, never gather the shards.

Supported on dask arrays: a numeric, per-feature or matrix bandwidth or "scott"/"silverman";
every kernel; weights (NumPy or dask); every metric (the non-euclidean ones sum the raw rows per
shard with ``_kde_metric_cpu``, with a scalar bandwidth or the scalar "scott"/"silverman");
``algorithm`` "auto"/"exact" (and the aliases "kd_tree"/"ball_tree"), which run "exact" here.
Refused before any work (ValueError naming this list): the data-driven rules, ``adaptive=True``,
``bounds``, "tree", "fft"; ``backend="cuda"`` (TypeError); ``evaluate_grid`` on a sharded fit
(:func:`not_on_sharded_fit`). ``fd.save`` gathers the rows into the file (``io.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import uuid

import numpy as np

from .._backend import from_host_numpy, get_op
from .._backend._dask import as_row_chunks, fitted_on_dask
from .._backend._namespace import _is_dask_array, common_kind
from . import _bandwidth
from ._dask_moments import block_overflow, data_moments, rule_matrix, scalar_rule, shard_blocks
from ._kde_bandwidth import RULES, bandwidth_matrix
from ._kernels import log_kernel_norm, sample_unit_metric

SUPPORTED = ("a positive float, a (d,) or (d, d) bandwidth, 'scott' or 'silverman'; every metric; "
             "algorithm 'auto' or 'exact'; no adaptive bandwidths and no bounds")
_ALGORITHMS = ("auto", "exact", "kd_tree", "ball_tree")


@dataclasses.dataclass(frozen=True)
class ShardedFit:
    """What ``fit``'s pass left for scoring and sampling: per shard (rows, Σw), Σw, the column
    extremes of all rows, and whether the weights are all equal (then computed as none)."""

    shard_rows: tuple
    shard_totals: tuple
    total: float
    low: np.ndarray
    high: np.ndarray
    equal_weights: bool


@dataclasses.dataclass(frozen=True)
class Shared:
    """The part of the fitted state every shard task reads: one graph key per call."""

    chol: np.ndarray
    centre: np.ndarray
    kernel: str
    log_norm: float
    dtype: np.dtype  # the state's working dtype
    metric: tuple = ("euclidean", None, None, None)  # (name, p, vec, mat) of ``_metric_spec``
    h: float = 1.0  # the scalar bandwidth of a non-euclidean metric


def _refuse(what):
    raise ValueError(f"KernelDensity.fit on a dask array: {what} is not supported; supported: {SUPPORTED}")


# ------------------------------------------------------------------------- shard tasks


def _shard_state(x, w, shared, sharded):
    """(whitened rows (d, n_s) in the working dtype, log weights normalised by the global Σw) of
    one shard, its zero-weight rows dropped (as the CPU engine's state does)."""
    x = np.asarray(x, dtype=np.float64)
    euclidean = shared.metric[0] == "euclidean"
    n_all = sum(sharded.shard_rows)
    if w is None or sharded.equal_weights:
        log_w = np.full(x.shape[0], -np.log(float(n_all)))
    else:
        with np.errstate(divide="ignore"):
            log_w = np.log(np.asarray(w, dtype=np.float64)) - np.log(sharded.total)
    if euclidean:
        train_t = np.ascontiguousarray(_bandwidth.whiten(shared.chol, x - shared.centre).T, dtype=shared.dtype)
    else:  # the metric's kernel sums run on the raw rows, in float64 (as the CPU engine's)
        train_t = np.ascontiguousarray(x.T)
    keep = np.isfinite(log_w)
    if not np.all(keep):
        train_t, log_w = np.ascontiguousarray(train_t[:, keep]), log_w[keep]
    return train_t, log_w


def _whiten_queries(q, shared):
    """Validated, whitened queries of one chunk in the working dtype (the CPU engine's steps)."""
    q = np.asarray(q)
    if q.dtype.kind not in "biuf":
        raise ValueError(f"KernelDensity.score_samples: X must hold numbers; got dtype {q.dtype}")
    q = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise ValueError("Input X contains NaN or infinity.")
    if shared.metric[0] != "euclidean":
        return q
    with np.errstate(over="ignore", invalid="ignore"):
        z = _bandwidth.whiten(shared.chol, q - shared.centre)
        z[np.isnan(z)] = np.inf  # overflowed coordinates: infinitely far (log density −inf)
        return np.ascontiguousarray(z, dtype=shared.dtype)


def _shard_logsum(z, state, shared):
    """log Σ_{j ∈ shard} (w_j / Σw) k(‖z − z_j‖) for each whitened query z."""
    train_t, log_w = state
    if z.shape[0] == 0 or train_t.shape[1] == 0:
        return np.full(z.shape[0], -np.inf)
    metric, p, vec, mat = shared.metric
    if metric != "euclidean":
        from ._kde_metric_cpu import kde_logsum_metric

        return kde_logsum_metric(z, train_t, log_w, shared.kernel, metric, shared.h, None, p=p, vec=vec, mat=mat)
    return get_op("kde_logsum", "cpu")(z, None, log_w, shared.kernel, None, train_t=train_t)


def _finish(total, shared, out_dtype):
    return (total + shared.log_norm).astype(out_dtype, copy=False)


def _draw_rows(x, w, count, seed, equal):
    """``count`` rows of one shard drawn by weight (uniformly for equal weights), float64."""
    x = np.asarray(x, dtype=np.float64)
    gen = np.random.default_rng(seed)
    if equal or w is None:
        idx = gen.integers(0, x.shape[0], size=count)
    else:
        w = np.asarray(w, dtype=np.float64)
        idx = gen.choice(x.shape[0], size=count, p=w / w.sum())
    return x[idx]


# ------------------------------------------------------------------------------ engine


class DaskEngine:
    name = "dask"
    xp = np  # results reach the estimator as NumPy arrays (lazy results bypass it)
    ALGORITHMS = ("exact",)

    def scope(self, X, n_jobs):
        return contextlib.nullcontext()  # the workers' own threads run the shard tasks

    def check_metric(self, est, metric, fitting):
        """Refuse, before any work, what needs the rows in one place (every metric runs here)."""
        bw = est.bandwidth
        if isinstance(bw, str) and bw not in RULES:
            raise ValueError(f"bandwidth must be a positive number, an array or one of {RULES}; got {bw!r}")
        if isinstance(bw, str) and bw not in ("scott", "silverman"):
            _refuse(f"bandwidth={bw!r} (a data-driven rule that needs every row in one place)")
        if est.adaptive:
            _refuse("adaptive=True (its pilot is a density at every training point)")
        if est.bounds is not None:
            _refuse("bounds")
        if est.algorithm not in _ALGORITHMS:
            _refuse(f"algorithm={est.algorithm!r}")

    def _weights(self, sample_weight, X):
        """None, or float64 weights as a dask array with X's row chunks (values checked by the pass)."""
        if sample_weight is None:
            return None
        from .._backend._validation import check_sample_weight

        n = X.shape[0]
        if _is_dask_array(sample_weight):
            if sample_weight.shape != (n,):
                raise ValueError(f"sample_weight.shape == {sample_weight.shape}, expected ({n},)!")
            w = sample_weight
        else:  # in memory already: the host checks and messages
            w = check_sample_weight(np.asarray(sample_weight), n, xp=np)
        return as_row_chunks(w, X.chunks[0])

    def fit_bandwidth(self, est, X, sample_weight):
        import dask

        w = self._weights(sample_weight, X)
        d = X.shape[1]
        rule = est.bandwidth if isinstance(est.bandwidth, str) else None
        chol = None
        if rule is None:  # known before the pass: the pass also checks the overflow
            used, H = bandwidth_matrix(est, X, None)
            chol = _bandwidth.cholesky_bandwidth(H)
        blocks = shard_blocks(X, w)
        moments, per_block = data_moments(blocks, need_scatter=rule is not None, chol=chol)
        if rule is not None:
            if est._metric_spec(d)[0] == "euclidean":
                H = rule_matrix(moments, rule, est.kernel, d)
                used = float(np.sqrt(H[0, 0])) if d == 1 else H
            else:  # metric_bandwidth's scalar rule
                used = scalar_rule(moments, rule, est.kernel, d)
                H = np.eye(d) * used**2
            chol = _bandwidth.cholesky_bandwidth(H)
            overflow = sum(dask.compute(*[dask.delayed(block_overflow)(x, chol) for x, _ in blocks]))
        else:
            overflow = moments.overflow
        if overflow:
            raise ValueError(
                "the training data divided by the bandwidth overflow float64 (data near "
                "1.8e308 with a bandwidth below 1); rescale the data or pass a larger bandwidth"
            )
        est._sharded_fit = ShardedFit(
            tuple(r for r, _ in per_block), tuple(t for _, t in per_block), float(moments.total),
            moments.low, moments.high, bool(w is None or moments.w_min == moments.w_max),
        )
        return w, used, H, None, chol

    # ------------------------------------------------------------------------ state
    def shared(self, est, dtype):
        sharded = est._sharded_fit
        chol = est._bandwidth_cholesky()
        log_norm = log_kernel_norm(est.kernel, est.n_features_in_) - float(np.sum(np.log(np.diag(chol))))
        centre = np.asarray(sharded.low, dtype=np.float64) / 2 + np.asarray(sharded.high, dtype=np.float64) / 2
        metric = est._metric_spec(est.n_features_in_)
        return Shared(chol, centre, est.kernel, log_norm, np.dtype(dtype), metric,
                      float(np.sqrt(est.bandwidth_matrix_[0, 0])))

    def state(self, est, dtype, device=None):
        """(Shared, [persisted per-shard state]) for the working ``dtype``, built once per fit."""
        cache = est._cache()
        key = ("dask", np.dtype(dtype))
        if key not in cache:
            import dask

            shared = self.shared(est, dtype)
            blocks = shard_blocks(est.training_data_, est.sample_weight_)
            states = [dask.delayed(_shard_state)(x, w, shared, est._sharded_fit) for x, w in blocks]
            cache[key] = (shared, list(dask.persist(*states)))
        return cache[key]

    # ---------------------------------------------------------------------- scoring
    def _working_dtype(self, est, query_dtype):
        both32 = (query_dtype == np.float32 and est.training_data_.dtype == np.float32
                  and est._metric_spec(est.n_features_in_)[0] == "euclidean")
        return np.dtype(np.float32 if both32 else np.float64)

    def lazy_log_density(self, est, blocks, query_dtype):
        """[Delayed (rows,) log densities] of the query blocks (Delayed NumPy arrays)."""
        import dask

        from .._backend._dask import tree_reduce

        shared, states = self.state(est, self._working_dtype(est, query_dtype))
        out_dtype = np.float32 if query_dtype == np.float32 else np.float64
        key = dask.delayed(shared, name=f"fastdensity-KernelDensity-shared-{uuid.uuid4().hex}", pure=False,
                           traverse=False)
        results = []
        for q in blocks:
            z = dask.delayed(_whiten_queries)(q, key)
            parts = [dask.delayed(_shard_logsum)(z, s, key) for s in states]
            results.append(dask.delayed(_finish)(tree_reduce(parts, np.logaddexp), key, out_dtype))
        return results, out_dtype

    def log_density(self, est, X):
        """float64 log densities of validated NumPy queries (m, d), computed on the shards."""
        import dask

        results, _ = self.lazy_log_density(est, [dask.delayed(X, traverse=False)], X.dtype)
        return np.asarray(dask.compute(results[0])[0], dtype=np.float64)

    def score_samples(self, est, X):
        """``est.score_samples(X)`` for a model fitted on a dask array: NumPy (or the caller's
        CPU type) for in-memory queries, a lazy dask array with X's row chunks for dask queries."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(est, "training_data_")
        if _is_dask_array(X):
            import dask.array as da

            from .._backend._dask import _check_queries

            X = _check_queries(est, X, "score_samples")
            if not isinstance(X._meta, np.ndarray):
                raise TypeError("KernelDensity fitted on a dask array scores dask arrays of NumPy chunks; got "
                                f"{type(X._meta).__name__} chunks")
            results, out_dtype = self.lazy_log_density(est, list(X.to_delayed()[:, 0]), X.dtype)
            parts = [da.from_delayed(r, shape=(rows,), dtype=out_dtype, meta=np.empty(0, dtype=out_dtype))
                     for r, rows in zip(results, X.chunks[0])]
            return da.concatenate(parts) if len(parts) > 1 else parts[0]
        from .._backend._estimator_input import check_estimator_X

        kind = common_kind(X)
        if kind.on_gpu:
            raise TypeError("KernelDensity fitted on a dask array scores NumPy, CPU or dask arrays; got "
                            f"{kind.namespace} data on a GPU")
        with np.errstate(over="ignore", invalid="ignore"):
            X, kind, _ = check_estimator_X(est, X, reset=False)
        log_density = self.log_density(est, X)
        if X.dtype == np.float32:
            log_density = log_density.astype(np.float32)
        return from_host_numpy(log_density, kind)

    # --------------------------------------------------------------------- sampling
    def sample(self, est, n_samples, seed):
        """Shard counts from a multinomial on the shards' weight totals, rows drawn by weight within
        each shard (a task there), kernel noise as the CPU engine's, the draws in random order."""
        import dask

        sharded = est._sharded_fit
        d = est.n_features_in_
        gen = np.random.default_rng(seed)
        totals = np.asarray(sharded.shard_rows if sharded.equal_weights else sharded.shard_totals, dtype=np.float64)
        counts = gen.multinomial(n_samples, totals / totals.sum())
        seeds = gen.integers(0, 2**63 - 1, size=len(counts), dtype=np.int64)
        blocks = shard_blocks(est.training_data_, est.sample_weight_)
        draws = [dask.delayed(_draw_rows)(x, w, int(c), int(s), sharded.equal_weights)
                 for (x, w), c, s in zip(blocks, counts, seeds) if c > 0]
        rows = np.concatenate(dask.compute(*draws)) if draws else np.empty((0, d))
        rows = rows[gen.permutation(n_samples)]
        metric, p, vec, mat = est._metric_spec(d)
        u = sample_unit_metric(est.kernel, d, n_samples, gen, metric, p, vec, mat)
        out = rows + u @ est._bandwidth_cholesky().T
        return out.astype(est.training_data_.dtype, copy=False)

    def to_caller(self, result, kind):
        return from_host_numpy(result, kind)


DASK_ENGINE = DaskEngine()


def scores_sharded_fit(method):
    """Decorate ``score_samples``: a model fitted on a dask array scores on its shards
    (:meth:`DaskEngine.score_samples`); any other model calls ``method`` unchanged."""

    @functools.wraps(method)
    def wrapper(self, X=None, *args, **kwargs):
        if fitted_on_dask(self):
            return DASK_ENGINE.score_samples(self, X, *args, **kwargs)
        return method(self, X, *args, **kwargs)

    return wrapper


def not_on_sharded_fit(method):
    """Decorate a method that needs every training row in one place (``evaluate_grid``): a model
    fitted on a dask array raises a ValueError saying so, before any work."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if fitted_on_dask(self):
            raise ValueError(
                f"KernelDensity.{method.__name__} needs the training rows in one place; this model was "
                "fitted on a dask array (sharded). Fit on X.compute() for it, or score points with score_samples"
            )
        return method(self, *args, **kwargs)

    return wrapper
