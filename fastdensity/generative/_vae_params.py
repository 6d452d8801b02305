"""The constructor parameters of :class:`VAE`: their table (``VAE._constraints``, checked by
``fastdensity._backend._validation``) and ``validate_params(vae)``, which is
``VAE._validate_params()`` and gives the resolved ``hidden`` widths."""

from __future__ import annotations

import numbers

from .._backend._validation import Check, CheckedLater, Integer, Options, Real, validate_parameters

__all__ = ["CONSTRAINTS", "validate_params"]

_ARCHITECTURES = ("mlp", "conv")
_LIKELIHOODS = ("bernoulli", "gaussian", "categorical")
_ACTIVATIONS = ("relu", "elu", "tanh", "gelu")
_MONITORS = ("iwae", "elbo")
_DEFAULT_HIDDEN = {"mlp": (256, 256), "conv": (32, 64)}


def _check_hidden(hidden):
    if isinstance(hidden, numbers.Integral) and not isinstance(hidden, bool):
        hidden = (hidden,)
    if (not isinstance(hidden, (tuple, list)) or len(hidden) == 0
            or any(isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty tuple of positive ints (or None); got {hidden!r}")
    return tuple(int(h) for h in hidden)


CONSTRAINTS = {
    "latent_dim": Integer(1),
    "architecture": Options(_ARCHITECTURES),
    "hidden": Check(_check_hidden, none=True),
    "likelihood": Options(_LIKELIHOODS),
    "beta": Real(0),
    "n_categories": Integer(2),
    "activation": Options(_ACTIVATIONS),
    "min_logvar": Real(),
    "kl_warmup_epochs": Integer(0),
    "max_epochs": Integer(1),
    "batch_size": Integer(1),
    "learning_rate": Real(0, low_open=True),
    "weight_decay": Real(0),
    "patience": Integer(1, none=True),
    "monitor": Options(_MONITORS),
    "eval_importance": Integer(1),
    "random_state": CheckedLater("seed_from (generative/_seeds.py)"),
    "device": CheckedLater("resolve_device (generative/_data.py)"),
    "checkpoint_dir": CheckedLater("Trainer"),
    "checkpoint_every": CheckedLater("Trainer"),
    "resume": CheckedLater("Trainer"),
    "progress": CheckedLater("Trainer"),
}


def validate_params(vae):
    """Check the parameters of ``vae`` (an error naming the first bad one, in the table's order);
    returns ``hidden`` as a tuple of ints, its default filled in."""
    hidden = validate_parameters(vae, CONSTRAINTS)["hidden"]
    return _DEFAULT_HIDDEN[vae.architecture] if hidden is None else hidden
