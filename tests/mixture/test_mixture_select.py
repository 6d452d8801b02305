"""select_n_components: mclust-style choice of the number of components and covariance type."""

from __future__ import annotations

import numpy as np
import pytest

from fastdensity.mixture import GaussianMixture, select_n_components
from mixture_helpers import blobs


@pytest.mark.parametrize("true_k", [2, 4])
def test_bic_picks_the_true_number_of_separated_clusters(true_k):
    X, _ = blobs(n=1500, d=2, k=true_k, seed=30 + true_k, separation=10.0)
    best, table = select_n_components(X, n_components=range(1, 7), covariance_types=("full", "diag"),
                                      random_state=0)
    assert isinstance(best, GaussianMixture)
    assert best.n_components == true_k
    assert len(table["bic"]) == 12
    i = int(np.nanargmin(table["bic"]))
    assert table["n_components"][i] == true_k
    assert best.bic(X) == pytest.approx(table["bic"][i])


def test_table_columns_and_values():
    X, _ = blobs(n=400, d=2, k=2, seed=33)
    best, table = select_n_components(X, n_components=[1, 2], covariance_types="spherical",
                                      criterion="aic", random_state=0)
    assert set(table) == {"n_components", "covariance_type", "bic", "aic", "log_likelihood", "n_parameters",
                          "converged", "n_iter", "error"}
    assert list(table["n_components"]) == [1, 2]
    assert list(table["covariance_type"]) == ["spherical", "spherical"]
    for i, k in enumerate([1, 2]):
        model = GaussianMixture(k, covariance_type="spherical", random_state=0).fit(X)
        assert table["aic"][i] == pytest.approx(model.aic(X))
        assert table["log_likelihood"][i] == pytest.approx(model.score(X) * len(X))
        assert table["n_parameters"][i] == model._n_parameters()
    assert best.aic(X) == pytest.approx(np.min(table["aic"]))


def test_failed_fits_are_recorded_and_skipped():
    X = np.random.default_rng(34).normal(size=(6, 2))
    best, table = select_n_components(X, n_components=[1, 2, 8], covariance_types=["diag"], random_state=0)
    assert best.n_components in (1, 2)
    assert np.isnan(table["bic"][2])
    assert "n_samples >= n_components" in table["error"][2]
    assert table["error"][0] is None


def test_sample_weight_is_passed_to_every_fit():
    X, _ = blobs(n=300, d=2, k=2, seed=35, separation=8.0)
    w = np.random.default_rng(8).integers(1, 3, size=len(X))
    _, weighted = select_n_components(X, [1, 2, 3], ["full"], sample_weight=w, random_state=0)
    _, repeated = select_n_components(np.repeat(X, w, axis=0), [1, 2, 3], ["full"], random_state=0)
    np.testing.assert_allclose(weighted["bic"], repeated["bic"], rtol=1e-6)


def test_bad_arguments():
    X, _ = blobs(n=50, d=2, k=2, seed=36)
    with pytest.raises(ValueError, match="criterion must be one of"):
        select_n_components(X, criterion="icl")
    with pytest.raises(ValueError, match="covariance_types must contain"):
        select_n_components(X, covariance_types=["full", "banded"])
    with pytest.raises(ValueError, match="n_components must be a positive integer; got 0"):
        select_n_components(X, n_components=[0, 1])
    with pytest.raises(ValueError, match="n_components must not be empty"):
        select_n_components(X, n_components=[])
    with pytest.raises(TypeError, match="covariance_type is chosen by select_n_components"):
        select_n_components(X, covariance_type="full")
    with pytest.raises(ValueError, match="reg_covar"):
        select_n_components(X, n_components=[1, 2], reg_covar=-1.0)
