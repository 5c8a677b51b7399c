"""feature_names_in_ of every estimator fitted on a pandas DataFrame, and scikit-learn's warning or error
when later input names its columns otherwise (run on scikit-learn's estimators too, as the reference)."""
import pickle
import warnings

import numpy as np
import pytest
import sklearn.cluster
import sklearn.mixture

import mixtura

pd = pytest.importorskip("pandas")
pytestmark = pytest.mark.top_level_only(reason="feature names are Python plumbing: no arithmetic")

NAMES = ["temperature", "pressure", "flow"]

# (factory, the methods that take X after the fit)
ESTIMATORS = {
    "KMeans": (lambda: mixtura.KMeans(3, random_state=0), ["predict", "transform", "score", "statistics"]),
    "MiniBatchKMeans": (lambda: mixtura.MiniBatchKMeans(3, random_state=0, batch_size=64),
                        ["predict", "transform", "score", "partial_fit"]),
    "GaussianMixture": (lambda: mixtura.GaussianMixture(3, random_state=0),
                        ["predict", "predict_proba", "score_samples", "score", "bic", "statistics", "partial_fit"]),
    "DensityAnomalyDetector": (lambda: mixtura.DensityAnomalyDetector(random_state=0),
                               ["predict", "score_samples", "decision_function", "explain", "partial_fit"]),
    "DensityAnomalyDetector-kmeans": (lambda: mixtura.DensityAnomalyDetector("kmeans", random_state=0),
                                      ["predict", "score_samples", "decision_function", "explain"]),
    "sklearn.KMeans": (lambda: sklearn.cluster.KMeans(3, random_state=0, n_init=1), ["predict", "transform", "score"]),
    "sklearn.MiniBatchKMeans": (lambda: sklearn.cluster.MiniBatchKMeans(3, random_state=0, n_init=1, batch_size=64),
                                ["predict", "transform", "score", "partial_fit"]),
    "sklearn.GaussianMixture": (lambda: sklearn.mixture.GaussianMixture(3, random_state=0),
                                ["predict", "predict_proba", "score_samples", "score", "bic"]),
}


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 3)) + rng.integers(0, 3, 600)[:, None] * 5.0
    return pd.DataFrame(X, columns=NAMES)


def _name_warnings(call):
    """The feature-name warnings that call() gives."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if "feature names" in str(w.message)]


@pytest.mark.parametrize("kind", list(ESTIMATORS))
def test_fitted_on_a_dataframe_the_names_are_kept_and_checked(frame, kind):
    make, methods = ESTIMATORS[kind]
    est = make().fit(frame)
    name = type(est).__name__
    assert isinstance(est.feature_names_in_, np.ndarray) and list(est.feature_names_in_) == NAMES
    assert est.n_features_in_ == 3
    if not kind.startswith("sklearn."):  # the model file (pickling goes through it) keeps them
        assert list(pickle.loads(pickle.dumps(est)).feature_names_in_) == NAMES
    renamed = frame.rename(columns={"flow": "level"})
    for method in methods:
        call = getattr(est, method)
        assert _name_warnings(lambda: call(frame[:50])) == [], method
        # an array: scikit-learn's warning, once per call
        assert _name_warnings(lambda: call(frame[:50].to_numpy())) == [
            f"X does not have valid feature names, but {name} was fitted with feature names"], method
        with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
            call(renamed[:50])
    # A fit on an array forgets them; then a DataFrame warns the other way.
    est.fit(frame.to_numpy())
    assert not hasattr(est, "feature_names_in_")
    assert _name_warnings(lambda: getattr(est, methods[0])(frame[:50])) == [
        f"X has feature names, but {name} was fitted without feature names"]


@pytest.mark.parametrize("kind", [k for k, (_, methods) in ESTIMATORS.items() if "partial_fit" in methods])
def test_a_first_partial_fit_on_a_dataframe_keeps_the_names(frame, kind):
    est = ESTIMATORS[kind][0]().partial_fit(frame)
    assert list(est.feature_names_in_) == NAMES
    assert _name_warnings(lambda: est.partial_fit(frame[:100])) == []
