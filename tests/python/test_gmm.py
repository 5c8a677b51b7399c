"""mixtura.GaussianMixture from Python: scikit-learn's estimator checks, agreement with
scikit-learn's GaussianMixture from the same initial parameters, the ELBO trace, errors."""
import pickle
import re
import warnings

import numpy as np
import pytest
import sklearn.mixture
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

import mixtura
from mixtura import _core

# Every check passes, the sample-weight equivalence included: the K-means start draws rows in an
# order of their values (integer weights as repeated rows).
@parametrize_with_checks([mixtura.GaussianMixture(n_components=2, random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _init(X, cov_type, k=3):
    d = X.shape[1]
    prec = {"full": np.stack([np.eye(d) * (1 + i) for i in range(k)]), "tied": np.eye(d) * 1.5,
            "diag": np.ones((k, d)) * 0.8, "spherical": np.array([1.0, 0.5, 2.0])}[cov_type]
    return dict(weights_init=np.array([0.2, 0.5, 0.3]), means_init=X[:k] + 0.5, precisions_init=prec)


@pytest.mark.parametrize("cov_type", ["full", "tied", "diag", "spherical"])
def test_same_lower_bounds_as_scikit_learn(blobs, cov_type):
    init = _init(blobs, cov_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = mixtura.GaussianMixture(3, covariance_type=cov_type, tol=0, max_iter=20, **init).fit(blobs)
        theirs = sklearn.mixture.GaussianMixture(3, covariance_type=cov_type, tol=0, max_iter=20, **init).fit(blobs)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)
    assert ours.n_iter_ == theirs.n_iter_ and ours.converged_ == theirs.converged_
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        assert getattr(ours, name).shape == getattr(theirs, name).shape, name
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-6, atol=1e-8, err_msg=name)
    np.testing.assert_allclose(ours.score_samples(blobs), theirs.score_samples(blobs), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(blobs), theirs.predict_proba(blobs), atol=1e-9)
    np.testing.assert_allclose(ours.bic(blobs), theirs.bic(blobs), rtol=1e-9)
    np.testing.assert_allclose(ours.aic(blobs), theirs.aic(blobs), rtol=1e-9)


def test_elbo_trace_is_the_staircase(blobs):
    gm = mixtura.GaussianMixture(3, reg_covar=0.0, tol=0, max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(blobs)
    t = gm.elbo_trace_
    assert t.shape == (gm.n_iter_, 2)
    np.testing.assert_array_equal(t[:, 0], gm.lower_bounds_)
    slack = 1e-12
    assert np.all(t[:, 0] <= t[:, 1] + slack)       # the M-step raises the bound
    assert np.all(t[:-1, 1] <= t[1:, 0] + slack)    # the E-step makes it tight again
    assert gm.lower_bound_ == gm.lower_bounds_[-1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contiguous_input_reaches_cpp_without_a_copy(blobs, dtype, monkeypatch):
    seen = {}
    name = f"gmm_fit_{np.dtype(dtype).name}"
    real = getattr(_core, name)

    def spy(X, *args):
        seen["X"] = X
        return real(X, *args)

    monkeypatch.setattr(_core, name, spy)
    X = np.ascontiguousarray(blobs, dtype=dtype)
    mixtura.GaussianMixture(2, random_state=0).fit(X)
    assert seen["X"] is X


def test_degenerate_data_is_recorded_not_fatal():
    X = np.repeat(np.array([[0.0, 1.0], [2.0, 3.0], [5.0, 5.0]]), 20, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = mixtura.GaussianMixture(5, reg_covar=0.0, random_state=0).fit(X)
    assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.score_samples(X)))
    assert gm.events_ and {e["kind"] for e in gm.events_} <= {"covariance_floored", "component_reseeded"}


def test_on_degenerate_raise_is_scikit_learns_error_where_recover_goes_on():
    X = np.vstack([np.ones((5, 5)), np.zeros((5, 5))])  # scikit-learn's test_regularisation
    for cov_type in ["full", "tied", "diag", "spherical"]:
        recovered = mixtura.GaussianMixture(10, covariance_type=cov_type, reg_covar=0, random_state=0).fit(X)
        assert recovered.events_
        strict = mixtura.GaussianMixture(10, covariance_type=cov_type, reg_covar=0, on_degenerate="raise",
                                         random_state=0)
        with pytest.raises(ValueError, match=r"^GaussianMixture\.fit: Fitting the mixture model failed because some "
                                             r"components have ill-defined empirical covariance .*on_degenerate = raise"):
            strict.fit(X)
        assert not hasattr(strict, "means_")
        strict.set_params(reg_covar=1e-6).fit(X)  # positive definite with regularisation: no error
    with pytest.raises(ValueError, match=r"^GaussianMixture: on_degenerate must be .recover. or .raise., got .ignore.$"):
        mixtura.GaussianMixture(2, on_degenerate="ignore").fit(X)


def test_max_iter_zero_gives_the_start_without_a_warning(blobs):
    means_init = np.array([[20.0, 30.0, 0.0], [30.0, 25.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning: the start was asked for
        gm = mixtura.GaussianMixture(2, means_init=means_init, max_iter=0, n_init=3, random_state=0).fit(blobs)
    np.testing.assert_array_equal(gm.means_, means_init)
    assert gm.n_iter_ == 0 and not gm.converged_ and gm.lower_bounds_ == [] and gm.lower_bound_ == -np.inf
    assert len(gm.elbo_traces_) == 1  # one restart: none to rank
    again = pickle.loads(pickle.dumps(gm))
    assert again.lower_bound_ == -np.inf
    np.testing.assert_array_equal(again.score_samples(blobs), gm.score_samples(blobs))
    with pytest.raises(ValueError, match=r"GaussianMixture\.fit: max_iter must be >= 0, got -1"):
        mixtura.GaussianMixture(2, max_iter=-1).fit(blobs)


def test_warm_start_goes_on_from_the_model_and_judges_convergence_across_fits(blobs):
    one = mixtura.GaussianMixture(3, tol=1e-6, max_iter=500, random_state=1).fit(blobs)
    warm = mixtura.GaussianMixture(3, tol=1e-6, max_iter=1, warm_start=True, random_state=1)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(500):
            warm.fit(blobs)
            bounds += warm.lower_bounds_
            if warm.converged_:
                break
    assert warm.converged_
    # one EM step per fit from the previous fit's model: the single fit's trace and model, bit for bit
    assert bounds == one.lower_bounds_
    np.testing.assert_array_equal(warm.means_, one.means_)
    np.testing.assert_array_equal(warm.precisions_cholesky_, one.precisions_cholesky_)


def test_a_round_off_fall_of_the_bound_ends_the_fit_and_the_bounds_never_decrease():
    rng = np.random.RandomState(0)  # three overlapping blobs: EM creeps to its fixed point
    X = np.vstack([rng.randn(150, 2) + [0, 0], rng.randn(150, 2) + [1.5, 0], rng.randn(150, 2) + [0, 1.5]])
    falls = 0
    for cov_type in ["full", "tied", "diag", "spherical"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # full still climbs by 1e-14 an iteration
            gm = mixtura.GaussianMixture(3, covariance_type=cov_type, reg_covar=0, tol=0, max_iter=2000,
                                         random_state=0).fit(X)
        assert gm.converged_ or gm.n_iter_ == 2000, cov_type
        assert np.all(np.diff(gm.lower_bounds_) >= 0), cov_type
        fall = [e for e in gm.events_ if e["kind"] == "roundoff_decrease"]
        falls += len(fall)
        for e in fall:
            assert e["iteration"] == gm.n_iter_ and 0 < e["value"] <= 1e-12 * max(1, abs(gm.lower_bound_))
        again = pickle.loads(pickle.dumps(gm))  # the event is saved and read back
        assert again.events_ == gm.events_
    assert falls > 0


def test_float32_data_give_float32_parameters_and_outputs_from_a_kept_float64_model(blobs):
    X32 = blobs.astype(np.float32)
    gm = mixtura.GaussianMixture(3, random_state=0).fit(X32)
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        assert getattr(gm, name).dtype == np.float32, name  # as scikit-learn's
    for method in ["score_samples", "predict_proba", "component_log_density"]:
        assert getattr(gm, method)(X32).dtype == np.float32, method
        assert getattr(gm, method)(blobs).dtype == np.float64, method  # float64 X: float64 out, as scikit-learn
    assert gm.sample(5)[0].dtype == np.float64 and isinstance(gm.score(X32), float)  # as scikit-learn's
    # the computations use the float64 model the fit left, whose rounding the attributes are
    f64 = mixtura.GaussianMixture(3, max_iter=0, warm_start=True)
    f64.fit(blobs[:3])  # any fitted float64 model, then the float32 fit's float64 parameters put in
    for name in gm._PARAMETERS:
        setattr(f64, name + "_", gm._exact.get(name + "_", getattr(gm, name + "_").astype(np.float64)))
    np.testing.assert_array_equal(gm.score_samples(X32), f64.score_samples(X32).astype(np.float32))
    assert gm.score(X32) == f64.score(X32)
    again = pickle.loads(pickle.dumps(gm))  # the file holds the float64 model and the dtype
    assert again.means_.dtype == np.float32 and again.score(X32) == gm.score(X32)
    np.testing.assert_array_equal(again.means_, gm.means_)
    # an attribute changed by hand is the model from then on
    gm.means_[0] += 1
    assert gm.score(X32) != again.score(X32)
    assert pickle.loads(pickle.dumps(gm)).score(X32) == gm.score(X32)  # and what a file holds


def test_sampling_is_reproducible(blobs):
    gm = mixtura.GaussianMixture(3, random_state=4).fit(blobs)
    a, la = gm.sample(500)
    b, lb = gm.sample(500)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (500, 3) and la.shape == (500,)


@pytest.mark.parametrize("covariance_type, precisions", [("full", (2, 3, 3)), ("tied", (3, 3)), ("diag", (2, 3)),
                                                          ("spherical", (2,))])
def test_starting_parameters_of_another_shape_are_refused_in_scikit_learns_words(blobs, covariance_type, precisions):
    # The shapes scikit-learn wants, as its messages say (the C++ fit sees flat arrays: a (2, 1) weights_init
    # summing to 1 used to pass).
    def fit(**kw):
        return mixtura.GaussianMixture(2, covariance_type=covariance_type, **kw).fit(blobs)
    with pytest.raises(ValueError, match=re.escape("GaussianMixture.fit: weights_init: The parameter 'weights' should "
                                                   "have the shape of (2,), but got (2, 1)")):
        fit(weights_init=[[0.5], [0.5]])
    with pytest.raises(ValueError, match=re.escape("means_init: The parameter 'means' should have the shape of (2, 3), "
                                                   "but got (3, 3)")):
        fit(means_init=np.zeros((3, 3)))
    wrong = precisions[:-1] + (precisions[-1] + 1,)
    with pytest.raises(ValueError, match=re.escape(f"precisions_init: The parameter '{covariance_type} precision' "
                                                   f"should have the shape of {precisions}, but got {wrong}")):
        fit(precisions_init=np.ones(wrong))
    valid = np.ones(precisions) if covariance_type in ("diag", "spherical") else np.broadcast_to(np.eye(3), precisions)
    fit(weights_init=[0.5, 0.5], means_init=np.zeros((2, 3)), precisions_init=valid)


def test_bad_input_raises_value_error_with_the_cpp_message(blobs):
    with pytest.raises(ValueError, match=r"GaussianMixture\.fit: reg_covar must be finite and >= 0, got -1"):
        mixtura.GaussianMixture(2, reg_covar=-1.0).fit(blobs)
    with pytest.raises(ValueError, match="covariance_type must be 'full', 'tied', 'diag' or 'spherical'"):
        mixtura.GaussianMixture(2, covariance_type="banana").fit(blobs)
    with pytest.raises(ValueError, match=r"weights_init sums to 0.5, expected 1"):
        mixtura.GaussianMixture(2, weights_init=[0.2, 0.3]).fit(blobs)
    with pytest.raises(ValueError, match=r"precisions_init\[1\]: 'full precision' should be symmetric, "
                                         r"positive-definite \(it is not positive-definite\)"):
        mixtura.GaussianMixture(2, precisions_init=np.stack([np.eye(3), -np.eye(3)])).fit(blobs)
    with pytest.raises(ValueError, match=r"precisions_init\[0\]: 'tied precision' should be symmetric, "
                                         r"positive-definite \(it is not symmetric\)"):
        mixtura.GaussianMixture(2, covariance_type="tied", precisions_init=np.triu(np.ones((3, 3)))).fit(blobs)
    with pytest.raises(ValueError, match=r"precisions_init: 'diag precision' should be positive"):
        mixtura.GaussianMixture(2, covariance_type="diag", precisions_init=-np.ones((2, 3))).fit(blobs)
    with pytest.raises(NotFittedError):
        mixtura.GaussianMixture(2).score_samples(blobs)
    gm = mixtura.GaussianMixture(2, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="X has 2 features"):
        gm.predict(blobs[:, :2])


def test_values_whose_squares_overflow_are_refused_not_turned_into_nan(blobs):
    """Issue 21, finding 4: X * 1e155 gave NaN means, KMeans an inf inertia, the detector NaN scores
    that predict called normal. Every estimator now names the cell; the limit is 1e150."""
    big = blobs * 1e155
    for est in (mixtura.GaussianMixture(2), mixtura.KMeans(2), mixtura.DensityAnomalyDetector()):
        with pytest.raises(ValueError, match=r"X holds .* at row 0, column 0: values must be within \+-1e\+150"):
            est.fit(big)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(blobs)
    row = np.array([[1e155, 0.0, 0.0]])
    with pytest.raises(ValueError, match="rescale the data"):
        det.predict(row)
    spike = blobs.copy()
    spike[5, 2] = 1e308  # one cell: offset_ was NaN
    with pytest.raises(ValueError, match="at row 5, column 2"):
        mixtura.DensityAnomalyDetector(random_state=0).fit(spike)
    # Within the limit, a far-away row scores -inf or a finite number, never NaN.
    gm = mixtura.GaussianMixture(2, random_state=0).fit(blobs)
    assert not np.isnan(gm.score_samples(np.array([[1e150, -1e150, 1e150]]))).any()


def test_float32_weights_init_sum_to_one_within_their_rounding_as_in_scikit_learn():
    # 0.3 + 0.3 + 0.4 in float32 is 1 + 3e-8 in float64: scikit-learn accepts float32 weights within 1e-6.
    X = np.random.default_rng(0).normal(size=(300, 2))
    w32 = np.array([0.3, 0.3, 0.4], dtype=np.float32)
    kw = dict(n_components=3, random_state=0)
    sklearn.mixture.GaussianMixture(weights_init=w32, **kw).fit(X)
    ours = mixtura.GaussianMixture(weights_init=w32, **kw).fit(X)
    # The weights are divided by their sum: the fit from the float64 weights that sum to 1.
    w64 = w32.astype(np.float64)
    exact = mixtura.GaussianMixture(weights_init=w64 / w64.sum(), **kw).fit(X)
    np.testing.assert_array_equal(ours.means_, exact.means_)
    # float64 weights keep scikit-learn's 1e-8, and float32 ones off by more than 1e-6 are refused.
    for w in (w64, np.array([0.3, 0.3, 0.40001], dtype=np.float32)):
        for est in (mixtura.GaussianMixture(weights_init=w, **kw), sklearn.mixture.GaussianMixture(weights_init=w, **kw)):
            with pytest.raises(ValueError):
                est.fit(X)
