"""GaussianMixture through fastdensity.save / load."""

from __future__ import annotations

import numpy as np
import pytest

import fastdensity


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_save_load_round_trip(covariance_type, tmp_path):
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(150, 2)), rng.normal(size=(150, 2)) + 4.0])
    model = fastdensity.GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    path = tmp_path / "gmm.npz"
    fastdensity.save(model, path)
    loaded = fastdensity.load(path)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert isinstance(loaded.lower_bounds_, list)
