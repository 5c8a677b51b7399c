"""mixtura.DensityAnomalyDetector from Python: scikit-learn's estimator checks, the score against
scikit-learn's GaussianMixture, thresholds, explanations, errors."""
import numpy as np
import pytest
import sklearn.mixture
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

import mixtura
from mixtura import _core

from gpu_util import HAS_GPU
from interrupt_util import assert_ctrl_c_stops


@parametrize_with_checks([mixtura.DensityAnomalyDetector(random_state=0),
                          mixtura.DensityAnomalyDetector("kmeans", random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def sensors(n, seed):
    """Three correlated channels in very different units."""
    rng = np.random.default_rng(seed)
    a, b, c = rng.standard_normal((3, n))
    return np.column_stack([20 + a, 5000 + 1000 * (0.9 * a + 0.44 * b), 0.001 * c])


def test_one_component_score_is_scikit_learns_log_density():
    # With one component the EM fit is the sample mean and covariance (+ reg_covar); model-tail
    # fits on all rows, so scikit-learn's GaussianMixture on the same scaled rows is an oracle.
    X = sensors(2000, 0)
    det = mixtura.DensityAnomalyDetector(n_components=1, scaling="standard", threshold="model-tail",
                                         random_state=0).fit(X)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    np.testing.assert_allclose(det.center_, X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(det.scale_, X.std(axis=0), rtol=1e-9)
    ref = sklearn.mixture.GaussianMixture(1, reg_covar=1e-3).fit(Z)
    Xt = sensors(500, 1)
    Zt = (Xt - X.mean(axis=0)) / X.std(axis=0)
    expect = ref.score_samples(Zt) - np.log(X.std(axis=0)).sum()
    np.testing.assert_allclose(det.score_samples(Xt), expect, rtol=1e-9)
    np.testing.assert_allclose(det.decision_function(Xt), expect - det.offset_, rtol=1e-9, atol=1e-9)


def test_contamination_flags_that_share_of_training_rows():
    X = sensors(1000, 2)
    det = mixtura.DensityAnomalyDetector(contamination=0.05, random_state=0)
    assert (det.fit_predict(X) == -1).sum() == 50


def test_calibrated_false_alarm_rate_on_fresh_normal_rows():
    det = mixtura.DensityAnomalyDetector(false_alarm_rate=0.05, random_state=1).fit(sensors(20000, 3))
    rate = np.mean(det.predict(sensors(40000, 4)) == -1)
    assert abs(rate - 0.05) < 0.012, rate


def test_explain_blames_the_channel_that_is_off():
    X = sensors(3000, 5)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(X)
    odd = X[:3].copy()
    odd[0, 1] += 4000    # channel 1 far from what channel 0 implies
    odd[1, 0] += 4       # channel 0 off
    odd[2, 2] += 0.006
    e = det.explain(odd)
    assert e.contributions.shape == (3, 3) and e.component.shape == (3,)
    np.testing.assert_array_equal(np.abs(e.contributions).argmax(axis=1), [1, 0, 2])
    np.testing.assert_array_equal(det.predict(odd), [-1, -1, -1])


def test_explain_labels_a_dataframes_contributions_by_its_columns():
    pd = pytest.importorskip("pandas")
    X = sensors(3000, 5)
    names = ["temperature", "pressure", "flow"]
    frame = pd.DataFrame(X, columns=names, index=pd.RangeIndex(1000, 4000))
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(frame)
    odd = frame.iloc[[10, 20, 30]].copy()
    odd.iloc[0, 1] += 4000
    odd.iloc[1, 0] += 4
    odd.iloc[2, 2] += 0.006
    e = det.explain(odd)
    assert isinstance(e.contributions, pd.DataFrame) and isinstance(e.component, np.ndarray)
    assert list(e.contributions.columns) == names and list(e.contributions.index) == [1010, 1020, 1030]
    assert list(e.contributions.abs().idxmax(axis=1)) == ["pressure", "temperature", "flow"]
    # The same numbers as for the array (from a detector fitted on it), which gives an ndarray.
    plain = mixtura.DensityAnomalyDetector(random_state=0).fit(X).explain(odd.to_numpy())
    assert type(plain.contributions) is np.ndarray
    np.testing.assert_array_equal(e.contributions.to_numpy(), plain.contributions)
    np.testing.assert_array_equal(e.component, plain.component)
    # Columns under other names are refused, as scikit-learn's predict refuses them.
    with pytest.raises(ValueError, match="feature names should match"):
        det.explain(odd.rename(columns={"flow": "level"}))


def test_bic_table_and_the_fitted_mixture(blobs):
    det = mixtura.DensityAnomalyDetector(max_components=5, random_state=0).fit(blobs)
    assert det.n_components_ == 3
    np.testing.assert_array_equal(det.bic_[:, 0], [1, 2, 3, 4, 5])
    assert det.bic_[:, 1].argmin() == 2
    gm = det.model_
    assert isinstance(gm, mixtura.GaussianMixture) and gm.n_components == 3
    assert gm.elbo_trace_.shape == (gm.n_iter_, 2)
    np.testing.assert_array_equal(gm.weights_, det.density_weights_)


def test_kmeans_method_scores_by_scaled_distance(blobs):
    det = mixtura.DensityAnomalyDetector("kmeans", n_components=3, random_state=0).fit(blobs)
    assert isinstance(det.model_, mixtura.KMeans) and det.density_covariance_type_ == "spherical"
    far = blobs[:1] + 30
    assert det.predict(far)[0] == -1
    assert det.score_samples(far)[0] < det.score_samples(blobs).min()


def test_float32_stays_float32_and_agrees(blobs):
    det64 = mixtura.DensityAnomalyDetector(n_components=3, random_state=0).fit(blobs)
    det32 = mixtura.DensityAnomalyDetector(n_components=3, random_state=0).fit(blobs.astype(np.float32))
    np.testing.assert_allclose(det32.score_samples(blobs.astype(np.float32)), det64.score_samples(blobs), rtol=1e-4)


def test_grid_search_over_the_detector(blobs):
    # Unsupervised: the score is the mean log-density (higher = better fit), as for GaussianMixture.
    class Scored(mixtura.DensityAnomalyDetector):
        def score(self, X, y=None):
            return float(np.mean(self.score_samples(X)))
    gs = GridSearchCV(Scored(random_state=0), {"n_components": [1, 3]}, cv=3).fit(blobs)
    assert gs.best_params_ == {"n_components": 3}


def test_errors_name_the_problem(blobs):
    with pytest.raises(NotFittedError):
        mixtura.DensityAnomalyDetector().score_samples(blobs)
    with pytest.raises(ValueError, match="n_components must be 'bic' or an integer >= 1"):
        mixtura.DensityAnomalyDetector(n_components=0).fit(blobs)
    with pytest.raises(ValueError, match="contamination must be 'auto' or a float in"):
        mixtura.DensityAnomalyDetector(contamination=0.9).fit(blobs)
    with pytest.raises(ValueError, match="method must be 'gmm' or 'kmeans'"):
        mixtura.DensityAnomalyDetector("svm").fit(blobs)
    with pytest.raises(ValueError, match="threshold must be 'calibrate' or 'model-tail'"):
        mixtura.DensityAnomalyDetector(threshold="guess").fit(blobs)
    with pytest.raises(ValueError, match="false_alarm_rate must be in"):
        mixtura.DensityAnomalyDetector(false_alarm_rate=1.5).fit(blobs)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="features"):
        det.predict(blobs[:, :2])
    bad = blobs.copy()
    bad[7, 1] = np.inf  # (NaN is a missing value: test_gaps.py)
    with pytest.raises(ValueError, match="infinity"):
        det.score_samples(bad)
    bad[7, :] = np.nan
    with pytest.raises(ValueError, match="row 7 has no observed value"):
        det.score_samples(bad)


@pytest.mark.skipif(HAS_GPU, reason="'auto' takes the GPU here")
@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_auto_without_a_gpu_is_the_cpu(blobs, method):
    cpu = mixtura.DensityAnomalyDetector(method, random_state=0).fit(blobs)
    auto = mixtura.DensityAnomalyDetector(method, device="auto", random_state=0).fit(blobs)
    assert auto.n_components_ == cpu.n_components_ and auto.offset_ == cpu.offset_
    np.testing.assert_array_equal(auto.score_samples(blobs), cpu.score_samples(blobs))
    np.testing.assert_array_equal(auto.predict(blobs), cpu.predict(blobs))


@pytest.mark.skipif(HAS_GPU, reason="a GPU is visible here")
def test_cuda_without_a_gpu_says_what_is_missing(blobs):
    missing = "no CUDA device is visible" if _core.HAS_CUDA else "this build of mixtura has no CUDA backend"
    with pytest.raises(ValueError, match=rf"^DensityAnomalyDetector: device='cuda' was requested, but {missing}"):
        mixtura.DensityAnomalyDetector(device="cuda").fit(blobs)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(blobs).set_params(device="cuda")
    for method in ("score_samples", "decision_function", "predict"):
        with pytest.raises(ValueError, match=missing):
            getattr(det, method)(blobs)
    assert det.explain(blobs).contributions.shape == blobs.shape  # explain runs on the CPU whatever the device


def test_an_unknown_device_is_refused(blobs):
    with pytest.raises(ValueError, match=r"device must be 'cpu', 'cuda' or 'auto', got 'tpu'"):
        mixtura.DensityAnomalyDetector(device="tpu").fit(blobs)


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA backend or no CUDA device")
@pytest.mark.parametrize("dtype, rel", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("method, kw", [("gmm", {}), ("gmm", dict(threshold="model-tail")),
                                        ("gmm", dict(covariance_type="diag")), ("gmm", dict(contamination=0.05)),
                                        ("kmeans", {}), ("kmeans", dict(threshold="model-tail"))])
def test_the_gpu_follows_the_cpu(dtype, rel, method, kw):
    # The same choices; scores and offsets within the CUDA backend's tolerance (not bit for bit).
    X, Y = sensors(5000, 3).astype(dtype), sensors(1000, 4).astype(dtype)
    Y[::10, 1] += 30000
    cpu = mixtura.DensityAnomalyDetector(method, device="cpu", max_components=5, random_state=0, **kw).fit(X)
    for device in ("cuda", "auto"):
        gpu = mixtura.DensityAnomalyDetector(method, device=device, max_components=5, random_state=0, **kw).fit(X)
        assert gpu.n_components_ == cpu.n_components_
        assert gpu.density_covariance_type_ == cpu.density_covariance_type_
        np.testing.assert_array_equal(gpu.bic_[:, 0], cpu.bic_[:, 0])
        np.testing.assert_allclose(gpu.bic_[:, 1], cpu.bic_[:, 1], rtol=10 * rel)
        a, b = cpu.score_samples(Y), gpu.score_samples(Y)
        assert isinstance(b, np.ndarray) and b.shape == (len(Y),)
        scale = max(1.0, np.abs(a).max())
        assert np.abs(a - b).max() <= 10 * rel * scale
        assert abs(gpu.offset_ - cpu.offset_) <= 10 * rel * scale
        assert (gpu.predict(Y)[::10] == -1).all()


def test_ctrl_c_stops_a_long_detector_fit_promptly():
    # The BIC search fits up to 8 full-covariance mixtures by EM on 400,000 x 16 rows: many seconds at
    # any level; Ctrl-C is seen between iterations of any of them (it was only seen after the fit).
    X = np.random.default_rng(2).standard_normal((400_000, 16)).astype(np.float32)
    det = mixtura.DensityAnomalyDetector(max_components=8, max_iter=1000, tol=0.0, random_state=0)
    assert_ctrl_c_stops(lambda: det.fit(X))
    assert not hasattr(det, "offset_")  # nothing half-fitted is left behind


def _contaminated(n_fault, seed=0):
    """1000 normal rows N(0, I) and n_fault rows of a tight far cluster at (8, 8): a repeated fault in the
    training period."""
    rng = np.random.default_rng(seed)
    return np.vstack([rng.standard_normal((1000, 2)), 8 + 0.1 * rng.standard_normal((n_fault, 2))])


@pytest.mark.parametrize("trim,contamination,n_fault", [(0.05, "auto", 30), ("auto", "auto", 15), ("auto", 0.05, 30)])
def test_trimmed_fit_leaves_no_component_to_a_fault(trim, contamination, n_fault, tmp_path):
    X = _contaminated(n_fault)
    kw = dict(random_state=0, max_components=4, contamination=contamination)
    plain = mixtura.DensityAnomalyDetector(**kw).fit(X)
    assert plain.n_trimmed_ == 0
    assert plain.predict([[8.0, 8.0]])[0] == 1, "a plain fit gives the fault a component"
    det = mixtura.DensityAnomalyDetector(trim=trim, **kw).fit(X)
    assert det.predict([[8.0, 8.0]])[0] == -1
    assert np.linalg.norm(det.density_means_ * det.scale_ + det.center_, axis=1).max() < 3
    fit_rows = len(X) - (round(0.2 * len(X)) if contamination == "auto" else 0)
    share = trim if trim != "auto" else (0 if contamination == "auto" else contamination)
    if share:
        assert det.n_trimmed_ == int(share * fit_rows)
    else:
        assert det.n_trimmed_ >= 0.7 * n_fault
    det.save(tmp_path / "d.mxt")
    back = mixtura.load(tmp_path / "d.mxt")
    assert back.n_trimmed_ == det.n_trimmed_ and back.trim == trim
    np.testing.assert_array_equal(back.score_samples(X), det.score_samples(X))


def test_trim_zero_is_the_plain_fit_and_bad_trims_are_refused(blobs):
    a = mixtura.DensityAnomalyDetector(random_state=0).fit(blobs)
    b = mixtura.DensityAnomalyDetector(random_state=0, trim=0).fit(blobs)
    np.testing.assert_array_equal(a.score_samples(blobs), b.score_samples(blobs))
    assert a.offset_ == b.offset_ and a.n_trimmed_ == 0
    for bad in (0.5, -0.1, "yes", np.nan):
        with pytest.raises(ValueError, match="trim must be 'auto' or a float in"):
            mixtura.DensityAnomalyDetector(trim=bad).fit(blobs)
