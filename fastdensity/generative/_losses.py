"""Pure loss functions of the VAE: likelihood terms, the Gaussian KL, the ELBO and the IWAE bound.

Every function returns one value per sample (summed over data or latent dimensions), so that the
caller chooses the reduction. Nothing here holds state or touches a module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "LOG_2PI",
    "bernoulli_log_likelihood",
    "categorical_log_likelihood",
    "elbo",
    "gaussian_kl",
    "gaussian_log_likelihood",
    "log_normal_diag",
    "log_normal_standard",
    "logmeanexp",
    "quantize",
]

LOG_2PI = math.log(2.0 * math.pi)


def _sum_per_sample(t):
    return t.reshape(t.shape[0], -1).sum(dim=1)


def gaussian_kl(mean, logvar):
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) per sample, in closed form.

    KL = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²): Kingma & Welling (2014), "Auto-Encoding Variational
    Bayes", ICLR, appendix B.

    Parameters
    ----------
    mean, logvar : Tensor of shape (n, latent_dim)

    Returns
    -------
    Tensor of shape (n,)
    """
    return -0.5 * (1.0 + logvar - mean.square() - logvar.exp()).sum(dim=-1)


def log_normal_standard(z):
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (z.square() + LOG_2PI).sum(dim=-1)


def log_normal_diag(z, mean, logvar):
    """log N(z; mean, diag(exp(logvar))), summed over the last dimension (broadcasts)."""
    return -0.5 * ((z - mean).square() * torch.exp(-logvar) + logvar + LOG_2PI).sum(dim=-1)


def bernoulli_log_likelihood(logits, x):
    """log p(x | logits) = Σ x log σ(l) + (1 − x) log(1 − σ(l)) per sample (x in [0, 1]).

    Computed from the logits (``binary_cross_entropy_with_logits``), which is exact where
    σ(l) rounds to 0 or 1.
    """
    return -_sum_per_sample(F.binary_cross_entropy_with_logits(logits, x, reduction="none"))


def gaussian_log_likelihood(mean, logvar, x):
    """log N(x; mean, diag(exp(logvar))) per sample (densities: nats, not probabilities)."""
    return _sum_per_sample(-0.5 * ((x - mean).square() * torch.exp(-logvar) + logvar + LOG_2PI))


def quantize(x, n_categories):
    """Pixel values in [0, 1] to integer levels 0 … n_categories − 1 (nearest level)."""
    return torch.round(x * (n_categories - 1)).clamp_(0, n_categories - 1).long()


def categorical_log_likelihood(logits, levels):
    """log p(levels | logits) per sample; ``logits`` has the categories in dimension 1.

    Parameters
    ----------
    logits : Tensor of shape (n, n_categories, *data_shape)
    levels : integer Tensor of shape (n, *data_shape)
    """
    return -_sum_per_sample(F.cross_entropy(logits, levels, reduction="none"))


def elbo(log_likelihood, kl, beta=1.0):
    """The evidence lower bound E_q[log p(x|z)] − β KL(q(z|x) || p(z)) per sample (β = 1: the ELBO)."""
    return log_likelihood - beta * kl


def logmeanexp(log_w, dim=0):
    """log (1/K) Σ_k exp(log_w_k) along ``dim``, in float64 (the IWAE bound of Burda et al. 2016)."""
    log_w = log_w.double()
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])
