"""Serial and parallel Numba drivers compiled from one body.

A driver is a thin loop (``prange`` over queries, blocks or chunks) around per-item work. Below
some problem size, waking the OpenMP thread team costs more than the work, so each driver exists
twice: threaded, and on the calling thread. Both are compiled from the same Python function (in a
function compiled without ``parallel=True``, ``prange`` is ``range``), so they cannot drift apart.

The serial twin is a copy of the function under another ``__qualname__``: Numba's on-disk cache
names its files by qualified name and line, and its index does not record ``parallel``, so two
dispatchers of one function would load each other's machine code from the cache (measured with
numba 0.68: the second dispatcher in a process reported a cache hit on the first one's entry).
"""

from __future__ import annotations

import types

from numba import njit

__all__ = ["serial_and_parallel"]


def serial_and_parallel(body, **options):
    """Return ``(serial, parallel)`` Numba dispatchers compiled from ``body``.

    ``options`` go to both ``njit`` calls (``cache=True`` is the default); ``parallel`` is set
    here. The serial dispatcher's function is named ``<body name>_serial``.
    """
    if "parallel" in options:
        raise TypeError("serial_and_parallel sets `parallel` itself")
    options.setdefault("cache", True)
    parallel = njit(parallel=True, **options)(body)
    twin = types.FunctionType(body.__code__, body.__globals__, body.__name__ + "_serial",
                              body.__defaults__, body.__closure__)
    twin.__qualname__ = body.__qualname__ + "_serial"
    twin.__module__ = body.__module__
    twin.__doc__ = body.__doc__
    twin.__kwdefaults__ = body.__kwdefaults__
    return njit(**options)(twin), parallel
