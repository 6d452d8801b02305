"""Backend layer: array-namespace detection, op dispatch and thread control."""

from ._convert import from_host_numpy, to_host_numpy
from ._dispatch import BACKENDS, OPS, get_op, resolve_backend, validate_backend
from ._namespace import ArrayKind, array_kind, common_kind
from ._threads import resolve_n_jobs, threads
from ._vector_width import prefer_full_width_vectors

# Before any fastdensity kernel compiles (see _vector_width.py; FASTDENSITY_KEEP_NUMBA_FEATURES=1
# opts out).
prefer_full_width_vectors()

__all__ = [
    "BACKENDS",
    "OPS",
    "ArrayKind",
    "array_kind",
    "common_kind",
    "from_host_numpy",
    "get_op",
    "resolve_backend",
    "resolve_n_jobs",
    "threads",
    "to_host_numpy",
    "validate_backend",
    "prefer_full_width_vectors",
]
