"""Array-namespace detection that never imports a heavy library.

A value can only be a torch tensor, a CuPy array or a Dask array if that library has
already been imported by the caller, so we look in ``sys.modules`` before touching it.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

SUPPORTED_NOW = "NumPy arrays (and array-likes) and torch CPU tensors"
# What the CUDA backend accepts (with CuPy and a GPU).
SUPPORTED_CUDA = "CuPy arrays and torch CUDA tensors (NumPy arrays and torch CPU tensors with backend='cuda')"


@dataclass(frozen=True)
class ArrayKind:
    """Where an array lives: its library (``namespace``) and its ``device``."""

    namespace: str  # "numpy", "torch", "cupy" or "dask"
    device: str  # "cpu" or "cuda"

    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"


NUMPY_CPU = ArrayKind("numpy", "cpu")


def _is_torch_tensor(x) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_cupy_array(x) -> bool:
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def _is_dask_array(x) -> bool:
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(x, dask_array.Array)


def array_kind(x) -> ArrayKind:
    """Return the :class:`ArrayKind` of one array; anything unknown counts as NumPy on the CPU."""
    if type(x) is np.ndarray:
        return NUMPY_CPU
    if _is_torch_tensor(x):
        return ArrayKind("torch", "cpu" if x.device.type == "cpu" else "cuda")
    # Before the ndarray subclasses (memmap, ...): the tests' stand-in for CuPy is one.
    if _is_cupy_array(x):
        return ArrayKind("cupy", "cuda")
    if _is_dask_array(x):
        return ArrayKind("dask", "cpu")
    return NUMPY_CPU


def common_kind(*arrays) -> ArrayKind:
    """The single :class:`ArrayKind` of several arrays (``None`` entries are ignored).

    Mixing devices is an error: we never move data between host and GPU behind the caller's back.
    """
    kinds = {array_kind(a) for a in arrays if a is not None}
    if not kinds:
        return NUMPY_CPU
    if len(kinds) == 1:
        return kinds.pop()
    devices = {k.device for k in kinds}
    if len(devices) > 1:
        raise TypeError(
            "inputs live on different devices "
            f"({', '.join(sorted(f'{k.namespace} on {k.device}' for k in kinds))}); "
            "move them to one device first"
        )
    # numpy + torch on the CPU: answer in torch's type if any input was torch.
    for k in kinds:
        if k.namespace == "torch":
            return k
    return NUMPY_CPU
