"""The importance-weighted likelihood (IWAE bound) and the ELBO of a trained :class:`VAEModel`, per
sample in float64, computed in chunks of rows (and of importance samples) so that memory stays bounded;
``VAE.score_samples`` and ``VAE.elbo`` call them on inputs they have checked."""

from __future__ import annotations

import torch

from . import _losses as L
from ._vae_model import n_log_weight_chunk

__all__ = ["elbo_per_sample", "iwae_log_likelihood"]

_ROWS_PER_CHUNK = 256


def iwae_log_likelihood(model, t, n_importance, gen):
    """log (1/K) Σ_k p(x, z_k) / q(z_k|x) per row of ``t`` (model shape), K = ``n_importance``, noise from ``gen``."""
    out = []
    with torch.no_grad():
        for i in range(0, t.shape[0], _ROWS_PER_CHUNK):
            rows = t[i:i + _ROWS_PER_CHUNK]
            chunk = n_log_weight_chunk(model, rows.shape[0])
            log_w = torch.cat([model.log_weights(rows, min(chunk, n_importance - k), gen)
                               for k in range(0, n_importance, chunk)])
            out.append(L.logmeanexp(log_w, dim=0))
    return torch.cat(out)


def elbo_per_sample(model, t, n_samples, gen):
    """The ELBO (β = 1, closed-form KL) per row of ``t`` (model shape), averaged over ``n_samples`` draws of z."""
    out = []
    with torch.no_grad():
        for i in range(0, t.shape[0], _ROWS_PER_CHUNK):
            rows = t[i:i + _ROWS_PER_CHUNK]
            mean, logvar = model.encode(rows)
            total = torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device)
            for _ in range(n_samples):
                eps = torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)
                params = model.decode(model.reparameterize(mean, logvar, eps))
                total += model.log_likelihood(params, rows).double()
            out.append(total / n_samples - L.gaussian_kl(mean.double(), logvar.double()))
    return torch.cat(out)
