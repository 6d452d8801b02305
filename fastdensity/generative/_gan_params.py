"""The constructor parameters of :class:`GAN`, checked and with their None defaults filled in.

``resolve_params(gan)`` is ``GAN._resolved()``: the dict of training settings that ``fit``, ``load``
and the rejection sampler read; the architecture-dependent defaults live here too.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend._validation import (Boolean, Check, CheckedLater, Integer, InvalidParameterError, Options, Real,
                                   check_parameter, validate_parameters)
from ._gan_augment import parse_policy
from ._seeds import seed_from

__all__ = ["CONSTRAINTS", "resolve_params"]

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


def _check_widths(value):
    """Layer widths: a positive int or a non-empty sequence of them, as a tuple."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        widths = tuple(check_parameter("width", h, Integer(1)) for h in value)
    except (TypeError, ValueError):
        raise InvalidParameterError(f"must be a positive int or a sequence of positive ints; got {value!r}") from None
    if not widths:
        raise InvalidParameterError("must hold at least one layer width; got ()")
    return widths


def _named(name, check):
    """``check`` with its message prefixed by the parameter's name."""
    def run(value):
        try:
            return check(value)
        except InvalidParameterError as exc:
            raise InvalidParameterError(f"{name} {exc}") from None
    return run


def _check_betas(betas):
    if (not isinstance(betas, (tuple, list)) or len(betas) != 2
            or not all(isinstance(b, numbers.Real) and not isinstance(b, bool) and 0 <= b < 1 for b in betas)):
        raise InvalidParameterError(f"betas must be a pair of numbers in [0, 1); got {betas!r}")
    return (float(betas[0]), float(betas[1]))


def _check_spectral_norm(value):
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidParameterError(f"spectral_norm must be None, True or False; got {value!r}")
    return bool(value)


CONSTRAINTS = {
    "architecture": Options(_ARCHITECTURES),
    "loss": Options(_LOSSES, none=True),
    "latent_dim": Integer(1, none=True),
    "hidden": Check(_named("hidden", _check_widths)),
    "base_channels": Integer(1, none=True),
    "pack": Integer(1),
    "spectral_norm": Check(_check_spectral_norm, none=True),
    "gp_weight": Real(0, none=True),
    "n_critic": Integer(1, none=True),
    "learning_rate": Real(0, low_open=True, none=True),
    "d_learning_rate": Real(0, low_open=True, none=True),
    "ema_decay": Real(0, 1, high_open=True, none=True),
    "augment": Check(parse_policy, none=True),
    "r1_weight": Real(0),
    "betas": Check(_check_betas, none=True),
    "decay_fraction": Real(0, 1, high_open=True, none=True),
    "batch_size": Integer(1, none=True),
    "n_steps": Integer(1, none=True),
    "max_epochs": Integer(1, none=True),
    "random_state": Check(_seed_from),
    "device": CheckedLater("resolve_device (generative/_data.py) at fit"),
    "checkpoint_dir": CheckedLater("Trainer"),
    "resume": CheckedLater("Trainer"),
    "progress": CheckedLater("Trainer"),
    "rejection_sampling": Boolean(),
    "ratio_steps": Integer(0),
    "ratio_hidden": Check(_named("ratio_hidden", _check_widths), none=True),
}


def resolve_params(gan):
    """Validated parameters of ``gan`` (by :data:`CONSTRAINTS`, then the rules that join two
    parameters) with the None defaults filled in."""
    v = validate_parameters(gan, CONSTRAINTS)
    arch = v["architecture"]
    conv = arch == "conv"
    loss = (_CONV_DEFAULTS["loss"] if conv else "non_saturating") if v["loss"] is None else v["loss"]
    wgan = loss == "wgan_gp"
    lr = v["learning_rate"]
    if lr is None:
        lr = 1e-4 if wgan else _CONV_DEFAULTS["learning_rate"] if conv else 5e-4 if arch == "mlp" else 2e-4
    d_lr = v["d_learning_rate"]
    if d_lr is None:
        d_lr = _CONV_DEFAULTS["d_learning_rate"] if conv and not wgan and v["learning_rate"] is None else lr

    def default(name, value):
        return value if v[name] is None else v[name]

    p = {
        "loss": loss,
        "latent_dim": default("latent_dim", 2 if arch == "mlp" else _CONV_DEFAULTS["latent_dim"] if conv else 64),
        "base_channels": default("base_channels", _CONV_DEFAULTS["base_channels"] if conv else 64),
        "pack": v["pack"],
        "n_critic": default("n_critic", 5 if wgan else 1),
        "gp_weight": default("gp_weight", 10.0 if wgan else 0.0),
        "r1_weight": v["r1_weight"],
        "learning_rate": lr,
        "d_learning_rate": d_lr,
        "batch_size": default("batch_size", _CONV_DEFAULTS["batch_size"] if conv else 512),
        "ema_decay": default("ema_decay", _CONV_DEFAULTS["ema_decay"] if conv else 0.0),
        "augment": default("augment", _CONV_DEFAULTS["augment"] if conv else ()),
        "hidden": v["hidden"],
        "spectral_norm": default("spectral_norm", _CONV_DEFAULTS["spectral_norm"] if conv else False),
        "ratio_steps": v["ratio_steps"],
        "betas": default("betas", (0.5, 0.9) if wgan else _CONV_DEFAULTS["betas"] if conv else (0.5, 0.999)),
        "decay_fraction": default("decay_fraction", _CONV_DEFAULTS["decay_fraction"] if conv
                                  else _DEFAULT_DECAY_FRACTION),
        "n_steps": v["n_steps"],
        "max_epochs": v["max_epochs"],
        "seed": v["random_state"],
    }
    p["ratio_hidden"] = p["hidden"] if v["ratio_hidden"] is None else v["ratio_hidden"]
    if v["augment"] and arch not in _IMAGE_ARCHITECTURES:
        raise ValueError(f"augment needs an image architecture {_IMAGE_ARCHITECTURES}; got "
                         f"architecture={arch!r} with augment={gan.augment!r}")
    rs = p["ratio_steps"]
    if gan.rejection_sampling and rs == 0 and loss != "non_saturating":
        raise ValueError("rejection_sampling=True with ratio_steps=0 needs loss='non_saturating' (a WGAN "
                         "critic's or a hinge discriminator's values are not log density ratios); use "
                         "ratio_steps > 0")
    if gan.rejection_sampling and rs == 0 and p["pack"] > 1:
        raise ValueError("rejection_sampling=True with ratio_steps=0 needs pack=1 (a packed discriminator "
                         "judges packs, not samples); use ratio_steps > 0")
    if p["batch_size"] % p["pack"]:
        raise ValueError(f"batch_size ({p['batch_size']}) must be a multiple of pack ({p['pack']})")
    if p["n_steps"] is not None and p["max_epochs"] is not None:
        raise ValueError(f"give n_steps or max_epochs, not both; got n_steps={gan.n_steps!r}, "
                         f"max_epochs={gan.max_epochs!r}")
    if p["n_steps"] is None and p["max_epochs"] is None:
        p["n_steps"] = _DEFAULT_STEPS
    return p
