"""Gaussian mixtures: ``GaussianMixture`` (EM on a fused E-step, sample weights, online EM) and
``select_n_components`` (BIC/AIC model choice over components and covariance types)."""

from ._gaussian_mixture import GaussianMixture
from ._select import select_n_components

__all__ = ["GaussianMixture", "select_n_components"]
