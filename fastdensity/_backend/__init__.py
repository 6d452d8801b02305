"""Backend layer: array-namespace detection, op dispatch and thread control."""

from ._convert import from_host_numpy, to_host_numpy
from ._dispatch import BACKENDS, OPS, get_op, resolve_backend, validate_backend
from ._namespace import ArrayKind, array_kind, common_kind
from ._threads import resolve_n_jobs, threads

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
]
