"""One declarative validation for parameters and sample weights, used by every estimator.

Each estimator states its parameters as a table, in the spirit of scikit-learn's
``_parameter_constraints``::

    _constraints = {
        "n_components": Integer(1),
        "tol": Real(0),
        "init_params": Options(("kmeans", "random")),
        "warm_start": Boolean(),
        "backend": Check(validate_backend),
    }

and calls ``validate_parameters(self)`` at the start of ``fit``; functions check a single value
with ``check_parameter(name, value, constraint)``. A failed check raises
:class:`InvalidParameterError`, a subclass of both ``ValueError`` and ``TypeError`` (as scikit-learn's
error is), with one message form per kind of constraint: ``"{name} must be {description}; got
{value!r}"``. The table is kept beside the class (not a docstring) so that a test can check every
constructor parameter has an entry.

:func:`check_sample_weight` is the one check of ``sample_weight`` for every estimator and backend:
it is written against the array namespace, so NumPy and CuPy weights go through the same lines and
CuPy weights stay on the device.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "Boolean", "Check", "Integer", "InvalidParameterError", "Options", "Real", "CheckedLater", "check_parameter",
    "check_sample_weight", "validate_parameters",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type or outside its allowed values."""


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


class _Constraint:
    """A rule for one value: ``accepts(value)`` and a ``description`` for the error message.

    ``none=True`` also accepts None (and says so in the message). ``convert(value)`` gives the
    checked value in its canonical Python type.
    """

    none = False

    def accepts(self, value):  # pragma: no cover - abstract
        raise NotImplementedError

    def convert(self, value):
        return value

    def describe(self):  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def description(self):
        return self.describe() + (" or None" if self.none else "")

    def check(self, name, value):
        if value is None and self.none:
            return None
        if not self.accepts(value):
            raise InvalidParameterError(f"{name} must be {self.description}; got {value!r}")
        return self.convert(value)


class Integer(_Constraint):
    """An integer (not a bool) in ``[low, high]``; either bound may be None (unbounded)."""

    def __init__(self, low=None, high=None, *, none=False):
        self.low, self.high, self.none = low, high, none

    def accepts(self, value):
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def convert(self, value):
        return int(value)

    def describe(self):
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return {0: "a non-negative integer", 1: "a positive integer"}.get(self.low, f"an integer >= {self.low}")
        if self.high is not None:
            return f"an integer <= {self.high}"
        return "an integer"


class Real(_Constraint):
    """A finite real number (not a bool) between ``low`` and ``high`` (None: unbounded), each
    bound closed unless ``low_open``/``high_open``."""

    def __init__(self, low=None, high=None, *, low_open=False, high_open=False, none=False):
        self.low, self.high, self.none = low, high, none
        self.low_open, self.high_open = low_open, high_open

    def accepts(self, value):
        if _is_bool(value) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.low is not None and not (value > self.low if self.low_open else value >= self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def convert(self, value):
        return float(value)

    def describe(self):
        if self.high is None and self.low == 0:
            return "a positive finite number" if self.low_open else "a non-negative finite number"
        if self.high is None and self.low is None:
            return "a finite number"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        low = "-inf" if self.low is None else self.low
        high = "inf" if self.high is None else self.high
        return f"a finite number in {left}{low}, {high}{right}"


class Options(_Constraint):
    """One of the given strings (exactly: no case folding, and a non-string is refused)."""

    def __init__(self, values, *, none=False):
        self.values, self.none = tuple(values), none

    def accepts(self, value):
        return isinstance(value, str) and value in self.values

    def describe(self):
        return f"one of {self.values}"


class Boolean(_Constraint):
    """True or False (a Python or NumPy bool; 0 and 1 are refused)."""

    def __init__(self, *, none=False):
        self.none = none

    def accepts(self, value):
        return _is_bool(value)

    def convert(self, value):
        return bool(value)

    def describe(self):
        return "a bool"


class Check(_Constraint):
    """A rule that lives in a function of its own (``backend``, ``n_jobs``, ``random_state``):
    ``function(value)`` raises on a bad value, with its own message, or returns the checked
    value."""

    def __init__(self, function, *, none=False):
        self.function, self.none = function, none

    def check(self, name, value):
        if value is None and self.none:
            return None
        return self.function(value)


class CheckedLater(_Constraint):
    """A parameter checked where more is known (against the data: a bandwidth array's shape,
    initial means; or by the object it is handed to: a trainer's checkpoint folder): the table
    names it, so that it lists every parameter, and ``where`` says what checks it."""

    def __init__(self, where):
        self.where = where

    def check(self, name, value):
        return value


def check_parameter(name, value, constraint):
    """``value`` checked against ``constraint`` (returned converted: int, float, bool)."""
    return constraint.check(name, value)


def validate_parameters(estimator, constraints=None):
    """Check every parameter of ``estimator`` named in its ``_constraints`` table (or in
    ``constraints``), in the table's order; returns ``{name: checked value}``."""
    table = estimator._constraints if constraints is None else constraints
    return {name: rule.check(name, getattr(estimator, name)) for name, rule in table.items()}


# ---------------------------------------------------------------------------- sample weights
def check_sample_weight(sample_weight, n_samples, *, xp, name="sample_weight"):
    """``sample_weight`` as a float64 (n_samples,) array of ``xp`` (NumPy, or CuPy for weights already
    on the device): a scalar is broadcast; the weights must be 1-D of length ``n_samples``, finite,
    non-negative and have a positive sum. Returns None for None (equal weights).

    The messages are scikit-learn's ``_check_sample_weight`` messages where it has one, so code
    that matches them keeps working; ``name`` is the argument's name in them.
    """
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number) and not _is_bool(sample_weight):
        weights = xp.full(n_samples, sample_weight, dtype=xp.float64)
    else:
        try:
            weights = xp.asarray(sample_weight, dtype=xp.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of numbers; got {type(sample_weight).__name__}") from exc
        if weights.ndim == 0:
            weights = xp.full(n_samples, float(weights), dtype=xp.float64)
    if weights.ndim != 1:
        raise ValueError(f"Sample weights must be 1D array or scalar; got {name} of shape {weights.shape}")
    if weights.shape != (n_samples,):
        raise ValueError(f"{name}.shape == {weights.shape}, expected ({n_samples},)!")
    if bool(xp.isnan(weights).any()):
        raise ValueError(f"Input {name} contains NaN.")
    if bool(xp.isinf(weights).any()):
        raise ValueError(f"Input {name} contains infinity.")
    if bool((weights < 0).any()):
        raise ValueError(f"Negative values in data passed to `{name}`")
    if not float(weights.sum()) > 0:
        raise ValueError(f"Sample weights must contain at least one non-zero number ({name} must have a positive sum)")
    return weights
