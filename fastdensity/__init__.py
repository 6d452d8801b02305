"""fastdensity: fast density estimation on the CPU, the GPU and a cluster.

Importing this package imports neither torch, CuPy, Dask nor matplotlib, and compiles nothing:
Numba kernels compile on first use, for the specialisations a call needs, and are cached.
"""

from ._backend import threads
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

__version__ = "0.1.0"

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
