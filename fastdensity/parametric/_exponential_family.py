"""Univariate exponential-family distributions fitted by weighted maximum likelihood.

Closed forms where they exist (exponential, Poisson, Bernoulli, log-normal, categorical); a
safeguarded Newton solver for the gamma shape and the beta shapes (``_mle.py``). Location and
scale parameters that scipy.stats adds to every distribution are fixed (loc = 0, and scale = 1
for the beta), so a fit here equals ``scipy.stats.<dist>.fit(x, floc=0)`` (``fscale=1`` for the
beta) up to the solver's tolerance.

Every estimator accepts X of shape (n_samples,) or (n_samples, 1). ``fit`` raises a
``ValueError`` naming the distribution, its support and the first offending value when the
data leave the support; ``score_samples`` returns ``-inf`` for such points instead.
"""

from __future__ import annotations


import numpy as np
from scipy import stats
from scipy.special import betaln, gammaln, xlog1py, xlogy

from .._backend._validation import Integer, Real
from ._base import UnivariateDensity
from ._mle import beta_shapes_mle, gamma_shape_mle, gamma_statistic

_LOG_2PI = float(np.log(2.0 * np.pi))


def _mean(x, w):
    """Weighted mean; no overflow for data near ±1.8e308 (normalised weights, and the rounded
    result kept inside the data's range)."""
    w = w / np.sum(w)
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(w @ x)
    if not np.isfinite(mean):  # the sum overflowed: average the halves, then double (exact)
        mean = 2.0 * float(w @ (0.5 * x))
    return float(min(max(mean, float(np.min(x))), float(np.max(x))))


def _is_integer(x):
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & (x == np.floor(x))


def _fill_outside(support, values):
    """``values`` where ``support`` holds, ``-inf`` elsewhere (float64)."""
    return np.where(support, values, -np.inf)


def _needs_spread(name, x):
    return ValueError(
        f"the {name} maximum-likelihood fit needs at least two distinct values with positive "
        f"weight; all data equal {float(x[0])!r}"
    )


class Exponential(UnivariateDensity):
    """Exponential distribution with rate λ: p(x) = λ e^(−λx) on x ≥ 0.

    MLE: λ = Σ w_i / Σ w_i x_i. scipy: ``scipy.stats.expon(scale=1/λ)``.

    Attributes
    ----------
    rate_ : float
        λ.
    scale_ : float
        1/λ, the mean.
    n_parameters_ : int
        1.
    """

    _name = "exponential"
    _support = "[0, inf)"

    def __init__(self):
        pass

    def _in_support(self, x):
        return np.isfinite(x) & (x >= 0)

    def _fit(self, x, w):
        mean = _mean(x, w)
        if not mean > 0:
            raise ValueError("the exponential maximum-likelihood fit needs a positive mean; all data are 0")
        self.scale_ = mean
        self.rate_ = 1.0 / mean
        self.n_parameters_ = 1

    def _log_density(self, x):
        return _fill_outside(self._in_support(x), np.log(self.rate_) - self.rate_ * x)

    def _sample(self, n_samples, gen):
        return gen.exponential(self.scale_, n_samples)

    def _scipy_distribution(self):
        return stats.expon(scale=self.scale_)


class Poisson(UnivariateDensity):
    """Poisson distribution with rate (mean) λ on the counts 0, 1, 2, ….

    MLE: λ = weighted mean (λ = 0, all mass at 0, when every count is 0).
    scipy: ``scipy.stats.poisson(λ)``. ``sample`` returns int64 counts.

    Attributes
    ----------
    rate_ : float
        λ.
    n_parameters_ : int
        1.
    """

    _name = "Poisson"
    _support = "the non-negative integers {0, 1, 2, ...}"
    _discrete = True

    def __init__(self):
        pass

    def _in_support(self, x):
        return _is_integer(x) & (x >= 0)

    def _fit(self, x, w):
        self.rate_ = _mean(x, w)
        self.n_parameters_ = 1

    def _log_density(self, x):
        ok = self._in_support(x)
        k = np.where(ok, x, 0.0)
        with np.errstate(invalid="ignore"):
            log_pmf = xlogy(k, self.rate_) - self.rate_ - gammaln(k + 1.0)
        # Huge counts: k log λ and log Γ(k + 1) both overflow (inf − inf). Stirling's series,
        # log pmf = k (log y + 1 − y) − ½ log(2πk) − 1/(12k) with y = λ/k, is exact to 1e-25 there
        # and never overflows to +inf (log y + 1 − y ≤ 0); from k = 1e8 on, where it is also more
        # accurate than the difference of the 1e9-sized terms.
        big = k >= 1e8
        if np.any(big):
            kb = k[big]
            with np.errstate(divide="ignore", over="ignore"):
                y = self.rate_ / kb
                u = (self.rate_ - kb) / kb  # y − 1: log y + 1 − y = log1p(u) − u near y = 1
                g = np.where(u > -0.5, np.log1p(np.maximum(u, -0.5)) - u, np.log(y) + 1.0 - y)
                log_pmf[big] = kb * g - 0.5 * np.log(2.0 * np.pi * kb) - 1.0 / (12.0 * kb)
        return _fill_outside(ok, log_pmf)

    def _sample(self, n_samples, gen):
        return gen.poisson(self.rate_, n_samples).astype(np.int64)

    def _scipy_distribution(self):
        return stats.poisson(self.rate_)


class Bernoulli(UnivariateDensity):
    """Bernoulli distribution on {0, 1} with P(X = 1) = p.

    MLE: p = weighted mean. scipy: ``scipy.stats.bernoulli(p)``. ``sample`` returns int64.

    Attributes
    ----------
    p_ : float
    n_parameters_ : int
        1.
    """

    _name = "Bernoulli"
    _support = "{0, 1}"
    _discrete = True

    def __init__(self):
        pass

    def _in_support(self, x):
        return (x == 0) | (x == 1)

    def _fit(self, x, w):
        self.p_ = _mean(x, w)
        self.n_parameters_ = 1

    def _log_density(self, x):
        ok = self._in_support(x)
        k = np.where(ok, x, 0.0)
        return _fill_outside(ok, xlogy(k, self.p_) + xlog1py(1.0 - k, -self.p_))

    def _sample(self, n_samples, gen):
        return (gen.random(n_samples) < self.p_).astype(np.int64)

    def _scipy_distribution(self):
        return stats.bernoulli(self.p_)


class Gamma(UnivariateDensity):
    """Gamma distribution with shape k and scale θ: p(x) = x^(k−1) e^(−x/θ) / (Γ(k) θ^k), x > 0.

    MLE: k solves log k − ψ(k) = log(mean x) − mean(log x) (weighted means), by Minka's (2002)
    start and generalised Newton steps inside a guaranteed bracket; then θ = mean x / k. The
    statistic is computed without cancellation (``_mle.gamma_statistic``), so nearly constant
    data (very large k) keep their accuracy. scipy: ``scipy.stats.gamma(k, scale=θ)``, the
    reference being ``scipy.stats.gamma.fit(x, floc=0)``.

    Attributes
    ----------
    shape_ : float
        k.
    scale_ : float
        θ.
    rate_ : float
        1/θ.
    n_parameters_ : int
        2.
    """

    _name = "gamma"
    _support = "(0, inf)"

    def __init__(self):
        pass

    def _in_support(self, x):
        return np.isfinite(x) & (x > 0)

    def _fit(self, x, w):
        w = w / np.sum(w)
        mean, s = gamma_statistic(x, w)
        if not s > 0:
            raise _needs_spread(self._name, x)
        self.shape_ = gamma_shape_mle(s)
        self.scale_ = mean / self.shape_
        self.rate_ = 1.0 / self.scale_
        self.n_parameters_ = 2

    def _log_density(self, x):
        ok = self._in_support(x)
        y = np.where(ok, x, 1.0)
        z = y / self.scale_
        # Where x / scale overflows or underflows, log z from the logs; an infinite z dominates
        # the sum: −inf, never (k − 1)·inf − inf.
        normal = np.isfinite(z) & (z >= np.finfo(np.float64).tiny)
        log_z = np.where(normal, np.log(np.where(normal, z, 1.0)), np.log(y) - np.log(self.scale_))
        k = self.shape_
        return _fill_outside(ok, (k - 1.0) * log_z - z - gammaln(k) - np.log(self.scale_))

    def _sample(self, n_samples, gen):
        return gen.gamma(self.shape_, self.scale_, n_samples)

    def _scipy_distribution(self):
        return stats.gamma(self.shape_, scale=self.scale_)


class LogNormal(UnivariateDensity):
    """Log-normal distribution: log X ~ N(μ, σ²), x > 0.

    MLE: μ and σ² are the weighted mean and (biased) variance of log x.
    scipy: ``scipy.stats.lognorm(σ, scale=exp(μ))``, reference ``lognorm.fit(x, floc=0)``.

    Attributes
    ----------
    mu_ : float
        Mean of log x.
    sigma_ : float
        Standard deviation of log x.
    n_parameters_ : int
        2.
    """

    _name = "log-normal"
    _support = "(0, inf)"

    def __init__(self):
        pass

    def _in_support(self, x):
        return np.isfinite(x) & (x > 0)

    def _fit(self, x, w):
        w = w / np.sum(w)
        log_x = np.log(x)
        mu = float(w @ log_x)
        var = float(w @ (log_x - mu) ** 2)
        if not var > 0:
            raise _needs_spread(self._name, x)
        self.mu_ = mu
        self.sigma_ = float(np.sqrt(var))
        self.n_parameters_ = 2

    def _log_density(self, x):
        ok = self._in_support(x)
        log_x = np.log(np.where(ok, x, 1.0))
        z = (log_x - self.mu_) / self.sigma_
        return _fill_outside(ok, -0.5 * z * z - log_x - np.log(self.sigma_) - 0.5 * _LOG_2PI)

    def _sample(self, n_samples, gen):
        return np.exp(self.mu_ + self.sigma_ * gen.standard_normal(n_samples))

    def _scipy_distribution(self):
        return stats.lognorm(self.sigma_, scale=np.exp(self.mu_))


class Beta(UnivariateDensity):
    """Beta distribution with shapes a, b on the open interval (0, 1).

    MLE: the shapes maximise (a−1) mean(log x) + (b−1) mean(log(1−x)) − log B(a, b), a strictly
    concave function, by damped Newton steps with digamma gradients and trigamma Hessians from the
    method-of-moments start. scipy: ``scipy.stats.beta(a, b)``, reference
    ``beta.fit(x, floc=0, fscale=1)``. The end points 0 and 1 are outside the support.

    Attributes
    ----------
    a_, b_ : float
    n_parameters_ : int
        2.
    """

    _name = "beta"
    _support = "the open interval (0, 1)"

    def __init__(self):
        pass

    def _in_support(self, x):
        return (x > 0) & (x < 1)

    def _fit(self, x, w):
        w = w / np.sum(w)
        mean = float(w @ x)
        var = float(w @ (x - mean) ** 2)
        if not var > 0:
            raise _needs_spread(self._name, x)
        common = mean * (1.0 - mean) / var - 1.0
        start = (mean * common, (1.0 - mean) * common) if common > 0 else (1.0, 1.0)
        a, b = beta_shapes_mle(float(w @ np.log(x)), float(w @ np.log1p(-x)), start)
        self.a_ = float(a)
        self.b_ = float(b)
        self.n_parameters_ = 2

    def _log_density(self, x):
        ok = self._in_support(x)
        y = np.where(ok, x, 0.5)
        return _fill_outside(ok, xlogy(self.a_ - 1.0, y) + xlog1py(self.b_ - 1.0, -y) - betaln(self.a_, self.b_))

    def _sample(self, n_samples, gen):
        return gen.beta(self.a_, self.b_, n_samples)

    def _scipy_distribution(self):
        return stats.beta(self.a_, self.b_)


class Categorical(UnivariateDensity):
    """Categorical distribution on the integer labels 0, 1, …, K − 1.

    MLE: p_k = (Σ w_i [x_i = k] + α) / (Σ w_i + K α), with α = ``alpha`` (0: the plain MLE).

    Parameters
    ----------
    n_categories : int or None, default=None
        K. None: one more than the largest label seen in ``fit``.
    alpha : float, default=0.0
        Additive (Laplace/Lidstone) smoothing, in units of sample weight: with α > 0 every
        category keeps a positive probability, so held-out labels unseen in training do not
        score ``-inf``.

    Attributes
    ----------
    probabilities_ : ndarray of shape (K,)
    n_categories_ : int
    n_parameters_ : int
        K − 1.

    Notes
    -----
    ``sample`` returns int64 labels; ``to_scipy`` gives ``scipy.stats.rv_discrete`` on 0..K−1.
    """

    _name = "categorical"
    _support = "the integer labels 0, 1, ..., n_categories - 1"
    _discrete = True

    def __init__(self, *, n_categories=None, alpha=0.0):
        self.n_categories = n_categories
        self.alpha = alpha

    _constraints = {"n_categories": Integer(1, none=True), "alpha": Real(0)}

    @staticmethod
    def _labels(x, k):
        """Whether each value is an integer label in [0, k) (k None: any non-negative integer)."""
        ok = _is_integer(x) & (x >= 0)
        return ok if k is None else ok & (x < k)

    def _in_support(self, x):
        return self._labels(x, self.n_categories_)

    def _check_data(self, x):
        k = self.n_categories
        bad = ~self._labels(x, k)
        if np.any(bad):
            support = "the integer labels 0, 1, ..., n_categories - 1" + ("" if k is None else f" = {k - 1}")
            raise ValueError(
                f"the categorical distribution is supported on {support}; X contains "
                f"{float(x[np.argmax(bad)])!r} (first offending value, of {int(np.sum(bad))})"
            )

    def _fit(self, x, w):
        k = int(self.n_categories) if self.n_categories is not None else int(np.max(x)) + 1
        counts = np.bincount(x.astype(np.int64), weights=w, minlength=k)
        alpha = float(self.alpha)
        self.probabilities_ = (counts + alpha) / (np.sum(counts) + k * alpha)
        self.n_categories_ = k
        self.n_parameters_ = k - 1

    def _log_density(self, x):
        ok = self._in_support(x)
        with np.errstate(divide="ignore"):
            log_p = np.log(self.probabilities_)
        return _fill_outside(ok, log_p[np.where(ok, x, 0).astype(np.int64)])

    def _sample(self, n_samples, gen):
        return gen.choice(self.n_categories_, size=n_samples, p=self.probabilities_).astype(np.int64)

    def _scipy_distribution(self):
        return stats.rv_discrete(values=(np.arange(self.n_categories_), self.probabilities_))


__all__ = ["Bernoulli", "Beta", "Categorical", "Exponential", "Gamma", "LogNormal", "Poisson"]
