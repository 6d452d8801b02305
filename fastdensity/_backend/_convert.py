"""Moving arrays between the caller's type and the engines' arrays: NumPy for the CPU (zero copy where
the memory allows), CuPy for the GPU (torch CUDA tensors through DLPack, zero copy)."""

from __future__ import annotations

import sys

import numpy as np

from ._namespace import SUPPORTED_CUDA, SUPPORTED_NOW, ArrayKind, array_kind


def to_host_numpy(x):
    """Return ``x`` as a NumPy array for the CPU engine.

    NumPy arrays and array-likes pass through ``np.asarray``; torch CPU tensors are viewed
    without a copy. GPU arrays are refused: we never copy them to the host silently.
    """
    kind = array_kind(x)
    if kind.namespace == "numpy":
        return np.asarray(x)
    if kind.namespace == "torch" and kind.device == "cpu":
        if x.requires_grad:
            x = x.detach()
        if x.is_complex():
            raise TypeError("complex tensors are not supported; pass real-valued data")
        return x.resolve_conj().numpy()
    if kind.namespace == "dask":
        from ._dispatch import _DASK_QUERIES

        raise TypeError(f"Dask arrays are not supported yet; supported: {SUPPORTED_NOW}.{_DASK_QUERIES}")
    raise TypeError(
        f"{kind.namespace} arrays on {kind.device} are not supported by the CPU backend yet; "
        f"supported: {SUPPORTED_NOW}. GPU arrays are never copied to the host silently: "
        "move the data with .cpu() / cupy.asnumpy() yourself if that is what you want"
    )


def from_host_numpy(result: np.ndarray, kind: ArrayKind):
    """Return a NumPy ``result`` in the caller's array type (a torch tensor in, a torch tensor out)."""
    if kind.namespace == "numpy":
        return result
    if kind.namespace == "torch" and kind.device == "cpu":
        torch = sys.modules["torch"]
        return torch.from_numpy(np.ascontiguousarray(result))
    raise TypeError(f"cannot return results as {kind.namespace} on {kind.device}; supported: {SUPPORTED_NOW}")


def to_device_cupy(x, dtype=None):
    """Return ``x`` as a CuPy array on the GPU, for the CUDA engine.

    CuPy arrays pass through (cast only when ``dtype`` asks); torch CUDA tensors are shared through
    DLPack with no copy (CuPy synchronises with torch's current stream). Host data (NumPy arrays,
    array-likes, torch CPU tensors) is uploaded to the current device: the caller asked for
    ``backend="cuda"``. Raises :class:`~fastdensity._backend._cuda.CudaUnavailableError` without
    CuPy or a GPU.
    """
    from ._cuda import require_cupy

    cupy = require_cupy("backend='cuda'")
    kind = array_kind(x)
    if kind.namespace == "cupy":
        arr = x
    elif kind.namespace == "torch":
        if x.requires_grad:
            x = x.detach()
        if x.is_complex():
            raise TypeError("complex tensors are not supported; pass real-valued data")
        x = x.resolve_conj().resolve_neg()
        if x.device.type == "cpu":
            arr = cupy.asarray(x.numpy())
        elif x.device.type == "cuda":
            arr = cupy.from_dlpack(x)
        else:
            raise TypeError(f"torch tensors on {x.device.type} are not supported; supported: {SUPPORTED_CUDA}")
    elif kind.namespace == "numpy":
        arr = cupy.asarray(np.asarray(x))
    else:
        raise TypeError(f"{kind.namespace} arrays are not supported by the CUDA backend; supported: {SUPPORTED_CUDA}")
    if dtype is not None and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def from_device_cupy(result, kind: ArrayKind):
    """Return a CuPy ``result`` in the caller's array type: CuPy stays CuPy, a torch CUDA caller gets
    a torch tensor on the same device (DLPack, no copy), host callers get NumPy / torch CPU."""
    if kind.namespace == "cupy":
        return result
    if kind.namespace == "torch":
        torch = sys.modules["torch"]
        if kind.device == "cuda":
            return torch.from_dlpack(result)
        return torch.from_numpy(np.ascontiguousarray(result.get()))
    if kind.namespace == "numpy":
        return result.get()
    raise TypeError(f"cannot return results as {kind.namespace} on {kind.device}; supported: {SUPPORTED_CUDA}")


def float64_total(values) -> float:
    """The float64 sum of ``values`` (any supported array type) as a Python float, summed where the
    values are: a GPU result is reduced on its device and only the scalar comes back."""
    kind = array_kind(values)
    if kind.namespace == "dask":  # reduced on the workers
        from ._dask import dask_total

        return dask_total(values)
    if kind.namespace == "torch":
        return float(values.double().sum())
    if kind.namespace == "cupy":
        return float(values.sum(dtype=np.float64))
    return float(np.sum(np.asarray(values, dtype=np.float64)))
