"""Bandwidth selection for kernel density estimates: compare the rules on your data.

:func:`select` fits ``KernelDensity`` with each bandwidth rule (or number) and returns a
:class:`BandwidthTable`: the bandwidth each picks, its K-fold held-out log-likelihood and its fit
time, printable as an aligned table and drawable with ``table.plot()`` (needs matplotlib).

>>> import numpy as np, fastdensity.bandwidth
>>> x = np.random.default_rng(0).standard_normal(500)
>>> table = fastdensity.bandwidth.select(x, ["scott", "sj", "cv"])
>>> table.best["method"] in ("scott", "sj", "cv")
True
"""

from __future__ import annotations

from .kde._bandwidth_select import DEFAULT_METHODS, DEFAULT_METHODS_1D, BandwidthTable, select

__all__ = ["BandwidthTable", "DEFAULT_METHODS", "DEFAULT_METHODS_1D", "select"]
