"""Loss functions of the GAN, pure functions of discriminator outputs (logits or critic values).

Non-saturating GAN (Goodfellow et al. 2014, "Generative adversarial nets", NeurIPS, section 3):
the discriminator minimises the binary cross-entropy −log σ(D(x)) − log(1 − σ(D(G(z)))), the
generator minimises −log σ(D(G(z))) instead of log(1 − σ(D(G(z)))), which saturates when the
discriminator wins early. With logits ℓ, −log σ(ℓ) = softplus(−ℓ) and −log(1 − σ(ℓ)) = softplus(ℓ),
computed without overflow for any ℓ.

WGAN-GP (Gulrajani et al. 2017, "Improved training of Wasserstein GANs", NeurIPS, algorithm 1):
the critic minimises E[D(G(z))] − E[D(x)] + λ E[(‖∇D(x̂)‖₂ − 1)²] with x̂ on the segments between
real and generated samples; the generator minimises −E[D(G(z))].

Hinge loss (Lim and Ye 2017, "Geometric GAN"; Miyato et al. 2018, eq. 17): the discriminator
minimises E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))], the generator −E[D(G(z))].

R1 penalty (Mescheder et al. 2018, "Which training methods for GANs do actually converge?", ICML,
eq. 9): (γ/2) E[‖∇ₓ D(x)‖²] on real samples only; :func:`r1_penalty` returns E[‖∇ₓ D(x)‖²].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "r1_penalty",
    "wgan_critic_loss",
    "wgan_generator_loss",
]


def discriminator_loss(real_logits, fake_logits):
    """Binary cross-entropy of the discriminator: mean softplus(−ℓ_real) + mean softplus(ℓ_fake)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits):
    """The non-saturating generator loss: mean −log σ(ℓ_fake) = mean softplus(−ℓ_fake)."""
    return F.softplus(-fake_logits).mean()


def wgan_critic_loss(real_scores, fake_scores):
    """The Wasserstein critic loss without its penalty: mean D(fake) − mean D(real)."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores):
    """The Wasserstein generator loss: −mean D(fake)."""
    return -fake_scores.mean()


def hinge_discriminator_loss(real_scores, fake_scores):
    """The hinge discriminator loss: mean relu(1 − D(real)) + mean relu(1 + D(fake))."""
    return F.relu(1.0 - real_scores).mean() + F.relu(1.0 + fake_scores).mean()


def hinge_generator_loss(fake_scores):
    """The hinge generator loss: −mean D(fake) (as the Wasserstein one)."""
    return -fake_scores.mean()


def r1_penalty(critic, real):
    """E[‖∇ₓ D(x)‖²] over the rows of ``real`` (a row is a pack with packing), differentiable in the
    critic's parameters (``create_graph=True``). ``critic`` maps ``real``-shaped batches to (n,)."""
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.reshape(grad.shape[0], -1).pow(2).sum(dim=1).mean()


def gradient_penalty(critic, real, fake, alpha):
    """The WGAN-GP penalty mean (‖∇ₓ D(x̂)‖₂ − 1)², x̂ = α·real + (1 − α)·fake.

    Parameters
    ----------
    critic : callable
        Maps a batch shaped like ``real`` to one score per row, shape (n,). With packing this is
        the critic applied to packed inputs, so a row is a pack and the norm is taken over the
        whole pack (the gradient of one score with respect to everything it saw).
    real, fake : torch.Tensor of shape (n, ...)
    alpha : torch.Tensor of shape (n,)
        Interpolation weights in [0, 1], one per row.

    Returns
    -------
    torch.Tensor, 0-dim, differentiable with respect to the critic's parameters (the graph of the
    input gradient is kept, ``create_graph=True``).
    """
    shape = (-1,) + (1,) * (real.dim() - 1)
    mixed = (alpha.reshape(shape) * real.detach() + (1 - alpha.reshape(shape)) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.reshape(grad.shape[0], -1).norm(dim=1)
    return ((norms - 1.0) ** 2).mean()
