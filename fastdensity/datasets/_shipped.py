"""Data shipped with fastdensity or scikit-learn: Old Faithful, the 8×8 digits and fixed splits."""

from __future__ import annotations

from importlib import resources

import numpy as np

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


# --------------------------------------------------------------------------------------------
# 8×8 digits as images, with a fixed train / validation / test split
# --------------------------------------------------------------------------------------------

DIGITS_SPLIT_SEED = 0
DIGITS_SPLIT_SIZES = {"test": 360, "validation": 180}  # the training split gets the remaining 1257
_DIGITS_SPLITS = ("train", "validation", "test", "all")


def digits_split_indices(split: str = "all"):
    """Row indices (into scikit-learn's 1797 digits) of a split of :func:`load_digits`.

    The split comes from one fixed permutation, ``np.random.default_rng(0).permutation(1797)``
    (seed ``DIGITS_SPLIT_SEED``): its first 360 entries are the test split, the next 180 the
    validation split, the remaining 1257 the training split. Each split's indices are returned
    sorted, so that the rows keep scikit-learn's order. The three splits are disjoint and together
    cover every row.

    Parameters
    ----------
    split : {"train", "validation", "test", "all"}, default "all"

    Returns
    -------
    ndarray of int64
    """
    if split not in _DIGITS_SPLITS:
        raise ValueError(f"split must be one of {_DIGITS_SPLITS}; got {split!r}")
    n = 1797
    if split == "all":
        return np.arange(n, dtype=np.int64)
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(n)
    n_test, n_val = DIGITS_SPLIT_SIZES["test"], DIGITS_SPLIT_SIZES["validation"]
    parts = {"test": order[:n_test], "validation": order[n_test:n_test + n_val], "train": order[n_test + n_val:]}
    return np.sort(parts[split]).astype(np.int64)


def load_digits(binarize: bool = False, split: str = "all", return_labels: bool = False, flatten: bool = False):
    """Return scikit-learn's 8×8 handwritten digits as float32 images in [0, 1].

    The data (1797 images, pixel intensities 0–16) ships with scikit-learn; nothing is
    downloaded. Pixels are divided by 16. For a reproducible evaluation the rows are split once
    into test (360), validation (180) and training (1257) rows by a fixed permutation from
    ``np.random.default_rng(0)``; see :func:`digits_split_indices`.

    Parameters
    ----------
    binarize : bool, default False
        Threshold at 0.5 (raw pixel ≥ 8 → 1.0, else 0.0), giving {0, 1} float32 images, the
        usual input of a Bernoulli likelihood.
    split : {"train", "validation", "test", "all"}, default "all"
    return_labels : bool, default False
        Also return the digit labels (int64, 0–9).
    flatten : bool, default False
        Return rows of 64 pixels, shape (n, 64), instead of (n, 8, 8) images.

    Returns
    -------
    X : ndarray of shape (n, 8, 8) or (n, 64), float32
    y : ndarray of shape (n,), int64
        Only with ``return_labels=True``.
    """
    if not isinstance(binarize, (bool, np.bool_)):
        raise TypeError(f"binarize must be True or False; got {binarize!r}")
    index = digits_split_indices(split)
    from sklearn.datasets import load_digits as _sklearn_digits

    bunch = _sklearn_digits()
    raw = np.asarray(bunch.data, dtype=np.float32)[index]
    X = (raw >= 8).astype(np.float32) if binarize else raw / np.float32(16.0)
    if not flatten:
        X = X.reshape(-1, 8, 8)
    if return_labels:
        return X, np.asarray(bunch.target, dtype=np.int64)[index]
    return X
