"""Model files: save → load round trips, atomic writes and clear errors on bad files."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import fastdensity.io as fio
from fastdensity import KernelDensity
from fastdensity.io import FORMAT_VERSION, METADATA_KEY, load, save


def _data(n=150, d=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


CASES = {
    "float": dict(params=dict(bandwidth=0.4), d=2),
    "scott-matrix": dict(params=dict(bandwidth="scott"), d=2),
    "per-dimension": dict(params=dict(bandwidth=np.array([0.3, 0.7])), d=2),
    "full-matrix": dict(params=dict(bandwidth=np.array([[0.3, 0.1], [0.1, 0.5]])), d=2),
    "weighted": dict(params=dict(bandwidth="silverman", kernel="epanechnikov"), d=2, weighted=True),
    "adaptive": dict(params=dict(bandwidth="scott", adaptive=True), d=2, weighted=True),
    "cv-1d": dict(params=dict(bandwidth="cv", kernel="biweight"), d=1),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_scores_identically(tmp_path, case):
    spec = CASES[case]
    X = _data(d=spec["d"])
    weights = np.random.default_rng(1).uniform(0.2, 3.0, len(X)) if spec.get("weighted") else None
    kde = KernelDensity(**spec["params"]).fit(X, sample_weight=weights)
    path = tmp_path / "model.npz"
    save(kde, path)
    loaded = load(path)

    assert type(loaded) is KernelDensity
    queries = _data(n=40, d=spec["d"], seed=2) * 1.5
    np.testing.assert_array_equal(loaded.score_samples(queries), kde.score_samples(queries))
    np.testing.assert_array_equal(loaded.sample(25, random_state=3), kde.sample(25, random_state=3))
    for name, value in kde.get_params().items():
        np.testing.assert_array_equal(loaded.get_params()[name], value)
    for name in ("bandwidth_", "bandwidth_matrix_", "training_data_", "sample_weight_", "adaptive_factors_",
                 "n_features_in_"):
        expected, got = getattr(kde, name), getattr(loaded, name)
        if expected is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, expected)
            assert type(got) is type(expected)


def test_float32_and_feature_names_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(_data().astype(np.float32), columns=["eruptions", "waiting"])
    kde = KernelDensity(bandwidth="scott").fit(X)
    save(kde, tmp_path / "m.npz")
    loaded = load(str(tmp_path / "m.npz"))
    assert loaded.training_data_.dtype == np.float32
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == ["eruptions", "waiting"]
    np.testing.assert_array_equal(loaded.score_samples(X), kde.score_samples(X))


def test_save_writes_exactly_the_given_path(tmp_path):
    kde = KernelDensity().fit(_data())
    save(kde, str(tmp_path / "model.bin"))
    assert sorted(os.listdir(tmp_path)) == ["model.bin"]
    assert isinstance(load(tmp_path / "model.bin"), KernelDensity)


def test_file_holds_no_pickle_and_documented_metadata(tmp_path):
    kde = KernelDensity(bandwidth=np.array([0.5, 0.6])).fit(_data())
    save(kde, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    assert all(not a.dtype.hasobject for a in arrays.values())
    meta = json.loads(str(arrays[METADATA_KEY][()]))
    assert meta["format"] == "fastdensity-model"
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["estimator"] == "KernelDensity"
    assert meta["array_params"] == ["bandwidth"]
    np.testing.assert_array_equal(arrays["param.bandwidth"], [0.5, 0.6])
    kinds = {a["name"]: a["kind"] for a in meta["attributes"]}
    assert kinds["sample_weight_"] == "none" and kinds["n_features_in_"] == "int"


def test_save_unfitted_raises_not_fitted(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        save(KernelDensity(), tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_save_unregistered_class_raises(tmp_path):
    class KernelDensitySubclass(KernelDensity):
        pass

    with pytest.raises(TypeError, match="cannot save an object of type"):
        save(KernelDensitySubclass().fit(_data()), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="cannot save an object of type"):
        save(object(), tmp_path / "m.npz")


def test_failed_save_leaves_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    old = KernelDensity(bandwidth=0.3).fit(_data())
    save(old, path)
    before = path.read_bytes()

    def failing_savez(fh, **arrays):
        fh.write(b"PK\x03\x04 partial archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fio.np, "savez", failing_savez)
    with pytest.raises(OSError, match="No space left"):
        save(KernelDensity(bandwidth=0.9).fit(_data()), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]
    with pytest.raises(OSError, match="No space left"):
        save(old, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == ["model.npz"]
    monkeypatch.undo()
    assert load(path).bandwidth_ == 0.3


def test_failed_rename_leaves_no_temporary(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise PermissionError(13, "Permission denied", dst)

    monkeypatch.setattr(fio.os, "replace", failing_replace)
    with pytest.raises(PermissionError, match="Permission denied"):
        save(KernelDensity().fit(_data()), tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------- bad files


def _saved(tmp_path) -> Path:
    path = tmp_path / "good.npz"
    save(KernelDensity(bandwidth="scott").fit(_data()), path)
    return path


def _rewrite(path: Path, *, meta_update=None, extra=None, drop=()):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(str(arrays[METADATA_KEY][()]))
    if meta_update:
        meta_update(meta)
    arrays[METADATA_KEY] = np.array(json.dumps(meta))
    for key in drop:
        arrays.pop(key)
    arrays.update(extra or {})
    out = path.with_name("bad.npz")
    with open(out, "wb") as fh:
        np.savez(fh, **arrays)
    return out


def _error(path, pattern):
    return pytest.raises(ValueError, match=re.escape(repr(str(path))) + ".*" + pattern)


def test_load_random_bytes(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(np.random.default_rng(0).bytes(500))
    with _error(path, r"not a fastdensity model file \(not an \.npz archive\)"):
        load(path)


def test_load_plain_npy(tmp_path):
    path = tmp_path / "array.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.arange(5.0))
    with _error(path, "not an .npz archive"):
        load(path)


def test_load_truncated_file(tmp_path):
    good = _saved(tmp_path)
    path = tmp_path / "truncated.npz"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with _error(path, "corrupt or truncated archive"):
        load(path)


def test_load_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.arange(3), b=np.ones((2, 2)))
    with _error(path, "no '__fastdensity__' entry; a foreign .npz"):
        load(path)


def test_load_pickled_object_array_is_refused(tmp_path, monkeypatch):
    good = _saved(tmp_path)
    evil = np.empty(1, dtype=object)
    evil[0] = {"payload": "would need pickle"}
    with np.load(good, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["attr.training_data_"] = evil
    path = tmp_path / "evil.npz"
    np.savez(path, **arrays)  # allow_pickle defaults to True when writing

    import pickle

    def no_unpickling(*args, **kwargs):
        raise AssertionError("load() must never unpickle")

    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    with _error(path, "object array, which cannot be loaded without pickle"):
        load(path)


def test_load_pickled_metadata_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    meta = np.empty((), dtype=object)
    meta[()] = {"format": "fastdensity-model"}
    np.savez(path, **{METADATA_KEY: meta})
    with _error(path, "object array"):
        load(path)


def test_load_newer_format_version(tmp_path):
    path = _rewrite(_saved(tmp_path), meta_update=lambda m: m.update(format_version=FORMAT_VERSION + 1,
                                                                      fastdensity_version="99.0"))
    with _error(path, f"format version {FORMAT_VERSION + 1} .*fastdensity 99.0.*upgrade fastdensity"):
        load(path)


def test_load_unknown_class(tmp_path):
    path = _rewrite(_saved(tmp_path), meta_update=lambda m: m.update(estimator="os.system"))
    with _error(path, r"unknown estimator class 'os.system'; this fastdensity loads \[.*'KernelDensity'"):
        load(path)


def test_load_other_format_name(tmp_path):
    path = _rewrite(_saved(tmp_path), meta_update=lambda m: m.update(format="something-else"))
    with _error(path, "format is not 'fastdensity-model'"):
        load(path)


def test_load_bad_json(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, **{METADATA_KEY: np.array("{not json")})
    with _error(path, "not valid JSON"):
        load(path)


def test_load_refuses_dunder_attribute(tmp_path):
    def add_class(meta):
        meta["attributes"].append({"name": "__class__", "kind": "str", "value": "x"})

    path = _rewrite(_saved(tmp_path), meta_update=add_class)
    with _error(path, "invalid attribute name '__class__'"):
        load(path)


def test_load_missing_array(tmp_path):
    path = _rewrite(_saved(tmp_path), drop=["attr.training_data_"])
    with _error(path, "array for attribute 'training_data_' is missing"):
        load(path)


def test_load_unexpected_entries(tmp_path):
    path = _rewrite(_saved(tmp_path), extra={"surprise": np.zeros(3)})
    with _error(path, r"unexpected entries \['surprise'\]"):
        load(path)


def test_load_unknown_parameter(tmp_path):
    path = _rewrite(_saved(tmp_path), meta_update=lambda m: m["params"].update(flux_capacitor=1))
    with _error(path, "parameters do not fit KernelDensity"):
        load(path)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        load(tmp_path / "absent.npz")


def test_gpu_fitted_state_is_saved_from_a_host_copy(tmp_path, monkeypatch):
    # Stand-in for CuPy (no GPU here): an array type whose .get() copies to the host, as CuPy's does.
    import types

    class DeviceArray:
        def __init__(self, host):
            self.host = host

        def get(self):
            return self.host.copy()

    monkeypatch.setitem(sys.modules, "cupy", types.SimpleNamespace(ndarray=DeviceArray))
    X = np.random.default_rng(5).standard_normal((40, 2))
    kde = KernelDensity(bandwidth=0.4).fit(X)
    expected = kde.score_samples(X[:5])
    kde.training_data_ = DeviceArray(np.asarray(kde.training_data_))
    save(kde, tmp_path / "gpu.npz")
    loaded = load(tmp_path / "gpu.npz")
    assert isinstance(loaded.training_data_, np.ndarray)
    np.testing.assert_allclose(loaded.score_samples(X[:5]), expected, rtol=1e-12)


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
    assert set(fio._FITTED_STATE) == set(fio.MODEL_CLASSES)


def _archive(path):
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return arrays, json.loads(str(arrays[METADATA_KEY][()]))


def _write(path, arrays, meta):
    arrays = dict(arrays)
    arrays[METADATA_KEY] = np.array(json.dumps(meta))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


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
    arrays, meta = _archive(saved_models[model])
    altered = 0
    for entry in _float_entries(arrays):
        if kind in ("longer", "flattened") and entry in _ANY_SHAPE:
            continue
        bad = _CORRUPTIONS[kind](arrays[entry])
        if bad is None:
            continue
        path = _write(tmp_path / f"{entry}.npz", {**arrays, entry: bad}, meta)
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
    arrays, meta = _archive(saved_models[model])
    names = _meta_numbers(meta)
    for name in names:
        value = {"nan": float("nan"), "inf": float("inf"), "negative": -1.0, "string": "1.0"}[kind]
        if kind == "negative" and name in ("mean_", "mu_", "lower_bound_"):
            continue  # any sign is valid for these
        altered = json.loads(json.dumps(meta))
        for entry in altered["attributes"]:
            if entry["name"] == name:
                entry["value"] = value
        path = _write(tmp_path / f"{name}.npz", arrays, altered)
        with _entry_error(f"{METADATA_KEY}:attributes.{name}"):
            load(path)


@pytest.mark.parametrize("model", _MODEL_NAMES)
def test_missing_and_unknown_fitted_attributes_are_refused(saved_models, tmp_path, model):
    arrays, meta = _archive(saved_models[model])
    first = sorted(a["name"] for a in meta["attributes"])[0]
    dropped = json.loads(json.dumps(meta))
    dropped["attributes"] = [a for a in dropped["attributes"] if a["name"] != first]
    path = _write(tmp_path / "dropped.npz", {k: v for k, v in arrays.items() if k != f"attr.{first}"}, dropped)
    with pytest.raises(ValueError, match=re.escape(f"fitted attribute {type(_fitted_models()[model]).__name__}.{first} "
                                                   "is missing")):
        load(path)
    added = json.loads(json.dumps(meta))
    added["attributes"].append({"name": "surprise_", "kind": "float", "value": 1.0})
    path = _write(tmp_path / "added.npz", arrays, added)
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
    arrays, meta = _archive(saved_models[model])
    change(arrays, meta)
    path = _write(tmp_path / "changed.npz", arrays, meta)
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
    arrays, meta = _archive(tmp_path / "m.npz")
    arrays["attr.feature_names_in_"] = np.array(["a", "b", "c"])
    with _entry_error("attr.feature_names_in_"):
        load(_write(tmp_path / "names.npz", arrays, meta))


# ------------------------------------------------------------- files written by earlier versions
#
# tests/data/model-*.npz were written by fastdensity 0.1.0 (model-file format version 1) from the
# recipes below; `python tests/test_io.py --write-model-files` writes them again (do that only on
# purpose, when a new format version adds files; never to make this test pass). Each must load and
# score like the same recipe fitted now. KDE and kNN keep their training data and a bandwidth
# that involve no arithmetic, so they score identically; the mixture's EM and the normal's mean
# and standard deviation go through reductions whose rounding depends on the machine (BLAS,
# SIMD width), so those compare at rtol 1e-9: about 1e7 float64 ulps, far above that rounding
# and far below any change of meaning.

DATA = Path(__file__).resolve().parent / "data"


def _recipes() -> dict:
    import fastdensity as fd

    rng = np.random.default_rng(2026)
    X2 = rng.standard_normal((200, 2))
    XG = np.vstack([rng.standard_normal((150, 2)) * 0.5, rng.standard_normal((150, 2)) * 0.8 + [4.0, 1.0]])
    X3 = rng.standard_normal((200, 3))
    x = rng.standard_normal(100) * 2.0 + 1.0
    return {
        "model-kde.npz": (lambda: fd.KernelDensity(bandwidth=0.5).fit(X2), rng.standard_normal((50, 2)), 0.0),
        "model-gmm.npz": (lambda: fd.GaussianMixture(2, random_state=0).fit(XG), rng.standard_normal((50, 2)) * 3,
                          1e-9),
        "model-knn.npz": (lambda: fd.KNNDensity(n_neighbors=5).fit(X3), rng.standard_normal((50, 3)), 0.0),
        "model-normal.npz": (lambda: fd.Normal().fit(x), rng.standard_normal(50) * 3, 1e-9),
    }


@pytest.mark.parametrize("filename", sorted(_recipes()))
def test_model_files_of_format_version_1_load_and_score_as_a_fresh_fit(filename):
    recipe, queries, rtol = _recipes()[filename]
    path = DATA / filename
    _, meta = _archive(path)
    assert meta["format_version"] == 1 and meta["fastdensity_version"] == "0.1.0"
    loaded, fresh = load(path), recipe()
    assert type(loaded) is type(fresh)
    assert loaded.get_params() == fresh.get_params()
    got, expected = loaded.score_samples(queries), fresh.score_samples(queries)
    if rtol == 0.0:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=0)
    assert np.all(np.isfinite(got))


def _write_model_files():  # pragma: no cover - run by hand, see above
    DATA.mkdir(exist_ok=True)
    for filename, (recipe, _, _) in _recipes().items():
        save(recipe(), DATA / filename)
        print("wrote", DATA / filename, (DATA / filename).stat().st_size, "bytes")


if __name__ == "__main__" and sys.argv[1:] == ["--write-model-files"]:  # pragma: no cover
    _write_model_files()
