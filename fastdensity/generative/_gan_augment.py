"""Differentiable augmentation of the discriminator's inputs (DiffAugment: Zhao et al. 2020,
"Differentiable augmentation for data-efficient GAN training", NeurIPS).

The same random transformations are applied to real and to generated images, in the
discriminator's steps and in the generator's, and they are differentiable in the images, so the
generator learns through them; the discriminator then cannot memorise a small training set
(1,257 digits), while the generator is still pushed toward the un-augmented data (each
transformation is random and the generator cannot predict it). Images are (n, c, h, w) in
[−1, 1] (the networks' space), −1 being the background.

Policies (a comma-separated string, applied in this order):

``"translation"``
    Each image moves by an integer offset in [−r, r] on each axis, r = round(``translation`` ·
    side) (DiffAugment's 1/8: one pixel on 8×8, 4 on 28×28); vacated pixels take the background
    value −1 (DiffAugment pads with 0, the mid-grey of [−1, 1]; digits have a black background).
``"cutout"``
    A square of side round(``cutout`` · side) (DiffAugment's 1/2), at a random centre (it may
    overhang the border), is set to the background value.
``"brightness"``, ``"contrast"``
    DiffAugment's colour transformations, for grey levels: x + U(−0.5, 0.5) (on [−1, 1], as
    DiffAugment's U(−0.5, 0.5) on its range) and (x − mean) · U(0.5, 1.5) + mean.

Randomness comes from the global torch RNG, which the Trainer seeds and checkpoints.
"""

from __future__ import annotations

import torch

__all__ = ["POLICIES", "diff_augment", "parse_policy"]

POLICIES = ("translation", "cutout", "brightness", "contrast")
BACKGROUND = -1.0


def parse_policy(policy):
    """A validated tuple of policy names from None, "" , a comma-separated string or a sequence."""
    if policy is None:
        return ()
    if isinstance(policy, str):
        names = tuple(p.strip() for p in policy.split(",") if p.strip())
    else:
        try:
            names = tuple(policy)
        except TypeError:
            raise ValueError(f"augment must be None, a comma-separated string or a sequence of {POLICIES}; "
                             f"got {policy!r}") from None
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"augment: unknown policy {name!r}; choose among {POLICIES}")
    return names


def _translation(x, ratio):
    n, _, h, w = x.shape
    rh, rw = int(round(h * ratio)), int(round(w * ratio))
    if rh == 0 and rw == 0:
        return x
    dev = x.device
    dy = torch.randint(-rh, rh + 1, (n, 1, 1), device=dev)
    dx = torch.randint(-rw, rw + 1, (n, 1, 1), device=dev)
    # output pixel (i, j) reads input pixel (i - dy, j - dx) of an image padded with the background
    rows = torch.arange(h, device=dev).view(1, h, 1) - dy + rh
    cols = torch.arange(w, device=dev).view(1, 1, w) - dx + rw
    padded = torch.nn.functional.pad(x, (rw, rw, rh, rh), value=BACKGROUND)
    index = (rows * (w + 2 * rw) + cols).reshape(n, 1, h * w).expand(n, x.shape[1], h * w)
    return padded.reshape(n, x.shape[1], -1).gather(2, index).reshape(x.shape)


def _cutout(x, ratio):
    n, _, h, w = x.shape
    sh, sw = int(round(h * ratio)), int(round(w * ratio))
    if sh == 0 or sw == 0:
        return x
    dev = x.device
    cy = torch.randint(0, h + (1 - sh % 2), (n, 1, 1), device=dev)
    cx = torch.randint(0, w + (1 - sw % 2), (n, 1, 1), device=dev)
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = ((rows - cy + sh // 2) >= 0) & ((rows - cy + sh // 2) < sh) \
        & ((cols - cx + sw // 2) >= 0) & ((cols - cx + sw // 2) < sw)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, BACKGROUND), x)


def _brightness(x):
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device) - 0.5)


def _contrast(x):
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device) + 0.5) + mean


def diff_augment(x, policy, translation=0.125, cutout=0.5):
    """``x`` (n, c, h, w) through the transformations named in ``policy`` (a tuple from
    :func:`parse_policy`), each drawn independently per image; differentiable in ``x``."""
    for name in policy:
        if name == "translation":
            x = _translation(x, translation)
        elif name == "cutout":
            x = _cutout(x, cutout)
        elif name == "brightness":
            x = _brightness(x)
        else:
            x = _contrast(x)
    return x
