"""scikit-learn's estimator checks (clone, get_params, fit/predict contracts, sample weights,
dtypes, invariances of predictions, …) on several configurations."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from fastdensity.mixture import GaussianMixture

ESTIMATORS = [
    GaussianMixture(),
    GaussianMixture(n_components=2, covariance_type="diag", max_iter=5, n_init=2, random_state=0),
    GaussianMixture(n_components=2, covariance_type="tied", init_params="k-means++", random_state=0),
    GaussianMixture(n_components=2, covariance_type="spherical", init_params="random_from_data", random_state=0),
]



def expected_failed_checks(estimator):
    """With two or more components the fit starts from random draws (k-means, k-means++, rows
    drawn from the data), and the check compares a weighted fit of shuffled rows with a fit of
    repeated rows in another order: the draws land on different rows, EM on different local
    optima. From the same initial parameters, integer weights do equal repeated rows
    (test_mixture_invariance.py)."""
    if estimator.n_components == 1:
        return {}
    return {
        "check_sample_weight_equivalence_on_dense_data":
            "random initialisation draws differ between weighted and repeated rows",
    }


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
