"""Safe VAE and GAN model files: ``torch.save`` of tensors, lists and JSON text, read back with ``weights_only=True``.

Loading runs no code from the file (no pickle of classes), like the ``.npz`` files of
:mod:`fastdensity.io`, which cannot hold a torch module. A fitted latent density
(:meth:`VAE.fit_latent_density`) is not saved: fit it again after loading.
"""

from __future__ import annotations

import json
import os

import torch

from ._trainer import TrainingHistory, _atomic_torch_save

__all__ = ["load_gan", "load_vae", "save_gan", "save_vae"]

VAE_FORMAT = "fastdensity.vae/1"
GAN_FORMAT = "fastdensity.gan/1"


def _json_params(params):
    out = {}
    for name, value in params.items():
        if name == "random_state" and not (value is None or isinstance(value, int)):
            value = None  # a Generator cannot be stored; the fitted weights do not depend on it any more
        elif name == "device" and value is not None:
            value = str(value)
        elif name in ("hidden", "ratio_hidden", "betas") and value is not None:
            value = list(value)
        elif name == "augment" and value is not None and not isinstance(value, str):
            value = ",".join(value)
        elif name == "checkpoint_dir" and value is not None:
            value = os.fspath(value)
        out[name] = value
    return json.dumps(out)


def save_vae(vae, path):
    """Write a fitted VAE to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    model = vae.model_
    state = {
        "format": VAE_FORMAT,
        "params": _json_params(vae.get_params(deep=False)),
        "model_shape": list(model.data_shape),
        "hidden": list(vae._hidden),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "sample_shape": list(vae.sample_shape_),
        "fit_kind": vae._fit_kind.kind,
        "train_latent_means": torch.as_tensor(vae.train_latent_means_),
        "history": {k: list(v) for k, v in vae.history_.items()},
        "best_epoch": int(vae.best_epoch_),
    }
    _atomic_torch_save(state, os.fspath(path))


def load_vae(cls, path, device=None):
    """Read a file written by :func:`save_vae` into a fitted ``cls`` (the VAE class) on ``device``."""
    from ._data import InputKind, resolve_device
    from ._vae_model import VAEModel

    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != VAE_FORMAT:
        raise ValueError(f"{path} is not a fastdensity VAE file (format {VAE_FORMAT})")
    params = json.loads(state["params"])
    if params.get("hidden") is not None:
        params["hidden"] = tuple(params["hidden"])
    if device is not None:
        params["device"] = str(device)
    vae = cls(**params)
    dev = resolve_device(params.get("device"))
    model = VAEModel(tuple(state["model_shape"]), vae.latent_dim, vae.architecture, tuple(state["hidden"]),
                     vae.likelihood, vae.n_categories, vae.activation, vae.min_logvar)
    model.load_state_dict(state["state_dict"])
    model.to(dev).eval()
    vae.model_ = model
    vae.device_ = dev
    vae._hidden = tuple(state["hidden"])
    vae.sample_shape_ = tuple(state["sample_shape"])
    vae.n_features_in_ = int(torch.Size(vae.sample_shape_).numel())
    vae._fit_kind = InputKind(state["fit_kind"], dev if state["fit_kind"] == "torch" else None)
    vae.train_latent_means_ = state["train_latent_means"].numpy()
    history = TrainingHistory({k: list(v) for k, v in state["history"].items()})
    history.best_epoch = state["best_epoch"]
    vae.history_ = history
    vae.loss_history_ = list(history.get("train_loss", []))
    vae.n_epochs_ = history.n_epochs
    vae.best_epoch_ = state["best_epoch"]
    return vae


def _cpu_state(module):
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def save_gan(gan, path):
    """Write a fitted GAN to ``path`` atomically: parameters, the generator, its EMA, the
    discriminator, the density-ratio classifier of rejection sampling, and the fitted attributes."""
    kind, dtype, _ = gan.input_kind_
    state = {
        "format": GAN_FORMAT,
        "params": _json_params(gan.get_params(deep=False)),
        "network_shape": list(gan.network_shape_),
        "generator": _cpu_state(gan.generator_),
        "discriminator": _cpu_state(gan.discriminator_),
        "sample_shape": list(gan.sample_shape_),
        "input_kind": [kind, str(dtype).replace("torch.", "")],
        "reference": gan.reference_.detach().cpu(),
        "n_steps": int(gan.n_steps_),
        "history": {k: list(v) for k, v in gan.history_.items()},
    }
    if gan.generator_ema_ is not None:
        state["generator_ema"] = _cpu_state(gan.generator_ema_)
    if gan.architecture == "mlp":
        state["data_mean"], state["data_scale"] = gan.data_mean_.cpu(), gan.data_scale_.cpu()
    if hasattr(gan, "max_logit_"):
        state["max_logit"], state["acceptance_rate"] = float(gan.max_logit_), float(gan.acceptance_rate_)
        if gan.ratio_classifier_ is not None:
            state["ratio_classifier"] = _cpu_state(gan.ratio_classifier_)
    _atomic_torch_save(state, os.fspath(path))


def load_gan(cls, path, device=None):
    """Read a file written by :func:`save_gan` into a fitted ``cls`` (the GAN class) on ``device``."""
    import numpy as np

    from ._data import resolve_device

    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != GAN_FORMAT:
        raise ValueError(f"{path} is not a fastdensity GAN file (format {GAN_FORMAT})")
    params = json.loads(state["params"])
    for name in ("hidden", "ratio_hidden", "betas"):
        if params.get(name) is not None:
            params[name] = tuple(params[name])
    if device is not None:
        params["device"] = str(device)
    gan = cls(**params)
    p = gan._resolved()
    dev = resolve_device(params.get("device"))
    shape = tuple(state["network_shape"])
    G, D = gan._networks(p, shape)
    G.load_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    gan.generator_, gan.discriminator_ = G.to(dev).eval(), D.to(dev).eval()
    gan.generator_ema_ = None
    if "generator_ema" in state:
        E, _ = gan._networks(p, shape)
        E.load_state_dict(state["generator_ema"])
        gan.generator_ema_ = E.to(dev).eval()
    kind, dtype = state["input_kind"]
    gan.input_kind_ = (kind, np.dtype(dtype) if kind == "numpy" else getattr(torch, dtype), None)
    gan.network_shape_ = shape
    gan.sample_shape_ = tuple(state["sample_shape"])
    gan.n_features_in_ = int(np.prod(gan.sample_shape_))
    gan.latent_dim_, gan.pack_, gan.device_ = p["latent_dim"], p["pack"], dev
    gan.reference_ = state["reference"].to(dev)
    gan.n_steps_ = state["n_steps"]
    history = TrainingHistory({k: list(v) for k, v in state["history"].items()})
    gan.history_ = history
    gan.loss_history_ = {k[len("train_"):]: list(v) for k, v in history.items() if k.startswith("train_")}
    if "data_mean" in state:
        gan.data_mean_, gan.data_scale_ = state["data_mean"].to(dev), state["data_scale"].to(dev)
    if "max_logit" in state:
        gan.max_logit_, gan.acceptance_rate_ = state["max_logit"], state["acceptance_rate"]
        gan.ratio_classifier_ = None
        if "ratio_classifier" in state:
            C = gan._discriminator(shape, p, p["ratio_hidden"], 1, False)
            C.load_state_dict(state["ratio_classifier"])
            gan.ratio_classifier_ = C.to(dev).eval()
    return gan
