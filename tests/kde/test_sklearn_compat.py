"""KernelDensity plays by scikit-learn's rules: estimator checks, clone, GridSearchCV, pipelines,
array types in and out (torch CPU tensors, pandas DataFrames)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastdensity import KernelDensity


# The second estimator exercises the adaptive path; it keeps the gaussian kernel so that the
# checks' data shapes compile no second set of Numba specialisations.
@parametrize_with_checks([KernelDensity(), KernelDensity(bandwidth=2.0, adaptive=True, n_jobs=1)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- model selection
def test_grid_search_picks_a_sensible_bandwidth():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1))
    grid = np.geomspace(0.01, 10.0, 13)
    search = GridSearchCV(KernelDensity(), {"bandwidth": grid}, cv=5).fit(X)
    best = search.best_params_["bandwidth"]
    # Silverman's rule for N(0, 1) data with n = 300 (4/5 of the fold): 1.06 n^(-1/5) ≈ 0.34.
    assert 0.1 <= best <= 1.0
    assert isinstance(search.best_estimator_, KernelDensity)
    assert search.best_estimator_.bandwidth_ == best
    # The extreme bandwidths score clearly worse than the chosen one.
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores.max() - 50 and scores[-1] < scores.max() - 50


def test_grid_search_over_kernels_and_bandwidth_matrices():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 2)) * np.array([0.1, 3.0])
    params = {"kernel": ["gaussian", "exponential"],
              "bandwidth": [0.3, np.array([0.03, 0.9]), np.diag([0.03, 0.9]) ** 2]}
    search = GridSearchCV(KernelDensity(), params, cv=3).fit(X)
    # Per-feature scales beat one scale for data this anisotropic.
    assert np.ndim(search.best_params_["bandwidth"]) >= 1


def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    kde = KernelDensity(kernel="cosine", bandwidth=np.array([0.5, 0.7]), adaptive=True, n_jobs=1)
    kde.fit(np.random.default_rng(2).normal(size=(20, 2)))
    copy = clone(kde)
    assert not hasattr(copy, "training_data_")
    params, copy_params = kde.get_params(), copy.get_params()
    assert params.keys() == copy_params.keys()
    for key, value in params.items():
        np.testing.assert_array_equal(copy_params[key], value)
    copy.set_params(bandwidth=0.3)
    assert kde.get_params()["bandwidth"] is params["bandwidth"]


def test_pipeline():
    X = np.random.default_rng(3).normal(size=(50, 2)) * 100.0
    pipe = make_pipeline(StandardScaler(), KernelDensity(bandwidth=0.5)).fit(X)
    Z = StandardScaler().fit(X).transform(X)
    np.testing.assert_allclose(pipe.score_samples(X), KernelDensity(bandwidth=0.5).fit(Z).score_samples(Z), rtol=1e-12)


def test_pickle_round_trip_keeps_results():
    X = np.random.default_rng(4).normal(size=(30, 2))
    kde = KernelDensity(kernel="biweight", bandwidth=1.0, adaptive=True).fit(X)
    again = pickle.loads(pickle.dumps(kde))
    np.testing.assert_array_equal(again.score_samples(X), kde.score_samples(X))


def test_refit_replaces_the_model():
    rng = np.random.default_rng(5)
    X1, X2 = rng.normal(size=(20, 2)), rng.normal(loc=5.0, size=(20, 2))
    kde = KernelDensity(bandwidth=0.5).fit(X1)
    kde.fit(X2, sample_weight=np.ones(20))
    np.testing.assert_array_equal(kde.score_samples(X1), KernelDensity(bandwidth=0.5).fit(X2).score_samples(X1))


def test_integer_input_is_upcast_to_float64():
    X = np.arange(20).reshape(10, 2)
    kde = KernelDensity().fit(X)
    out = kde.score_samples(X)
    assert kde.training_data_.dtype == np.float64 and out.dtype == np.float64
    np.testing.assert_array_equal(out, KernelDensity().fit(X.astype(float)).score_samples(X.astype(float)))


def test_list_input():
    X = [[0.0, 1.0], [1.0, 0.5], [2.0, 2.0]]
    np.testing.assert_array_equal(KernelDensity().fit(X).score_samples(X),
                                  KernelDensity().fit(np.array(X)).score_samples(np.array(X)))


# ----------------------------------------------------------------------------- torch
def test_torch_tensor_in_torch_tensor_out():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 2))
    Y = rng.normal(size=(10, 2))
    ref = KernelDensity(bandwidth=0.6).fit(X).score_samples(Y)

    kde = KernelDensity(bandwidth=0.6).fit(torch.from_numpy(X))
    out = kde.score_samples(torch.from_numpy(Y))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.device.type == "cpu"
    np.testing.assert_array_equal(out.numpy(), ref)
    # Fitted on a tensor, scored with NumPy: NumPy out; and the other way round.
    np.testing.assert_array_equal(kde.score_samples(Y), ref)
    out2 = KernelDensity(bandwidth=0.6).fit(X).score_samples(torch.from_numpy(Y))
    assert isinstance(out2, torch.Tensor)
    assert KernelDensity(bandwidth=0.6).fit(X).score(torch.from_numpy(Y)) == pytest.approx(ref.sum(), rel=1e-12)


def test_torch_float32_tensor_gives_float32_tensor():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 2)).astype(np.float32)
    kde = KernelDensity(bandwidth=0.6).fit(torch.from_numpy(X))
    out = kde.score_samples(torch.from_numpy(X[:5]))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), KernelDensity(bandwidth=0.6).fit(X).score_samples(X[:5]))


def test_torch_tensor_needing_grad_and_non_contiguous():
    torch = pytest.importorskip("torch")
    X = torch.randn(30, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    X.requires_grad_(True)
    view = X[:, ::2]  # non-contiguous, requires grad
    out = KernelDensity().fit(view).score_samples(view)
    ref = KernelDensity().fit(view.detach().numpy()).score_samples(view.detach().numpy())
    assert isinstance(out, torch.Tensor) and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), ref)


def test_torch_sample_weight_tensor():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    X, w = rng.normal(size=(30, 2)), rng.uniform(0.1, 1.0, size=30)
    a = KernelDensity().fit(torch.from_numpy(X), sample_weight=torch.from_numpy(w)).score_samples(X)
    np.testing.assert_array_equal(a, KernelDensity().fit(X, sample_weight=w).score_samples(X))


def test_sample_returns_numpy_even_after_fitting_on_a_tensor():
    torch = pytest.importorskip("torch")
    X = torch.randn(30, 2, dtype=torch.float32, generator=torch.Generator().manual_seed(1))
    samples = KernelDensity().fit(X).sample(5, random_state=0)
    assert type(samples) is np.ndarray and samples.shape == (5, 2) and samples.dtype == np.float32


def test_torch_cuda_backend_request_names_the_cpu_alternative():
    torch = pytest.importorskip("torch")
    X = torch.zeros(5, 2, dtype=torch.float64)
    with pytest.raises(NotImplementedError, match="use backend='cpu'"):
        KernelDensity(backend="cuda").fit(X)


# ---------------------------------------------------------------------------- pandas
def test_dataframe_sets_feature_names_in():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(9)
    df = pd.DataFrame(rng.normal(size=(20, 2)), columns=["height", "weight"])
    kde = KernelDensity().fit(df)
    np.testing.assert_array_equal(kde.feature_names_in_, ["height", "weight"])
    assert kde.n_features_in_ == 2
    np.testing.assert_array_equal(kde.score_samples(df), KernelDensity().fit(df.to_numpy()).score_samples(df.to_numpy()))
    with pytest.raises(ValueError, match="feature names"):
        kde.score_samples(df[["weight", "height"]])


def test_numpy_input_sets_no_feature_names():
    kde = KernelDensity().fit(np.zeros((3, 2)) + np.arange(3)[:, None])
    assert not hasattr(kde, "feature_names_in_")
