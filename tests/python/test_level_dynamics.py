"""mixtura.level_dynamics: four features per channel (level, short level, departure, change) checked
against a plain loop over the windows, with gaps, dtypes, errors, and StreamScorer's chunking."""
import numpy as np
import pytest

import mixtura
from mixtura import StreamScorer, level_dynamics, sliding_windows, window_end_index
from mixtura._stream import window_channel_index


def reference(X, width, step=1):
    """One window at a time, the documented definitions, NaN-aware means in float64."""
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    n, c = X.shape
    short = max(2, width // 4)
    rows = []
    for end in window_end_index(n, width, step):
        w = X[end - width + 1:end + 1]
        f = np.full(4 * c, np.nan)
        for ch in range(c):
            col = w[:, ch]
            last = col[-1]
            obs_short, obs_all = col[-short:][~np.isnan(col[-short:])], col[~np.isnan(col)]
            f[ch] = last
            f[c + ch] = obs_short.mean() if len(obs_short) else np.nan
            f[2 * c + ch] = last - obs_all.mean() if len(obs_all) else np.nan
            f[3 * c + ch] = last - col[-2]
        rows.append(f)
    return np.array(rows).reshape(-1, 4 * c)


@pytest.mark.parametrize("shape", [(200,), (200, 3)])
@pytest.mark.parametrize("width,step", [(2, 1), (5, 1), (16, 1), (12, 5), (16, 40)])
def test_features_are_the_documented_ones(shape, width, step):
    rng = np.random.default_rng(width + step)
    X = rng.standard_normal(shape).cumsum(axis=0)
    got = level_dynamics(X, width, step)
    want = reference(X, width, step)
    assert got.shape == want.shape == (len(window_end_index(shape[0], width, step)), 4 * (shape[1:] or (1,))[0])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    # same windows as sliding_windows: the level is its last reading
    c = 1 if len(shape) == 1 else shape[1]
    np.testing.assert_array_equal(got[:, :c], sliding_windows(X, width, step)[:, -c:])


def test_gaps_follow_the_observed_readings():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 2))
    X[rng.random(X.shape) < 0.2] = np.nan
    X[40:60, 1] = np.nan  # a long dropout: windows with nothing observed in channel 1
    got = level_dynamics(X, 8)
    np.testing.assert_allclose(got, reference(X, 8), rtol=1e-13, atol=1e-13)
    assert np.isnan(got[60 - 8, 1::2]).all()  # the window ending at row 59 sees no reading of channel 1
    empty = np.full((10, 2), np.nan)
    assert np.isnan(level_dynamics(np.vstack([X[:5], empty]), 8)).all(axis=1)[-3:].all()


def test_dtypes_and_channel_index():
    X = np.arange(60, dtype=np.float32).reshape(30, 2)
    f = level_dynamics(X, 4)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f[0], np.float32([3 * 2, 3 * 2 + 1, 5, 6, 3, 3, 2, 2]))
    assert level_dynamics(np.arange(10), 3).dtype == np.float64
    np.testing.assert_array_equal(window_channel_index(2, 4, features="level-dynamics"), [0, 1] * 4)
    assert level_dynamics(np.zeros((3, 2)), 4).shape == (0, 8)


@pytest.mark.parametrize("call,msg", [
    (lambda: level_dynamics(np.zeros(10), 1), "level_dynamics: features='level-dynamics' needs width >= 2"),
    (lambda: level_dynamics(np.zeros(10), 4, step=0), "step"),
    (lambda: level_dynamics(np.array([1.0, np.inf, 2.0]), 2), "row 1"),
    (lambda: StreamScorer(mixtura.DensityAnomalyDetector(), 4, features="raw"),
     "StreamScorer: features must be one of 'windows', 'level-dynamics', got 'raw'"),
    (lambda: StreamScorer(mixtura.DensityAnomalyDetector(), 4, differences=True, features="level-dynamics"),
     "differences=True applies to features='windows'"),
])
def test_errors_name_the_problem(call, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.mark.parametrize("step", [1, 3])
def test_stream_scorer_chunks_equal_the_whole(step):
    rng = np.random.default_rng(step)
    X = rng.standard_normal((700, 2)).cumsum(axis=0)
    X[rng.random(X.shape) < 0.05] = np.nan
    F = level_dynamics(X, 12, step)
    det = mixtura.DensityAnomalyDetector(random_state=0, max_components=3, false_alarm_rate=0.05).fit(F[:600][~np.isnan(F[:600]).all(axis=1)])
    whole = StreamScorer(det, 12, step, features="level-dynamics").score_chunk(X)
    np.testing.assert_array_equal(whole, det.score_samples(F))
    scorer, parts, pos = StreamScorer(det, 12, step, features="level-dynamics"), [], 0
    for size in rng.integers(0, 40, size=200):
        parts.append(scorer.score_chunk(X[pos:pos + size]))
        pos += int(size)
        if pos >= len(X):
            break
    parts.append(scorer.score_chunk(X[pos:]))
    np.testing.assert_array_equal(np.concatenate(parts), whole)
