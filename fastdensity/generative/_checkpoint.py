"""Trainer checkpoints: written atomically with ``torch.save``, read with ``weights_only=True``.

A checkpoint is a dict of plain containers and tensors (state dicts of the modules and optimizers,
RNG states as byte tensors, the history as lists of floats), so loading one runs no code from the
file.
"""

from __future__ import annotations

import os
import tempfile

import torch

__all__ = ["CHECKPOINT_NAME", "load_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
_CHECKPOINT_FORMAT = "fastdensity.trainer/1"


def _atomic_torch_save(obj, path):
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path, map_location="cpu"):
    """Load a Trainer checkpoint safely (``torch.load(..., weights_only=True)``).

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file, or a folder holding ``checkpoint.pt``.
    map_location : str or torch.device, default "cpu"

    Returns
    -------
    dict
        ``{"format", "epoch", "modules", "optimizers", "task", "rng", "history", "early_stopping"}``;
        ``modules`` maps each module's name to its ``state_dict``.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, CHECKPOINT_NAME)
    state = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(state, dict) or state.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a fastdensity Trainer checkpoint (format {_CHECKPOINT_FORMAT})")
    return state
