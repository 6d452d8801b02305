"""KNNDensity through fastdensity.save / load (the search index is rebuilt, not stored)."""

from __future__ import annotations

import numpy as np
import pytest

import fastdensity


@pytest.mark.parametrize("algorithm", ["brute", "kd_tree"])
def test_save_load_round_trip(algorithm, tmp_path):
    X = np.random.default_rng(4).normal(size=(300, 3))
    model = fastdensity.KNNDensity(n_neighbors=7, algorithm=algorithm).fit(X)
    path = tmp_path / "knn.npz"
    fastdensity.save(model, path)
    loaded = fastdensity.load(path)
    queries = np.random.default_rng(5).normal(size=(50, 3))
    np.testing.assert_array_equal(loaded.score_samples(queries), model.score_samples(queries))
    np.testing.assert_array_equal(loaded.score_samples(), model.score_samples())  # leave-one-out
