"""Sampling from a fitted :class:`GAN` and judging samples with its discriminator: plain G(z),
discriminator rejection sampling (Azadi et al. 2019; ℓ* and the acceptance rate are set by
``fit_rejection`` at the end of ``fit``) and ``discriminate``. The functions take the fitted GAN."""

from __future__ import annotations


import torch

from .._backend._validation import Integer, check_parameter
from ._gan_networks import pack_samples
from ._gan_params import _seed_from
from ._gan_ratio import fit_ratio_classifier
from ._seeds import seed63

__all__ = ["discriminator_outputs", "draw_samples", "fit_rejection"]

_SAMPLE_BATCH = 4096
# Rejection sampling: draws per batch (small vectors are cheap; images are not), draws that set ℓ* at
# fit, and the Adam step size of the density-ratio classifier (measured on the grid benchmark for "mlp").
_REJECTION_BATCH = {"mlp": 65536, "dcgan": 4096, "conv": 4096}
_MAX_LOGIT_DRAWS = 10 * _SAMPLE_BATCH
_RATIO_LEARNING_RATE = {"mlp": 5e-3, "dcgan": 2e-4, "conv": 2e-4}


def fit_rejection(gan, T, p):
    """The density-ratio classifier, ℓ* and the acceptance rate of rejection sampling."""
    seed = seed63([p["seed"], 0x4A7])
    gan.ratio_classifier_ = None
    if p["ratio_steps"]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            classifier = gan._discriminator(tuple(T.shape[1:]), p, p["ratio_hidden"], 1, False)
        gan.ratio_classifier_ = fit_ratio_classifier(
            classifier.to(gan.device_), sampler(gan), T, latent_dim=p["latent_dim"],
            n_steps=p["ratio_steps"], batch_size=2 * p["batch_size"],
            learning_rate=_RATIO_LEARNING_RATE[gan.architecture], seed=seed, device=gan.device_)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        logits = torch.cat([log_ratio(gan, generate(gan, _SAMPLE_BATCH, gen)).double()
                            for _ in range(_MAX_LOGIT_DRAWS // _SAMPLE_BATCH)])
    if not bool(torch.isfinite(logits).all()):
        raise FloatingPointError("the density-ratio classifier of rejection sampling gives non-finite logits")
    gan.max_logit_ = float(logits.max())
    gan.acceptance_rate_ = float(torch.exp(logits - gan.max_logit_).mean())


def log_ratio(gan, T):
    """ℓ(x) of rejection sampling, for samples in network space."""
    if gan.ratio_classifier_ is None:
        return discriminator_logits(gan, T)
    return gan.ratio_classifier_(T)


def sampler(gan):
    """The generator that samples: the EMA of the weights when there is one, else the trained one."""
    return gan.generator_ema_ if getattr(gan, "generator_ema_", None) is not None else gan.generator_


def generate(gan, n, gen):
    """n generated samples in network space (standardised for "mlp", [-1, 1] for "conv"), noise
    from ``gen``."""
    return sampler(gan)(torch.randn(n, gan.latent_dim_, generator=gen).to(gan.device_))


def discriminator_logits(gan, T):
    """Discriminator outputs of samples in network space (single samples packed with ``reference_``)."""
    if gan.pack_ > 1:
        ref = gan.reference_.unsqueeze(0).expand(T.shape[0], *gan.reference_.shape)
        T = pack_samples(torch.cat([T.unsqueeze(1), ref], dim=1).reshape(-1, *T.shape[1:]), gan.pack_)
    return gan.discriminator_(T)


def draw_samples(gan, n_samples, random_state):
    """``GAN.sample`` of a fitted ``gan``: ``n_samples`` samples in the units and type of the training data."""
    n_samples = check_parameter("n_samples", n_samples, Integer(1))
    if gan.rejection_sampling and not hasattr(gan, "max_logit_"):
        raise ValueError("rejection_sampling=True was set after fit; fit again with it (fit trains the "
                         "density-ratio classifier that rejection sampling needs)")
    gen = torch.Generator(device="cpu").manual_seed(_seed_from(random_state))
    sampler(gan).eval()
    gan.discriminator_.eval()
    out, have, drawn = [], 0, 0
    batch = _REJECTION_BATCH[gan.architecture] if gan.rejection_sampling else _SAMPLE_BATCH
    with torch.no_grad():
        while have < n_samples:
            if gan.rejection_sampling and drawn > 100 * n_samples / gan.acceptance_rate_ + 10 * batch:
                raise RuntimeError(
                    f"rejection sampling kept {have} of {drawn} draws, far below the rate of "
                    f"{gan.acceptance_rate_:.2g} estimated at fit; sample with rejection_sampling=False, or refit")
            m = batch if gan.rejection_sampling else min(batch, n_samples - have)
            x = generate(gan, m, gen)
            drawn += m
            if gan.rejection_sampling:
                # ℓ* stays at its value from fit: a draw above it is kept (probability clipped at 1).
                # Azadi et al. raise ℓ* instead, but one draw from a mode that the generator
                # almost never reaches can raise it so far that hardly anything is kept again.
                logits = log_ratio(gan, x)
                u = torch.rand(m, generator=gen).to(gan.device_)
                x = x[torch.log(u) < logits - gan.max_logit_]
            out.append(x)
            have += x.shape[0]
    T = torch.cat(out)[:n_samples]
    if gan.architecture == "mlp":
        T = T * gan.data_scale_ + gan.data_mean_
    elif gan.architecture == "conv":
        T = ((T + 1.0) / 2.0).clamp(0.0, 1.0)
    return gan._output(T.reshape(n_samples, *gan.sample_shape_))


def discriminator_outputs(gan, X):
    """``GAN.discriminate`` of a fitted ``gan``: the discriminator's output for each sample of ``X``."""
    T, _, _ = gan._to_tensor(X, fitting=False)
    T = T.to(gan.device_)
    if gan.architecture == "mlp":
        T = (T - gan.data_mean_) / gan.data_scale_
    elif gan.architecture == "conv":
        T = 2.0 * T - 1.0
    gan.discriminator_.eval()
    with torch.no_grad():
        return gan._output(torch.cat([discriminator_logits(gan, batch) for batch in T.split(_SAMPLE_BATCH)]))
