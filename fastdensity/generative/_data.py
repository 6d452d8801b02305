"""Input checks and conversions for the generative models: numpy or torch in, the same type out."""

from __future__ import annotations


import numpy as np
import torch

from .._backend._validation import Integer, check_parameter

__all__ = ["InputKind", "as_float_tensor", "check_n_samples", "resolve_device", "to_caller"]


class InputKind:
    """What the caller passed: ``"numpy"`` or ``"torch"`` (with its device), to answer in kind."""

    __slots__ = ("kind", "device")

    def __init__(self, kind, device=None):
        self.kind = kind
        self.device = device


def as_float_tensor(X, name="X", device=None):
    """``X`` (numpy array, array-like or torch tensor) as a float32 tensor, with its :class:`InputKind`.

    Raises TypeError for non-numeric input and ValueError for empty input or NaN/inf.
    """
    if isinstance(X, torch.Tensor):
        kind = InputKind("torch", X.device)
        if X.is_complex() or not (X.is_floating_point() or X.dtype in (torch.uint8, torch.int8, torch.int16,
                                                                         torch.int32, torch.int64, torch.bool)):
            raise TypeError(f"{name} must hold real numbers; got a tensor of dtype {X.dtype}")
        t = X.detach().to(dtype=torch.float32)
    else:
        kind = InputKind("numpy")
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numpy array or a torch tensor; got {type(X).__name__}") from exc
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers; got an array of dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if t.ndim == 0 or t.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample (rows along axis 0); got shape {tuple(t.shape)}")
    if device is not None:
        t = t.to(device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return t, kind


def to_caller(t, kind, dtype=None):
    """A result tensor in the caller's type: numpy for numpy input, else a tensor on the input's device."""
    t = t.detach()
    if kind.kind == "numpy":
        out = t.cpu().numpy()
        return out.astype(dtype, copy=False) if dtype is not None else out
    out = t.to(kind.device) if kind.device is not None else t
    return out.to(getattr(torch, np.dtype(dtype).name)) if dtype is not None else out


def resolve_device(device, data=None):
    """``device=`` if given (checked), else the data's device, else the CPU."""
    if device is None:
        return data.device if isinstance(data, torch.Tensor) else torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be None, 'cpu', 'cuda' or a torch.device; got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but this torch has no usable CUDA device; use device='cpu'")
    return dev


def check_n_samples(n_samples, name="n_samples"):
    return check_parameter(name, n_samples, Integer(1))
