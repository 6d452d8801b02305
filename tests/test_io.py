"""Model files: save → load round trips, atomic writes and clear errors on bad files."""

from __future__ import annotations

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

from model_files import read_archive


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
    "bounded": dict(params=dict(bandwidth=0.4, bounds=[(-6.0, 6.0), (None, np.inf)]), d=2, weighted=True),
    "tree": dict(params=dict(bandwidth=0.3, kernel="epanechnikov", algorithm="tree", leaf_size=8), d=2),
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
                 "n_features_in_", "effective_algorithm_"):
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
    _, meta = read_archive(path)
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
