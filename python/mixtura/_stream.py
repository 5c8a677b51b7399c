"""Sliding-window features of a time series, and scoring a stream chunk by chunk.

A window of ``width`` consecutive rows of an (n_times, n_channels) series becomes one feature row:

* the readings, oldest first, channel by channel within each time step: feature ``t * n_channels + c``
  is channel ``c`` at the window's ``t``-th row (t = 0 .. width - 1);
* with ``differences=True``, then the first differences within the window: feature
  ``width * n_channels + t * n_channels + c`` is ``x[t + 1, c] - x[t, c]`` (t = 0 .. width - 2).

:func:`level_dynamics` summarises the same window in four features per channel, each block of
``n_channels`` features one kind (feature ``b * n_channels + c`` for channel ``c``):

* b = 0, **level**: the last reading, ``x[t]``;
* b = 1, **short level**: the mean of the last ``short_span(width)`` = max(2, width // 4) readings;
* b = 2, **departure**: ``x[t]`` minus the mean of the whole window (how far the signal has moved from
  where it was);
* b = 3, **change**: ``x[t] - x[t - 1]``.

The level sees where a signal is, the other three how it moves at three time scales; the mixture's full
covariance learns how they go together.

Window ``i`` covers rows ``i * step`` .. ``i * step + width - 1``; it belongs to the time of its last row
(:func:`window_end_index`), so a score never uses readings from after the time it is reported at.

Gaps (docs/missing-values.md): NaN marks a missing reading. A window's features are computed from its
readings as they are, so a missing reading is a NaN feature and a first difference is NaN when either
of its two readings is missing; the other features are those of a complete window. In
:func:`level_dynamics` a mean is over the observed readings it spans (NaN when it spans none), and the
level, departure and change are NaN when the last reading is missing (the change also when the one
before it is). A mixtura detector
or GaussianMixture then scores the window by the density of its observed features. A window with no
observed reading at all (every feature NaN) has nothing to score: :func:`sliding_windows` keeps it as
an all-NaN row (so that window ``i`` stays the ``i``-th; remove it before a fit, which refuses it), and
:class:`StreamScorer` gives it the score NaN without handing it to the estimator. Infinite readings
and values beyond +-1e150 are refused.
"""
import numbers

import numpy as np

from . import _cuda_array

__all__ = ["sliding_windows", "level_dynamics", "window_end_index", "window_channel_index", "StreamScorer"]

FEATURES = ("windows", "level-dynamics")
N_LEVEL_DYNAMICS = 4  # features per channel of level_dynamics


def _check_window(where, width, step):
    if not isinstance(width, numbers.Integral) or isinstance(width, bool) or width < 1:
        raise ValueError(f"{where}: width must be an integer >= 1, got {width!r}")
    if not isinstance(step, numbers.Integral) or isinstance(step, bool) or step < 1:
        raise ValueError(f"{where}: step must be an integer >= 1, got {step!r}")


def _as_series(where, X, name="X", dtype=None):
    """(n_times, n_channels) float array (float32 kept, everything else float64)."""
    _cuda_array.refuse_device_array(X, where, "windows are built on the CPU, from host arrays", name)
    X = np.asarray(_cuda_array.host_array(X, where, name))
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"{where}: {name} must be 1-D (n_times,) or 2-D (n_times, n_channels), got shape {X.shape}")
    if dtype is None:
        dtype = np.float32 if X.dtype == np.float32 else np.float64
    if not np.issubdtype(X.dtype, np.number) and X.dtype != bool:
        raise ValueError(f"{where}: {name} must be numeric, got dtype {X.dtype}")
    return np.ascontiguousarray(X, dtype=dtype)


DATA_VALUE_LIMIT = 1e150  # the C++ core's kDataValueLimit: squares beyond it overflow double


def _check_finite(where, X, name, row_offset=0):
    """A ValueError naming the first infinite value or value beyond DATA_VALUE_LIMIT; NaN (a missing
    reading) passes."""
    # NaN fails the comparison: it is a missing value. float32 holds nothing beyond the limit but infinity.
    bad = np.abs(X) > (DATA_VALUE_LIMIT if X.dtype == np.float64 else np.finfo(X.dtype).max)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        v = X[row, col]
        what = (f"a non-finite value ({v})" if not np.isfinite(v) else
                f"{v}, beyond +-{DATA_VALUE_LIMIT:g} (its square overflows double)")
        raise ValueError(f"{where}: {name} contains {what} at row {row + row_offset}, "
                         f"column {col}; fill or drop the row before windowing")


def n_windows(n_times, width, step=1):
    """Number of complete windows of ``width`` rows, every ``step`` rows, in ``n_times`` rows."""
    _check_window("n_windows", width, step)
    return 0 if n_times < width else (n_times - width) // step + 1


def window_end_index(n_times, width, step=1):
    """Row index of the last row of each window: ``i * step + width - 1`` for i = 0 .. n_windows - 1.

    Use it to give each window's score the time of its last reading: ``time[window_end_index(...)]``.
    """
    return np.arange(n_windows(n_times, width, step), dtype=np.intp) * step + (width - 1)


def window_channel_index(n_channels, width, differences=False, features="windows"):
    """Channel of each feature of :func:`sliding_windows` (``features="windows"``) or of
    :func:`level_dynamics` (``features="level-dynamics"``), length n_features, to fold features back to
    channels."""
    _check_window("window_channel_index", width, 1)
    _check_features("window_channel_index", features, width)
    if features == "level-dynamics":
        return np.tile(np.arange(n_channels, dtype=np.intp), N_LEVEL_DYNAMICS)
    n_time_steps = width + (width - 1 if differences else 0)
    return np.tile(np.arange(n_channels, dtype=np.intp), n_time_steps)


def _check_features(where, features, width):
    if not isinstance(features, str) or features not in FEATURES:
        raise ValueError(f"{where}: features must be one of {', '.join(map(repr, FEATURES))}, got {features!r}")
    if features == "level-dynamics" and width < 2:
        raise ValueError(f"{where}: features='level-dynamics' needs width >= 2 (a change needs two readings), "
                         f"got width = {width}")


def short_span(width):
    """Readings behind the short level of :func:`level_dynamics`: max(2, width // 4)."""
    return max(2, width // 4)


def sliding_windows(X, width, step=1, differences=False):
    """Sliding-window features of a time series.

    Parameters
    ----------
    X : array-like of shape (n_times,) or (n_times, n_channels)
        Readings in time order. float32 stays float32; other numeric types become float64.
    width : int
        Rows per window.
    step : int, default=1
        Rows between the starts of consecutive windows.
    differences : bool, default=False
        Append the first differences within each window (see the module documentation for the order).

    Returns
    -------
    ndarray of shape (n_windows, n_features)
        n_windows = (n_times - width) // step + 1 (0 when n_times < width);
        n_features = width * n_channels, plus (width - 1) * n_channels with differences.
        A missing reading (NaN) gives NaN features: its own and, with differences, the two
        differences it is part of. A window with no observed reading is a row of NaN (see the module
        documentation): ``W[~np.isnan(W).all(axis=1)]`` leaves it out before a fit.

    Raises
    ------
    ValueError
        An infinite reading or one beyond +-1e150 (the message names the row and column), or bad
        width/step.
    """
    _check_window("sliding_windows", width, step)
    X = _as_series("sliding_windows", X)
    _check_finite("sliding_windows", X, "X")
    return _windows(X, width, step, differences)


def level_dynamics(X, width, step=1):
    """Level-and-dynamics features of a time series: four per channel and window.

    For the window of ``width`` readings ending at time t, per channel: the level x[t], the mean of the
    last ``max(2, width // 4)`` readings, the departure x[t] - (mean of the window) and the change
    x[t] - x[t - 1] (the module documentation gives the order). Windows are those of
    :func:`sliding_windows` (same count, same end rows), so a score still belongs to its window's last
    row and never uses a later reading. ``mixtura detect`` fits on these by default: on the shared
    sensor data they rank anomalies better than the raw readings of the window
    (docs/anomaly-evaluation.md, "Level and dynamics").

    Parameters
    ----------
    X : array-like of shape (n_times,) or (n_times, n_channels)
        Readings in time order. float32 stays float32 (the means are summed in float64); other numeric
        types become float64.
    width : int >= 2
    step : int, default=1

    Returns
    -------
    ndarray of shape (n_windows, 4 * n_channels)
        NaN where the readings a feature needs are missing (module documentation). A window whose last
        max(2, width // 4) readings are missing in every channel has no feature observed: a row of NaN
        (as a window with no observed reading is in :func:`sliding_windows`), which a fit refuses and
        :class:`StreamScorer` does not score.

    Raises
    ------
    ValueError
        An infinite reading or one beyond +-1e150, width < 2 or a bad step.
    """
    _check_window("level_dynamics", width, step)
    _check_features("level_dynamics", "level-dynamics", width)
    X = _as_series("level_dynamics", X)
    _check_finite("level_dynamics", X, "X")
    return _level_dynamics(X, width, step)


def _nanmean_last(values, span):
    """Mean over the observed readings of the last ``span`` time steps of (count, width, channels)
    windows, summed oldest first in float64 (so that a window's mean depends only on its readings);
    NaN where none is observed."""
    total = np.zeros((values.shape[0], values.shape[2]))
    count = np.zeros_like(total)
    for j in range(values.shape[1] - span, values.shape[1]):
        v = values[:, j, :].astype(np.float64)
        seen = ~np.isnan(v)
        total += np.where(seen, v, 0.0)
        count += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _level_dynamics(X, width, step):
    n_times, n_channels = X.shape
    count = 0 if n_times < width else (n_times - width) // step + 1
    out = np.empty((count, N_LEVEL_DYNAMICS * n_channels), dtype=X.dtype)
    if count == 0:
        return out
    values = np.lib.stride_tricks.sliding_window_view(X, width, axis=0)[::step].transpose(0, 2, 1)
    last = values[:, -1, :].astype(np.float64)
    c = n_channels
    out[:, :c] = values[:, -1, :]
    out[:, c:2 * c] = _nanmean_last(values, short_span(width))
    out[:, 2 * c:3 * c] = last - _nanmean_last(values, width)
    out[:, 3 * c:] = last - values[:, -2, :].astype(np.float64)
    return out


def _features(X, width, step, differences, features):
    """The rows of sliding_windows or level_dynamics (``features``) of validated readings X."""
    if features == "level-dynamics":
        return _level_dynamics(X, width, step)
    return _windows(X, width, step, differences)


def _windows(X, width, step, differences):
    n_times, n_channels = X.shape
    count = 0 if n_times < width else (n_times - width) // step + 1
    n_features = (2 * width - 1 if differences else width) * n_channels
    if count == 0:
        return np.empty((0, n_features), dtype=X.dtype)
    # view of shape (count, n_channels, width) -> rows (count, width * n_channels), time-major
    view = np.lib.stride_tricks.sliding_window_view(X, width, axis=0)[::step]
    values = view.transpose(0, 2, 1)
    out = np.empty((count, n_features), dtype=X.dtype)
    out[:, : width * n_channels] = values.reshape(count, width * n_channels)
    if differences and width > 1:
        out[:, width * n_channels:] = (values[:, 1:, :] - values[:, :-1, :]).reshape(count, -1)
    return out


def _empty_windows(windows):
    """Whether each window has no observed feature (every one NaN)."""
    if not windows.shape[1]:
        return np.zeros(len(windows), dtype=bool)
    return np.isnan(windows).all(axis=1)


def _score_windows(score_samples, windows):
    """score_samples(windows) as float64, NaN for a window with no observed value: such a window is not
    scored (an estimator refuses a row with nothing observed); a row of zeros takes its place in the call,
    so that every other window is scored at its own index (the scores of mixtura's estimators depend on
    a row's index modulo their scoring block, never on the other rows)."""
    empty = _empty_windows(windows)
    if not empty.any():
        return np.asarray(score_samples(windows), dtype=np.float64)
    windows = windows.copy()
    windows[empty] = 0
    scores = np.array(score_samples(windows), dtype=np.float64)
    scores[empty] = np.nan
    return scores


class StreamScorer:
    """Scores a stream in chunks with exactly the result of scoring the whole series at once.

    Each call to :meth:`score_chunk` appends readings and returns ``estimator.score_samples`` of the
    windows completed by them; the rows a later window still needs are carried over. Concatenating the
    results of any chunking equals ``estimator.score_samples(sliding_windows(whole, width, step,
    differences))`` (with ``features="level-dynamics"``: of ``level_dynamics(whole, width, step)``), bit for bit: each window's features are computed from the same readings by the
    same operations, and each window is scored at the same index modulo the estimator's scoring block
    as in the whole (mixtura's estimators give a row the same score wherever its index has the same
    remainder; an estimator without ``_score_block`` must score rows independently).

    Gaps: a NaN reading is a missing value (the module documentation). A window with some observed
    reading is scored by the estimator as its features are (a mixtura estimator: by the density of the
    observed ones); a window with none gets the score NaN and is not handed to the estimator (with
    adapt, nor to partial_fit). The equality with the whole series holds with gaps too: the whole's
    scores are then ``score_chunk(whole)`` of a fresh scorer, the estimator's scores of the windows with
    an observed value and NaN for the others.

    With ``adapt=True`` the estimator follows the stream instead: after a chunk's windows are scored,
    they go to ``estimator.partial_fit`` (DensityAnomalyDetector: the density and the threshold learn
    from the windows it did not flag). Each window's score is then the one it got when it arrived, from
    the model of that moment, and no longer equals a score of the whole series by one fixed model; the
    chunk's windows are scored as a batch of their own, ``estimator.score_samples(windows)``, which are
    the scores a DensityAnomalyDetector flags on (it takes them, instead of scoring the windows again).

    Parameters
    ----------
    estimator : fitted estimator with ``score_samples``
        Fitted on ``sliding_windows(..., width, step, differences)`` features, or on
        ``level_dynamics(..., width, step)`` with ``features="level-dynamics"``.
    width, step, differences
        As in :func:`sliding_windows` (differences only with features "windows").
    adapt : bool, default=False
        Hand each chunk's windows to ``estimator.partial_fit`` after scoring them.
    features : {"windows", "level-dynamics"}, default="windows"
        Which features the estimator was fitted on: :func:`sliding_windows` or :func:`level_dynamics`.

    Attributes
    ----------
    n_seen_ : int
        Readings consumed so far (rows of the stream).
    n_windows_ : int
        Windows scored so far; window i ends at stream row ``i * step + width - 1``.
    """

    def __init__(self, estimator, width, step=1, differences=False, adapt=False, features="windows"):
        _check_window("StreamScorer", width, step)
        _check_features("StreamScorer", features, width)
        if differences and features != "windows":
            raise ValueError(f"StreamScorer: differences=True applies to features='windows', not {features!r}")
        if not hasattr(estimator, "score_samples"):
            raise ValueError(f"StreamScorer: the estimator {type(estimator).__name__} has no score_samples")
        if adapt and not hasattr(estimator, "partial_fit"):
            raise ValueError(f"StreamScorer: adapt=True needs partial_fit, which {type(estimator).__name__} lacks")
        self.estimator = estimator
        self.width = width
        self.step = step
        self.differences = differences
        self.adapt = bool(adapt)
        self.features = features
        self.reset()

    def reset(self):
        """Forget the stream: the next chunk starts a new one at row 0. Returns self."""
        self._buffer = None       # rows [_buffer_start, n_seen_) still needed by a later window
        self._buffer_start = 0
        self._next_start = 0      # stream row where the next window starts
        self._dtype = None
        self.n_seen_ = 0
        self.n_windows_ = 0
        return self

    def _score(self, windows):
        """score_samples of the new windows, each at the index it has in the whole stream modulo the
        estimator's scoring block (mixtura's estimators score a row identically wherever its index
        has the same remainder; padding rows in front put the first new window there). With adapt, as a
        batch of their own, as partial_fit scores them: adapting gives up the whole's scores anyway."""
        if not len(windows):
            return np.empty(0, dtype=np.float64)
        block = None if self.adapt else getattr(self.estimator, "_score_block", None)
        lead = self.n_windows_ % block if block else 0
        if lead:
            windows = np.concatenate([np.repeat(windows[:1], lead, axis=0), windows])
        return _score_windows(self.estimator.score_samples, windows)[lead:]

    def score_chunk(self, chunk):
        """Append readings and score the windows they complete.

        Parameters
        ----------
        chunk : array-like of shape (n_rows,) or (n_rows, n_channels)
            The next readings; a 1-D chunk is n_rows readings of a single channel. n_rows may be 0,
            or shorter than the window.

        Returns
        -------
        ndarray of shape (n_completed,)
            score_samples of the windows whose last row is in this chunk (possibly none).

        Raises
        ------
        ValueError
            An infinite reading or one beyond +-1e150 (naming its row in the stream, counted from 0
            since the last reset), or a channel count that differs from the earlier chunks. The stream
            is unchanged. A NaN reading is a missing value, not an error.
        """
        chunk = _as_series("StreamScorer.score_chunk", chunk, "chunk", self._dtype)
        if self._buffer is not None and chunk.shape[1] != self._buffer.shape[1]:
            raise ValueError(f"StreamScorer.score_chunk: chunk has {chunk.shape[1]} channels, the stream has "
                             f"{self._buffer.shape[1]}")
        _check_finite("StreamScorer.score_chunk", chunk, "the stream", row_offset=self.n_seen_)
        if self._buffer is None:
            self._dtype = chunk.dtype
            self._buffer = chunk[:0]
        rows = np.concatenate([self._buffer, chunk]) if len(self._buffer) else chunk
        total = self.n_seen_ + len(chunk)
        start = self._next_start - self._buffer_start
        windows = _features(rows[start:], self.width, self.step, self.differences, self.features)
        scores = self._score(windows)
        observed = ~_empty_windows(windows) if self.adapt else None  # nothing observed: nothing to learn
        if self.adapt and observed.any():
            learn, learn_scores = (windows, scores) if observed.all() else (windows[observed], scores[observed])
            learn_scored = getattr(self.estimator, "_partial_fit_scored", None)  # DensityAnomalyDetector
            if learn_scored is not None:
                learn_scored(learn, learn_scores)
            else:
                self.estimator.partial_fit(learn)
        # Commit only after scoring succeeded, so a failure leaves the stream as it was.
        self._next_start += len(windows) * self.step
        keep_from = min(self._next_start, total)
        self._buffer = rows[keep_from - self._buffer_start:].copy()
        self._buffer_start = keep_from
        self.n_seen_ = total
        self.n_windows_ += len(windows)
        return scores
