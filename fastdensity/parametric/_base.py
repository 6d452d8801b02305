"""The shared shape of the parametric estimators: data and weight validation, scoring, AIC/BIC,
sampling and (for univariate distributions) support checks, ``cdf``/``ppf`` and ``to_scipy``.

A concrete estimator supplies four hooks and holds no validation of its own data:

* ``_constraints``: the table of its constructor parameters (``_backend._validation``),
  checked first in ``fit``;
* ``_fit(X, w)``: set the fitted ``_`` attributes and ``n_parameters_`` from float64 data
  ``X`` ((n,) for univariate distributions, (n, d) otherwise) and positive float64 weights
  ``w`` (n,) (unit weights without ``sample_weight``; rows of zero weight were dropped before
  the call and the remaining data checked against the support);
* ``_log_density(X)``: float64 log densities, ``-inf`` outside the support;
* ``_sample(n_samples, generator)``: draws as an array ((n,) or (n, d)).
"""

from __future__ import annotations


import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from .._backend import common_kind, from_host_numpy, to_host_numpy
from .._backend._dask import rows_accept_dask, total_log_likelihood_accepts_dask
from .._backend._validation import Integer, check_parameter, check_sample_weight, validate_parameters


def check_weights(sample_weight, X):
    """``sample_weight`` as a float64 (n,) array: non-negative, finite, with a positive sum.

    ``None`` gives unit weights.
    """
    if sample_weight is None:
        return np.ones(X.shape[0])
    return check_sample_weight(to_host_numpy(sample_weight), X.shape[0], xp=np)


def generator_from(random_state):
    """A NumPy ``Generator`` for ``random_state`` (None, int, RandomState or Generator)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    rng = check_random_state(random_state)
    # A Generator seeded from the legacy RandomState keeps scikit-learn's random_state semantics.
    return np.random.default_rng(rng.randint(0, 2**63 - 1, dtype=np.int64))


def _ndim(X):
    """Number of dimensions of array-like ``X``, without converting arrays (pandas, torch)."""
    ndim = getattr(X, "ndim", None)
    if ndim is None and isinstance(X, (list, tuple)):
        ndim = np.asarray(X, dtype=object).ndim
    return ndim


class ParametricDensity(BaseEstimator):
    """Base class of the parametric density estimators (not public).

    ``score`` is the *mean* log-likelihood per sample, as in scikit-learn's mixtures (not the sum
    that ``KernelDensity.score`` returns); ``aic``/``bic`` use the total log-likelihood.
    """

    _univariate = False

    # ------------------------------------------------------------------------- validation
    _constraints = {}  # a distribution without parameters of its own

    def _validate_params(self):
        validate_parameters(self)

    def _check_input(self, X, *, reset):
        """(float NumPy X of shape (n, d), the caller's array kind)."""
        kind = common_kind(X)
        if kind.namespace != "numpy":
            X = to_host_numpy(X)
        if self._univariate and _ndim(X) == 1:
            X = np.asarray(X).reshape(-1, 1)
        # scikit-learn's finiteness check sums X first: values near ±1.8e308 overflow that sum
        # (harmlessly, it then checks element-wise), which must not warn.
        with np.errstate(over="ignore", invalid="ignore"):
            X = validate_data(self, X, reset=reset, dtype=[np.float64, np.float32])
        return X, kind

    def _check_data(self, X):
        """Raise if the training data ``X`` (float64) lie outside the support; subclasses override."""

    # -------------------------------------------------------------------------------- fit
    def fit(self, X, y=None, sample_weight=None):
        """Weighted maximum-likelihood fit to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (univariate distributions also accept shape (n_samples,)); NumPy
            arrays, array-likes and torch CPU tensors.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative, finite weights with a positive sum; integer weights give the same fit
            as repeating rows, and rows of weight zero are ignored (their values are not checked
            against the support).

        Returns
        -------
        self

        A fit that raises leaves the estimator as it was (fitted or not), never half-updated.
        """
        state = dict(self.__dict__)
        try:
            self._validate_params()
            X, _ = self._check_input(X, reset=True)
            w = check_weights(sample_weight, X)
            keep = w > 0
            X64 = np.asarray(X[keep], dtype=np.float64)
            w = w[keep]
            if self._univariate:
                X64 = X64[:, 0]
            self._check_data(X64)
            self._fit(X64, w)
            self.sample_dtype_ = X.dtype.name  # a string, so that model files can hold it
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise
        return self

    # ---------------------------------------------------------------------------- scoring
    @rows_accept_dask
    def score_samples(self, X):
        """Log density (log probability for discrete distributions) of each row of ``X``.

        Points outside the distribution's support get ``-inf``, not an error. float32 in →
        float32 out, else float64; a torch CPU tensor in → a torch tensor out.

        Returns
        -------
        log_density : array of shape (n_samples,)
        """
        check_is_fitted(self, "n_parameters_")
        X, kind = self._check_input(X, reset=False)
        x = np.asarray(X, dtype=np.float64)
        # Far queries overflow intermediate products (z², rate·x) to inf: their log density is
        # −inf, which is the answer, not a warning. NaN-producing operations still warn.
        with np.errstate(over="ignore", divide="ignore", under="ignore"):
            log_density = self._log_density(x[:, 0] if self._univariate else x)
        if X.dtype == np.float32:
            log_density = log_density.astype(np.float32)
        return from_host_numpy(log_density, kind)

    @total_log_likelihood_accepts_dask
    def _total_log_likelihood(self, X, sample_weight):
        """(Σ w_i log p(x_i), Σ w_i) in float64; unit weights when ``sample_weight`` is None."""
        log_density = np.asarray(to_host_numpy(self.score_samples(X)), dtype=np.float64)
        if sample_weight is None:
            return float(np.sum(log_density)), float(log_density.shape[0])
        w = check_weights(sample_weight, log_density[:, None])
        # A zero weight removes its row, even where the log density is -inf.
        return float(np.sum(w[w > 0] * log_density[w > 0])), float(np.sum(w))

    def score(self, X, y=None, sample_weight=None):
        """Mean log-likelihood per sample of ``X`` (weighted mean with ``sample_weight``).

        A mean, as in scikit-learn's ``GaussianMixture.score`` (``KernelDensity.score`` returns a
        sum instead). ``-inf`` when a point lies outside the support.
        """
        total, n = self._total_log_likelihood(X, sample_weight)
        return total / n

    def aic(self, X, sample_weight=None):
        """Akaike information criterion on ``X``: −2 Σ log p(x_i) + 2 k, k = ``n_parameters_``.

        With ``sample_weight`` the weights count as frequencies: Σ w_i log p(x_i). Lower is better.
        """
        total, _ = self._total_log_likelihood(X, sample_weight)
        return -2.0 * total + 2.0 * self.n_parameters_

    def bic(self, X, sample_weight=None):
        """Bayesian information criterion on ``X``: −2 Σ log p(x_i) + k log n.

        n is the number of rows (Σ w_i with frequency weights ``sample_weight``). Lower is better.
        """
        total, n = self._total_log_likelihood(X, sample_weight)
        return -2.0 * total + self.n_parameters_ * np.log(n)

    # --------------------------------------------------------------------------- sampling
    def sample(self, n_samples=1, random_state=None):
        """Draw ``n_samples`` points from the fitted distribution.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : None, int, RandomState or numpy Generator, default=None

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Continuous distributions: in the training data's float dtype. Discrete
            distributions (Poisson, Bernoulli, Categorical): int64.
        """
        check_is_fitted(self, "n_parameters_")
        n_samples = check_parameter("n_samples", n_samples, Integer(0))
        draws = np.asarray(self._sample(n_samples, generator_from(random_state)))
        draws = draws.reshape(n_samples, -1)
        if draws.dtype.kind == "f":
            draws = draws.astype(np.dtype(self.sample_dtype_), copy=False)
        return draws

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class UnivariateDensity(ParametricDensity):
    """Base of the univariate distributions: one feature, support checks, scipy.stats bridge.

    Subclasses set ``_name``, ``_support`` (text for messages) and ``_discrete``, and implement
    ``_in_support(x) -> bool array`` and ``_scipy_distribution()`` (a frozen scipy.stats
    distribution with the fitted parameters).
    """

    _univariate = True
    _name = "distribution"
    _support = "the real line"
    _discrete = False

    def _in_support(self, x):
        return np.ones(x.shape, dtype=bool)

    def _check_input(self, X, *, reset):
        X, kind = super()._check_input(X, reset=reset)
        if X.shape[1] != 1:
            raise ValueError(
                f"{type(self).__name__} is a univariate distribution: X must have shape (n_samples,) "
                f"or (n_samples, 1); got {X.shape[1]} features"
            )
        return X, kind

    def _check_data(self, x):
        bad = ~self._in_support(x)
        if np.any(bad):
            first = x[np.argmax(bad)]
            raise ValueError(
                f"the {self._name} distribution is supported on {self._support}; X contains "
                f"{float(first)!r} (first offending value, of {int(np.sum(bad))})"
            )

    def _x(self, X):
        """Float64 (n,) values from user input of shape (n,) or (n, 1)."""
        check_is_fitted(self, "n_parameters_")
        X, _ = self._check_input(X, reset=False)
        return np.asarray(X[:, 0], dtype=np.float64)

    def to_scipy(self):
        """The fitted distribution as a frozen ``scipy.stats`` distribution."""
        check_is_fitted(self, "n_parameters_")
        return self._scipy_distribution()

    def cdf(self, X):
        """Cumulative distribution function at each value of ``X`` ((n,) or (n, 1)); shape (n,)."""
        return self.to_scipy().cdf(self._x(X))

    def ppf(self, q):
        """Quantile function (inverse of ``cdf``) at probabilities ``q``; same shape as ``q``.

        For discrete distributions, the smallest support value whose cdf is at least ``q``.
        """
        check_is_fitted(self, "n_parameters_")
        q = np.asarray(to_host_numpy(q), dtype=np.float64)
        if np.any(~((q >= 0) & (q <= 1))):
            raise ValueError("ppf needs probabilities q in [0, 1]")
        return self.to_scipy().ppf(q)
