"""mixtura.PyODDetector: DensityAnomalyDetector under PyOD's BaseDetector conventions (scores higher =
more abnormal, 0/1 labels, threshold_ at the training scores' percentile, PyOD's predict_proba)."""
import math
import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_outlier_detector
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import mixtura

pytestmark = pytest.mark.top_level_only(
    reason="PyOD's conventions on top of the detector's scores: Python arithmetic and plumbing (the scores "
           "themselves are tested in test_anomaly.py at every level)")

CONTAMINATION = 0.05


@pytest.fixture(scope="module")
def data():
    """1000 training rows of a correlated Gaussian, a few of them far out, and new rows beside them."""
    rng = np.random.default_rng(7)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), cov, size=1000)
    X[:20] += rng.choice([-6.0, 6.0], size=(20, 3))
    Y = np.vstack([rng.multivariate_normal(np.zeros(3), cov, size=200), np.full((1, 3), 8.0)])
    return X, Y


@pytest.fixture(scope="module")
def fitted(data):
    return mixtura.PyODDetector(contamination=CONTAMINATION, n_components=2, random_state=0).fit(data[0])


def test_scores_are_minus_the_log_density_of_the_same_detector(data, fitted):
    X, Y = data
    # The same parameters, PyOD's contamination passed on: the same fit, so the same bits.
    det = mixtura.DensityAnomalyDetector(contamination=CONTAMINATION, n_components=2, random_state=0).fit(X)
    np.testing.assert_array_equal(fitted.decision_scores_, -det.score_samples(X))
    np.testing.assert_array_equal(fitted.decision_function(Y), -det.score_samples(Y))
    assert isinstance(fitted.detector_, mixtura.DensityAnomalyDetector) and fitted.detector_.contamination == 0.05
    # Higher = more abnormal: the far row scores highest and is an outlier (1), where the detector says -1.
    s = fitted.decision_function(Y)
    assert s.argmax() == len(Y) - 1 and fitted.predict(Y)[-1] == 1 and det.predict(Y)[-1] == -1
    # PyOD's labels and scikit-learn's flags mark the same training rows, up to the quantile's definition.
    assert np.mean(fitted.labels_ == (det.predict(X) == -1)) >= 0.998


def test_threshold_is_the_percentile_and_labels_take_the_contamination_share(data, fitted):
    assert fitted.threshold_ == np.percentile(fitted.decision_scores_, 100 * (1 - CONTAMINATION))
    np.testing.assert_array_equal(fitted.labels_, (fitted.decision_scores_ > fitted.threshold_).astype(int))
    n = len(fitted.labels_)
    assert abs(fitted.labels_.mean() - CONTAMINATION) <= 1 / n  # continuous scores: no ties at the threshold
    assert fitted.labels_[:20].mean() >= 0.9  # the planted rows are among them
    assert set(np.unique(fitted.labels_)) == {0, 1}
    np.testing.assert_array_equal(fitted.predict(data[0]), fitted.labels_)


def test_fit_predict_returns_the_training_labels(data, fitted):
    labels = clone(fitted).fit_predict(data[0])
    np.testing.assert_array_equal(labels, fitted.labels_)


@pytest.mark.parametrize("method", ["linear", "unify"])
def test_predict_proba_rows_are_probabilities_monotone_in_the_score(data, fitted, method):
    X, Y = data
    Z = np.vstack([X, Y])
    p = fitted.predict_proba(Z, method=method)
    assert p.shape == (len(Z), 2) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=0, atol=1e-15)
    order = np.argsort(fitted.decision_function(Z), kind="stable")
    assert np.all(np.diff(p[order, 1]) >= 0)
    assert p[len(X):, 1][-1] == p[:, 1].max()  # the far new row


def test_linear_is_the_training_scores_min_max_clipped(data, fitted):
    train = fitted.decision_scores_
    p = fitted.predict_proba(data[0], method="linear")[:, 1]
    assert p[train.argmin()] == 0 and p[train.argmax()] == 1
    np.testing.assert_allclose(p, (train - train.min()) / (train.max() - train.min()), rtol=0, atol=1e-15)
    assert fitted.predict_proba(data[1], method="linear")[-1, 1] == 1  # beyond the training maximum: clipped


def test_unify_is_the_erf_of_the_standardised_score(data, fitted):
    train, s = fitted.decision_scores_, fitted.decision_function(data[1])
    expected = [min(max(math.erf((v - train.mean()) / (train.std() * math.sqrt(2))), 0.0), 1.0) for v in s]
    np.testing.assert_allclose(fitted.predict_proba(data[1], method="unify")[:, 1], expected, rtol=1e-15, atol=0)
    assert np.all(fitted.predict_proba(data[1], method="unify")[s <= train.mean(), 1] == 0)


def test_get_params_clone_and_set_params_carry_the_detector_parameters(data, fitted):
    params = fitted.get_params()
    assert params == {"contamination": 0.05, "detector": None, "n_components": 2, "random_state": 0}
    twin = clone(fitted)
    assert twin.get_params() == params and not hasattr(twin, "decision_scores_")
    twin.set_params(covariance_type="diag", n_components=1, contamination=0.1)
    assert twin.get_params() == {"contamination": 0.1, "detector": None, "n_components": 1, "random_state": 0,
                                 "covariance_type": "diag"}
    twin.fit(data[0])
    assert twin.detector_.covariance_type == "diag" and twin.detector_.n_components_ == 1
    assert "covariance_type='diag'" in repr(twin)
    with pytest.raises(TypeError, match="PyODDetector: unknown parameter\\(s\\) n_cluster; the detector's parameters"):
        mixtura.PyODDetector(n_cluster=3)
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        twin.set_params(bogus=1)


def test_an_explicit_detector_is_cloned_and_its_parameters_are_nested(data):
    X, Y = data
    gm = mixtura.GaussianMixture(2, random_state=0)
    est = mixtura.PyODDetector(detector=gm).fit(X)
    assert not hasattr(gm, "means_") and est.detector_ is not gm
    np.testing.assert_array_equal(est.decision_function(Y), -est.detector_.score_samples(Y))
    assert est.get_params()["detector__n_components"] == 2
    est.set_params(detector__n_components=3)
    assert est.detector.n_components == 3
    with pytest.raises(ValueError, match="PyODDetector: give either detector or detector parameters, got detector "
                                         "and random_state"):
        mixtura.PyODDetector(detector=gm, random_state=0).fit(X)


def test_bad_arguments_are_refused_with_their_value(data, fitted):
    for bad in (0, 0.6, "auto", True):
        with pytest.raises(ValueError, match=r"PyODDetector: contamination must be a float in \(0, 0.5\], got"):
            mixtura.PyODDetector(contamination=bad).fit(data[0])
    with pytest.raises(ValueError, match="PyODDetector.predict_proba: method must be 'linear' or 'unify', got 'erf'"):
        fitted.predict_proba(data[1], method="erf")
    with pytest.raises(NotFittedError):
        mixtura.PyODDetector().decision_function(data[1])


def test_pickles_tags_and_feature_names(data, fitted):
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.decision_function(data[1]), fitted.decision_function(data[1]))
    assert is_outlier_detector(fitted) and fitted.n_features_in_ == 3
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(data[0], columns=["a", "b", "c"])
    est = clone(fitted).fit(df)
    assert list(est.feature_names_in_) == ["a", "b", "c"]
    est.fit(data[0])
    assert not hasattr(est, "feature_names_in_")


def test_predict_proba_agrees_with_pyod_on_the_same_scores(data, fitted):
    base = pytest.importorskip("pyod.models.base")

    class Scores(base.BaseDetector):
        """A PyOD detector whose scores are ours."""

        def __init__(self, contamination=0.1):
            super().__init__(contamination=contamination)

        def fit(self, X, y=None):
            self._set_n_classes(y)
            self.decision_scores_ = fitted.decision_function(X)
            self._process_decision_scores()
            return self

        def decision_function(self, X):
            return fitted.decision_function(X)

    theirs = Scores(contamination=CONTAMINATION).fit(data[0])
    assert theirs.threshold_ == fitted.threshold_
    np.testing.assert_array_equal(theirs.labels_, fitted.labels_)
    np.testing.assert_array_equal(theirs.predict(data[1]), fitted.predict(data[1]))
    for method in ("linear", "unify"):
        np.testing.assert_allclose(fitted.predict_proba(data[1], method=method),
                                   theirs.predict_proba(data[1], method=method), rtol=1e-12, atol=1e-15)


# Where PyOD's interface is not scikit-learn's, by design (PyOD's own detectors fail the same checks).
PYOD_NOT_SKLEARN = {
    "check_outliers_fit_predict": "PyOD's labels: 1 outlier / 0 inlier, not scikit-learn's -1 / +1",
    "check_outliers_train": "PyOD's labels: 1 outlier / 0 inlier, not scikit-learn's -1 / +1",
    "check_no_attributes_set_in_init": "**detector_params are kept as attributes of their own names (get_params "
                                       "lists them), as a signature with every detector parameter would",
    "check_do_not_raise_errors_in_init_or_set_params": "the check passes a keyword named detector_params, which is "
                                                       "no DensityAnomalyDetector parameter: a TypeError, as for a typo",
}


@parametrize_with_checks([mixtura.PyODDetector(n_components=2, random_state=0)],
                         expected_failed_checks=lambda est: PYOD_NOT_SKLEARN)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
