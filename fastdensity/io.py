"""Safe model files: ``save(estimator, path)`` and ``load(path)``.

A model file is an uncompressed NumPy ``.npz`` archive that holds only plain arrays and one JSON
metadata entry; it is read with ``allow_pickle=False``, so loading a file from anyone runs no
code. Nothing is ever pickled.

Layout of the archive:

``__fastdensity__``
    a 0-d unicode array holding the JSON metadata::

        {"format": "fastdensity-model", "format_version": 1,
         "fastdensity_version": "0.1.0", "estimator": "KernelDensity",
         "params": {...},             # get_params(deep=False); array-valued ones are null here
         "array_params": [...],       # names of the params stored as arrays
         "attributes": [{"name": "bandwidth_", "kind": "float", "value": 0.4}, ...]}

``param.<name>``
    an array-valued parameter (for example a bandwidth matrix);

``attr.<name>``
    a fitted array attribute (``training_data_``, ``bandwidth_matrix_``, ...).

Fitted attributes that are None, Python scalars or strings live in the metadata. The estimator
class is looked up in a registry of allowed classes (``MODEL_CLASSES``); a file naming any other
class is refused.

``load`` checks the fitted state against the class's rules (``_model_format._FITTED_STATE``) before it returns
the model: every fitted attribute the model needs is there and no other, every array has a dtype
the engines take (native float32/float64; strings for feature names), the shape the metadata
implies (``n_features_in_``, ``n_components``, ``covariance_type``, ``n_categories_`` and the
training set's row count), finite values and the signs and bounds the model relies on (positive
weights and scales, probabilities that sum to one, a positive-definite bandwidth matrix). A file
that fails is refused with a ValueError naming the entry (``attr.training_data_``,
``param.bandwidth``, or ``__fastdensity__:attributes.std_`` for a value in the metadata), so an
altered file never gives a model that scores NaN.

A model fitted on a dask array (the sharded training set of ``KernelDensity`` or ``KNNDensity``) is saved from its rows
gathered into this process (``compute``): the file holds every row, and it loads as an in-memory
model with the same densities.

``save`` writes exactly to the path it is given (it does not append ``.npz``; the suffix is up to
the caller, ``.npz`` is recommended). The file is written to a temporary file in the same
directory, fsynced and moved into place with ``os.replace``: readers see the old file or the new
one, never a partial one, and a failure leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import secrets
import sys
import zipfile
import zlib
from typing import Any, Iterator

import numpy as np

from ._backend._namespace import _is_dask_array  # never imports dask just to check
from ._model_format import ATTR_NAME as _ATTR_NAME
from ._model_format import METADATA_KEY, InvalidModelFile, check_fitted_state

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "MODEL_CLASSES", "load", "register_model_class", "save"]

FORMAT_NAME = "fastdensity-model"
FORMAT_VERSION = 1

_PARAM_PREFIX = "param."
_ATTR_PREFIX = "attr."

# Estimator class name -> "module:attribute". Imported only when a file names the class, so that
# importing fastdensity.io imports no estimator. Each new estimator adds one row here.
MODEL_CLASSES: dict[str, str] = {
    "KernelDensity": "fastdensity.kde._kde:KernelDensity",
    "GaussianMixture": "fastdensity.mixture._gaussian_mixture:GaussianMixture",
    "KNNDensity": "fastdensity.knn._knn:KNNDensity",
    "Normal": "fastdensity.parametric._normal:Normal",
    "MultivariateNormal": "fastdensity.parametric._normal:MultivariateNormal",
    "Exponential": "fastdensity.parametric._exponential_family:Exponential",
    "Poisson": "fastdensity.parametric._exponential_family:Poisson",
    "Bernoulli": "fastdensity.parametric._exponential_family:Bernoulli",
    "Gamma": "fastdensity.parametric._exponential_family:Gamma",
    "LogNormal": "fastdensity.parametric._exponential_family:LogNormal",
    "Beta": "fastdensity.parametric._exponential_family:Beta",
    "Categorical": "fastdensity.parametric._exponential_family:Categorical",
}

_PARAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def register_model_class(name: str, target: str) -> None:
    """Allow estimator class ``name``, importable as ``"module:attribute"``, in model files."""
    if not isinstance(name, str) or not isinstance(target, str) or target.count(":") != 1:
        raise ValueError(f"register_model_class needs a name and a 'module:attribute' target; got {name!r}, {target!r}")
    MODEL_CLASSES[name] = target


def _resolve_class(name: str):
    module_name, attr = MODEL_CLASSES[name].split(":")
    return getattr(importlib.import_module(module_name), attr)


# --------------------------------------------------------------------------------------------
# Atomic writes


@contextlib.contextmanager
def atomic_path(path) -> Iterator[str]:
    """Yield the name of a fresh temporary file next to ``path``; on success fsync it and move it
    onto ``path`` with ``os.replace``; on failure remove it. Used for every file fastdensity writes.

    The temporary file is created with mode 0o666 minus the umask (like ``open(path, "w")``), so
    the final file gets ordinary permissions.
    """
    path = os.fspath(path)
    directory, base = os.path.split(os.path.abspath(path))
    tmp = None
    for _ in range(100):
        candidate = os.path.join(directory, f".{base}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:  # report the file the caller asked for, not our temporary name
            raise type(exc)(exc.errno, exc.strerror, path) from None
        os.close(fd)
        tmp = candidate
        break
    if tmp is None:  # pragma: no cover - 100 collisions of 32 random bits
        raise FileExistsError(f"could not create a temporary file next to {path!r}")
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------------
# Encoding


def _json_value(value, what: str):
    """Return ``value`` as plain JSON data, or raise TypeError if it cannot be stored safely."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v, what) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v, what) for k, v in value.items()}
    raise TypeError(
        f"cannot save {what} of type {type(value).__name__} in a model file; model files hold "
        "only arrays, numbers, strings, None and lists/dicts of these"
    )


def _check_array(value: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """Return (array to store, kind). Object arrays are stored only when they hold strings."""
    if value.dtype.hasobject:
        if value.dtype == object and all(isinstance(v, str) for v in value.ravel()):
            return value.astype(str), "object_str_array"
        raise TypeError(f"cannot save {what}: it is an object array, which would need pickle")
    return np.asarray(value), "array"


def _is_cupy_array(value) -> bool:
    cupy = sys.modules.get("cupy")  # never import CuPy just to check
    return cupy is not None and isinstance(value, cupy.ndarray)


def _encode(estimator) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    params: dict[str, Any] = {}
    array_params: list[str] = []
    for name, value in estimator.get_params(deep=False).items():
        if not _PARAM_NAME.match(name):
            raise TypeError(f"cannot save parameter {name!r}: not a plain identifier")
        if isinstance(value, np.ndarray):
            arrays[_PARAM_PREFIX + name], kind = _check_array(value, f"parameter {name!r}")
            if kind != "array":
                raise TypeError(f"cannot save parameter {name!r}: it is an object array")
            params[name] = None
            array_params.append(name)
        else:
            params[name] = _json_value(value, f"parameter {name!r}")

    attributes = []
    for name, value in sorted(vars(estimator).items()):
        if not _ATTR_NAME.match(name) or name in params:
            continue
        what = f"fitted attribute {name!r}"
        if _is_cupy_array(value):
            # A model fitted on the GPU is saved from a host copy (writing a file is an explicit
            # move to the host); it loads as a CPU model and moves to the GPU again when scoring
            # GPU data.
            value = value.get()
        if _is_dask_array(value):
            # A model fitted on a dask array (KernelDensity, KNNDensity keep it sharded) is saved
            # from its gathered rows: the file holds them all, and it loads as an in-memory model.
            value = value.compute()
        if value is None:
            attributes.append({"name": name, "kind": "none"})
        elif isinstance(value, np.ndarray):
            arrays[_ATTR_PREFIX + name], kind = _check_array(value, what)
            attributes.append({"name": name, "kind": kind})
        elif isinstance(value, np.generic):
            # A NumPy scalar keeps its exact dtype as a 0-d array.
            arrays[_ATTR_PREFIX + name], _ = _check_array(np.asarray(value), what)
            attributes.append({"name": name, "kind": "numpy_scalar"})
        elif isinstance(value, (bool, int, float, str)):
            kind = type(value).__name__
            attributes.append({"name": name, "kind": kind, "value": value})
        elif isinstance(value, list) and all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value
        ):
            # A list of numbers (e.g. GaussianMixture.lower_bounds_) is stored as a float64 array.
            arrays[_ATTR_PREFIX + name], _ = _check_array(np.asarray(value, dtype=np.float64), what)
            attributes.append({"name": name, "kind": "number_list"})
        else:
            raise TypeError(
                f"cannot save {what} of type {type(value).__name__}; model files hold only arrays, "
                "numbers, lists of numbers, strings and None"
            )

    from ._version import __version__

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastdensity_version": __version__,
        "estimator": type(estimator).__name__,
        "params": params,
        "array_params": array_params,
        "attributes": attributes,
    }
    return metadata, arrays


def save(estimator, path) -> None:
    """Save a fitted estimator to ``path`` as a safe ``.npz`` model file.

    Parameters
    ----------
    estimator : fitted fastdensity estimator
        Its class must be one of ``MODEL_CLASSES`` (for example ``KernelDensity``).
    path : str or os.PathLike
        Written exactly as given: no suffix is appended (use ``.npz`` by convention). An existing
        file is replaced atomically; if saving fails, the old file is left intact and no partial
        or temporary file remains.

    Raises
    ------
    TypeError
        The estimator's class is not a registered model class, or a parameter or fitted attribute
        cannot be stored without pickle.
    sklearn.exceptions.NotFittedError
        The estimator has not been fitted.
    """
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    cls = None
    if name in MODEL_CLASSES:
        try:
            cls = _resolve_class(name)
        except (ImportError, AttributeError):
            cls = None
    if cls is None or type(estimator) is not cls:
        raise TypeError(
            f"cannot save an object of type {type(estimator).__module__}.{name}; model files hold "
            f"only these fastdensity estimators: {sorted(MODEL_CLASSES)}"
        )
    check_is_fitted(estimator)

    metadata, arrays = _encode(estimator)
    arrays[METADATA_KEY] = np.array(json.dumps(metadata, sort_keys=True))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)


# --------------------------------------------------------------------------------------------
# Decoding


def _read_arrays(fh) -> dict[str, np.ndarray]:
    magic = fh.read(4)
    fh.seek(0)
    if magic != b"PK\x03\x04":
        raise InvalidModelFile("not a fastdensity model file (not an .npz archive)")
    try:
        with np.load(fh, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InvalidModelFile("the archive contains an object array, which cannot be loaded without "
                           "pickle; model files never need pickle, refusing to load it") from None
        raise InvalidModelFile(f"corrupt archive ({exc})") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, NotImplementedError, OSError) as exc:
        raise InvalidModelFile(f"corrupt or truncated archive ({type(exc).__name__}: {exc})") from None


def _decode(arrays: dict[str, np.ndarray]):
    if METADATA_KEY not in arrays:
        raise InvalidModelFile(f"not a fastdensity model file (no {METADATA_KEY!r} entry; a foreign .npz?)")
    raw = arrays.pop(METADATA_KEY)
    if raw.ndim != 0 or raw.dtype.kind != "U":
        raise InvalidModelFile("the metadata entry is not a JSON string")
    try:
        meta = json.loads(str(raw[()]))
    except json.JSONDecodeError as exc:
        raise InvalidModelFile(f"the metadata entry is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise InvalidModelFile(f"not a fastdensity model file (format is not {FORMAT_NAME!r})")

    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidModelFile(f"invalid format version {version!r}")
    if version > FORMAT_VERSION:
        raise InvalidModelFile(
            f"written in model-file format version {version} (by fastdensity "
            f"{meta.get('fastdensity_version', '?')}); this fastdensity reads format versions up to "
            f"{FORMAT_VERSION}: upgrade fastdensity to load it"
        )

    name = meta.get("estimator")
    if not isinstance(name, str) or name not in MODEL_CLASSES:
        raise InvalidModelFile(f"unknown estimator class {name!r}; this fastdensity loads {sorted(MODEL_CLASSES)}")
    try:
        cls = _resolve_class(name)
    except (ImportError, AttributeError) as exc:
        raise InvalidModelFile(f"estimator class {name!r} is not available in this installation ({exc})") from None

    params = meta.get("params")
    array_params = meta.get("array_params", [])
    attributes = meta.get("attributes")
    if not isinstance(params, dict) or not isinstance(array_params, list) or not isinstance(attributes, list):
        raise InvalidModelFile("malformed metadata (params/attributes)")

    used = set()
    entries = {}  # parameter or attribute name -> the entry it came from, for error messages
    for pname in array_params:
        key = _PARAM_PREFIX + str(pname)
        if key not in arrays or pname not in params:
            raise InvalidModelFile(f"malformed metadata: array parameter {pname!r} is missing")
        params[pname] = arrays[key]
        entries[pname] = key
        used.add(key)

    for pname in params:
        entries.setdefault(pname, f"{METADATA_KEY}:params.{pname}")
    try:
        estimator = cls(**params)
    except TypeError as exc:
        raise InvalidModelFile(f"its parameters do not fit {name} in this fastdensity ({exc})") from None

    for entry in attributes:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidModelFile("malformed metadata: bad attribute entry")
        aname, kind = entry["name"], entry.get("kind")
        if not _ATTR_NAME.match(aname) or aname in params:
            raise InvalidModelFile(f"malformed metadata: invalid attribute name {aname!r}")
        if kind in ("array", "object_str_array", "numpy_scalar", "number_list"):
            key = _ATTR_PREFIX + aname
            if key not in arrays:
                raise InvalidModelFile(f"malformed file: the array for attribute {aname!r} is missing")
            value = arrays[key]
            used.add(key)
            entries[aname] = key
            if kind == "object_str_array":
                value = value.astype(object)
            elif kind == "numpy_scalar":
                if value.ndim != 0:
                    raise InvalidModelFile(f"entry {key!r} ({name}.{aname}) should be a scalar; got shape {value.shape}")
                value = value[()]
            elif kind == "number_list":
                if value.ndim != 1 or value.dtype != np.float64:
                    raise InvalidModelFile(f"entry {key!r} ({name}.{aname}) should be a list of numbers (a 1-d "
                                  f"float64 array); got {value.dtype} of shape {value.shape}")
                value = value.tolist()
        elif kind == "none":
            value = None
        elif kind in ("bool", "int", "float", "str"):
            value = entry.get("value")
            expected = {"bool": bool, "int": int, "float": (float, int), "str": str}[kind]
            if not isinstance(value, expected) or (kind != "bool" and isinstance(value, bool)):
                raise InvalidModelFile(f"entry '{METADATA_KEY}:attributes.{aname}' ({name}.{aname}) is not a "
                              f"{kind}; got {value!r}")
            if kind == "float":
                value = float(value)
        else:
            raise InvalidModelFile(f"malformed metadata: attribute {aname!r} has unknown kind {kind!r}")
        entries.setdefault(aname, f"{METADATA_KEY}:attributes.{aname}")
        setattr(estimator, aname, value)

    extra = sorted(set(arrays) - used)
    if extra:
        raise InvalidModelFile(f"unexpected entries {extra} in the archive")
    check_fitted_state(name, estimator, params, entries)
    return estimator


def load(path):
    """Load an estimator saved with :func:`save`.

    Only arrays and JSON are read (``allow_pickle=False``); the estimator class must be one of
    ``MODEL_CLASSES``. The file is read exactly at ``path`` (no suffix is appended).

    Raises
    ------
    ValueError
        The file is not a fastdensity model file, is corrupt or truncated, contains an object
        array, names an unknown estimator class or was written in a newer format version; or its
        fitted state breaks the class's rules (a missing or unknown attribute, a wrong dtype or
        shape, NaN or infinite values, a sign or bound the model relies on: see the module
        docstring). The message names the file, the entry and the problem.
    OSError
        The file cannot be opened or read (for example ``FileNotFoundError``).
    """
    fspath = os.fspath(path)
    with open(fspath, "rb") as fh:
        try:
            return _decode(_read_arrays(fh))
        except InvalidModelFile as exc:
            raise ValueError(f"cannot load model file {fspath!r}: {exc}") from None
