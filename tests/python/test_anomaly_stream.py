"""DensityAnomalyDetector.partial_fit and StreamScorer(adapt=True): the detector follows a drifting
stream, anomalies do not teach it, and its streaming state survives saving."""
import pickle

import numpy as np
import pytest

import mixtura


def _normal(rng, n, level=0.0):
    z = rng.normal(size=(n, 3))
    return np.column_stack([z[:, 0], 0.5 * z[:, 0] + z[:, 1], z[:, 2]]) + level


def _realised_false_alarms(det, chunks, adapt):
    flagged = []
    for c in chunks:
        flagged.append(det.decision_function(c) < 0)
        if adapt:
            det.partial_fit(c)
    return float(np.concatenate(flagged).mean())


def test_partial_fit_follows_a_level_shift_that_the_batch_detector_flags():
    rng = np.random.default_rng(0)
    train = _normal(rng, 3000)
    # The stream's level creeps away from the training data: 0.05 per chunk of 200 rows.
    chunks = [_normal(rng, 200, level=0.05 * i) for i in range(60)]
    batch = mixtura.DensityAnomalyDetector(random_state=0).fit(train)
    adapt = mixtura.DensityAnomalyDetector(random_state=0, half_life=2000).fit(train)
    fa_batch = _realised_false_alarms(batch, chunks, adapt=False)
    fa_adapt = _realised_false_alarms(adapt, chunks, adapt=True)
    assert fa_batch > 0.3  # every row is normal: the batch detector's alarms are all false
    assert fa_adapt < 0.05, fa_adapt
    assert adapt.n_steps_ == 60 and adapt.model_.n_steps_ == 61
    # The density moved with the stream, lagging as an exponential filter lags a ramp: by the slope
    # (0.05 per 200 rows) times the time constant half_life / ln 2.
    mean = (adapt.model_.weights_ @ adapt.model_.means_) * adapt.scale_ + adapt.center_
    lag = 0.05 * 59 - mean
    np.testing.assert_allclose(lag, 0.05 / 200 * 2000 / np.log(2), atol=0.1)


def test_flagged_rows_do_not_teach_the_density():
    rng = np.random.default_rng(1)
    det = mixtura.DensityAnomalyDetector(random_state=0, half_life=1000).fit(_normal(rng, 2000))
    means = det.model_.means_.copy()
    offset = det.offset_
    det.partial_fit(_normal(rng, 100, level=50.0))  # every row far out: all flagged
    np.testing.assert_array_equal(det.model_.means_, means)
    assert det.offset_ <= offset  # the threshold can only come down by the calibrated gap, not be learned
    assert det.offset_ >= offset - (det.score_median_ - det.offset_) - 1e-9


def test_the_first_call_fits_and_kmeans_is_refused():
    rng = np.random.default_rng(2)
    X = _normal(rng, 500)
    det = mixtura.DensityAnomalyDetector(random_state=0).partial_fit(X)
    assert det.n_steps_ == 1 and np.isfinite(det.score_median_)
    assert det.score_median_ > det.offset_
    km = mixtura.DensityAnomalyDetector(method="kmeans", random_state=0).fit(X)
    assert not hasattr(km, "partial_fit")  # scikit-learn's available_if: the method exists for "gmm" only
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as info:
        km.partial_fit(X)
    assert "method='kmeans' is fitted in one batch" in str(info.value.__cause__)
    with pytest.raises(ValueError, match=r"half_life must be None or a number in \(0, inf\), got -5"):
        mixtura.DensityAnomalyDetector(half_life=-5).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but DensityAnomalyDetector is expecting 3"):
        det.partial_fit(X[:, :2])


def test_a_saved_streaming_detector_resumes_where_it_stopped(tmp_path):
    rng = np.random.default_rng(3)
    det = mixtura.DensityAnomalyDetector(random_state=0, half_life=800).fit(_normal(rng, 1500))
    chunks = [_normal(rng, 150, level=0.1 * i) for i in range(8)]
    for c in chunks[:5]:
        det.partial_fit(c)
    det.save(tmp_path / "det.mxt")
    copies = [mixtura.load(tmp_path / "det.mxt"), pickle.loads(pickle.dumps(det))]
    for c in chunks[5:]:
        for d in [det] + copies:
            d.partial_fit(c)
    probe = _normal(rng, 50)
    for d in copies:
        assert d.n_steps_ == det.n_steps_ == 8
        assert d.offset_ == det.offset_ and d.score_median_ == det.score_median_
        np.testing.assert_array_equal(d.stream_recent_scores_, det.stream_recent_scores_)
        np.testing.assert_array_equal(d.score_samples(probe), det.score_samples(probe))


def test_stream_scorer_adapts_its_detector_chunk_by_chunk():
    rng = np.random.default_rng(4)
    series = np.cumsum(rng.normal(size=3000)) * 0.01 + rng.normal(size=3000)
    det = mixtura.DensityAnomalyDetector(random_state=0, half_life=1000).fit(
        mixtura.sliding_windows(series[:1000], width=8))
    twin = pickle.loads(pickle.dumps(det))
    scorer = mixtura.StreamScorer(det, width=8, adapt=True)
    got = np.concatenate([scorer.score_chunk(c) for c in np.array_split(series[1000:], 7)])
    assert det.n_steps_ == 7 and len(got) == 2000 - 7
    # The same by hand: each chunk's windows scored with the model of that moment, then learned.
    stream, want = mixtura.StreamScorer(twin, width=8), []
    for c in np.array_split(series[1000:], 7):
        n_windows = stream.n_windows_
        s = stream.score_chunk(c)
        windows = mixtura.sliding_windows(series[1000:1000 + stream.n_seen_], width=8)[n_windows:]
        want.append(twin.score_samples(windows))
        twin.partial_fit(windows)
    np.testing.assert_array_equal(got, np.concatenate(want))
    # partial_fit's own scoring and the scorer's flag the same windows: the two end in the same state.
    assert det.offset_ == twin.offset_ and det.score_median_ == twin.score_median_
    np.testing.assert_array_equal(det.stream_recent_scores_, twin.stream_recent_scores_)
    np.testing.assert_array_equal(det.density_means_, twin.density_means_)
    np.testing.assert_array_equal(det.density_precisions_cholesky_, twin.density_precisions_cholesky_)
    with pytest.raises(ValueError, match="adapt=True needs partial_fit, which _ScoreOnly lacks"):
        mixtura.StreamScorer(_ScoreOnly(), width=8, adapt=True)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stream_scorer_adapt_scores_each_window_once(monkeypatch, dtype):
    # The detector's step takes the scores the scorer computed: every window reaches the core's
    # scoring once (partial_fit on its own scores the chunk again). The scores are partial_fit's:
    # test_stream_scorer_adapts_its_detector_chunk_by_chunk.
    rng = np.random.default_rng(8)
    series = (np.cumsum(rng.normal(size=(1600, 2)), axis=0) * 0.01 + rng.normal(size=(1600, 2))).astype(dtype)
    det = mixtura.DensityAnomalyDetector(random_state=0, half_life=300).fit(
        mixtura.sliding_windows(series[:600], width=5))
    name = "detector_eval_" + np.dtype(dtype).name
    evaluate, scored = getattr(mixtura._core, name), []

    def counting(X, *args):
        scored.append(len(X))
        return evaluate(X, *args)

    monkeypatch.setattr(mixtura._core, name, counting)
    scorer = mixtura.StreamScorer(det, width=5, adapt=True)
    chunks = np.array_split(series[600:], 9)
    got = np.concatenate([scorer.score_chunk(c) for c in chunks])
    assert det.n_steps_ == len(scored) == len(chunks)
    assert sum(scored) == len(got) == scorer.n_windows_


class _ScoreOnly:
    def score_samples(self, X):
        return np.zeros(len(X))


def test_cpp_scores_a_streaming_detector_as_python_does(tmp_path):
    from test_model_files import run_tool, to_csv

    rng = np.random.default_rng(5)
    det = mixtura.DensityAnomalyDetector(random_state=0, half_life=600).fit(_normal(rng, 1200))
    for i in range(4):
        det.partial_fit(_normal(rng, 150, level=0.2 * i))
    det.save(tmp_path / "det.mxt")
    X = _normal(rng, 40)
    run_tool("score", tmp_path / "det.mxt", to_csv(tmp_path / "X.csv", X), tmp_path / "out.csv")
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", ndmin=2)
    np.testing.assert_allclose(out[:, 0], det.score_samples(X), rtol=1e-12)


def test_stream_scorer_names_the_stream_row_of_a_value_beyond_the_limit():
    rng = np.random.default_rng(6)
    series = rng.normal(size=600)
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(mixtura.sliding_windows(series[:400], width=4))
    scorer = mixtura.StreamScorer(det, width=4)
    scorer.score_chunk(series[400:450])
    bad = series[450:500].copy()
    bad[7] = 3e200
    with pytest.raises(ValueError, match=r"3e\+200, beyond \+-1e\+150 \(its square overflows double\) at row 57"):
        scorer.score_chunk(bad)
    assert scorer.n_seen_ == 50  # the stream (counted from its first chunk) is unchanged
