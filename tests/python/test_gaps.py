"""mixtura.GaussianMixture on data with missing values (NaN) against the NumPy reference gaps_oracle:
per-iteration lower bounds and fitted parameters (float64, float32, sample weights), scoring of rows
with gaps, and the errors for rows with nothing observed and for infinities."""
import functools
import itertools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import gaps_oracle as go
import mixtura

TYPES = go.COVARIANCE_TYPES
K, D = 3, 4
N_ITER = 10
REG = 1e-6
CHANNEL = 2  # missing in a whole block of rows of the "channel" data


@functools.lru_cache(maxsize=None)
def truth():
    return go.well_separated_mixture(np.random.default_rng(20), K, D, separation=4.0)


def every_pattern(rng, copies=3):
    """Rows from the mixture in every pattern of observed features but the empty one, `copies` each."""
    patterns = [o for o in itertools.product([True, False], repeat=D) if any(o)]
    X = go.sample_mixture(rng, copies * len(patterns), *truth())
    X[~np.array(patterns * copies)] = np.nan
    return X


@functools.lru_cache(maxsize=None)
def data(gaps):
    """Rows with gaps: "random5" and "random20" (that fraction of values removed at random) or
    "channel" (one channel missing in a block of rows, 5% elsewhere); each with every pattern."""
    rng = np.random.default_rng({"random5": 21, "random20": 22, "channel": 23}[gaps])
    X = go.sample_mixture(rng, 600, *truth())
    gone = rng.random(X.shape) < {"random5": 0.05, "random20": 0.2, "channel": 0.05}[gaps]
    if gaps == "channel":
        gone[200:400, CHANNEL] = True
    for i in np.flatnonzero(gone.all(axis=1)):  # keep one value of each row, never the block's channel
        gone[i, (CHANNEL + 1) % D] = False
    X[gone] = np.nan
    X = np.vstack([X, every_pattern(rng)])
    X.setflags(write=False)
    return X


def start(covariance_type):
    _, means, covariances = truth()
    return go.scikit_learn_start(np.random.default_rng(24), means, covariances, covariance_type,
                                 weights=[0.2, 0.5, 0.3])


def sample_weight(n):
    return np.random.default_rng(25).uniform(0.2, 3.0, n)


@functools.lru_cache(maxsize=None)
def oracle_fit(gaps, covariance_type, float32=False, weighted=False):
    """The reference EM from start(covariance_type); on float32 data, from its values in float64."""
    X = data(gaps).astype(np.float32).astype(np.float64) if float32 else data(gaps)
    init = start(covariance_type)
    cov = go.precisions_to_covariances(init["precisions_init"], covariance_type)
    return go.em(X, init["weights_init"], init["means_init"], cov, covariance_type, reg_covar=REG, n_iter=N_ITER,
                 sample_weight=sample_weight(len(X)) if weighted else None)


def mixtura_fit(gaps, covariance_type, float32=False, weighted=False):
    X = data(gaps)
    X = np.ascontiguousarray(X, dtype=np.float32 if float32 else np.float64)
    gm = mixtura.GaussianMixture(n_components=K, covariance_type=covariance_type, max_iter=N_ITER, tol=0,
                                 reg_covar=REG, **start(covariance_type))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: runs all N_ITER iterations
        return gm.fit(X, sample_weight=sample_weight(len(X)) if weighted else None)


def assert_fit_matches(gm, ref, lb_rtol, param_rtol):
    assert gm.n_iter_ == N_ITER and len(gm.lower_bounds_) == N_ITER
    np.testing.assert_allclose(gm.lower_bounds_, ref["lower_bounds"], rtol=lb_rtol, atol=0)
    np.testing.assert_allclose(gm.weights_, ref["weights"], rtol=param_rtol, atol=0, err_msg="weights_")
    np.testing.assert_allclose(gm.means_, ref["means"], rtol=param_rtol, atol=param_rtol, err_msg="means_")
    np.testing.assert_allclose(gm.covariances_, ref["covariances"], rtol=param_rtol, atol=param_rtol,
                               err_msg="covariances_")


@pytest.mark.parametrize("gaps", ["random5", "random20", "channel"])
def test_data_has_every_pattern(gaps):
    X = data(gaps)
    patterns = {tuple(o) for o, _ in go.missingness_patterns(X)}
    assert len(patterns) == 2 ** D - 1  # every pattern but the empty one
    if gaps == "channel":
        assert np.isnan(X[200:400, CHANNEL]).all()


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("gaps", ["random5", "random20", "channel"])
def test_fit_matches_the_oracle(gaps, covariance_type):
    ref = oracle_fit(gaps, covariance_type)
    assert ref["lower_bounds"][-1] > ref["lower_bounds"][0] + 0.1  # EM moved: the comparison means something
    assert_fit_matches(mixtura_fit(gaps, covariance_type), ref, lb_rtol=1e-8, param_rtol=1e-7)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_float32_fit_matches_the_oracle_on_its_values(covariance_type):
    gm = mixtura_fit("random20", covariance_type, float32=True)
    assert_fit_matches(gm, oracle_fit("random20", covariance_type, float32=True), lb_rtol=1e-6, param_rtol=1e-5)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_weighted_fit_matches_the_oracle(covariance_type):
    gm = mixtura_fit("random20", covariance_type, weighted=True)
    assert_fit_matches(gm, oracle_fit("random20", covariance_type, weighted=True), lb_rtol=1e-8, param_rtol=1e-7)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_scoring_rows_with_gaps_matches_the_oracle(covariance_type):
    gm = mixtura_fit("random20", covariance_type)
    X = np.vstack([data("channel"), go.remove_values(np.random.default_rng(26), data("random5")[:300], 0.4)])
    params = (gm.weights_, gm.means_, gm.covariances_, covariance_type)
    log_prob = go.marginal_log_prob(X, *params)
    np.testing.assert_allclose(gm.component_log_density(X), log_prob - np.log(gm.weights_), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(gm.score_samples(X), go.score_samples(X, *params), rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(gm.predict_proba(X), go.predict_proba(X, *params), rtol=0, atol=1e-9)
    top2 = np.sort(log_prob, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 1e-6  # no near-ties
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(gm.predict(X)[clear], np.argmax(log_prob, axis=1)[clear])
    np.testing.assert_allclose(gm.score(X), np.mean(go.score_samples(X, *params)), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_refuses_a_row_with_nothing_observed_and_names_it(dtype):
    X = np.array(data("random5"), dtype=dtype)
    X[17] = np.nan
    gm = mixtura.GaussianMixture(n_components=K, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match=r"\b17\b"):
        gm.fit(X)


@pytest.mark.parametrize("method", ["score_samples", "predict_proba", "predict", "component_log_density"])
def test_scoring_refuses_a_row_with_nothing_observed_and_names_it(method):
    gm = mixtura_fit("random5", "full")
    X = np.array(data("random5")[:40])
    X[23] = np.nan
    with pytest.raises(ValueError, match=r"\b23\b"):
        getattr(gm, method)(X)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_infinities_are_still_refused(bad):
    X = np.array(data("random20"))
    X[5, 1] = bad
    with pytest.raises(ValueError):
        mixtura.GaussianMixture(n_components=K, max_iter=2, random_state=0).fit(X)
    gm = mixtura_fit("random20", "diag")
    with pytest.raises(ValueError):
        gm.score_samples(X[:10])


# DensityAnomalyDetector on rows with gaps: scores are the oracle's marginal density of the scaled
# observed values, in the original units (the Jacobian over the observed features only).

def sensor_rows(n=1500, seed=30):
    """Three channels in different units, correlated, with 10 % of the values missing."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.normal(size=(3, n))
    X = np.column_stack([20 + a, 5000 + 1000 * (0.9 * a + 0.44 * b), 0.001 * (c - 0.5 * a)])
    gone = rng.random(X.shape) < 0.1
    gone[gone.all(axis=1), 0] = False
    X[gone] = np.nan
    return X


@pytest.mark.parametrize("covariance_type", TYPES)
def test_detector_scores_rows_with_gaps_by_the_observed_marginal(covariance_type):
    X = sensor_rows()
    det = mixtura.DensityAnomalyDetector(covariance_type=covariance_type, random_state=0).fit(X)
    Z = (X - det.center_) / det.scale_
    gm = det.model_
    ref = go.score_samples(Z, gm.weights_, gm.means_, gm.covariances_, covariance_type)
    jacobian = np.where(np.isnan(X), 0.0, np.log(det.scale_)).sum(axis=1)
    np.testing.assert_allclose(det.score_samples(X), ref - jacobian, rtol=1e-9, atol=1e-9)
    assert abs(det.predict(X).tolist().count(-1) / len(X) - det.false_alarm_rate) < 0.03
    e = det.explain(X[:200])
    np.testing.assert_array_equal(np.isnan(e.contributions), np.isnan(X[:200]))


def test_detector_partial_fit_save_and_load_with_gaps(tmp_path):
    X = sensor_rows(3000, 31)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(X[:1500])
    det.partial_fit(X[1500:])
    assert det.n_steps_ == 1 and np.isfinite(det.model_.means_).all()
    det.save(tmp_path / "gaps.mxt")
    back = mixtura.load(tmp_path / "gaps.mxt")
    np.testing.assert_array_equal(back.score_samples(X), det.score_samples(X))


def test_detector_method_kmeans_refuses_gaps():
    X = sensor_rows()
    first = np.argwhere(np.isnan(X))[0]
    message = rf"non-finite value \(nan\) at row {first[0]}, column {first[1]}.*method gmm"
    with pytest.raises(ValueError, match=message):
        mixtura.DensityAnomalyDetector("kmeans").fit(X)
    det = mixtura.DensityAnomalyDetector("kmeans", random_state=0).fit(X[~np.isnan(X).any(axis=1)])
    with pytest.raises(ValueError, match=message):
        det.score_samples(X)


@pytest.mark.parametrize("estimator", [mixtura.KMeans(2, n_init=1, random_state=0),
                                       mixtura.MiniBatchKMeans(2, random_state=0, batch_size=64)])
def test_kmeans_refuses_gaps_and_points_to_the_mixture(estimator):
    X = sensor_rows()
    X[np.isnan(X)] = 0.0
    estimator.fit(X)
    X[5, 1] = np.nan
    message = r"X contains NaN \(a missing value\) at row 5, column 1; K-means needs complete rows: GaussianMixture"
    for call in (estimator.fit, estimator.predict, estimator.transform):
        with pytest.raises(ValueError, match=message):
            call(X)
    if hasattr(estimator, "partial_fit"):
        with pytest.raises(ValueError, match=message):
            estimator.partial_fit(X)
