"""Shipped datasets and the fixed train/test split."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.datasets import load_digits_features, load_old_faithful, train_test_split_fixed


def test_old_faithful():
    X = load_old_faithful()
    assert X.shape == (272, 2) and X.dtype == np.float64
    np.testing.assert_array_equal(X[0], [3.6, 79.0])
    np.testing.assert_array_equal(X[-1], [4.467, 74.0])
    assert 1.5 < X[:, 0].min() < X[:, 0].max() < 5.2
    assert 40 < X[:, 1].min() < X[:, 1].max() < 100


def test_old_faithful_frame():
    pd = pytest.importorskip("pandas")
    frame = load_old_faithful(return_frame=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["eruptions", "waiting"]
    np.testing.assert_array_equal(frame.to_numpy(), load_old_faithful())


def test_digits():
    X, y = load_digits_features()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and set(np.unique(y)) == set(range(10))
    assert X.min() == 0 and X.max() == 16


def test_split_is_fixed_and_partitions_rows():
    X = np.arange(40.0).reshape(20, 2)
    train, test = train_test_split_fixed(X, test_fraction=0.25, seed=0)
    assert train.shape == (15, 2) and test.shape == (5, 2)
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test]), axis=0), X)
    again = train_test_split_fixed(X, test_fraction=0.25, seed=0)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)
    other = train_test_split_fixed(X, test_fraction=0.25, seed=1)
    assert not np.array_equal(other[1], test)


def test_split_keeps_both_parts_nonempty():
    train, test = train_test_split_fixed(np.arange(3.0), test_fraction=0.01)
    assert len(train) == 2 and len(test) == 1


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.1, "0.2", True])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction must be a number strictly between 0 and 1"):
        train_test_split_fixed(np.zeros((10, 2)), test_fraction=fraction)


def test_split_rejects_tiny_data():
    with pytest.raises(ValueError, match="needs at least 2 rows"):
        train_test_split_fixed(np.zeros((1, 2)))
