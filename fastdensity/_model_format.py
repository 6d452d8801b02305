"""What a fastdensity model file must hold: the metadata entry's key, the names of fitted
attributes, and the fitted-state rules of ``fastdensity.load`` (``_FITTED_STATE``: what a loaded
model must hold before it may score anything, every attribute present, of the right dtype, shape,
sign and bounds; see the ``fastdensity.io`` docstring). ``check_fitted_state`` raises ``InvalidModelFile`` naming the entry
that breaks a rule; ``load`` turns it into a ValueError that names the file.
"""

from __future__ import annotations

import re

import numpy as np

METADATA_KEY = "__fastdensity__"
# Fitted attribute names: public, ending in "_" (never dunder names such as __class__).
ATTR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*_$")


class InvalidModelFile(Exception):
    """A problem with the file's content; turned into a ValueError naming the file."""


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class _Checker:
    """Checks one loaded model's parameters and fitted attributes; names the entry that fails.

    Dimensions ("d", "k", "n", ...) are bound from the metadata (``n_features_in_``,
    ``n_components``) or by the first array that has them (the training set's row count), and
    every later array must agree.
    """

    def __init__(self, cls_name: str, estimator, params: dict, entries: dict):
        self.cls_name = cls_name
        self.attrs = vars(estimator)
        self.params = params
        self.entries = entries
        self.seen: set[str] = set()
        self.dims: dict[str, int] = {}

    def fail(self, name: str, problem: str):
        entry = self.entries.get(name, f"{METADATA_KEY}:{name}")
        raise InvalidModelFile(f"entry {entry!r} ({self.cls_name}.{name}) {problem}")

    def _value(self, name, *, param=False, required=True, none_ok=False):
        """(present, value) of a fitted attribute or a parameter; marks attributes as checked."""
        if param:
            value = self.params.get(name)
            return value is not None, value
        self.seen.add(name)
        if name not in self.attrs:
            if required:
                raise InvalidModelFile(f"the fitted attribute {self.cls_name}.{name} is missing from the file")
            return False, None
        value = self.attrs[name]
        if value is None:
            if not none_ok:
                self.fail(name, "is None; the model needs a value")
            return False, None
        return True, value

    # -- scalars

    def integer(self, name, *, minimum=0, equals=None, param=False, required=True):
        present, value = self._value(name, param=param, required=required)
        if not present:
            return None
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            self.fail(name, f"must be an integer; got {type(value).__name__} {value!r}")
        value = int(value)
        if value < minimum:
            self.fail(name, f"must be at least {minimum}; got {value}")
        if equals is not None and value != equals[1]:
            self.fail(name, f"must equal {equals[0]} ({equals[1]}); got {value}")
        return value

    def boolean(self, name, *, required=True):
        present, value = self._value(name, required=required)
        if present and not isinstance(value, (bool, np.bool_)):
            self.fail(name, f"must be True or False; got {type(value).__name__} {value!r}")

    def choice(self, name, allowed, *, param=False, required=True):
        present, value = self._value(name, param=param, required=required)
        if present and (not isinstance(value, str) or value not in allowed):
            self.fail(name, f"must be one of {sorted(allowed)}; got {value!r}")
        return value

    def real(self, name, *, positive=False, allow_inf=False, bounds=None, required=True):
        """A float scalar: a Python number, or a NumPy scalar saved with its dtype."""
        present, value = self._value(name, required=required)
        if not present:
            return None
        if isinstance(value, np.generic) and not isinstance(value, np.floating):
            self.fail(name, f"must be a floating-point number; got {value.dtype} {value!r}")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            self.fail(name, f"must be a number; got {type(value).__name__} {value!r}")
        self._values(name, np.asarray(value, dtype=np.float64), positive=positive, allow_inf=allow_inf,
                     bounds=bounds)
        return float(value)

    def dtype_name(self, name):
        present, value = self._value(name)
        try:
            ok = isinstance(value, str) and np.dtype(value).kind in "biuf" and np.dtype(value).name == value
        except TypeError:
            ok = False
        if not ok:
            self.fail(name, f"must name a NumPy numeric dtype (such as 'float64'); got {value!r}")

    # -- arrays

    def array(self, name, shape, *, positive=False, nonnegative=False, bounds=None, none_ok=False,
              param=False, required=True):
        """A float32/float64 array (native byte order) of ``shape``: ints or dimension names."""
        present, value = self._value(name, param=param, required=required, none_ok=none_ok)
        if not present:
            return None
        if not isinstance(value, np.ndarray):
            self.fail(name, f"must be an array; got {type(value).__name__} {value!r}")
        if value.dtype not in _FLOATS:
            self.fail(name, f"must be an array of float32 or float64 (native byte order); got dtype "
                            f"{value.dtype.str!r} ({value.dtype})")
        self._shape(name, value.shape, shape)
        self._values(name, value, positive=positive, nonnegative=nonnegative, bounds=bounds)
        return value

    def names(self, name, dim):
        """feature_names_in_: optional, an array of ``dim`` strings."""
        present, value = self._value(name, required=False)
        if not present:
            return
        if not (isinstance(value, np.ndarray) and value.dtype == object
                and all(isinstance(v, str) for v in value.ravel())):
            self.fail(name, "must be an array of strings")
        self._shape(name, value.shape, (dim,))

    def _shape(self, name, got, expected):
        want = tuple(self.dims.get(s, s) if isinstance(s, str) else s for s in expected)
        fits = len(got) == len(want) and all(
            (g >= 1) if isinstance(w, str) else (g == w) for g, w in zip(got, want))
        if not fits:
            described = ", ".join(str(w) for w in want) + ("," if len(want) == 1 else "")
            known = ", ".join(f"{k}={v}" for k, v in self.dims.items())
            self.fail(name, f"must have shape ({described})" + (f" ({known})" if known else "")
                      + f"; got {got}")
        for g, w in zip(got, want):
            if isinstance(w, str):
                self.dims[w] = g

    def _values(self, name, value, *, positive=False, nonnegative=False, allow_inf=False, bounds=None):
        bad = np.isnan(value) if allow_inf else ~np.isfinite(value)
        if bad.any():
            self.fail(name, f"holds {int(bad.sum())} NaN or infinite value(s); a fitted model has none")
        if value.size == 0:
            return
        if positive and not np.all(value > 0):
            self.fail(name, f"must be positive; its smallest value is {np.min(value)!r}")
        if nonnegative and not np.all(value >= 0):
            self.fail(name, f"must be non-negative; its smallest value is {np.min(value)!r}")
        if bounds is not None and not np.all((value >= bounds[0]) & (value <= bounds[1])):
            self.fail(name, f"must lie in [{bounds[0]}, {bounds[1]}]; its values run from "
                            f"{np.min(value)!r} to {np.max(value)!r}")

    # -- properties of a checked array

    def sums_to_one(self, name, value):
        total = float(np.sum(value, dtype=np.float64))
        if abs(total - 1.0) > 1e-6:
            self.fail(name, f"must sum to 1 (they are probabilities); they sum to {total!r}")

    def positive_sum(self, name, value):
        if not float(np.sum(value, dtype=np.float64)) > 0:
            self.fail(name, "must have a positive sum")

    def positive_definite(self, name, value):
        for i, m in enumerate(value.reshape((-1,) + value.shape[-2:])):
            try:
                np.linalg.cholesky(np.asarray(m, dtype=np.float64))
            except np.linalg.LinAlgError:
                where = f" (matrix {i})" if value.ndim == 3 else ""
                self.fail(name, f"must be symmetric positive definite{where}; its Cholesky "
                                "factorisation fails")

    def positive_diagonal(self, name, value):
        diag = np.diagonal(value, axis1=-2, axis2=-1)
        if not np.all(diag > 0):
            self.fail(name, f"must have a positive diagonal; its smallest diagonal entry is {np.min(diag)!r}")

    def features(self):
        """n_features_in_ (bound as "d") and the optional feature_names_in_."""
        self.dims["d"] = self.integer("n_features_in_", minimum=1)
        self.names("feature_names_in_", "d")
        return self.dims["d"]

    def finish(self):
        extra = sorted(k for k in self.attrs if ATTR_NAME.match(k) and k not in self.seen)
        if extra:
            self.fail(extra[0], f"is not a fitted attribute of {self.cls_name}; its model files hold "
                                f"only {sorted(self.seen)}")


def _kernel_density(c: _Checker):
    d = c.features()
    c.array("training_data_", ("n", "d"))
    w = c.array("sample_weight_", ("n",), nonnegative=True, none_ok=True)
    if w is not None:
        c.positive_sum("sample_weight_", w)
    c.array("adaptive_factors_", ("n",), positive=True, none_ok=True)
    # Files written before the attribute existed lack it (their models run "exact").
    c.choice("effective_algorithm_", ("exact", "tree", "fft"), required=False)
    bw = c.attrs.get("bandwidth_")  # a float, one scale per feature, or a (d, d) matrix
    if isinstance(bw, np.ndarray) and bw.ndim == 2:
        c.array("bandwidth_", (d, d))
    elif isinstance(bw, np.ndarray) and bw.ndim == 1:
        c.array("bandwidth_", (d,), positive=True)
    else:
        c.real("bandwidth_", positive=True)
    H = c.array("bandwidth_matrix_", (d, d))
    c.positive_definite("bandwidth_matrix_", H)
    _kernel_density_bounds(c, d)
    bw_param = c.params.get("bandwidth")
    if isinstance(bw_param, np.ndarray):
        if bw_param.ndim == 2:
            c.positive_definite("bandwidth", c.array("bandwidth", (d, d), param=True))
        else:
            c.array("bandwidth", (d,), positive=True, param=True)


def _kernel_density_bounds(c: _Checker, d: int):
    """The ``bounds`` parameter (if any): valid, one entry per feature, the training data inside."""
    bounds = c.params.get("bounds")
    if bounds is None:
        return
    from .kde._bounds_spec import parse_bounds

    try:
        low, high = parse_bounds(bounds)
    except (TypeError, ValueError) as exc:
        c.fail("bounds", f"is not a valid bounds parameter ({exc})")
    if low.size != d:
        c.fail("bounds", f"must have one entry per feature ({d}); got {low.size}")
    X = np.asarray(c.attrs["training_data_"], dtype=np.float64)
    outside = ~np.all((X >= low) & (X <= high), axis=1)
    if outside.any():
        c.fail("bounds", f"must hold the training data; {int(outside.sum())} row(s) of training_data_ lie outside")


def _knn_density(c: _Checker):
    c.features()
    X = c.array("training_data_", ("n", "d"))
    c.integer("n_samples_fit_", minimum=1, equals=("the rows of training_data_", X.shape[0]))
    c.choice("effective_algorithm_", ("brute", "kd_tree"))


# covariances_, precisions_ and precisions_cholesky_ (and precisions_init) per covariance_type
_GMM_SHAPES = {"full": ("k", "d", "d"), "tied": ("d", "d"), "diag": ("k", "d"), "spherical": ("k",)}


def _gaussian_mixture(c: _Checker):
    cov_type = c.choice("covariance_type", tuple(_GMM_SHAPES), param=True)
    c.dims["k"] = c.integer("n_components", minimum=1, param=True)
    c.features()
    shape = _GMM_SHAPES[cov_type]
    matrices = cov_type in ("full", "tied")
    w = c.array("weights_", ("k",), nonnegative=True)
    c.sums_to_one("weights_", w)
    c.array("means_", ("k", "d"))
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        value = c.array(name, shape, positive=not matrices)
        if matrices:
            c.positive_diagonal(name, value)
    c.boolean("converged_")
    c.integer("n_iter_", minimum=0)
    c.integer("n_steps_", minimum=0, required=False)
    c.real("lower_bound_")
    _, bounds = c._value("lower_bounds_")  # the EM history: finite numbers, any length
    if not isinstance(bounds, list) or not np.all(np.isfinite(np.asarray(bounds, dtype=np.float64))):
        c.fail("lower_bounds_", "must be a list of finite numbers")
    c.array("weights_init", ("k",), nonnegative=True, param=True)
    c.array("means_init", ("k", "d"), param=True)
    precisions_init = c.array("precisions_init", shape, positive=not matrices, param=True)
    if precisions_init is not None and matrices:
        c.positive_definite("precisions_init", precisions_init)


def _univariate(c: _Checker):
    c.dims["d"] = c.integer("n_features_in_", minimum=1, equals=("1 for a univariate model", 1))
    c.names("feature_names_in_", "d")
    c.integer("n_parameters_", minimum=0)
    c.dtype_name("sample_dtype_")


def _normal(c: _Checker):
    _univariate(c)
    c.real("mean_")
    c.real("std_", positive=True)
    c.real("var_", positive=True)


def _multivariate_normal(c: _Checker):
    cov_type = c.choice("covariance_type", ("full", "diag", "spherical"), param=True)
    d = c.features()
    c.integer("n_parameters_", minimum=0)
    c.dtype_name("sample_dtype_")
    c.array("mean_", (d,))
    if cov_type == "full":
        c.positive_definite("covariance_", c.array("covariance_", (d, d)))
        c.positive_diagonal("covariance_cholesky_", c.array("covariance_cholesky_", (d, d)))
    elif cov_type == "diag":
        c.array("covariance_", (d,), positive=True)
        c.array("covariance_cholesky_", (d,), positive=True)
    else:
        c.real("covariance_", positive=True)
        c.real("covariance_cholesky_", positive=True)


def _positive_scalars(*names, extra=None):
    def rules(c: _Checker):
        _univariate(c)
        for name in names:
            c.real(name, positive=True)
        if extra:
            extra(c)
    return rules


def _categorical(c: _Checker):
    _univariate(c)
    k = c.integer("n_categories_", minimum=1)
    c.dims["c"] = k
    p = c.array("probabilities_", ("c",), bounds=(0.0, 1.0))
    c.sums_to_one("probabilities_", p)


# Estimator class name -> the rules its fitted state must satisfy. Every class in MODEL_CLASSES
# has a row; a class registered later without one is loaded after the generic checks only.
_FITTED_STATE = {
    "KernelDensity": _kernel_density,
    "KNNDensity": _knn_density,
    "GaussianMixture": _gaussian_mixture,
    "Normal": _normal,
    "MultivariateNormal": _multivariate_normal,
    "Exponential": _positive_scalars("rate_", "scale_"),
    "Poisson": _positive_scalars(extra=lambda c: c.real("rate_", bounds=(0.0, np.inf))),
    "Bernoulli": _positive_scalars(extra=lambda c: c.real("p_", bounds=(0.0, 1.0))),
    "Gamma": _positive_scalars("shape_", "rate_", "scale_"),
    "LogNormal": _positive_scalars("sigma_", extra=lambda c: c.real("mu_")),
    "Beta": _positive_scalars("a_", "b_"),
    "Categorical": _categorical,
}


def check_fitted_state(cls_name: str, estimator, params: dict, entries: dict) -> None:
    rules = _FITTED_STATE.get(cls_name)
    if rules is None:
        return
    checker = _Checker(cls_name, estimator, params, entries)
    rules(checker)
    checker.finish()


