"""Alarms, not points: flagged windows grouped into events, and NAB-style scoring of the events.

:func:`group_events` turns a sequence of per-window flags (and scores) into events an operator reads:
a start, an end, a peak and how many windows fired. :func:`score_events` scores detections against
labelled anomaly windows the way the Numenta Anomaly Benchmark does (Lavin & Ahmad 2015): the first
detection inside a labelled window counts, earlier is better, a missed window and a detection outside
every window cost. Both work on indices into one sequence (windows or rows) and know nothing of the
detector.
"""
import math
import numbers
from collections import namedtuple

import numpy as np

__all__ = ["Event", "EventScore", "group_events", "score_events", "NAB_PROFILES"]

Event = namedtuple("Event", ["start", "end", "peak", "peak_score", "n_flagged"])
Event.__doc__ = """One alarm: flagged windows close enough together to be one disturbance.

start, end : int
    Indices of the event's first and last flagged window (inclusive).
peak : int
    Index of the flagged window with the lowest score (the first of equal lowest); ``start`` without scores.
peak_score : float
    Its score; NaN without scores.
n_flagged : int
    Flagged windows in [start, end] (the unflagged windows of merged gaps are not counted).
"""

EventScore = namedtuple("EventScore", ["raw", "normalized", "windows_detected", "windows_missed", "false_events",
                                       "mean_earliness"])
EventScore.__doc__ = """NAB-style score of detections against labelled windows (:func:`score_events`).

raw : float
    Sum of the weighted scores of the windows and of the detections outside them.
normalized : float
    100 (raw - null) / (perfect - null): 0 for a detector that flags nothing, 100 for one that detects every
    window at its first index; NaN without labelled windows.
windows_detected, windows_missed : int
    Labelled windows with at least one detection inside, and without.
false_events : int
    Detections outside every labelled window.
mean_earliness : float
    Mean over the detected windows of (first detection - window start) / (window length - 1): 0 at the
    window's start, 1 at its end (0 for a window of one index); NaN when none is detected.
"""

# NAB's application profiles (config/profiles.json): weights of a true positive, a false positive and a
# false negative.
NAB_PROFILES = {
    "standard": {"tp": 1.0, "fp": 0.11, "fn": 1.0},
    "reward_low_FP": {"tp": 1.0, "fp": 0.22, "fn": 1.0},
    "reward_low_FN": {"tp": 1.0, "fp": 0.11, "fn": 2.0},
}


def _count(where, name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _flags(where, flagged):
    """flagged as a 1-D bool array: booleans, or numbers that are all 0 or 1."""
    f = np.asarray(flagged)
    if f.ndim != 1:
        raise ValueError(f"{where}: flagged must be 1-D, got shape {f.shape}")
    if f.dtype == bool:
        return f
    if not (np.issubdtype(f.dtype, np.integer) or np.issubdtype(f.dtype, np.floating)):
        raise ValueError(f"{where}: flagged must be booleans or 0/1, got dtype {f.dtype}")
    bad = ~np.isin(f, (0, 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{where}: flagged must be booleans or 0/1, got {f[i].item()!r} at index {i}")
    return f.astype(bool)


def _runs(mask):
    """(starts, ends) of the runs of True in a 1-D bool array, ends inclusive."""
    edges = np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1


def group_events(flagged, scores=None, *, min_length=1, merge_gap=0):
    """Group flagged windows into events.

    Runs of flagged windows separated by at most ``merge_gap`` unflagged windows are one event (a
    flickering alarm is one alarm); events with fewer than ``min_length`` flagged windows are dropped.
    ``min_length`` counts flagged windows, not the span: merging two isolated flags across a gap adds no
    evidence, so it should not make them long enough to report.

    Parameters
    ----------
    flagged : array-like of shape (n,)
        Booleans, or numbers that are all 0 or 1: whether each window (or row) is flagged.
    scores : array-like of shape (n,), optional
        Scores, lower = more anomalous (``score_samples``). A window whose score is NaN (not scored) is
        never flagged, whatever ``flagged`` says. The peak is the flagged window with the lowest score.
    min_length : int >= 1, default=1
        Fewest flagged windows an event must hold.
    merge_gap : int >= 0, default=0
        Most unflagged windows between two runs that are merged into one event; 0 merges nothing.

    Returns
    -------
    list of Event
        In order of start; ``start``/``end``/``peak`` index the input sequence.

    Raises
    ------
    ValueError
        flagged not 1-D booleans or 0/1, scores of another shape, min_length < 1 or merge_gap < 0.
    """
    where = "group_events"
    min_length = _count(where, "min_length", min_length, 1)
    merge_gap = _count(where, "merge_gap", merge_gap, 0)
    flagged = _flags(where, flagged)
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != flagged.shape:
            raise ValueError(f"{where}: scores has shape {scores.shape}, flagged has shape {flagged.shape}")
        flagged = flagged & ~np.isnan(scores)
    starts, ends = _runs(flagged)
    if not len(starts):
        return []
    # a run joins the one before when the unflagged windows between them are at most merge_gap
    new = np.concatenate([[True], starts[1:] - ends[:-1] - 1 > merge_gap])
    first_run = np.flatnonzero(new)
    ev_start = starts[first_run]
    ev_end = ends[np.concatenate([first_run[1:] - 1, [len(starts) - 1]])]
    before = np.concatenate([[0], np.cumsum(flagged)])
    n_flagged = before[ev_end + 1] - before[ev_start]
    events = []
    for s, e, k in zip(ev_start.tolist(), ev_end.tolist(), n_flagged.tolist()):
        if k < min_length:
            continue
        if scores is None:
            peak, peak_score = s, math.nan
        else:
            inside = np.where(flagged[s:e + 1], scores[s:e + 1], np.inf)
            peak = s + int(np.argmin(inside))  # argmin: the first of equal lowest
            peak_score = float(scores[peak])
        events.append(Event(s, e, peak, peak_score, int(k)))
    return events


def _scaled_sigmoid(y):
    """NAB's 2 / (1 + exp(5 y)) - 1: +0.987 at y = -1, 0 at y = 0, -0.987 at y = 1; -1 from y = 3 on."""
    return -1.0 if y >= 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def _label_windows(where, label_windows, n):
    windows = []
    for w in label_windows:
        try:
            start, end = w
        except (TypeError, ValueError):
            raise ValueError(f"{where}: a label window must be a (start, end) pair, got {w!r}") from None
        for v in (start, end):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{where}: label window {w!r}: indices must be integers >= 0")
        if end < start:
            raise ValueError(f"{where}: label window {w!r} ends before it starts")
        if n is not None and end >= n:
            raise ValueError(f"{where}: label window {w!r} ends past the sequence of n={n}")
        windows.append((int(start), int(end)))
    windows.sort()
    for (_, e0), (s1, e1) in zip(windows, windows[1:]):
        if s1 <= e0:
            raise ValueError(f"{where}: label windows overlap: one ends at {e0}, the next starts at {s1}")
    return windows


def _detections(where, detections, n):
    positions = []
    for d in detections:
        p = getattr(d, "start", d)  # an Event is detected at its start: when the alarm goes off
        if isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0:
            raise ValueError(f"{where}: a detection must be an index >= 0 or an Event, got {d!r}")
        if n is not None and p >= n:
            raise ValueError(f"{where}: detection {int(p)} lies past the sequence of n={n}")
        positions.append(int(p))
    return sorted(positions)


def score_events(detections, label_windows, *, n=None, profile="standard"):
    """NAB-style score of detections (alarms) against labelled anomaly windows.

    Each detection is one index: an :class:`Event` counts at its ``start`` (when the alarm goes off), an
    integer at itself. With a labelled window [s, e] of length L = e - s + 1 and the profile's weights
    A_TP, A_FP, A_FN, and NAB's scaled sigmoid sigma(y) = 2 / (1 + exp(5 y)) - 1 (sigma(y) = -1 for
    y >= 3):

    * a window with detections scores A_TP sigma(y) / sigma(-1) for its first detection i, with
      y = -(e - i + 1) / L: exactly A_TP at the window's start, A_TP sigma(-1/L) / sigma(-1) (about 0
      for a long window) at its end. Later detections in the window count for nothing;
    * a window without one scores -A_FN;
    * a detection outside every window scores A_FP sigma(y) with y = (i - e') / max(L' - 1, 1) for the
      nearest window [s', e'] that ended before it (a little below 0 just after a window, -A_FP from 3
      window lengths on), and -A_FP when no window ended before it.

    ``raw`` is the sum; ``normalized`` = 100 (raw - null) / (perfect - null), with null = -A_FN times
    the number of windows (no detection) and perfect = A_TP times it (each window detected at its start).

    Same as NAB's scorer (nab/sweeper.py): the sigmoid, the positions in and after a window, the
    normalisation and the profiles. Different: NAB sweeps a threshold over continuous scores and counts
    every row above it as a detection (a long alarm outside the windows costs once per row; here once);
    it leaves its probationary period out and places windows by timestamps; here the caller chooses the
    sequence (the CLI: windows after the training rows) and the detections. Scores are therefore
    comparable between detectors scored here, not with NAB's published table. A window of one index is
    scored (NAB divides by L - 1 after it; here by max(L - 1, 1)).

    Parameters
    ----------
    detections : iterable of int or Event
        Detection indices, or events (detected at their start), in any order.
    label_windows : iterable of (start, end)
        Labelled anomaly windows, inclusive indices into the same sequence; they must not overlap.
    n : int, optional
        Length of the sequence: when given, every index must lie in [0, n).
    profile : {"standard", "reward_low_FP", "reward_low_FN"}, default="standard"
        NAB's weights: standard A_TP = 1, A_FP = 0.11, A_FN = 1; reward_low_FP A_FP = 0.22;
        reward_low_FN A_FN = 2.

    Returns
    -------
    EventScore
        raw, normalized, windows_detected, windows_missed, false_events, mean_earliness.

    Raises
    ------
    ValueError
        An unknown profile, a negative or non-integer index, an index at or past n, a window that ends
        before it starts, or overlapping windows.
    """
    where = "score_events"
    if profile not in NAB_PROFILES:
        raise ValueError(f"{where}: profile must be one of {', '.join(map(repr, NAB_PROFILES))}, got {profile!r}")
    if n is not None:
        n = _count(where, "n", n, 0)
    a = NAB_PROFILES[profile]
    windows = _label_windows(where, label_windows, n)
    positions = _detections(where, detections, n)
    max_tp = _scaled_sigmoid(-1.0)
    first = [None] * len(windows)
    raw, false_events, k = 0.0, 0, 0
    for i in positions:
        while k < len(windows) and windows[k][1] < i:  # windows that ended before i
            k += 1
        if k < len(windows) and windows[k][0] <= i:
            if first[k] is None:
                first[k] = i
            continue
        false_events += 1
        if k == 0:
            raw -= a["fp"]
        else:
            s, e = windows[k - 1]
            raw += a["fp"] * _scaled_sigmoid((i - e) / max(e - s, 1))
    earliness = []
    for (s, e), i in zip(windows, first):
        if i is None:
            raw -= a["fn"]
            continue
        length = e - s + 1
        raw += a["tp"] * _scaled_sigmoid(-(e - i + 1) / length) / max_tp
        earliness.append((i - s) / (length - 1) if length > 1 else 0.0)
    null, perfect = -a["fn"] * len(windows), a["tp"] * len(windows)
    normalized = 100.0 * (raw - null) / (perfect - null) if windows else math.nan
    detected = len(earliness)
    return EventScore(raw, normalized, detected, len(windows) - detected, false_events,
                      float(np.mean(earliness)) if earliness else math.nan)
