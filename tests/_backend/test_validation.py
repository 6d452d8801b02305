"""The declarative parameter table and the one sample-weight check (fastdensity._backend._validation)."""

import numpy as np
import pytest

from fastdensity._backend._validation import (
    Boolean, Check, Integer, InvalidParameterError, Options, Real, check_parameter, check_sample_weight,
    validate_parameters,
)


@pytest.mark.parametrize(("constraint", "good", "converted"), [
    (Integer(1), np.int32(3), 3),
    (Integer(0, 5), 5, 5),
    (Integer(none=True), None, None),
    (Real(0), 0, 0.0),
    (Real(0, low_open=True), np.float32(0.5), 0.5),
    (Real(0.5, 1.0, low_open=True), 1.0, 1.0),
    (Options(("a", "b")), "b", "b"),
    (Boolean(), np.True_, True),
])
def test_accepted_values_come_back_in_their_python_type(constraint, good, converted):
    out = check_parameter("p", good, constraint)
    assert out == converted and type(out) is type(converted)


@pytest.mark.parametrize(("constraint", "bad", "message"), [
    (Integer(1), 0, r"p must be a positive integer; got 0"),
    (Integer(1), True, r"p must be a positive integer; got True"),
    (Integer(1), 2.0, r"p must be a positive integer; got 2.0"),
    (Integer(0), -1, r"p must be a non-negative integer; got -1"),
    (Integer(2), 1, r"p must be an integer >= 2; got 1"),
    (Integer(1, 3), 4, r"p must be an integer in \[1, 3\]; got 4"),
    (Integer(1, none=True), "x", r"p must be a positive integer or None; got 'x'"),
    (Real(0), -1e-300, r"p must be a non-negative finite number; got -1e-300"),
    (Real(0), float("nan"), r"p must be a non-negative finite number; got nan"),
    (Real(0), float("inf"), r"p must be a non-negative finite number; got inf"),
    (Real(0, low_open=True), 0.0, r"p must be a positive finite number; got 0.0"),
    (Real(0.5, 1.0, low_open=True), 0.5, r"p must be a finite number in \(0.5, 1.0\]; got 0.5"),
    (Real(), False, r"p must be a finite number; got False"),
    (Options(("a", "b")), "A", r"p must be one of \('a', 'b'\); got 'A'"),
    (Options(("a", "b")), 1, r"p must be one of \('a', 'b'\); got 1"),
    (Boolean(), 1, r"p must be a bool; got 1"),
])
def test_refused_values_name_the_rule_and_the_value(constraint, bad, message):
    with pytest.raises(InvalidParameterError, match=message):
        check_parameter("p", bad, constraint)


def test_the_error_is_both_a_value_and_a_type_error():
    # as scikit-learn's InvalidParameterError: callers catching either keep working
    assert issubclass(InvalidParameterError, ValueError) and issubclass(InvalidParameterError, TypeError)


def test_a_table_is_checked_in_order_and_check_rules_run_their_function():
    class Estimator:
        _constraints = {"n": Integer(1), "mode": Options(("x",)), "seed": Check(lambda v: v * 2)}
        n, mode, seed = 2, "x", 21

    assert validate_parameters(Estimator()) == {"n": 2, "mode": "x", "seed": 42}
    bad = Estimator()
    bad.n, bad.mode = 0, "y"
    with pytest.raises(InvalidParameterError, match="n must be a positive integer"):  # first entry first
        validate_parameters(bad)


def test_every_estimator_table_names_exactly_its_constructor_parameters():
    from fastdensity import GaussianMixture, KernelDensity, KNNDensity
    from fastdensity.parametric import Categorical, Gamma, MultivariateNormal, Normal

    for cls in (KernelDensity, KNNDensity, GaussianMixture, Normal, MultivariateNormal, Gamma, Categorical):
        assert set(cls._constraints) == set(cls().get_params()), cls.__name__


# ---------------------------------------------------------------------------- sample weights
def test_weights_come_back_as_float64_and_none_stays_none():
    w = check_sample_weight([1, 2, 0], 3, xp=np)
    assert w.dtype == np.float64 and w.tolist() == [1.0, 2.0, 0.0]
    assert check_sample_weight(None, 3, xp=np) is None
    np.testing.assert_array_equal(check_sample_weight(2.5, 3, xp=np), np.full(3, 2.5))
    np.testing.assert_array_equal(check_sample_weight(np.float32(2.0), 2, xp=np), np.full(2, 2.0))


@pytest.mark.parametrize(("weights", "message"), [
    (np.ones(4), r"sample_weight.shape == \(4,\), expected \(3,\)!"),
    (np.ones((3, 1)), r"Sample weights must be 1D array or scalar; got sample_weight of shape \(3, 1\)"),
    ([1.0, np.nan, 1.0], "Input sample_weight contains NaN."),
    ([1.0, -np.inf, 1.0], "Input sample_weight contains infinity."),
    ([1.0, -1e-300, 1.0], "Negative values in data passed to `sample_weight`"),
    (np.zeros(3), r"Sample weights must contain at least one non-zero number \(sample_weight must have a"),
    (["a", "b", "c"], "sample_weight must be an array of numbers; got list"),
])
def test_bad_weights_are_refused_with_scikit_learns_messages(weights, message):
    with pytest.raises(ValueError, match=message):
        check_sample_weight(weights, 3, xp=np)


def test_the_argument_name_appears_in_the_message():
    with pytest.raises(ValueError, match=r"Negative values in data passed to `weights`"):
        check_sample_weight([-1.0], 1, xp=np, name="weights")


def test_the_generative_tables_name_exactly_their_constructor_parameters():
    pytest.importorskip("torch")
    from fastdensity.generative import GAN, VAE

    for cls in (GAN, VAE):
        assert set(cls._constraints) == set(cls().get_params()), cls.__name__
