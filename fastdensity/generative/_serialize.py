"""Safe VAE model files: ``torch.save`` of tensors, lists and JSON text, read back with ``weights_only=True``.

Loading runs no code from the file (no pickle of classes), like the ``.npz`` files of
:mod:`fastdensity.io`, which cannot hold a torch module. A fitted latent density
(:meth:`VAE.fit_latent_density`) is not saved: fit it again after loading.
"""

from __future__ import annotations

import json
import os

import torch

from ._trainer import TrainingHistory, _atomic_torch_save

__all__ = ["load_vae", "save_vae"]

VAE_FORMAT = "fastdensity.vae/1"


def _json_params(params):
    out = {}
    for name, value in params.items():
        if name == "random_state" and not (value is None or isinstance(value, int)):
            value = None  # a Generator cannot be stored; the fitted weights do not depend on it any more
        elif name == "device" and value is not None:
            value = str(value)
        elif name == "hidden" and value is not None:
            value = list(value)
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
