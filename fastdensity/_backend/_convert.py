"""Moving arrays between the caller's type and the engine's NumPy arrays (CPU only, zero copy
where the memory allows)."""

from __future__ import annotations

import sys

import numpy as np

from ._namespace import SUPPORTED_NOW, ArrayKind, array_kind


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
