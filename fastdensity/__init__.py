"""fastdensity: fast density estimation on the CPU, the GPU and a cluster.

Importing this package imports neither torch, CuPy, Dask nor matplotlib, and compiles none of its
kernels: Numba kernels compile on first use, for the specialisations a call needs, and are cached.
It does load Numba's threading layer and, where that layer needs one, a small native guard at the
entry of parallel regions (see ``_backend/_threading_layer.py`` and the README, "Threads and
processes").
"""

from ._backend import threads
from ._backend._threading_layer import configure as _configure_threading_layer

_configure_threading_layer()  # before anything can link a parallel kernel

from .io import load, save
from .kde._gaussian_kde import gaussian_kde
from .kde._kde import KernelDensity
from .knn import KNNDensity
from .mixture import GaussianMixture
from .parametric import (
    Bernoulli,
    Beta,
    Categorical,
    ComparisonTable,
    Exponential,
    Gamma,
    LogNormal,
    MultivariateNormal,
    Normal,
    Poisson,
    compare,
)

from ._version import __version__

__all__ = [
    "Bernoulli",
    "Beta",
    "Categorical",
    "ComparisonTable",
    "Exponential",
    "Gamma",
    "GaussianMixture",
    "KNNDensity",
    "KernelDensity",
    "LogNormal",
    "MultivariateNormal",
    "Normal",
    "Poisson",
    "compare",
    "gaussian_kde",
    "load",
    "save",
    "threads",
    "__version__",
]
