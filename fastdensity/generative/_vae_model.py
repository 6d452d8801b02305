"""The VAE as an ``nn.Module`` (``encode``, ``reparameterize``, ``decode``) and its training task.

The losses are the pure functions of :mod:`._losses`; this module only wires the networks of
:mod:`._networks` to them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _losses as L
from ._networks import encoder_decoder

__all__ = ["VAEModel", "VAETask"]

# Posterior log-variances are kept in a range where exp() neither under- nor overflows in float32.
_ENC_LOGVAR_RANGE = (-30.0, 20.0)


class VAEModel(nn.Module):
    """Encoder q(z|x) = N(μ(x), diag σ²(x)), prior N(0, I), decoder p(x|z) of one of three likelihoods.

    Parameters
    ----------
    data_shape : tuple of int
        One sample's shape: (C, H, W) for "conv"; anything for "mlp" (flattened inside).
    latent_dim : int
    architecture : {"mlp", "conv"}
    hidden : tuple of int
        Hidden layer widths (mlp; the decoder mirrors them) or channels per stride-2 level (conv).
    likelihood : {"bernoulli", "gaussian", "categorical"}
        bernoulli: the decoder gives one logit per pixel. gaussian: a mean per pixel and a learned
        log-variance per pixel shared by all z, clamped below at ``min_logvar`` so that it cannot
        collapse to 0 on constant pixels. categorical: ``n_categories`` logits per pixel over the
        pixel's quantised levels.
    """

    def __init__(self, data_shape, latent_dim, architecture, hidden, likelihood, n_categories=256,
                 activation="relu", min_logvar=-7.0):
        super().__init__()
        self.data_shape = tuple(int(s) for s in data_shape)
        self.latent_dim = int(latent_dim)
        self.likelihood = likelihood
        self.n_categories = int(n_categories)
        self.min_logvar = float(min_logvar)
        out_channels = self.n_categories if likelihood == "categorical" else 1
        self.encoder, self.decoder = encoder_decoder(architecture, self.data_shape, tuple(hidden), self.latent_dim,
                                                     out_channels, activation)
        if likelihood == "gaussian":
            self.decoder_logvar = nn.Parameter(torch.zeros(self.data_shape))

    # -- the three steps ------------------------------------------------------------------------
    def encode(self, x):
        """(mean, logvar) of q(z|x), each (n, latent_dim)."""
        h = self.encoder(x)
        mean, logvar = h[:, : self.latent_dim], h[:, self.latent_dim:]
        return mean, logvar.clamp(*_ENC_LOGVAR_RANGE)

    @staticmethod
    def reparameterize(mean, logvar, eps=None):
        """z = μ + σ ε with ε ~ N(0, I) (drawn from the global torch RNG unless given)."""
        if eps is None:
            eps = torch.randn_like(mean)
        return mean + torch.exp(0.5 * logvar) * eps

    def decode(self, z):
        """The likelihood's parameters for codes z: (n, out_channels, *data_shape)."""
        return self.decoder(z)

    # -- likelihood helpers ---------------------------------------------------------------------
    def gaussian_logvar(self):
        """The decoder's per-pixel log-variance, clamped below at ``min_logvar``."""
        return self.decoder_logvar.clamp(min=self.min_logvar)

    def log_likelihood(self, params, x):
        """log p(x | z) per sample for decoder output ``params``."""
        if self.likelihood == "bernoulli":
            return L.bernoulli_log_likelihood(params[:, 0], x)
        if self.likelihood == "gaussian":
            return L.gaussian_log_likelihood(params[:, 0], self.gaussian_logvar(), x)
        return L.categorical_log_likelihood(params, L.quantize(x, self.n_categories))

    def mean(self, params):
        """E[x | z]: probabilities (bernoulli), means (gaussian), expected level / (K − 1) (categorical)."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(params[:, 0])
        if self.likelihood == "gaussian":
            return params[:, 0]
        levels = torch.arange(self.n_categories, device=params.device, dtype=params.dtype)
        levels = levels.reshape(1, -1, *([1] * len(self.data_shape))) / (self.n_categories - 1)
        return (torch.softmax(params, dim=1) * levels).sum(dim=1)

    def draw(self, params, generator=None):
        """x ~ p(x | z)."""
        if self.likelihood == "bernoulli":
            return torch.bernoulli(torch.sigmoid(params[:, 0]), generator=generator)
        if self.likelihood == "gaussian":
            noise = torch.randn(params[:, 0].shape, generator=generator, device=params.device, dtype=params.dtype)
            return params[:, 0] + torch.exp(0.5 * self.gaussian_logvar()) * noise
        probs = torch.softmax(params, dim=1).movedim(1, -1).reshape(-1, self.n_categories)
        levels = torch.multinomial(probs, 1, generator=generator).reshape(params[:, 0].shape)
        return levels.to(params.dtype) / (self.n_categories - 1)

    # -- bounds ---------------------------------------------------------------------------------
    def forward(self, x):
        """One-sample (log p(x|z), KL(q(z|x) || p(z))) per sample, z drawn by reparameterisation."""
        mean, logvar = self.encode(x)
        z = self.reparameterize(mean, logvar)
        return self.log_likelihood(self.decode(z), x), L.gaussian_kl(mean, logvar)

    def log_weights(self, x, n_samples, generator=None):
        """log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x), z_k ~ q(z|x): shape (n_samples, n), float64."""
        mean, logvar = self.encode(x)
        n = x.shape[0]
        eps = torch.randn((n_samples, n, self.latent_dim), generator=generator, device=x.device, dtype=mean.dtype)
        z = self.reparameterize(mean, logvar, eps)  # (k, n, latent)
        params = self.decode(z.reshape(n_samples * n, self.latent_dim))
        xk = x.unsqueeze(0).expand(n_samples, *x.shape).reshape(n_samples * n, *x.shape[1:])
        log_px = self.log_likelihood(params, xk).reshape(n_samples, n).double()
        return log_px + L.log_normal_standard(z.double()) - L.log_normal_diag(z.double(), mean.double(),
                                                                              logvar.double())


class VAETask:
    """The VAE's :class:`~fastdensity.generative.TrainingTask`: minimise −(β-)ELBO with Adam.

    ``beta`` rises linearly from 0 over ``warmup_steps`` steps (KL annealing) when that is > 0.
    Evaluation reports the true ELBO (β = 1) as ``loss`` = −ELBO, with ``kl`` and ``nll`` = −log p(x|z),
    and, when ``eval_importance`` > 1, ``iwae`` = −(IWAE bound with that many samples).
    """

    def __init__(self, model, optimizer, beta=1.0, warmup_steps=0, eval_importance=0):
        self.model = model
        self.optimizer = optimizer
        self.beta = float(beta)
        self.warmup_steps = int(warmup_steps)
        self.eval_importance = int(eval_importance)
        self.steps = 0

    def modules(self):
        return {"vae": self.model}

    def optimizers(self):
        return {"adam": self.optimizer}

    def current_beta(self):
        if self.warmup_steps <= 0:
            return self.beta
        return self.beta * min(1.0, self.steps / self.warmup_steps)

    def train_step(self, batch):
        beta = self.current_beta()
        self.steps += 1
        log_px, kl = self.model(batch)
        loss = -L.elbo(log_px, kl, beta).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), "kl": kl.detach().mean()}

    def eval_step(self, batch):
        log_px, kl = self.model(batch)
        out = {"loss": -(log_px - kl).mean(), "kl": kl.mean(), "nll": -log_px.mean()}
        if self.eval_importance > 1:
            out["iwae"] = -L.logmeanexp(self.model.log_weights(batch, self.eval_importance)).mean()
        return out

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])


def n_log_weight_chunk(model, n_rows, budget=2**22):
    """How many importance samples to draw at once for ``n_rows`` rows within ``budget`` decoder outputs."""
    per = max(1, math.prod(model.data_shape) * (model.n_categories if model.likelihood == "categorical" else 1))
    return max(1, budget // (per * max(1, n_rows)))
