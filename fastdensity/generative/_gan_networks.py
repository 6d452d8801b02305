"""Generator and discriminator networks of the GAN: an MLP pair for vectors, a DCGAN pair for images.

Both discriminators take *packed* inputs (PacGAN, Lin et al. 2018, "PacGAN: the power of two samples
in generative adversarial networks", NeurIPS): ``pack`` samples of one class (all real or all fake)
are concatenated — along the features for vectors, along the channels for images — and judged
together. A discriminator that sees several samples at once can tell that they are too alike, which
is how packing penalises mode collapse. ``pack=1`` is the ordinary GAN.

Spectral normalisation (Miyato et al. 2018, "Spectral normalization for generative adversarial
networks", ICLR) is an option of each discriminator layer.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLPDiscriminator",
    "MLPGenerator",
    "pack_samples",
]


def pack_samples(x, pack):
    """Group consecutive rows of ``x`` in packs of ``pack`` samples.

    Vectors ``(n, d)`` become ``(n // pack, pack · d)`` (features of samples ``i·pack … i·pack +
    pack − 1`` side by side); images ``(n, c, h, w)`` become ``(n // pack, pack · c, h, w)``
    (channels stacked). ``n`` must be a multiple of ``pack``.
    """
    n = x.shape[0]
    if n % pack:
        raise ValueError(f"the number of samples ({n}) must be a multiple of pack ({pack})")
    if x.dim() == 2:
        return x.reshape(n // pack, pack * x.shape[1])
    if x.dim() == 4:
        return x.reshape(n // pack, pack * x.shape[1], x.shape[2], x.shape[3])
    raise ValueError(f"pack_samples expects (n, d) vectors or (n, c, h, w) images; got shape {tuple(x.shape)}")


def _maybe_sn(layer, spectral_norm):
    return nn.utils.parametrizations.spectral_norm(layer) if spectral_norm else layer


class MLPGenerator(nn.Module):
    """z (n, latent_dim) → x (n, out_dim): ``len(hidden)`` LeakyReLU layers, linear output."""

    def __init__(self, latent_dim, out_dim, hidden=(256, 256, 256)):
        super().__init__()
        layers, width = [], latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """Packed vectors (n, pack · in_dim) → one logit per pack, shape (n,)."""

    def __init__(self, in_dim, hidden=(256, 256, 256), pack=1, spectral_norm=False):
        super().__init__()
        layers, width = [], in_dim * pack
        for h in hidden:
            layers += [_maybe_sn(nn.Linear(width, h), spectral_norm), nn.LeakyReLU(0.2)]
            width = h
        layers.append(_maybe_sn(nn.Linear(width, 1), spectral_norm))
        self.net = nn.Sequential(*layers)
        self.pack = pack

    def forward(self, x):
        return self.net(x).squeeze(1)


def _dcgan_plan(size):
    """(start size, number k of ×2 upsamplings) for an output side of ``size`` pixels.

    The most doublings (at most 3) that divide ``size`` exactly and keep the start at ≥ 2 pixels
    (8 → 2·2², 28 → 7·2², 32 → 4·2³); for a size that no doubling divides (odd sizes ≥ 5), two
    doublings from ``ceil(size / 4)`` and a centre crop.
    """
    for k in (3, 2, 1):
        if size % 2**k == 0 and size // 2**k >= 2:
            return size // 2**k, k
    if size >= 5:
        return math.ceil(size / 4), 2
    return size, 0


class DCGANGenerator(nn.Module):
    """z (n, latent_dim) → images (n, c, h, w) in (0, 1) (Radford et al. 2016, "Unsupervised
    representation learning with deep convolutional GANs", ICLR).

    A linear layer to a (base · 2^k, h0, w0) map, then k transposed convolutions (stride 2, kernel
    4) with batch normalisation and ReLU, a 3×3 convolution to ``c`` channels and a sigmoid; the
    map is centre-cropped to (h, w) when the doublings overshoot. Sizes from 2×2 up work; 8×8 and
    28×28 need exactly two doublings.
    """

    def __init__(self, latent_dim, image_shape, base_channels=64):
        super().__init__()
        c, h, w = image_shape
        k = min(_dcgan_plan(h)[1], _dcgan_plan(w)[1])
        h0, w0 = math.ceil(h / 2**k), math.ceil(w / 2**k)
        width = base_channels * 2**k
        self.image_shape, self._start = (c, h, w), (width, h0, w0)
        self.project = nn.Sequential(nn.Linear(latent_dim, width * h0 * w0), nn.BatchNorm1d(width * h0 * w0), nn.ReLU())
        blocks = []
        for _ in range(k):
            blocks += [nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU()]
            width //= 2
        blocks.append(nn.Conv2d(width, c, 3, padding=1))
        self.blocks = nn.Sequential(*blocks)

    def forward(self, z):
        x = self.blocks(self.project(z).reshape(z.shape[0], *self._start))
        c, h, w = self.image_shape
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        return torch.sigmoid(x[:, :, top:top + h, left:left + w])


class DCGANDiscriminator(nn.Module):
    """Packed images (n, pack · c, h, w) → one logit per pack, shape (n,).

    Strided 4×4 convolutions (stride 2, LeakyReLU 0.2) while the map is at least 4 pixels on each
    side (at most 3), then a linear layer. No batch normalisation: it would couple the samples of
    a batch, which breaks both the gradient penalty (per-sample gradients) and packing's meaning.
    """

    def __init__(self, image_shape, base_channels=64, pack=1, spectral_norm=False):
        super().__init__()
        c, h, w = image_shape
        layers, width, channels = [], base_channels, c * pack
        n_down = 0
        while n_down < 3 and min(h, w) >= 4:
            layers += [_maybe_sn(nn.Conv2d(channels, width, 4, stride=2, padding=1), spectral_norm),
                       nn.LeakyReLU(0.2)]
            channels, width = width, width * 2
            h, w = h // 2, w // 2
            n_down += 1
        layers.append(nn.Flatten())
        layers.append(_maybe_sn(nn.Linear(channels * h * w, 1), spectral_norm))
        self.net = nn.Sequential(*layers)
        self.pack = pack

    def forward(self, x):
        return self.net(x).squeeze(1)
