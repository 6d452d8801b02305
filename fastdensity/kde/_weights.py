"""Sample weights as the KDE engines read them, written once for every array namespace."""

from __future__ import annotations

import numpy as np


def equal_weights(weights):
    """True for no weights (None) and for weights that are all the same: those are computed as no
    weights, so that constant weights give bit-for-bit the densities and draws of no weights.
    ``weights`` is a NumPy or CuPy array (or a sequence), compared where it is."""
    if weights is None:
        return True
    if not hasattr(weights, "shape"):
        weights = np.asarray(weights)
    return bool((weights == weights[0]).all())
