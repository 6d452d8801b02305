"""The mixture's array glue: where the caller's data lives (its ``Space``), the fitted parameters in
the form scikit-learn gives them, and results back in the caller's array type.

The engines compute on NumPy (CPU) or CuPy (CUDA) arrays; ``fastdensity._backend`` moves NumPy,
torch and CuPy arrays to and from them (``to_host_numpy``, ``to_device_cupy``, ``from_host_numpy``,
``from_device_cupy``). Any other array-API array (``array_api_strict``, for one) is taken through
DLPack on the host and given back with its own namespace's ``asarray`` on its own device, so that
no namespace needs a branch of its own.

Fitted attributes follow scikit-learn ≥ 1.8: their dtype is the training data's (float32 in →
float32 parameters); with ``sklearn.set_config(array_api_dispatch=True)`` they are arrays of the
training data's namespace on its device, otherwise NumPy arrays (scikit-learn converts torch
tensors to NumPy then too). Results of ``score_samples``, ``predict``, ``predict_proba`` and
``fit_predict`` come back in the caller's array type and device in both cases (fastdensity's
rule for every estimator; scikit-learn without dispatch would give NumPy).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from .._backend import _namespace
from .._backend._convert import from_device_cupy, from_host_numpy, to_device_cupy, to_host_numpy


class Space(NamedTuple):
    """The caller's array type: its ``ArrayKind`` and, for an array-API namespace that the backend
    helpers do not know, that namespace and the array's device."""

    kind: _namespace.ArrayKind
    xp: Any = None
    device: Any = None


def _foreign(x):
    """True for an array-API array of a namespace other than NumPy, torch and CuPy."""
    return (_namespace.array_kind(x).namespace == "numpy" and not isinstance(x, np.ndarray)
            and hasattr(x, "__array_namespace__"))


def space_of(*arrays) -> Space:
    """The :class:`Space` of the caller's arrays (``None`` entries ignored)."""
    kind = _namespace.common_kind(*arrays)
    for x in arrays:
        if x is not None and _foreign(x):
            return Space(kind, x.__array_namespace__(), x.device)
    return Space(kind)


def host(x):
    """``x`` for the host paths: NumPy arrays, array-likes and torch CPU tensors as the backend
    helper gives them (no copy where it can), other array-API arrays through DLPack."""
    if x is not None and _foreign(x):
        return np.from_dlpack(x)
    return x


def host64(a):
    """A fitted parameter (or a user-given one) as a float64 NumPy array, from any namespace and
    device; parameters are small, so a GPU parameter is copied to the host here."""
    if a is None:
        return None
    if _namespace.array_kind(a).on_gpu:
        a = to_device_cupy(a).get()
    else:
        a = to_host_numpy(host(a))
    return np.asarray(a, dtype=np.float64)


def dispatch_on() -> bool:
    """scikit-learn's ``array_api_dispatch`` setting."""
    from sklearn import get_config

    return bool(get_config().get("array_api_dispatch", False))


def to_caller(result, space: Space):
    """A NumPy or CuPy ``result`` in the caller's array type and on its device."""
    if space.kind.on_gpu and _namespace.array_kind(result).namespace != "cupy":
        result = to_device_cupy(np.asarray(result))
    if _namespace.array_kind(result).namespace == "cupy":
        out = from_device_cupy(result, space.kind)
    else:
        out = from_host_numpy(result, space.kind)
    if space.xp is not None:
        out = space.xp.asarray(out, device=space.device)
    return out


def publish(a, space: Space, dtype, dispatch: bool):
    """A float64 NumPy parameter as a fitted attribute: in ``dtype``, and in the caller's namespace
    and device when ``dispatch`` (scikit-learn's array-API dispatch) is on."""
    a = np.asarray(a).astype(dtype, copy=False)
    return to_caller(a, space) if dispatch else a
