"""Choosing the number of components and the covariance type by an information criterion
(the model choice of R's mclust, with scikit-learn's sign convention: lower is better)."""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._backend._validation import Integer, check_parameter
from ._gaussian_mixture import GaussianMixture
from ._gaussian_params import COVARIANCE_TYPES

CRITERIA = ("bic", "aic")
TABLE_COLUMNS = ("n_components", "covariance_type", "bic", "aic", "log_likelihood", "n_parameters",
                 "converged", "n_iter", "error")


def _as_component_counts(n_components):
    if isinstance(n_components, numbers.Integral) and not isinstance(n_components, bool):
        n_components = [n_components]
    try:
        counts = list(n_components)
    except TypeError:
        raise TypeError(f"n_components must be an int or an iterable of ints; got {n_components!r}") from None
    if not counts:
        raise ValueError("n_components must not be empty")
    return [check_parameter("n_components", k, Integer(1)) for k in counts]


def _as_covariance_types(covariance_types):
    types = [covariance_types] if isinstance(covariance_types, str) else list(covariance_types)
    if not types:
        raise ValueError("covariance_types must not be empty")
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_types must contain values from {COVARIANCE_TYPES}; got {t!r}")
    return types


def select_n_components(X, n_components=range(1, 10), covariance_types=COVARIANCE_TYPES, criterion="bic", *,
                        sample_weight=None, **params):
    """Fit a :class:`GaussianMixture` for every number of components and covariance type and
    return the one with the lowest information criterion, with the table of all fits.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    n_components : int or iterable of int, default=range(1, 10)
    covariance_types : str or iterable of str, default=("full", "tied", "diag", "spherical")
    criterion : {"bic", "aic"}, default="bic"
        ``bic`` = −2 log L + p log n, ``aic`` = −2 log L + 2p, on the training data (lower is
        better; mclust reports −BIC). With ``sample_weight``, log L is weighted and n = Σ w.
    sample_weight : array-like of shape (n_samples,), default=None
        Passed to every ``fit``.
    **params
        Other :class:`GaussianMixture` parameters (``random_state``, ``n_init``, ``reg_covar``,
        ``max_iter``, …), the same for every fit.

    Returns
    -------
    best : GaussianMixture
        The fitted model with the lowest criterion (the first one on a tie: fewer components,
        then the order of ``covariance_types``).
    table : dict of str → ndarray
        One entry per fit, in the order fitted (n_components outer, covariance type inner):
        ``n_components``, ``covariance_type``, ``bic``, ``aic``, ``log_likelihood`` (total),
        ``n_parameters``, ``converged``, ``n_iter`` and ``error`` (the message of a fit that
        failed, e.g. a singular covariance; its criteria are NaN). ``pandas.DataFrame(table)``
        makes it a data frame.

    Raises ValueError when every fit fails (with the first failure's message).
    """
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    for name in ("n_components", "covariance_type"):
        if name in params:
            raise TypeError(f"{name} is chosen by select_n_components; pass n_components=/covariance_types= instead")
    counts = _as_component_counts(n_components)
    types = _as_covariance_types(covariance_types)

    rows = {name: [] for name in TABLE_COLUMNS}
    best, best_value, first_error = None, math.inf, None
    for k in counts:
        for cov_type in types:
            model = GaussianMixture(n_components=k, covariance_type=cov_type, **params)
            try:
                model.fit(X, sample_weight=sample_weight)
                bic = model.bic(X, sample_weight=sample_weight)
                aic = model.aic(X, sample_weight=sample_weight)
            except (ValueError, np.linalg.LinAlgError) as exc:
                if k == counts[0] and cov_type == types[0] and not _is_numerical_failure(exc):
                    raise  # bad data or parameters: the same for every fit
                first_error = first_error or exc
                _append(rows, k, cov_type, math.nan, math.nan, math.nan, math.nan, False, 0, str(exc))
                continue
            n_params = model._n_parameters()
            log_l = -0.5 * (aic - 2.0 * n_params)
            _append(rows, k, cov_type, bic, aic, log_l, n_params, bool(model.converged_), int(model.n_iter_), None)
            value = bic if criterion == "bic" else aic
            if value < best_value:
                best, best_value = model, value
    if best is None:
        raise ValueError(f"every fit failed; the first failure: {first_error}")
    table = {name: np.asarray(values, dtype=object if name in ("covariance_type", "error") else None)
             for name, values in rows.items()}
    return best, table


def _is_numerical_failure(exc):
    """A failure specific to one model (singular covariance, too few rows for k components)."""
    message = str(exc)
    return "ill-defined empirical covariance" in message or "n_samples >= n_components" in message


def _append(rows, *values):
    for name, value in zip(TABLE_COLUMNS, values):
        rows[name].append(value)
