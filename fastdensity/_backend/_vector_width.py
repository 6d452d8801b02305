"""Let LLVM use 512-bit vectors on AVX-512 machines.

LLVM's tuning for AVX-512 server cores prefers 256-bit vectors ("prefer-256-bit"), a guard
against frequency drops in code that uses them briefly. The kernels here are long, dense loops
of FMAs and exponentials where full-width vectors win: on this project's 2-core Xeon the
Gaussian KDE runs 1.5× faster per core with the preference off (1.18e9 → 1.76e9 pairs/s at
d = 2, 6.8e8 → 1.04e9 at d = 8, one thread, measured in one process).

Numba takes its CPU features once per process, for all jitted code, so this is a process-wide
setting. It is applied only when it can be applied cleanly: the host has AVX-512, the user has
set neither ``NUMBA_CPU_NAME`` nor ``NUMBA_CPU_FEATURES``, no Numba function has been compiled
yet in this process, and ``FASTDENSITY_KEEP_NUMBA_FEATURES`` is not set (set it to 1 to opt
out). The features are the host's own, less one tuning flag, so compiled code stays valid for
this machine; Numba's cache keys include the feature string, so cached code never mixes.
"""

from __future__ import annotations

import os

_applied = False


def prefer_full_width_vectors() -> bool:
    """Apply the setting if it can be applied cleanly; return whether it is in effect."""
    global _applied
    if _applied:
        return True
    if os.environ.get("FASTDENSITY_KEEP_NUMBA_FEATURES") or os.environ.get("NUMBA_CPU_NAME") \
            or os.environ.get("NUMBA_CPU_FEATURES"):
        return False
    from numba.core import config, registry

    if config.CPU_NAME or config.CPU_FEATURES:
        return False
    if "_toplevel_target_context" in vars(registry.cpu_target):
        return False  # Numba already compiled something with the host defaults: do not mix
    import llvmlite.binding as llvm

    features = llvm.get_host_cpu_features()
    if not features.get("avx512f", False):
        return False
    config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"
    _applied = True
    return True
