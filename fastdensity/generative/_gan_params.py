"""The constructor parameters of :class:`GAN`, checked and with their None defaults filled in.

``resolve_params(gan)`` is ``GAN._resolved()``: the dict of training settings that ``fit``, ``load``
and the rejection sampler read; the architecture-dependent defaults live here too.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._gan_augment import parse_policy
from ._seeds import seed_from

__all__ = ["resolve_params"]

_ARCHITECTURES = ("mlp", "dcgan", "conv")
_LOSSES = ("non_saturating", "wgan_gp", "hinge")
_IMAGE_ARCHITECTURES = ("dcgan", "conv")
# The defaults of architecture="conv", chosen by the ablation on the shipped digits
# (bench/generative_gan_digits.py; bench/results/gan-digits-cpu-2026-12-03.txt).
_CONV_DEFAULTS = {"loss": "hinge", "spectral_norm": True, "ema_decay": 0.999, "augment": (),
                  "learning_rate": 7e-4, "d_learning_rate": 2.8e-3, "batch_size": 64, "latent_dim": 64,
                  "base_channels": 8, "betas": (0.5, 0.999), "decay_fraction": 0.3}
_DEFAULT_DECAY_FRACTION = 0.6  # "mlp" and "dcgan": measured on the ring benchmark
_DEFAULT_STEPS = 8000


def _seed_from(random_state):
    """The GAN's 63-bit seed (weights, references): salted, so not the Trainer's stream for the same int."""
    return seed_from(random_state, salt=0x6A4)


def resolve_params(gan):
    """Validated parameters of ``gan`` with the None defaults filled in."""
    def positive_int(name, value, allow_none=False):
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive int{' or None' if allow_none else ''}; got {value!r}")
        return int(value)

    def positive_float(name, value, allow_zero=False):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise ValueError(f"{name} must be a finite number {bound}; got {value!r}")
        return float(value)

    if gan.architecture not in _ARCHITECTURES:
        raise ValueError(f"architecture must be one of {_ARCHITECTURES}; got {gan.architecture!r}")
    conv = gan.architecture == "conv"
    loss = (_CONV_DEFAULTS["loss"] if conv else "non_saturating") if gan.loss is None else gan.loss
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {_LOSSES} or None; got {gan.loss!r}")
    wgan = loss == "wgan_gp"
    if gan.learning_rate is None:
        lr = 1e-4 if wgan else _CONV_DEFAULTS["learning_rate"] if conv else 5e-4 if gan.architecture == "mlp" \
            else 2e-4
    else:
        lr = positive_float("learning_rate", gan.learning_rate)
    if gan.d_learning_rate is None:
        d_lr = _CONV_DEFAULTS["d_learning_rate"] if conv and not wgan and gan.learning_rate is None else lr
    else:
        d_lr = positive_float("d_learning_rate", gan.d_learning_rate)
    p = {
        "loss": loss,
        "latent_dim": positive_int("latent_dim", gan.latent_dim, allow_none=True)
        or (2 if gan.architecture == "mlp" else _CONV_DEFAULTS["latent_dim"] if conv else 64),
        "base_channels": positive_int("base_channels", gan.base_channels, allow_none=True)
        or (_CONV_DEFAULTS["base_channels"] if conv else 64),
        "pack": positive_int("pack", gan.pack),
        "n_critic": positive_int("n_critic", gan.n_critic, allow_none=True) or (5 if wgan else 1),
        "gp_weight": (10.0 if wgan else 0.0) if gan.gp_weight is None
        else positive_float("gp_weight", gan.gp_weight, allow_zero=True),
        "r1_weight": positive_float("r1_weight", gan.r1_weight, allow_zero=True),
        "learning_rate": lr,
        "d_learning_rate": d_lr,
        "batch_size": positive_int("batch_size", gan.batch_size, allow_none=True)
        or (_CONV_DEFAULTS["batch_size"] if conv else 512),
    }
    ema = (_CONV_DEFAULTS["ema_decay"] if conv else 0.0) if gan.ema_decay is None else gan.ema_decay
    if not isinstance(ema, numbers.Real) or isinstance(ema, bool) or not 0 <= ema < 1:
        raise ValueError(f"ema_decay must be None or a number in [0, 1) (0: no average); got {gan.ema_decay!r}")
    p["ema_decay"] = float(ema)
    if gan.augment is None:
        p["augment"] = _CONV_DEFAULTS["augment"] if conv else ()
    else:
        p["augment"] = parse_policy(gan.augment)
        if p["augment"] and gan.architecture not in _IMAGE_ARCHITECTURES:
            raise ValueError(f"augment needs an image architecture {_IMAGE_ARCHITECTURES}; got "
                             f"architecture={gan.architecture!r} with augment={gan.augment!r}")
    sn = (_CONV_DEFAULTS["spectral_norm"] if conv else False) if gan.spectral_norm is None else gan.spectral_norm
    def widths(name, value):
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = (value,)
        try:
            value = tuple(positive_int(name, h) for h in value)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a positive int or a sequence of positive ints; got {value!r}") \
                from None
        if not value:
            raise ValueError(f"{name} must hold at least one layer width; got ()")
        return value

    p["hidden"] = widths("hidden", gan.hidden)
    p["ratio_hidden"] = p["hidden"] if gan.ratio_hidden is None else widths("ratio_hidden", gan.ratio_hidden)
    if not isinstance(sn, (bool, np.bool_)):
        raise TypeError(f"spectral_norm must be None, True or False; got {gan.spectral_norm!r}")
    p["spectral_norm"] = bool(sn)
    if not isinstance(gan.rejection_sampling, (bool, np.bool_)):
        raise TypeError(f"rejection_sampling must be True or False; got {gan.rejection_sampling!r}")
    rs = gan.ratio_steps
    if isinstance(rs, bool) or not isinstance(rs, numbers.Integral) or rs < 0:
        raise ValueError(f"ratio_steps must be a non-negative int; got {rs!r}")
    p["ratio_steps"] = int(rs)
    if gan.rejection_sampling and rs == 0 and loss != "non_saturating":
        raise ValueError("rejection_sampling=True with ratio_steps=0 needs loss='non_saturating' (a WGAN "
                         "critic's or a hinge discriminator's values are not log density ratios); use "
                         "ratio_steps > 0")
    if gan.rejection_sampling and rs == 0 and p["pack"] > 1:
        raise ValueError("rejection_sampling=True with ratio_steps=0 needs pack=1 (a packed discriminator "
                         "judges packs, not samples); use ratio_steps > 0")
    default_betas = (0.5, 0.9) if wgan else _CONV_DEFAULTS["betas"] if conv else (0.5, 0.999)
    betas = default_betas if gan.betas is None else gan.betas
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in betas)):
        raise ValueError(f"betas must be a pair of numbers in [0, 1); got {betas!r}")
    p["betas"] = (float(betas[0]), float(betas[1]))
    d = gan.decay_fraction
    if d is None:
        d = _CONV_DEFAULTS["decay_fraction"] if conv else _DEFAULT_DECAY_FRACTION
    if not isinstance(d, numbers.Real) or isinstance(d, bool) or not 0 <= d < 1:
        raise ValueError(f"decay_fraction must be a number in [0, 1); got {d!r}")
    p["decay_fraction"] = float(d)
    if p["batch_size"] % p["pack"]:
        raise ValueError(f"batch_size ({p['batch_size']}) must be a multiple of pack ({p['pack']})")
    if gan.n_steps is not None and gan.max_epochs is not None:
        raise ValueError(f"give n_steps or max_epochs, not both; got n_steps={gan.n_steps!r}, "
                         f"max_epochs={gan.max_epochs!r}")
    p["n_steps"] = positive_int("n_steps", gan.n_steps, allow_none=True)
    p["max_epochs"] = positive_int("max_epochs", gan.max_epochs, allow_none=True)
    if p["n_steps"] is None and p["max_epochs"] is None:
        p["n_steps"] = _DEFAULT_STEPS
    p["seed"] = _seed_from(gan.random_state)
    return p
