"""fastdensity.load refuses a model file whose fitted state breaks its class's rules
(``fastdensity._model_format``), naming the entry, instead of returning a model that scores NaN."""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest

import fastdensity.io as fio
from fastdensity import KernelDensity, _model_format
from fastdensity.io import METADATA_KEY, load, save

from model_files import read_archive, write_archive


# ------------------------------------------------------------------ altered arrays are refused
#
# Every model type io supports, fitted small. Each corruption is applied to every entry it fits
# (every array, or every number held in the metadata), and load must refuse the file with a
# ValueError that names that entry, instead of returning a model that scores NaN.


_MODEL_NAMES = sorted([
    "KernelDensity", "KernelDensity-matrix", "KNNDensity", "GaussianMixture", "GaussianMixture-diag",
    "GaussianMixture-tied", "GaussianMixture-spherical", "Normal", "MultivariateNormal",
    "MultivariateNormal-diag", "MultivariateNormal-spherical", "Exponential", "Poisson", "Bernoulli", "Gamma",
    "LogNormal", "Beta", "Categorical",
])


@functools.lru_cache(maxsize=1)
def _fitted_models() -> dict:  # fitted on first use, not when the tests are collected
    import fastdensity as fd

    rng = np.random.default_rng(7)
    X = rng.standard_normal((120, 3))
    XG = np.vstack([rng.standard_normal((60, 2)), rng.standard_normal((60, 2)) + 4.0])
    x = rng.standard_normal(80)
    return {
        "KernelDensity": fd.KernelDensity(bandwidth=np.array([0.4, 0.5, 0.6]), adaptive=True).fit(
            X, sample_weight=rng.uniform(0.5, 2.0, len(X))),
        "KernelDensity-matrix": fd.KernelDensity(bandwidth="scott").fit(X),
        "KNNDensity": fd.KNNDensity(n_neighbors=4).fit(X),
        "GaussianMixture": fd.GaussianMixture(2, random_state=0).fit(XG),
        "GaussianMixture-diag": fd.GaussianMixture(2, covariance_type="diag", random_state=0).fit(XG),
        "GaussianMixture-tied": fd.GaussianMixture(2, covariance_type="tied", random_state=0).fit(XG),
        "GaussianMixture-spherical": fd.GaussianMixture(2, covariance_type="spherical", random_state=0).fit(XG),
        "Normal": fd.Normal().fit(x),
        "MultivariateNormal": fd.MultivariateNormal().fit(X),
        "MultivariateNormal-diag": fd.MultivariateNormal(covariance_type="diag").fit(X),
        "MultivariateNormal-spherical": fd.MultivariateNormal(covariance_type="spherical").fit(X),
        "Exponential": fd.Exponential().fit(np.abs(x)),
        "Poisson": fd.Poisson().fit(rng.poisson(3.0, 80)),
        "Bernoulli": fd.Bernoulli().fit(rng.integers(0, 2, 80)),
        "Gamma": fd.Gamma().fit(np.abs(x) + 0.1),
        "LogNormal": fd.LogNormal().fit(np.abs(x) + 0.1),
        "Beta": fd.Beta().fit(rng.uniform(0.05, 0.95, 80)),
        "Categorical": fd.Categorical().fit(rng.integers(0, 4, 80)),
    }


def test_every_registered_model_class_is_covered():
    assert sorted(_fitted_models()) == _MODEL_NAMES
    assert {name.split("-")[0] for name in _MODEL_NAMES} == set(fio.MODEL_CLASSES)
    assert set(_model_format._FITTED_STATE) == set(fio.MODEL_CLASSES)


def _float_entries(arrays):
    return sorted(k for k, v in arrays.items() if k != METADATA_KEY and v.dtype.kind == "f")


def _meta_numbers(meta):
    return sorted(a["name"] for a in meta["attributes"] if a["kind"] == "float")


def _entry_error(entry):
    return pytest.raises(ValueError, match=f"entry '{re.escape(entry)}'")


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    directory = tmp_path_factory.mktemp("models")
    paths = {}
    for name, model in _fitted_models().items():
        paths[name] = directory / f"{name}.npz"
        save(model, paths[name])
    return paths


@pytest.mark.parametrize("model", _MODEL_NAMES)
def test_unaltered_files_load_and_score_as_saved(saved_models, model):
    loaded = load(saved_models[model])
    original = _fitted_models()[model]
    fitted = sorted(k for k in vars(original) if k.endswith("_") and not k.startswith("_"))
    assert sorted(k for k in vars(loaded) if k.endswith("_") and not k.startswith("_")) == fitted
    for name in fitted:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name), err_msg=name)
    queries = getattr(original, "training_data_", None)
    if queries is not None:
        np.testing.assert_array_equal(loaded.score_samples(queries[:20]), original.score_samples(queries[:20]))


def _corruptions():
    """(kind, function(array) -> altered array or None when the kind does not apply)."""

    def nan(a):
        if a.size == 0:
            return None
        b = a.astype(a.dtype, copy=True)
        b.flat[b.size // 2] = np.nan
        return b

    def inf(a):
        if a.size == 0:
            return None
        b = a.astype(a.dtype, copy=True)
        b.flat[0] = np.inf
        return b

    def longer(a):  # one more element along the last axis: disagrees with the metadata
        if a.ndim == 0:
            return None
        return np.concatenate([a, a[..., :1]], axis=-1)

    def flattened(a):  # right values, wrong number of dimensions
        if a.ndim < 2:
            return a.reshape(a.shape + (1,)) if a.ndim == 1 else None
        return a.ravel()

    def strings(a):
        return a.astype(str)

    def integers(a):
        return np.round(a).astype(np.int64)

    return {"nan": nan, "inf": inf, "longer": longer, "flattened": flattened, "strings": strings,
            "integers": integers}


_CORRUPTIONS = _corruptions()
# lower_bounds_ (the EM history) may have any length: its shape says nothing about the model.
_ANY_SHAPE = {"attr.lower_bounds_"}


@pytest.mark.parametrize("kind", sorted(_CORRUPTIONS))
@pytest.mark.parametrize("model", _MODEL_NAMES)
def test_altered_array_is_refused_naming_the_entry(saved_models, tmp_path, model, kind):
    arrays, meta = read_archive(saved_models[model])
    altered = 0
    for entry in _float_entries(arrays):
        if kind in ("longer", "flattened") and entry in _ANY_SHAPE:
            continue
        bad = _CORRUPTIONS[kind](arrays[entry])
        if bad is None:
            continue
        path = write_archive(tmp_path / f"{entry}.npz", {**arrays, entry: bad}, meta)
        with _entry_error(entry):
            load(path)
        altered += 1
    if not _float_entries(arrays):
        assert not altered  # a model held wholly in the metadata: see the next test
    else:
        assert altered, f"{model}: no entry took corruption {kind!r}"


@pytest.mark.parametrize("kind", ["nan", "inf", "negative", "string"])
@pytest.mark.parametrize("model", _MODEL_NAMES)
def test_altered_number_in_the_metadata_is_refused(saved_models, tmp_path, model, kind):
    arrays, meta = read_archive(saved_models[model])
    names = _meta_numbers(meta)
    for name in names:
        value = {"nan": float("nan"), "inf": float("inf"), "negative": -1.0, "string": "1.0"}[kind]
        if kind == "negative" and name in ("mean_", "mu_", "lower_bound_"):
            continue  # any sign is valid for these
        altered = json.loads(json.dumps(meta))
        for entry in altered["attributes"]:
            if entry["name"] == name:
                entry["value"] = value
        path = write_archive(tmp_path / f"{name}.npz", arrays, altered)
        with _entry_error(f"{METADATA_KEY}:attributes.{name}"):
            load(path)


@pytest.mark.parametrize("model", _MODEL_NAMES)
def test_missing_and_unknown_fitted_attributes_are_refused(saved_models, tmp_path, model):
    arrays, meta = read_archive(saved_models[model])
    first = sorted(a["name"] for a in meta["attributes"])[0]
    dropped = json.loads(json.dumps(meta))
    dropped["attributes"] = [a for a in dropped["attributes"] if a["name"] != first]
    path = write_archive(tmp_path / "dropped.npz", {k: v for k, v in arrays.items() if k != f"attr.{first}"}, dropped)
    with pytest.raises(ValueError, match=re.escape(f"fitted attribute {type(_fitted_models()[model]).__name__}.{first} "
                                                   "is missing")):
        load(path)
    added = json.loads(json.dumps(meta))
    added["attributes"].append({"name": "surprise_", "kind": "float", "value": 1.0})
    path = write_archive(tmp_path / "added.npz", arrays, added)
    with pytest.raises(ValueError, match=r"attributes\.surprise_'.*is not a fitted attribute"):
        load(path)


def _set_attr(meta, name, value):
    for entry in meta["attributes"]:
        if entry["name"] == name:
            entry["value"] = value
    return meta


@pytest.mark.parametrize("model, change, entry, message", [
    ("KernelDensity", lambda a, m: a.update({"attr.sample_weight_": -a["attr.sample_weight_"]}),
     "attr.sample_weight_", "must be non-negative"),
    ("KernelDensity", lambda a, m: a.update({"attr.adaptive_factors_": 0 * a["attr.adaptive_factors_"]}),
     "attr.adaptive_factors_", "must be positive"),
    ("KernelDensity", lambda a, m: a.update({"attr.bandwidth_matrix_": -a["attr.bandwidth_matrix_"]}),
     "attr.bandwidth_matrix_", "positive definite"),
    ("KernelDensity", lambda a, m: a.update({"param.bandwidth": -a["param.bandwidth"]}),
     "param.bandwidth", "must be positive"),
    ("KernelDensity", lambda a, m: a.update({"attr.training_data_": a["attr.training_data_"].astype(">f8")}),
     "attr.training_data_", "native byte order"),
    ("KernelDensity", lambda a, m: _set_attr(m, "n_features_in_", 2),
     "attr.training_data_", r"must have shape \(n, 2\)"),
    ("KernelDensity", lambda a, m: _set_attr(m, "effective_algorithm_", "fft_maybe"),
     f"{METADATA_KEY}:attributes.effective_algorithm_", "must be one of"),
    ("KNNDensity", lambda a, m: _set_attr(m, "n_samples_fit_", 7),
     f"{METADATA_KEY}:attributes.n_samples_fit_", "must equal the rows of training_data_"),
    ("KNNDensity", lambda a, m: _set_attr(m, "effective_algorithm_", "ball_tree"),
     f"{METADATA_KEY}:attributes.effective_algorithm_", "must be one of"),
    ("GaussianMixture", lambda a, m: a.update({"attr.weights_": a["attr.weights_"] * 2}),
     "attr.weights_", "must sum to 1"),
    ("GaussianMixture", lambda a, m: m["params"].update(n_components=3),
     "attr.weights_", r"must have shape \(3,\)"),
    ("GaussianMixture", lambda a, m: m["params"].update(covariance_type="diag"),
     "attr.covariances_", r"must have shape \(2, 2\)"),
    ("GaussianMixture", lambda a, m: a.update({"attr.precisions_cholesky_": -a["attr.precisions_cholesky_"]}),
     "attr.precisions_cholesky_", "positive diagonal"),
    ("GaussianMixture-diag", lambda a, m: a.update({"attr.covariances_": -a["attr.covariances_"]}),
     "attr.covariances_", "must be positive"),
    ("Categorical", lambda a, m: a.update({"attr.probabilities_": a["attr.probabilities_"][::-1] * 0.5}),
     "attr.probabilities_", "must sum to 1"),
    ("Categorical", lambda a, m: _set_attr(m, "n_categories_", 5),
     "attr.probabilities_", r"must have shape \(5,\)"),
    ("Bernoulli", lambda a, m: _set_attr(m, "p_", 1.5), f"{METADATA_KEY}:attributes.p_", r"must lie in \[0.0, 1.0\]"),
    ("Normal", lambda a, m: _set_attr(m, "sample_dtype_", "object"),
     f"{METADATA_KEY}:attributes.sample_dtype_", "must name a NumPy numeric dtype"),
    ("Normal", lambda a, m: _set_attr(m, "n_features_in_", 2),
     f"{METADATA_KEY}:attributes.n_features_in_", "must equal 1"),
    ("MultivariateNormal", lambda a, m: a.update({"attr.covariance_": np.zeros((3, 3))}),
     "attr.covariance_", "positive definite"),
])
def test_values_the_model_relies_on_are_checked(saved_models, tmp_path, model, change, entry, message):
    arrays, meta = read_archive(saved_models[model])
    change(arrays, meta)
    path = write_archive(tmp_path / "changed.npz", arrays, meta)
    with pytest.raises(ValueError, match=f"entry '{re.escape(entry)}'.*{message}"):
        load(path)


def test_float32_models_and_feature_names_still_load(tmp_path):
    pd = pytest.importorskip("pandas")
    import fastdensity as fd

    X = pd.DataFrame(np.random.default_rng(3).standard_normal((50, 2)).astype(np.float32), columns=["a", "b"])
    for model in (KernelDensity(bandwidth=0.5), fd.KNNDensity(n_neighbors=3), fd.GaussianMixture(2, random_state=0)):
        model.fit(X)
        save(model, tmp_path / "m.npz")
        np.testing.assert_array_equal(load(tmp_path / "m.npz").score_samples(X), model.score_samples(X))
    arrays, meta = read_archive(tmp_path / "m.npz")
    arrays["attr.feature_names_in_"] = np.array(["a", "b", "c"])
    with _entry_error("attr.feature_names_in_"):
        load(write_archive(tmp_path / "names.npz", arrays, meta))
