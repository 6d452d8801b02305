"""Small datasets for examples, tests and the demo. Nothing is ever downloaded.

* :func:`load_old_faithful`: the Old Faithful geyser data (272 eruptions), packaged with
  fastdensity as ``fastdensity/data/old_faithful.csv``;
* :func:`load_digits_features`: scikit-learn's 8×8 handwritten digits (shipped inside
  scikit-learn) as float64 features;
* :func:`train_test_split_fixed`: a reproducible random train/test split;
* :func:`load_digits`: the same digits as float32 images in [0, 1] (optionally thresholded) with a
  fixed train / validation / test split, for generative models;
* :func:`make_ring`, :func:`make_grid` and :func:`mode_coverage`: the 2-D Gaussian mixtures and the
  mode-collapse measure of VEEGAN / PacGAN;
* :func:`load_mnist`: MNIST from IDX or ``.npz`` files the user already has.
"""

from __future__ import annotations

from ._mnist import load_mnist
from ._shipped import (
    digits_split_indices,
    load_digits,
    load_digits_features,
    load_old_faithful,
    train_test_split_fixed,
)
from ._toy2d import ModeCoverage, grid_centers, make_grid, make_ring, mode_coverage, ring_centers

__all__ = [
    "ModeCoverage",
    "digits_split_indices",
    "grid_centers",
    "load_digits",
    "load_digits_features",
    "load_mnist",
    "load_old_faithful",
    "make_grid",
    "make_ring",
    "mode_coverage",
    "ring_centers",
    "train_test_split_fixed",
]
