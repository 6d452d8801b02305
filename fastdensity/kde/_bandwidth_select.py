"""``fastdensity.bandwidth.select``: every bandwidth rule on the same data, side by side: the
bandwidth it picks, its K-fold held-out log-likelihood and its fit time, as a table and a plot."""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np

from .._backend import to_host_numpy
from .._backend._validation import Integer, check_parameter, check_sample_weight
from ._kde import KernelDensity
from ._kde_bandwidth import RULES as _RULES
from ._kernels import check_kernel

__all__ = ["BandwidthTable", "select", "DEFAULT_METHODS_1D", "DEFAULT_METHODS"]

DEFAULT_METHODS_1D = ("scott", "silverman", "isj", "sj", "plugin", "cv")
DEFAULT_METHODS = ("scott", "silverman", "plugin", "cv")  # d > 1

# (key, header, format) of each printed column, in display order.
_COLUMNS = (
    ("method", "method", "{}"),
    ("scale", "kernel scale", "{}"),
    ("heldout_log_likelihood", "held-out loglik", "{:.4f}"),
    ("fold_sd", "sd over folds", "{:.4f}"),
    ("fit_seconds", "fit time", "{}"),
)


def _scales(H) -> str:
    """√diag(H): one number in 1-D, two in 2-D, a range beyond."""
    s = np.sqrt(np.diag(np.atleast_2d(H)))
    if s.size == 1:
        return f"{s[0]:#.4g}"
    if s.size == 2:
        return f"{s[0]:#.3g}, {s[1]:#.3g}"
    return f"{s.min():#.3g} .. {s.max():#.3g}"


def _seconds(t) -> str:
    return f"{1e3 * t:.3g} ms" if t < 1 else f"{t:.3g} s"


class BandwidthTable:
    """The result of :func:`select`: one row (a dict) per method, in the order given.

    Keys of each row: ``method`` (the label: the rule's name, or the number given), ``bandwidth``
    (``KernelDensity.bandwidth_`` fitted on all the data; None if the method failed),
    ``bandwidth_matrix`` (H, (d, d)), ``heldout_log_likelihood`` (the mean log density of every
    point when it was held out, weighted by ``sample_weight``; NaN if the method failed, −inf if
    some held-out point got zero density), ``fold_log_likelihoods`` (the same mean per fold),
    ``fold_sd`` (their standard deviation), ``fit_seconds`` (the wall-clock time of the fit on all
    the data, rule included, after the folds' fits compiled what they needed) and ``note`` (the
    error or the warnings, else None). ``str(table)`` is an aligned text table, notes below it.
    Indexing by an integer gives a row, by a key the column as a list; :attr:`best` is the row with
    the highest held-out log-likelihood; :meth:`plot` draws the comparison.
    """

    columns = ("method", "bandwidth", "bandwidth_matrix", "heldout_log_likelihood",
               "fold_log_likelihoods", "fold_sd", "fit_seconds", "note")

    def __init__(self, rows, *, n_samples, n_features, kernel, n_folds, random_state):
        self.rows = list(rows)
        self.n_samples, self.n_features, self.kernel = n_samples, n_features, kernel
        self.n_folds, self.random_state = n_folds, random_state

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, item):
        if isinstance(item, str):
            if item not in self.columns:
                raise KeyError(f"no column {item!r}; columns: {self.columns}")
            return [row[item] for row in self.rows]
        return self.rows[item]

    @property
    def best(self):
        """The row with the highest finite held-out log-likelihood (None if none is finite)."""
        finite = [r for r in self.rows if np.isfinite(r["heldout_log_likelihood"])]
        return max(finite, key=lambda r: r["heldout_log_likelihood"]) if finite else None

    def _cells(self, row):
        if row["bandwidth_matrix"] is None:
            return [row["method"], "failed", "n/a", "n/a", "n/a"]
        values = {"method": row["method"], "scale": _scales(row["bandwidth_matrix"]),
                  "fit_seconds": _seconds(row["fit_seconds"])}
        out = []
        for key, _, fmt in _COLUMNS:
            v = values.get(key, row.get(key))
            out.append(str(v) if isinstance(v, float) and not np.isfinite(v) else fmt.format(v))
        return out

    def __str__(self):
        headers = [h for _, h, _ in _COLUMNS]
        cells = [self._cells(r) for r in self.rows]
        widths = [max(len(h), *(len(c[j]) for c in cells)) if cells else len(h) for j, h in enumerate(headers)]

        def line(values):
            return "  ".join([values[0].ljust(widths[0])] + [v.rjust(w) for v, w in zip(values[1:], widths[1:])])

        title = (f"bandwidth selection: n = {self.n_samples}, d = {self.n_features}, kernel {self.kernel!r}; "
                 f"mean held-out log-likelihood per point, {self.n_folds}-fold (seed {self.random_state}); "
                 "kernel scale = √diag(H)")
        notes = [f"  {r['method']}: {r['note']}" for r in self.rows if r["note"]]
        return "\n".join([title, line(headers), "  ".join("-" * w for w in widths)]
                         + [line(c).rstrip() for c in cells] + (["notes:"] + notes if notes else []))

    def __repr__(self):
        return str(self)

    def plot(self, ax=None):
        """Horizontal bars of the held-out log-likelihood per scored method (the best highlighted,
        failed methods left out), whiskers the sd over folds, each labelled with its kernel scale and
        fit time. Needs matplotlib. Returns the Axes."""
        from ..plot import _pyplot

        plt = _pyplot()
        if ax is None:
            _, ax = plt.subplots(figsize=(7.0, 0.5 * len(self.rows) + 1.5))
        rows = [r for r in self.rows if np.isfinite(r["heldout_log_likelihood"])]
        best = self.best
        y = np.arange(len(rows))
        values = np.array([r["heldout_log_likelihood"] for r in rows])
        sds = np.array([r["fold_sd"] for r in rows])
        # Bars start a little left of the worst score, so that every bar shows.
        base = float(values.min() - max(np.ptp(values), sds.max(), 1e-3 * abs(values.min()))) if rows else 0.0
        ax.barh(y, values - base, left=base, xerr=sds,
                color=["tab:orange" if r is best else "tab:blue" for r in rows])
        ax.set_yticks(y)
        ax.set_yticklabels([f"{r['method']}  (h {_scales(r['bandwidth_matrix'])}, {_seconds(r['fit_seconds'])})"
                            for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel(f"mean held-out log-likelihood per point ({self.n_folds}-fold; whiskers: sd over folds)")
        ax.set_title(f"bandwidth rules, {self.kernel} kernel (n = {self.n_samples}, d = {self.n_features})")
        return ax


def _label(method):
    if isinstance(method, str):
        return method
    if isinstance(method, numbers.Real) and not isinstance(method, bool):
        return f"{float(method):g}"
    return f"array{np.shape(method)}"


def _check_methods(methods, d):
    if methods is None:
        return DEFAULT_METHODS_1D if d == 1 else DEFAULT_METHODS
    if isinstance(methods, str) or not hasattr(methods, "__iter__"):
        raise TypeError(f"methods must be a list of bandwidths (rule names or numbers); got {methods!r}")
    methods = list(methods)
    if not methods:
        raise ValueError("methods must name at least one bandwidth")
    for m in methods:
        if isinstance(m, str) and m not in _RULES:
            raise ValueError(f"methods: {m!r} is not a bandwidth rule; the rules are {_RULES}")
    return methods


def _heldout(log_density, w):
    """The (weighted) mean of held-out log densities; −inf if any positive-weight point has −inf."""
    log_density = np.asarray(to_host_numpy(log_density), dtype=np.float64)
    if w is None:
        return float(np.mean(log_density))
    keep = w > 0
    return float(np.sum(w[keep] * log_density[keep]) / np.sum(w[keep]))


def _one(method, X, w, folds, kernel, n_jobs):
    """The row of one method."""
    params = {"bandwidth": method, "kernel": kernel, "n_jobs": n_jobs}
    row = {"method": _label(method), "bandwidth": None, "bandwidth_matrix": None,
           "heldout_log_likelihood": float("nan"), "fold_log_likelihoods": (), "fold_sd": float("nan"),
           "fit_seconds": float("nan"), "note": None}
    messages = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fold_values, total, weight = [], 0.0, 0.0
            for test in folds:
                train = np.setdiff1d(np.arange(X.shape[0]), test, assume_unique=True)
                kde = KernelDensity(**params).fit(X[train], sample_weight=None if w is None else w[train])
                ll = _heldout(kde.score_samples(X[test]), None if w is None else w[test])
                fold_weight = float(test.size if w is None else np.sum(w[test]))
                fold_values.append(ll)
                total, weight = total + ll * fold_weight, weight + fold_weight
            start = time.perf_counter()
            kde = KernelDensity(**params).fit(X, sample_weight=w)
            row["fit_seconds"] = time.perf_counter() - start
        except ValueError as exc:
            row["note"] = f"failed: {exc}"
            return row
        finally:
            messages = list(dict.fromkeys(str(c.message) for c in caught))
    with np.errstate(invalid="ignore"):  # −inf folds (compact kernels): an sd of NaN
        fold_sd = float(np.std(fold_values))
    row.update(
        bandwidth=kde.bandwidth_, bandwidth_matrix=np.asarray(kde.bandwidth_matrix_),
        heldout_log_likelihood=total / weight if weight > 0 else float("nan"),
        fold_log_likelihoods=tuple(fold_values), fold_sd=fold_sd,
        note="; ".join(messages) or None,
    )
    return row


def select(X, methods=None, *, kernel="gaussian", sample_weight=None, n_folds=5, random_state=0, n_jobs=None):
    """Compare bandwidth rules on ``X``: each method's bandwidth, held-out log-likelihood and time.

    Parameters
    ----------
    X : array-like of shape (n, d) or (n,)
        The data (a 1-D array is one feature).
    methods : list of str or float, default None
        ``KernelDensity`` bandwidths: rule names ("scott", "silverman", "isj", "sj", "cv", …)
        or numbers. None: ("scott", "silverman", "isj", "sj", "plugin", "cv") in 1-D,
        ("scott", "silverman", "plugin", "cv") beyond (the cross-validated matrices "lscv", "mlcv"
        … are slower: O(n²) per optimiser step, times K + 1 fits).
    kernel : str, default "gaussian"
        The kernel of every fit.
    sample_weight : array of shape (n,) or None
        Weights for the fits and for the held-out means.
    n_folds : int, default 5
        K of the K-fold split: the rows are shuffled by ``np.random.default_rng(random_state)``
        and cut into K nearly equal folds (``np.array_split``); each fold is scored by a fit on
        the others, so every point is held out once. Every method sees the same folds.
    random_state : int, default 0
        The seed of the split.
    n_jobs : int or None
        Threads for the fits.

    Returns
    -------
    BandwidthTable
        One row per method in the order given (see :class:`BandwidthTable`). A method that
        raises ``ValueError`` on these data (ISJ on multi-dimensional data, a rule that refuses)
        gets a row marked failed with the error as its note, instead of stopping the comparison;
        warnings of a method (a rule's fallback) are recorded in its note.
    """
    X = np.asarray(to_host_numpy(X), dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty (n, d) or (n,) array; got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    n, d = X.shape
    n_folds = check_parameter("n_folds", n_folds, Integer(2))
    if n_folds > n:
        raise ValueError(f"n_folds must be at most the number of samples ({n}); got {n_folds}")
    random_state = check_parameter("random_state", random_state, Integer(0))
    w = check_sample_weight(sample_weight, n, xp=np, name="sample_weight")
    kernel = check_kernel(kernel)
    methods = _check_methods(methods, d)
    folds = np.array_split(np.random.default_rng(random_state).permutation(n), n_folds)
    rows = [_one(m, X, w, folds, kernel, n_jobs) for m in methods]
    return BandwidthTable(rows, n_samples=n, n_features=d, kernel=kernel, n_folds=n_folds,
                          random_state=random_state)
