"""Held-out log-likelihood of a fitted density model, in nats and in bits per dimension."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._backend._namespace import array_kind

__all__ = ["LikelihoodResult", "log_likelihood"]


@dataclass(frozen=True)
class LikelihoodResult:
    """Result of :func:`log_likelihood`.

    Attributes
    ----------
    per_sample : ndarray of shape (n,)
        log p(x_i) in nats, float64 (on the host).
    mean : float
        Mean log-likelihood per sample, nats (higher is better).
    sem : float
        Standard error of ``mean``: std(per_sample, ddof=1) / √n (nan for n = 1).
    n_dims : int
        d, the dimensions of one sample: the number of features, or of pixels × channels for
        images (n, h, w) / (n, c, h, w).
    bits_per_dim : float
        −mean / (d · ln 2): the negative log-likelihood in bits per dimension (lower is better).
    bits_per_dim_sem : float
        Standard error of ``bits_per_dim``: sem / (d · ln 2).
    """

    per_sample: np.ndarray = field(repr=False)
    mean: float
    sem: float
    n_dims: int
    bits_per_dim: float
    bits_per_dim_sem: float

    @property
    def mean_nats(self):
        """Alias of ``mean`` (nats per sample)."""
        return self.mean


def _to_host_vector(scores):
    """The estimator's scores as a float64 NumPy vector (torch / CuPy results are moved to the host:
    they are n numbers, not the data)."""
    kind = array_kind(scores)
    if kind.namespace == "torch":
        scores = scores.detach().cpu().numpy()
    elif kind.namespace == "cupy":
        scores = scores.get()
    return np.asarray(scores, dtype=np.float64).reshape(-1)


def log_likelihood(estimator, X, **score_kwargs):
    """Per-sample and mean log-likelihood of ``X`` under a fitted density ``estimator``.

    Parameters
    ----------
    estimator : fitted object with ``score_samples(X)``
        Any estimator that returns log densities (natural log) per row: fastdensity's
        (KernelDensity, GaussianMixture, …), scikit-learn's, or a ``fastdensity.generative.VAE``,
        whose ``score_samples`` is the importance-weighted (IWAE) estimate — a stochastic lower
        bound in expectation.
    X : array of shape (n, d), (n, h, w) or (n, c, h, w)
        Held-out data in the form the estimator takes (NumPy, torch …).
    **score_kwargs
        Passed to ``estimator.score_samples`` (e.g. ``n_importance=1000`` for a VAE).

    Returns
    -------
    LikelihoodResult
        ``per_sample``, ``mean``, ``sem`` (nats) and ``bits_per_dim`` = −mean / (d ln 2) with
        d = the product of the sample's dimensions.

    Notes
    -----
    Bits per dimension are those of the density as modelled. For 8-bit images modelled as a
    continuous density of x / 255 (or x / 256) in [0, 1], the usual figure on the 0–255 scale
    adds log2(256) = 8 bits per dimension (after uniform dequantisation); for binarised images
    modelled by a Bernoulli likelihood the value is already a discrete code length.

    A NaN log-likelihood is an error (the model is broken); −inf (a point outside the model's
    support) is kept and makes the mean −inf, with a ``RuntimeWarning``.
    """
    if not callable(getattr(estimator, "score_samples", None)):
        raise TypeError(
            f"estimator must be a fitted density estimator with a score_samples(X) method; got "
            f"{type(estimator).__name__}"
        )
    shape = tuple(getattr(X, "shape", np.shape(X)))
    if len(shape) < 2:
        raise ValueError(f"X must have shape (n, d), (n, h, w) or (n, c, h, w); got shape {shape}")
    if len(shape) > 4:
        raise ValueError(f"X must have 2 to 4 dimensions (samples first); got shape {shape}")
    n = shape[0]
    n_dims = int(math.prod(shape[1:]))
    if n < 1 or n_dims < 1:
        raise ValueError(f"X must hold at least one sample of at least one dimension; got shape {shape}")
    per_sample = _to_host_vector(estimator.score_samples(X, **score_kwargs))
    if per_sample.shape[0] != n:
        raise ValueError(
            f"estimator.score_samples returned {per_sample.shape[0]} values for {n} samples; "
            "it must return one log density per sample"
        )
    if np.isnan(per_sample).any():
        raise ValueError(
            f"estimator.score_samples returned NaN for {int(np.isnan(per_sample).sum())} of {n} samples"
        )
    if not np.isfinite(per_sample).all():
        warnings.warn(
            f"{int((~np.isfinite(per_sample)).sum())} of {n} log-likelihoods are infinite; the mean is "
            "infinite too",
            RuntimeWarning,
            stacklevel=2,
        )
    with np.errstate(invalid="ignore"):
        mean = float(per_sample.mean())
        sem = float(per_sample.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    scale = n_dims * math.log(2.0)
    return LikelihoodResult(
        per_sample=per_sample,
        mean=mean,
        sem=sem,
        n_dims=n_dims,
        bits_per_dim=-mean / scale,
        bits_per_dim_sem=sem / scale,
    )
