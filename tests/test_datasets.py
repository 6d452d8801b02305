"""Shipped datasets and the fixed train/test split."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from fastdensity.datasets import (
    digits_split_indices,
    grid_centers,
    load_digits,
    load_digits_features,
    load_mnist,
    load_old_faithful,
    make_grid,
    make_ring,
    mode_coverage,
    ring_centers,
    train_test_split_fixed,
)


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


# ---------------------------------------------------------------------------------------------
# load_digits (images, fixed split)
# ---------------------------------------------------------------------------------------------

def test_load_digits_images_match_features():
    X = load_digits()
    raw, labels = load_digits_features()
    assert X.shape == (1797, 8, 8) and X.dtype == np.float32
    np.testing.assert_array_equal(X.reshape(1797, 64), (raw / 16).astype(np.float32))
    Xf, y = load_digits(flatten=True, return_labels=True)
    assert Xf.shape == (1797, 64) and y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)


def test_load_digits_binarize_thresholds_at_half():
    raw, _ = load_digits_features()
    Xb = load_digits(binarize=True, flatten=True)
    assert set(np.unique(Xb)) == {0.0, 1.0} and Xb.dtype == np.float32
    np.testing.assert_array_equal(Xb, (raw >= 8).astype(np.float32))
    np.testing.assert_array_equal(Xb, (load_digits(flatten=True) >= 0.5).astype(np.float32))


def test_load_digits_splits_partition_rows():
    sizes = {"train": 1257, "validation": 180, "test": 360}
    parts = {s: digits_split_indices(s) for s in sizes}
    for name, size in sizes.items():
        assert len(parts[name]) == size and len(np.unique(parts[name])) == size
    np.testing.assert_array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(1797))
    # The split is the fixed permutation documented in the docstring.
    order = np.random.default_rng(0).permutation(1797)
    np.testing.assert_array_equal(parts["test"], np.sort(order[:360]))
    X_all, y_all = load_digits(return_labels=True)
    for name, index in parts.items():
        X, y = load_digits(split=name, return_labels=True)
        np.testing.assert_array_equal(X, X_all[index])
        np.testing.assert_array_equal(y, y_all[index])
        assert set(np.unique(y)) == set(range(10))


def test_load_digits_rejects_bad_arguments():
    with pytest.raises(ValueError, match="split must be one of"):
        load_digits(split="valid")
    with pytest.raises(TypeError, match="binarize must be True or False"):
        load_digits(binarize=0.5)


# ---------------------------------------------------------------------------------------------
# ring / grid mixtures and mode coverage
# ---------------------------------------------------------------------------------------------

def test_ring_centers_are_distinct_and_on_the_circle():
    c = ring_centers(8, radius=2.0)
    assert c.shape == (8, 2)
    np.testing.assert_allclose(np.hypot(c[:, 0], c[:, 1]), 2.0)
    gaps = np.sqrt(((c[:, None] - c[None]) ** 2).sum(-1))[~np.eye(8, dtype=bool)]
    # Neighbours on a regular octagon are 2 r sin(π/8) apart; linspace(0, 2π, 8) would give a zero gap.
    np.testing.assert_allclose(gaps.min(), 2 * 2.0 * np.sin(np.pi / 8))
    np.testing.assert_allclose(c[2], [0.0, 2.0], atol=1e-12)


def test_grid_centers():
    c = grid_centers()
    assert c.shape == (25, 2)
    ticks = (-4.0, -2.0, 0.0, 2.0, 4.0)
    assert {tuple(row) for row in c} == {(x, y) for x in ticks for y in ticks}


@pytest.mark.parametrize("maker, n_modes, std", [(make_ring, 8, 0.01), (make_grid, 25, 0.05)])
def test_mixtures_reproducible_balanced_and_right_spread(maker, n_modes, std):
    X, centers = maker(20000, random_state=3, return_centers=True)
    assert X.shape == (20000, 2) and X.dtype == np.float64 and centers.shape == (n_modes, 2)
    np.testing.assert_array_equal(X, maker(20000, random_state=3))
    assert not np.array_equal(X, maker(20000, random_state=4))
    nearest = np.argmin(((X[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    counts = np.bincount(nearest, minlength=n_modes)
    expected = 20000 / n_modes
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))  # binomial spread
    residual = X - centers[nearest]
    np.testing.assert_allclose(residual.std(axis=0), std, rtol=0.05)


def test_mixture_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        make_ring(0)
    with pytest.raises(ValueError, match="std must be a positive finite number"):
        make_grid(10, std=-1.0)
    with pytest.raises(ValueError, match="n_modes must be a positive integer"):
        make_ring(10, n_modes=2.5)


def _coverage_oracle(samples, centers, std, threshold=3.0, min_samples=1):
    """A per-sample loop, written independently of the vectorised code."""
    counts = np.zeros(len(centers), dtype=np.int64)
    good = 0
    for x in samples:
        dists = [np.sqrt(np.sum((x - c) ** 2)) for c in centers]
        j = int(np.argmin(dists))
        if dists[j] < threshold * std:
            counts[j] += 1
            good += 1
    return int(np.sum(counts >= min_samples)), good / len(samples), counts


@pytest.mark.parametrize("min_samples", [1, 20])
def test_mode_coverage_matches_oracle(min_samples):
    rng = np.random.default_rng(7)
    centers = grid_centers()
    # A collapsed generator: 10 of 25 modes, some far-off samples, one mode with few samples.
    picks = rng.choice(10, size=2400)
    samples = centers[picks] + 0.05 * rng.standard_normal((2400, 2)) * rng.choice([1.0, 4.0], size=(2400, 1))
    samples = np.concatenate([samples, centers[[12] * 5] + 0.01])
    result = mode_coverage(samples, centers, std=0.05, min_samples=min_samples)
    modes, fraction, counts = _coverage_oracle(samples, centers, 0.05, min_samples=min_samples)
    assert result.modes_captured == modes and result.n_modes == 25 and result.n_samples == 2405
    assert result.high_quality_fraction == pytest.approx(fraction, abs=1e-12)
    np.testing.assert_array_equal(result.counts, counts)
    assert result.counts[12] == 5
    assert result.modes_captured == (11 if min_samples == 1 else 10)
    assert not result.all_captured


def test_mode_coverage_of_the_true_distribution():
    X, centers = make_ring(2500, random_state=0, return_centers=True)
    result = mode_coverage(X, centers, std=0.01)
    assert result.all_captured
    # In 2-D the radius is Rayleigh: P(r < 3σ) = 1 - exp(-4.5) ≈ 0.989; 2,500 draws give ±0.2 %.
    assert abs(result.high_quality_fraction - (1 - np.exp(-4.5))) < 0.01


def test_mode_coverage_chunking_and_torch_agree():
    X = make_grid(3000, random_state=1) * 1.3  # many samples off the modes
    centers = grid_centers()
    ref = mode_coverage(X, centers, std=0.05)
    small = mode_coverage(X, centers, std=0.05, chunk_size=7)
    np.testing.assert_array_equal(small.counts, ref.counts)
    torch = pytest.importorskip("torch")
    from_torch = mode_coverage(torch.from_numpy(X), centers, std=0.05, chunk_size=100)
    np.testing.assert_array_equal(from_torch.counts, ref.counts)
    assert from_torch.high_quality_fraction == ref.high_quality_fraction


def test_mode_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="samples must be a non-empty 2-D array with 2 columns"):
        mode_coverage(np.zeros((5, 3)), grid_centers(), std=0.05)
    with pytest.raises(ValueError, match="centers must be a non-empty 2-D array"):
        mode_coverage(np.zeros((5, 2)), np.zeros(2), std=0.05)
    with pytest.raises(ValueError, match="min_samples must be a positive integer"):
        mode_coverage(np.zeros((5, 2)), grid_centers(), std=0.05, min_samples=0)


# ---------------------------------------------------------------------------------------------
# load_mnist from files written here (IDX plain and gzipped, npz)
# ---------------------------------------------------------------------------------------------

def _idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _write(path, data, compress):
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _fake_mnist(rng, n):
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n, dtype=np.uint8)


@pytest.fixture
def mnist_arrays():
    rng = np.random.default_rng(11)
    return _fake_mnist(rng, 6) + _fake_mnist(rng, 4)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_idx_directory(tmp_path, mnist_arrays, compress):
    xtr, ytr, xte, yte = mnist_arrays
    _write(tmp_path / "train-images-idx3-ubyte", _idx_bytes(xtr, 2051), compress)
    _write(tmp_path / "train-labels-idx1-ubyte", _idx_bytes(ytr, 2049), compress)
    _write(tmp_path / "t10k-images-idx3-ubyte", _idx_bytes(xte, 2051), compress)
    _write(tmp_path / "t10k-labels-idx1-ubyte", _idx_bytes(yte, 2049), compress)
    X, y = load_mnist(tmp_path)
    assert X.shape == (6, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X, xtr / np.float32(255))
    np.testing.assert_array_equal(y, ytr)
    X, y = load_mnist(tmp_path, split="test")
    np.testing.assert_array_equal(y, yte)
    X, y = load_mnist(tmp_path, split="all")
    assert X.shape == (10, 28, 28)
    np.testing.assert_array_equal(y, np.concatenate([ytr, yte]))
    single = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if compress else ""))
    X, y = load_mnist(single)
    np.testing.assert_array_equal(X, xte / np.float32(255))
    np.testing.assert_array_equal(y, yte)


def test_load_mnist_npz(tmp_path, mnist_arrays):
    xtr, ytr, xte, yte = mnist_arrays
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    X, y = load_mnist(path, split="test")
    np.testing.assert_array_equal(X, xte / np.float32(255))
    np.testing.assert_array_equal(y, yte)
    np.savez(path, x_train=xtr, y_train=ytr)
    with pytest.raises(ValueError, match=r"lacks the arrays \['x_test', 'y_test'\]"):
        load_mnist(path)


def test_load_mnist_errors(tmp_path, mnist_arrays):
    xtr, ytr, _, _ = mnist_arrays
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no 'train-images-idx3-ubyte'"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(xtr, 2049))  # labels magic on images
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(ytr, 2049))
    with pytest.raises(ValueError, match="magic number 2049"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(xtr, 2051)[:-3])
    with pytest.raises(ValueError, match="its header"):
        load_mnist(tmp_path)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(xtr[:5], 2051))
    with pytest.raises(ValueError, match=r"expected images \(n, h, w\) and labels \(n,\)"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split must be None"):
        load_mnist(tmp_path / "train-images-idx3-ubyte", split="train")
    with pytest.raises(ValueError, match="split must be None, 'train', 'test' or 'all'"):
        load_mnist(tmp_path, split="validation")
