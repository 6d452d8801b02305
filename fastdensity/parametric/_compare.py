"""``compare``: held-out log-likelihood, AIC and BIC of fitted density estimators, side by side."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._backend import to_host_numpy

# (key, header, format) of each column, in display order.
_COLUMNS = (
    ("name", "model", "{}"),
    ("n_parameters", "parameters", "{:d}"),
    ("train_log_likelihood", "train loglik", "{:.4f}"),
    ("test_log_likelihood", "test loglik", "{:.4f}"),
    ("aic", "AIC", "{:.2f}"),
    ("bic", "BIC", "{:.2f}"),
)


class ComparisonTable:
    """The result of :func:`compare`: one row (a dict) per model, in the order given.

    Keys of each row: ``name``, ``n_parameters`` (None when unknown), ``train_log_likelihood``
    and ``test_log_likelihood`` (mean log-likelihood per sample on the training and the held-out
    data), ``aic`` and ``bic`` (on the training data; None for models without them, such as
    kernel density estimates). ``str(table)`` is an aligned text table with "n/a" for None.
    Indexing by an integer gives a row, by a key the column as a list.
    """

    columns = tuple(key for key, _, _ in _COLUMNS)

    def __init__(self, rows):
        self.rows = list(rows)

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

    def __str__(self):
        headers = [header for _, header, _ in _COLUMNS]
        cells = [[_format(row[key], fmt) for key, _, fmt in _COLUMNS] for row in self.rows]
        widths = [max(len(h), *(len(r[j]) for r in cells)) if cells else len(h) for j, h in enumerate(headers)]

        def line(values):
            first = values[0].ljust(widths[0])
            return "  ".join([first] + [v.rjust(w) for v, w in zip(values[1:], widths[1:])]).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(headers), rule] + [line(r) for r in cells])

    def __repr__(self):
        return str(self)


def _format(value, fmt):
    if value is None:
        return "n/a"
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return fmt.format(value)


def _named_models(models):
    """[(name, estimator)] from a mapping, a sequence of estimators or of (name, estimator) pairs."""
    if isinstance(models, Mapping):
        pairs = [(str(k), v) for k, v in models.items()]
    else:
        pairs = []
        for item in models:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                pairs.append(item)
            else:
                pairs.append((type(item).__name__, item))
    seen = {}
    named = []
    for name, model in pairs:
        seen[name] = seen.get(name, 0) + 1
        named.append((name if seen[name] == 1 else f"{name} ({seen[name]})", model))
    return named


def _mean_log_likelihood(model, X):
    log_density = np.asarray(to_host_numpy(model.score_samples(X)), dtype=np.float64)
    return float(np.mean(log_density))


def _n_parameters(model):
    n = getattr(model, "n_parameters_", None)
    if n is None and callable(getattr(model, "_n_parameters", None)):
        n = model._n_parameters()  # scikit-learn's GaussianMixture keeps it in a method
    return None if n is None else int(n)


def _criterion(model, name, X):
    method = getattr(model, name, None)
    return float(method(X)) if callable(method) else None


def compare(models, X_train, X_test):
    """Compare fitted density estimators by held-out log-likelihood, AIC and BIC.

    Parameters
    ----------
    models : mapping of name to estimator, or sequence of estimators or (name, estimator) pairs
        Fitted estimators with ``score_samples`` returning log densities: any fastdensity
        estimator (parametric, ``KernelDensity``, kNN, mixtures) or a scikit-learn one. A bare
        estimator is named by its class (with " (2)", " (3)" … for repeats).
    X_train : array-like
        The data the models were fitted on (for the training log-likelihood, AIC and BIC).
    X_test : array-like
        Held-out data.

    Returns
    -------
    ComparisonTable
        Rows in the order given. The log-likelihoods are means per sample (higher is better);
        AIC and BIC are totals on ``X_train`` (lower is better) and None ("n/a" when printed)
        for models without ``aic``/``bic``. ``n_parameters`` comes from ``n_parameters_`` (or
        scikit-learn's ``GaussianMixture._n_parameters()``), else None.
    """
    rows = []
    for name, model in _named_models(models):
        if not callable(getattr(model, "score_samples", None)):
            raise TypeError(f"compare needs estimators with score_samples; {name!r} is a {type(model).__name__}")
        check_is_fitted(model)
        rows.append(
            {
                "name": name,
                "n_parameters": _n_parameters(model),
                "train_log_likelihood": _mean_log_likelihood(model, X_train),
                "test_log_likelihood": _mean_log_likelihood(model, X_test),
                "aic": _criterion(model, "aic", X_train),
                "bic": _criterion(model, "bic", X_train),
            }
        )
    if not rows:
        raise ValueError("compare needs at least one model")
    return ComparisonTable(rows)


__all__ = ["ComparisonTable", "compare"]
