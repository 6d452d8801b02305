"""Small datasets for examples, tests and the demo. Nothing is ever downloaded.

* :func:`load_old_faithful`: the Old Faithful geyser data (272 eruptions), packaged with
  fastdensity as ``fastdensity/data/old_faithful.csv``;
* :func:`load_digits_features`: scikit-learn's 8×8 handwritten digits (shipped inside
  scikit-learn) as float64 features;
* :func:`train_test_split_fixed`: a reproducible random train/test split.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["load_digits_features", "load_old_faithful", "train_test_split_fixed"]

OLD_FAITHFUL_COLUMNS = ("eruptions", "waiting")


def load_old_faithful(return_frame: bool = False):
    """Return the Old Faithful geyser data: 272 rows of (eruptions, waiting).

    ``eruptions`` is the eruption duration in minutes and ``waiting`` the waiting time to the
    next eruption in minutes (Härdle 1991, as in R's ``datasets::faithful``).

    Parameters
    ----------
    return_frame : bool, default False
        Return a pandas DataFrame with columns ``eruptions`` and ``waiting`` instead of an array
        (needs pandas).

    Returns
    -------
    ndarray of shape (272, 2), float64, or a pandas DataFrame
    """
    source = resources.files("fastdensity").joinpath("data", "old_faithful.csv")
    with source.open("r", encoding="utf-8") as fh:
        data = np.loadtxt(fh, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    if return_frame:
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("load_old_faithful(return_frame=True) needs pandas; pip install pandas") from None
        return pd.DataFrame(data, columns=list(OLD_FAITHFUL_COLUMNS))
    return data


def load_digits_features():
    """Return scikit-learn's 8×8 digits as ``(X, y)``: X float64 of shape (1797, 64) with pixel
    intensities 0–16, y int64 labels 0–9. The data ships with scikit-learn; nothing is downloaded.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target, dtype=np.int64)


def train_test_split_fixed(X, test_fraction: float = 0.25, seed: int = 0):
    """Split the rows of ``X`` into ``(X_train, X_test)`` by a random permutation from
    ``np.random.default_rng(seed)``; the same arguments always give the same split.

    ``test_fraction`` of the rows (rounded, at least one and leaving at least one for training)
    go to the test set. Row order within each part follows the permutation.
    """
    X = np.asarray(X)
    if X.ndim < 1 or X.shape[0] < 2:
        raise ValueError(f"train_test_split_fixed needs at least 2 rows; got shape {X.shape}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float, np.floating)) \
            or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}")
    n = X.shape[0]
    n_test = min(max(int(round(n * float(test_fraction))), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    return X[order[n_test:]], X[order[:n_test]]
