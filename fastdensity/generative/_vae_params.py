"""The constructor parameters of :class:`VAE`, checked: ``validate_params(vae)`` is
``VAE._validate_params()`` and gives the resolved ``hidden`` widths."""

from __future__ import annotations

import math
import numbers

__all__ = ["validate_params"]

_ARCHITECTURES = ("mlp", "conv")
_LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
_ACTIVATIONS = ("relu", "elu", "tanh", "gelu")
_MONITORS = ("iwae", "elbo")
_DEFAULT_HIDDEN = {"mlp": (256, 256), "conv": (32, 64)}


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


def _choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {value!r}")


def validate_params(vae):
    """Check the parameters of ``vae`` (ValueError naming the first bad one); returns ``hidden`` as a
    tuple of ints, its default filled in."""
    _positive_int("latent_dim", vae.latent_dim)
    _choice("architecture", vae.architecture, _ARCHITECTURES)
    _choice("likelihood", vae.likelihood, _LIKELIHOODS)
    _choice("activation", vae.activation, _ACTIVATIONS)
    _choice("monitor", vae.monitor, _MONITORS)
    hidden = _DEFAULT_HIDDEN[vae.architecture] if vae.hidden is None else vae.hidden
    if isinstance(hidden, numbers.Integral):
        hidden = (hidden,)
    if (not isinstance(hidden, (tuple, list)) or len(hidden) == 0
            or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty tuple of positive ints (or None); got {vae.hidden!r}")
    for name in ("beta", "learning_rate", "weight_decay", "min_logvar"):
        value = getattr(vae, name)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number; got {value!r}")
    if vae.beta < 0 or vae.weight_decay < 0:
        raise ValueError(f"beta and weight_decay must be >= 0; got beta={vae.beta!r}, "
                         f"weight_decay={vae.weight_decay!r}")
    if vae.learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0; got {vae.learning_rate!r}")
    if isinstance(vae.n_categories, bool) or not isinstance(vae.n_categories, numbers.Integral) \
            or vae.n_categories < 2:
        raise ValueError(f"n_categories must be an int >= 2; got {vae.n_categories!r}")
    for name in ("max_epochs", "batch_size", "eval_importance"):
        _positive_int(name, getattr(vae, name))
    if isinstance(vae.kl_warmup_epochs, bool) or not isinstance(vae.kl_warmup_epochs, numbers.Integral) \
            or vae.kl_warmup_epochs < 0:
        raise ValueError(f"kl_warmup_epochs must be an int >= 0; got {vae.kl_warmup_epochs!r}")
    if vae.patience is not None:
        _positive_int("patience", vae.patience)
    return tuple(int(h) for h in hidden)
