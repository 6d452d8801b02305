"""The networks of ``GAN(architecture="conv")``: a DCGAN-style pair for small images with spectral
normalisation in the discriminator, and the exponential moving average of the generator's weights.

The layout follows the "standard CNN" of Miyato et al. 2018 ("Spectral normalization for generative
adversarial networks", ICLR, table 3), scaled to small images: the generator projects z to a
(4·base, h/4, w/4) map (two doublings; one for sides that 4 does not divide, none below 4 pixels),
upsamples with 4×4 transposed convolutions (batch normalisation, ReLU) and ends in a 3×3
convolution and tanh, so that images live in [−1, 1] inside the networks. The discriminator
alternates 3×3 convolutions (stride 1) and 4×4 convolutions (stride 2) with LeakyReLU 0.1 down to
the start size, then one linear layer; every layer can carry spectral normalisation. No batch
normalisation in the discriminator: it would couple the samples of a batch (gradient penalties,
packing).

The EMA generator (Karras et al. 2018, "Progressive growing of GANs", ICLR, §A.1; Yazıcı et al.
2019, "The unusual effectiveness of averaging in GAN training", ICLR) keeps
θ_ema ← β θ_ema + (1 − β) θ after each generator step, with β ramped up as min(β, (1 + t) / (10 + t))
at step t so that a short run does not average in its random start; buffers (batch-norm statistics)
are copied, as in StyleGAN2-ADA.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ._gan_networks import _maybe_sn

__all__ = ["ConvDiscriminator", "ConvGenerator", "EMA", "conv_doublings"]


def conv_doublings(size):
    """The number of ×2 upsamplings of an output side of ``size`` pixels: 2 when 4 divides it and
    the start is ≥ 2 pixels (8 → 2, 28 → 7, 32 → 8), else 1 when 2 divides it, else 0 (odd sides
    start at full size)."""
    for k in (2, 1):
        if size % 2**k == 0 and size // 2**k >= 2:
            return k
    return 0


class ConvGenerator(nn.Module):
    """z (n, latent_dim) → images (n, c, h, w) in (−1, 1)."""

    def __init__(self, latent_dim, image_shape, base_channels=64):
        super().__init__()
        c, h, w = image_shape
        k = min(conv_doublings(h), conv_doublings(w))
        h0, w0 = h // 2**k, w // 2**k
        width = base_channels * 2**k
        self.image_shape, self._start = (c, h, w), (width, h0, w0)
        self.project = nn.Linear(latent_dim, width * h0 * w0)
        blocks = [nn.BatchNorm2d(width), nn.ReLU()]
        for _ in range(k):
            blocks += [nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1),
                       nn.BatchNorm2d(width // 2), nn.ReLU()]
            width //= 2
        blocks += [nn.Conv2d(width, c, 3, padding=1), nn.Tanh()]
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z):
        return self.blocks(self.project(z).reshape(z.shape[0], *self._start))


class ConvDiscriminator(nn.Module):
    """Packed images (n, pack · c, h, w) in [−1, 1] → one logit per pack, shape (n,)."""

    def __init__(self, image_shape, base_channels=64, pack=1, spectral_norm=True):
        super().__init__()
        c, h, w = image_shape
        k = min(conv_doublings(h), conv_doublings(w))
        width = base_channels
        layers = [_maybe_sn(nn.Conv2d(c * pack, width, 3, padding=1), spectral_norm), nn.LeakyReLU(0.1)]
        for _ in range(k):
            layers += [_maybe_sn(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), spectral_norm),
                       nn.LeakyReLU(0.1),
                       _maybe_sn(nn.Conv2d(2 * width, 2 * width, 3, padding=1), spectral_norm),
                       nn.LeakyReLU(0.1)]
            width *= 2
        layers += [nn.Flatten(), _maybe_sn(nn.Linear(width * (h // 2**k) * (w // 2**k), 1), spectral_norm)]
        self.net = nn.Sequential(*layers)
        self.pack = pack

    def forward(self, x):
        return self.net(x).squeeze(1)


class EMA:
    """An exponential moving average of a module's parameters (a deep copy, in eval mode).

    ``update(step)`` after each optimiser step of the source: θ_ema ← β_t θ_ema + (1 − β_t) θ with
    β_t = min(decay, (1 + step) / (10 + step)); buffers are copied. ``decay=0`` makes the copy
    follow the source exactly.
    """

    def __init__(self, module, decay):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the EMA decay must be in [0, 1); got {decay!r}")
        self.source, self.decay = module, float(decay)
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def beta(self, step):
        return min(self.decay, (1.0 + step) / (10.0 + step))

    @torch.no_grad()
    def update(self, step):
        beta = self.beta(step)
        ema = list(self.module.parameters())
        src = [p.detach() for p in self.source.parameters()]
        torch._foreach_mul_(ema, beta)
        torch._foreach_add_(ema, src, alpha=1.0 - beta)
        for b_ema, b in zip(self.module.buffers(), self.source.buffers()):
            b_ema.copy_(b)
