"""Parametric densities fitted by weighted maximum likelihood, and model comparison (``compare``).

Every estimator has scikit-learn's shape: ``fit(X, y=None, sample_weight=None)``,
``score_samples`` (log densities, ``-inf`` outside the support), ``score`` (the *mean*
log-likelihood per sample, as scikit-learn's mixtures), ``aic``, ``bic``, ``sample``, fitted
parameters in ``_`` attributes and ``n_parameters_``. The univariate ones also have ``cdf``,
``ppf`` and ``to_scipy``.
"""

from ._compare import ComparisonTable, compare
from ._exponential_family import Bernoulli, Beta, Categorical, Exponential, Gamma, LogNormal, Poisson
from ._normal import MultivariateNormal, Normal

__all__ = [
    "Bernoulli",
    "Beta",
    "Categorical",
    "ComparisonTable",
    "Exponential",
    "Gamma",
    "LogNormal",
    "MultivariateNormal",
    "Normal",
    "Poisson",
    "compare",
]
