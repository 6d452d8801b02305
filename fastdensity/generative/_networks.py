"""Encoder and decoder networks of the VAE: fully connected (mlp) and convolutional (conv).

An encoder maps a batch of inputs to ``2 * latent_dim`` numbers per sample (mean and
log-variance); a decoder maps latent codes to ``out_channels`` numbers per pixel (the likelihood's
parameters: logits, means or per-category logits).
"""

from __future__ import annotations

import math

from torch import nn

__all__ = ["ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "conv_sizes"]

_ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU}


def _activation(name):
    return _ACTIVATIONS[name]()


def _mlp(sizes, activation):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(_activation(activation))
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Flattens (n, *data_shape) and maps it through ``hidden`` layers to (n, 2 * latent_dim)."""

    def __init__(self, data_shape, hidden, latent_dim, activation="relu"):
        super().__init__()
        self.net = _mlp([math.prod(data_shape), *hidden, 2 * latent_dim], activation)

    def forward(self, x):
        return self.net(x.flatten(1))


class MLPDecoder(nn.Module):
    """Maps (n, latent_dim) through ``hidden`` layers to (n, out_channels, *data_shape).

    ``out_channels`` multiplies the data's own channels: for (C, H, W) data the output is
    reshaped to (n, out_channels, C, H, W); callers squeeze the extra axis when it is 1.
    """

    def __init__(self, data_shape, hidden, latent_dim, out_channels=1, activation="relu"):
        super().__init__()
        self.data_shape = tuple(data_shape)
        self.out_channels = out_channels
        self.net = _mlp([latent_dim, *hidden, out_channels * math.prod(data_shape)], activation)

    def forward(self, z):
        return self.net(z).reshape(z.shape[0], self.out_channels, *self.data_shape)


def conv_sizes(size, levels):
    """Spatial sizes after each stride-2 convolution (kernel 4, padding 1): [size, …] of length levels + 1."""
    sizes = [int(size)]
    for _ in range(levels):
        sizes.append((sizes[-1] + 2 - 4) // 2 + 1)
    return sizes


class ConvEncoder(nn.Module):
    """Stride-2 convolutions (kernel 4, padding 1) with ``channels`` filters, then a linear layer.

    Input (n, C, H, W); output (n, 2 * latent_dim).
    """

    def __init__(self, data_shape, channels, latent_dim, activation="relu"):
        super().__init__()
        c, h, w = data_shape
        hs, ws = conv_sizes(h, len(channels)), conv_sizes(w, len(channels))
        layers, prev = [], c
        for ch in channels:
            layers += [nn.Conv2d(prev, ch, 4, stride=2, padding=1), _activation(activation)]
            prev = ch
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(prev * hs[-1] * ws[-1], 2 * latent_dim)

    def forward(self, x):
        return self.head(self.conv(x).flatten(1))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear layer, then stride-2 transposed convolutions.

    ``output_padding`` restores each odd size exactly, so any (H, W) of at least 2 ** levels comes
    back unchanged. Output (n, out_channels, C, H, W).
    """

    def __init__(self, data_shape, channels, latent_dim, out_channels=1, activation="relu"):
        super().__init__()
        c, h, w = data_shape
        self.data_shape = tuple(data_shape)
        self.out_channels = out_channels
        levels = len(channels)
        hs, ws = conv_sizes(h, levels), conv_sizes(w, levels)
        self.start = (channels[-1], hs[-1], ws[-1])
        self.head = nn.Sequential(nn.Linear(latent_dim, math.prod(self.start)), _activation(activation))
        layers = []
        rev = list(channels[::-1])
        for i in range(levels):
            # from level levels - i to levels - i - 1
            out_h, out_w = hs[levels - i - 1], ws[levels - i - 1]
            pad = (out_h - 2 * hs[levels - i], out_w - 2 * ws[levels - i])
            last = i == levels - 1
            out_ch = c * out_channels if last else rev[i + 1]
            layers.append(nn.ConvTranspose2d(rev[i], out_ch, 4, stride=2, padding=1, output_padding=pad))
            if not last:
                layers.append(_activation(activation))
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):
        out = self.deconv(self.head(z).reshape(z.shape[0], *self.start))
        c, h, w = self.data_shape
        return out.reshape(z.shape[0], self.out_channels, c, h, w)


def check_conv_shape(data_shape, channels):
    """Raise ValueError when (C, H, W) is too small for ``len(channels)`` stride-2 levels."""
    _, h, w = data_shape
    levels = len(channels)
    if min(conv_sizes(h, levels)[-1], conv_sizes(w, levels)[-1]) < 1 or min(h, w) < 2 ** levels:
        raise ValueError(
            f"architecture='conv' with hidden={tuple(channels)} halves the image {levels} times; "
            f"images of {h}x{w} need at most {int(math.log2(min(h, w)))} levels (fewer entries in hidden)"
        )


def encoder_decoder(architecture, data_shape, hidden, latent_dim, out_channels, activation):
    """Build the (encoder, decoder) pair for ``architecture`` in {"mlp", "conv"}."""
    if architecture == "mlp":
        return (MLPEncoder(data_shape, hidden, latent_dim, activation),
                MLPDecoder(data_shape, hidden[::-1], latent_dim, out_channels, activation))
    check_conv_shape(data_shape, hidden)
    return (ConvEncoder(data_shape, hidden, latent_dim, activation),
            ConvDecoder(data_shape, hidden, latent_dim, out_channels, activation))

