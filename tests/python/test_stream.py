"""Sliding-window features and chunked stream scoring (mixtura._stream)."""
import math

import numpy as np
import pytest

import mixtura
from mixtura import StreamScorer, sliding_windows, window_end_index
from mixtura._stream import n_windows, window_channel_index


def brute_windows(X, width, step, differences):
    """The documented feature order, written out with loops."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    rows = []
    for s in range(0, len(X) - width + 1, step):
        w = X[s:s + width]
        f = [w[t, c] for t in range(width) for c in range(X.shape[1])]
        if differences:
            f += [w[t + 1, c] - w[t, c] for t in range(width - 1) for c in range(X.shape[1])]
        rows.append(f)
    n_features = (2 * width - 1 if differences else width) * X.shape[1]
    return np.array(rows, dtype=np.float64).reshape(-1, n_features)


class RecordingScorer:
    """Scores each row on its own (math.fsum of distinct weights: exact, independent of the other rows)
    and keeps every block of rows it was given, so the test sees the windows themselves."""

    def __init__(self, n_features, seed=0):
        self.w = np.random.default_rng(seed).standard_normal(n_features)
        self.seen = []

    def score_samples(self, X):
        self.seen.append(np.array(X))
        return np.array([math.fsum(row * self.w) for row in X])


@pytest.mark.parametrize("shape", [(50,), (50, 1), (50, 3)])
@pytest.mark.parametrize("width,step", [(1, 1), (4, 1), (4, 3), (5, 5), (5, 7), (50, 1), (51, 1)])
@pytest.mark.parametrize("differences", [False, True])
def test_windows_match_the_documented_order(shape, width, step, differences):
    X = np.random.default_rng(1).standard_normal(shape)
    got = sliding_windows(X, width, step, differences)
    want = brute_windows(X, width, step, differences)
    np.testing.assert_array_equal(got, want)
    n_channels = 1 if len(shape) == 1 else shape[1]
    assert got.shape == (n_windows(50, width, step), (2 * width - 1 if differences else width) * n_channels)
    # the last row of window i is X[window_end_index[i]]
    ends = window_end_index(50, width, step)
    assert len(ends) == len(got)
    if len(got):
        np.testing.assert_array_equal(got[:, (width - 1) * n_channels:width * n_channels], X.reshape(50, -1)[ends])
    assert len(window_channel_index(n_channels, width, differences)) == got.shape[1]


def test_window_end_index_values():
    np.testing.assert_array_equal(window_end_index(10, 3, 1), np.arange(2, 10))
    np.testing.assert_array_equal(window_end_index(10, 3, 4), [2, 6])
    assert len(window_end_index(2, 3)) == 0


def test_channel_index_follows_the_features():
    # 2 channels, width 3, differences: 3 time steps then 2 difference steps, channels alternating
    np.testing.assert_array_equal(window_channel_index(2, 3, True), [0, 1] * 5)


def test_dtypes():
    X = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert sliding_windows(X, 3).dtype == np.float32
    assert sliding_windows(X.astype(np.int64), 3).dtype == np.float64
    assert sliding_windows(X, 3).flags.c_contiguous


@pytest.mark.parametrize("bad,where", [(np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_rows_are_rejected_by_row(bad, where):
    X = np.zeros((30, 2))
    X[3, 0] = np.nan  # a missing value before it is no error
    X[17, 1] = bad
    with pytest.raises(ValueError, match=rf"^sliding_windows: X contains a non-finite value \({where}\) at row 17, "
                                         r"column 1; fill or drop the row before windowing$"):
        sliding_windows(X, 4)
    with pytest.raises(ValueError, match=rf"non-finite value \({where}\) at row 17, column 1"):
        sliding_windows(X.astype(np.float32), 4)
    X[17, 1] = -2e150
    with pytest.raises(ValueError, match=r"X contains -2e\+150, beyond \+-1e\+150 \(its square overflows double\) at "
                                         r"row 17, column 1"):
        sliding_windows(X, 4)


@pytest.mark.parametrize("kwargs,msg", [({"width": 0}, "width"), ({"width": 2.5}, "width"), ({"width": 3, "step": 0},
                                        "step")])
def test_bad_width_or_step(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        sliding_windows(np.zeros(10), **kwargs)
    with pytest.raises(ValueError, match=msg):
        StreamScorer(RecordingScorer(1), **kwargs)


def test_three_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        sliding_windows(np.zeros((4, 3, 2)), 2)


def random_chunks(rng, n, width):
    """Chunk sizes 0, 1, shorter than the window and longer, covering n rows."""
    sizes, total = [], 0
    while total < n:
        size = int(rng.choice([0, 1, 1, 2, max(1, width - 1), width, width + 1, int(rng.integers(1, 4 * width + 2))]))
        size = min(size, n - total)
        sizes.append(size)
        total += size
    return sizes


@pytest.mark.parametrize("n_channels", [0, 1, 3])  # 0: a 1-D series
@pytest.mark.parametrize("width,step", [(1, 1), (6, 1), (6, 2), (6, 6), (4, 9)])
@pytest.mark.parametrize("differences", [False, True])
def test_chunked_windows_equal_the_whole(n_channels, width, step, differences):
    rng = np.random.default_rng(width * 100 + step * 10 + n_channels)
    X = rng.standard_normal((400,) if n_channels == 0 else (400, n_channels)).cumsum(axis=0)
    whole_windows = sliding_windows(X, width, step, differences)
    oracle = RecordingScorer(whole_windows.shape[1])
    whole = oracle.score_samples(whole_windows)
    for trial in range(5):
        est = RecordingScorer(whole_windows.shape[1])
        scorer = StreamScorer(est, width, step, differences)
        sizes, pos, parts = random_chunks(rng, len(X), width), 0, []
        for size in sizes:
            parts.append(scorer.score_chunk(X[pos:pos + size]))
            pos += size
        np.testing.assert_array_equal(np.concatenate(parts), whole)
        # the windows handed to the estimator are exactly the whole series' windows
        np.testing.assert_array_equal(np.concatenate([w for w in est.seen]), whole_windows)
        assert scorer.n_seen_ == len(X) and scorer.n_windows_ == len(whole)


def test_single_row_chunks_and_reset():
    X = np.random.default_rng(3).standard_normal((60, 2))
    est = RecordingScorer(5 * 2)
    scorer = StreamScorer(est, 5)
    one_by_one = np.concatenate([scorer.score_chunk(X[i:i + 1]) for i in range(len(X))])
    # a 2-D chunk of one row and a 1-D chunk are different things: (1, 2) is one row of 2 channels
    whole = est.score_samples(sliding_windows(X, 5))
    np.testing.assert_array_equal(one_by_one, whole)
    # the first width - 1 rows complete no window
    scorer.reset()
    for i in range(4):
        assert scorer.score_chunk(X[i:i + 1]).shape == (0,)
    assert scorer.score_chunk(X[4:5]).shape == (1,)
    np.testing.assert_array_equal(scorer.reset().score_chunk(X), whole)


def test_empty_chunk():
    scorer = StreamScorer(RecordingScorer(3), 3)
    out = scorer.score_chunk(np.empty((0, 1)))
    assert out.shape == (0,) and out.dtype == np.float64


def test_non_finite_chunk_names_the_stream_row_and_keeps_the_stream():
    X = np.random.default_rng(4).standard_normal((100, 2))
    est = RecordingScorer(4 * 2)
    scorer = StreamScorer(est, 4)
    a = scorer.score_chunk(X[:30])
    bad = X[30:50].copy()
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"^StreamScorer.score_chunk: the stream contains a non-finite value \(inf\) "
                                         r"at row 37, column 0; fill or drop the row before windowing$"):
        scorer.score_chunk(bad)
    assert scorer.n_seen_ == 30
    b = scorer.score_chunk(X[30:])
    np.testing.assert_array_equal(np.concatenate([a, b]), est.score_samples(sliding_windows(X, 4)))


def test_channel_count_must_not_change():
    scorer = StreamScorer(RecordingScorer(6), 3)
    scorer.score_chunk(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="3 channels, the stream has 2"):
        scorer.score_chunk(np.zeros((2, 3)))


def test_estimator_without_score_samples():
    with pytest.raises(ValueError, match="no score_samples"):
        StreamScorer(object(), 3)


@pytest.fixture(scope="module")
def sensor_gmm():
    X = np.random.default_rng(5).standard_normal((1500, 2)).cumsum(axis=0) * 0.1
    W = sliding_windows(X, 8, 1, True)
    return X, mixtura.GaussianMixture(n_components=3, random_state=0).fit(W[:600])


def test_stream_scores_of_a_mixtura_gmm_agree_to_round_off(sensor_gmm):
    X, gm = sensor_gmm
    whole = gm.score_samples(sliding_windows(X, 8, 1, True))
    scorer = StreamScorer(gm, 8, 1, True)
    rng = np.random.default_rng(6)
    got, pos = [], 0
    for size in random_chunks(rng, len(X), 8):
        got.append(scorer.score_chunk(X[pos:pos + size]))
        pos += size
    np.testing.assert_allclose(np.concatenate(got), whole, rtol=1e-13, atol=1e-12)


@pytest.mark.parametrize("which", ["gmm", "detector"])
def test_stream_scores_of_a_mixtura_gmm_are_exact(sensor_gmm, which):
    # mixtura scores a row identically wherever its index has the same remainder modulo the scoring
    # block; the scorer puts every window at its index in the whole (1493 windows: several blocks).
    X, gm = sensor_gmm
    if which == "detector":
        gm = mixtura.DensityAnomalyDetector(random_state=0).fit(sliding_windows(X, 8, 1, True)[:600])
    whole = gm.score_samples(sliding_windows(X, 8, 1, True))
    scorer = StreamScorer(gm, 8, 1, True)
    rng = np.random.default_rng(7)
    for trial in range(3):
        scorer.reset()
        got, pos = [], 0
        for size in random_chunks(rng, len(X), 8):
            got.append(scorer.score_chunk(X[pos:pos + size]))
            pos += size
        np.testing.assert_array_equal(np.concatenate(got), whole)


# ------------------------------------------------------------------------------------------------ gaps

def with_gaps(X, rng, share=0.1, hole=None):
    """X with a share of its readings missing (NaN) and, with hole=(start, stop), every reading of those
    rows missing."""
    X = np.array(X, dtype=np.float64)
    X[rng.random(X.shape) < share] = np.nan
    if hole is not None:
        X[hole[0]:hole[1]] = np.nan
    return X


class GapScorer(RecordingScorer):
    """RecordingScorer over the observed features (exact: math.fsum), refusing a row with none, as
    mixtura's estimators do."""

    def score_samples(self, X):
        X = np.array(X)
        observed = ~np.isnan(X)
        if not observed.any(axis=1).all():
            raise ValueError(f"row {int(np.argmin(observed.any(axis=1)))} has no observed value")
        self.seen.append(X)
        return np.array([math.fsum(row[o] * self.w[o]) for row, o in zip(X, observed)])


@pytest.mark.parametrize("shape", [(60,), (60, 3)])
@pytest.mark.parametrize("width,step", [(1, 1), (4, 1), (5, 3)])
@pytest.mark.parametrize("differences", [False, True])
def test_windows_with_gaps_follow_the_readings(shape, width, step, differences):
    # a missing reading is a NaN feature, a difference with a missing end is NaN, the rest as without gaps
    rng = np.random.default_rng(11)
    X = with_gaps(rng.standard_normal(shape), rng, 0.2)
    got = sliding_windows(X, width, step, differences)
    np.testing.assert_array_equal(got, brute_windows(X, width, step, differences))  # NaN where the loops give NaN
    complete = sliding_windows(np.nan_to_num(X, nan=7.0), width, step, differences)
    observed = ~np.isnan(got)
    np.testing.assert_array_equal(got[observed], complete[observed])
    n_channels = 1 if len(shape) == 1 else shape[1]
    Xc = X.reshape(len(X), -1)
    for i, s in enumerate(range(0, len(X) - width + 1, step)):
        np.testing.assert_array_equal(np.isnan(got[i, :width * n_channels]), np.isnan(Xc[s:s + width]).ravel())
        if differences:
            both = ~np.isnan(Xc[s:s + width - 1]) & ~np.isnan(Xc[s + 1:s + width])
            np.testing.assert_array_equal(~np.isnan(got[i, width * n_channels:]), both.ravel())


def test_a_window_with_no_observed_reading_is_a_row_of_nan():
    X = np.arange(20.0).reshape(10, 2)
    X[3:6] = np.nan
    W = sliding_windows(X, 3, 1, True)
    assert np.isnan(W[3]).all() and not np.isnan(W[[2, 4]]).all(axis=1).any()
    assert len(W) == 8  # window i is still the i-th: it ends at window_end_index(10, 3)[i]


@pytest.mark.parametrize("n_channels", [0, 1, 3])  # 0: a 1-D series
@pytest.mark.parametrize("width,step", [(1, 1), (6, 1), (6, 2), (4, 9)])
@pytest.mark.parametrize("differences", [False, True])
def test_chunked_scores_with_gaps_equal_the_whole(n_channels, width, step, differences):
    rng = np.random.default_rng(width * 100 + step * 10 + n_channels + 1)
    shape = (400,) if n_channels == 0 else (400, n_channels)
    X = with_gaps(rng.standard_normal(shape).cumsum(axis=0), rng, 0.15, hole=(100, 100 + width + 2 * step))
    W = sliding_windows(X, width, step, differences)
    empty = np.isnan(W).all(axis=1)
    assert empty.any() and not empty.all()
    oracle = GapScorer(W.shape[1])
    whole = np.full(len(W), np.nan)  # a window with no observed value: NaN, never scored
    whole[~empty] = oracle.score_samples(W[~empty])
    at_once = StreamScorer(GapScorer(W.shape[1]), width, step, differences).score_chunk(X)
    np.testing.assert_array_equal(at_once, whole)
    for trial in range(4):
        est = GapScorer(W.shape[1])
        scorer = StreamScorer(est, width, step, differences)
        sizes, pos, parts = random_chunks(rng, len(X), width), 0, []
        for size in sizes:
            parts.append(scorer.score_chunk(X[pos:pos + size]))
            pos += size
        np.testing.assert_array_equal(np.concatenate(parts), whole)
        # the estimator saw every window with an observed value, as it is, and no other window but zeros
        seen = np.concatenate(est.seen)
        placeholder = (seen == 0).all(axis=1)
        np.testing.assert_array_equal(seen[~placeholder], W[~empty])
        assert placeholder.sum() == empty.sum()
        assert scorer.n_seen_ == len(X) and scorer.n_windows_ == len(W)


def test_a_chunk_of_empty_windows_only():
    scorer = StreamScorer(GapScorer(2 * 2), 2)
    X = np.ones((6, 2))
    X[1:4] = np.nan
    out = [scorer.score_chunk(X[:3]), scorer.score_chunk(X[3:4]), scorer.score_chunk(X[4:])]
    assert [len(o) for o in out] == [2, 1, 2]
    assert np.isnan(out[0][1]) and np.isnan(out[1]).all() and not np.isnan(out[2]).any()


class Learner(GapScorer):
    """Records what partial_fit is given."""

    def __init__(self, n_features):
        super().__init__(n_features)
        self.learned = []

    def partial_fit(self, X):
        assert (~np.isnan(X)).any(axis=1).all()
        self.learned.append(np.array(X))
        return self


def test_adapt_never_learns_a_window_with_no_observed_value():
    rng = np.random.default_rng(12)
    X = with_gaps(rng.standard_normal((80, 2)), rng, 0.1, hole=(30, 36))
    W = sliding_windows(X, 3)
    empty = np.isnan(W).all(axis=1)
    est = Learner(W.shape[1])
    scorer = StreamScorer(est, 3, adapt=True)
    scores = np.concatenate([scorer.score_chunk(X[i:i + 17]) for i in range(0, 80, 17)])
    np.testing.assert_array_equal(np.isnan(scores), empty)
    np.testing.assert_array_equal(np.concatenate(est.learned), W[~empty])


@pytest.fixture(scope="module")
def sensor_gaps():
    """sensor_gmm's kind of series with 10 % of its readings missing and a hole of 12 rows."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((1500, 2)).cumsum(axis=0) * 0.1
    return with_gaps(X, rng, 0.1, hole=(700, 712))


@pytest.mark.parametrize("which", ["gmm", "detector"])
def test_stream_scores_with_gaps_of_a_mixtura_model_are_exact(sensor_gaps, which):
    X = sensor_gaps
    W = sliding_windows(X, 8, 1, True)
    empty = np.isnan(W).all(axis=1)
    assert empty.sum() == 5
    train = W[:600][~empty[:600]]
    model = (mixtura.GaussianMixture(n_components=3, random_state=0) if which == "gmm" else
             mixtura.DensityAnomalyDetector(random_state=0)).fit(train)
    # the whole series' scores: each window scored at its own index (the empty ones as zeros there), and NaN
    # for the windows with no observed value
    W0 = np.where(empty[:, None], 0.0, W)
    whole = np.where(empty, np.nan, model.score_samples(W0))
    assert np.isfinite(whole[~empty]).all()
    np.testing.assert_array_equal(StreamScorer(model, 8, 1, True).score_chunk(X), whole)
    # to round-off, the windows with an observed value scored on their own (at other indices)
    np.testing.assert_allclose(whole[~empty], model.score_samples(W[~empty]), rtol=1e-12, atol=1e-12)
    scorer = StreamScorer(model, 8, 1, True)
    rng = np.random.default_rng(9)
    for trial in range(3):
        scorer.reset()
        got, pos = [], 0
        for size in random_chunks(rng, len(X), 8):
            got.append(scorer.score_chunk(X[pos:pos + size]))
            pos += size
        np.testing.assert_array_equal(np.concatenate(got), whole)


def test_a_detector_adapts_on_a_stream_with_gaps(sensor_gaps):
    X = sensor_gaps
    W = sliding_windows(X, 8, 1, True)
    empty = np.isnan(W).all(axis=1)
    det = mixtura.DensityAnomalyDetector(random_state=0, half_life=200).fit(W[:600][~empty[:600]])
    scorer = StreamScorer(det, 8, 1, True, adapt=True)
    scores = np.concatenate([scorer.score_chunk(X[i:i + 100]) for i in range(0, len(X), 100)])
    np.testing.assert_array_equal(np.isnan(scores), empty)
    assert det.n_steps_ == 15 and np.isfinite(det.offset_)
