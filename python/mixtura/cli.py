"""The ``mixtura`` command line: density-based anomaly detection on sensor tables (CSV or Parquet files).

    mixtura detect [FILE] [--time-column NAME] [--train-fraction F] [--window W] [--step S]
                   [--features level-dynamics|windows] [--differences] [--method gmm|kmeans] [--components K|bic]
                   [--covariance-type T] [--false-alarm-rate R | --contamination C] [--seed S] [--gaps G]
                   [--min-event-length N] [--merge-gap N] [--adapt [--half-life N]] [--device D] [--out DIR]
                   [--no-plot] [--fail-on-anomaly] [--json]
    mixtura fit    [FILE] ...detect's options but --adapt, --no-plot, --fail-on-anomaly...
                   writes DIR/model.mxt: the detector with the window settings, columns and event options
    mixtura score  MODEL [FILE] [--time-column NAME] [--gaps G] [--min-event-length N] [--merge-gap N]
                   [--adapt [--half-life N]] [--device D] [--out DIR] [--no-plot] [--fail-on-anomaly] [--json]

FILE is a CSV file (``_csv.read_table``) or, when its name ends in .parquet, a Parquet file read through
pyarrow (``_parquet.read_parquet``; optional: without it, one line that says ``pip install pyarrow``) by
the same column rules. Without FILE the bundled NAB machine-temperature series is used (with NAB's
labelled windows).
Each window of W rows becomes its level and dynamics per channel (``level_dynamics``; ``--features
windows``: its readings, optionally with their first differences). The windows are fitted with
``DensityAnomalyDetector`` on the first F of the rows (``--method``, ``--components``, ``--covariance-type``,
``--false-alarm-rate``, ``--contamination`` and ``--seed`` are its parameters; not given, its defaults, but
random_state 0); every window is scored (log-density, higher = more normal) and flagged when ``predict``
says -1. Flagged windows are reported as events
(``group_events``): runs at most ``--merge-gap`` unflagged windows apart are one event (default: the
windows in one window's span), events of fewer than ``--min-event-length`` flagged windows are left out
of the report (default: half a window's span); each has a start, an end, a peak (lowest score) and its
top channels, in events.csv. With labels, the events are scored NAB-style (``score_events``) beside
ROC-AUC. ``--adapt`` lets the detector follow the stream (``StreamScorer(adapt=True)``,
``partial_fit``): the windows after the training rows (score: all) are scored in chunks, each window
flagged by the threshold in force before its chunk was learned. ``--device`` picks
the CPU (default), the GPU or "auto". Missing values (an empty cell, NaN or NA) follow ``--gaps``:
"marginalize" (default: a window scores by the density of its observed values), "drop" (rows with a
missing value are removed before windowing) or "error".

fit and detect write one model file, DIR/model.mxt: the detector, with the window settings, channels,
time column, --gaps mode and event options as JSON in its section "cli.settings" (an application's
namespace, which mixtura.load and the C++ loaders ignore). score reads it alone; a model.mixtura with
the model.json that older versions wrote beside it still loads.

``--json`` writes one JSON object to stdout in place of the summary (``_summary``: rows, channels, windows,
model and threshold, events, metrics, files; keys in README, "Command line"); warnings and errors stay
on stderr.

Exit status: 0 the run succeeded, anomalies or not; 1 with ``--fail-on-anomaly`` (detect, score), when
at least one event is reported (the outputs are written all the same); 2 bad usage or input: options,
a data file, model or output folder that cannot be used (one line that names the option, or the file and
line); 3 the machine: ``--device cuda`` without a CUDA build or device, a GPU failure, a write that
failed (a full disk), out of memory; 130 interrupted; 141 the reader of stdout went away (``| head``).
"""
import argparse
import copy
import importlib.util
import io
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import threading
import time
import types
import warnings

import numpy as np

from . import _core, datasets
from ._csv import DataError, read_table
from ._events import group_events, score_events
from ._parquet import is_parquet, read_parquet
from ._stream import (FEATURES, StreamScorer, _empty_windows, _features, _score_windows, n_windows,
                      window_channel_index,
                      window_end_index)

DEFAULT_WINDOW = 12          # 1 hour of the bundled 5-minute readings (best ROC-AUC of 12/24/36/48 there)
DEFAULT_FEATURES = "level-dynamics"  # docs/anomaly-evaluation.md, "Level and dynamics"
OLD_FEATURES = "windows"     # what settings without "features" (older files) were fitted on
DEFAULT_TRAIN_FRACTION = 0.15  # NAB's probationary period
DEFAULT_OUT = "mixtura-out"
SCORE_CHUNK = 4096           # windows per scoring call, for the progress bar (fit+score and detect use the same)
SETTINGS_FORMAT = "mixtura-cli-windows"
MODEL_FILE = "model.mxt"     # the detector, and the settings below in its section SETTINGS_SECTION
# The window settings, columns and event options, as JSON, in the model file's application namespace
# "cli." (docs/model-format.md: loaders ignore it, so the file stays a DensityAnomalyDetector file).
SETTINGS_SECTION = "cli.settings"
OLD_MODEL_FILES = ("model.mixtura", "model.json")  # the pair written before: still read, replaced on a fit
MAX_EVENTS_SHOWN = 15
ADAPT_CHUNK = 100            # windows per partial_fit step with --adapt (bench/anomaly_eval.py --adapt's)
TOP_CHANNELS = 3
GAPS = ("marginalize", "drop", "error")
METHODS = ("gmm", "kmeans")  # DensityAnomalyDetector's
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
DEFAULT_SEED = 0             # the CLI's runs repeat; the detector's own default (None) would not
SEED_MAX = 2**64 - 1
DEFAULT_GAPS = "marginalize"


# Exit statuses (README, "Command line"): scripts tell a finding from a failure, and a failure they can fix
# (the command or its files) from one of the machine (no GPU, a full disk, memory).
EXIT_OK = 0
EXIT_ANOMALIES = 1   # --fail-on-anomaly and at least one event reported
EXIT_USAGE = 2       # bad options or input: a file, folder or model that cannot be used (argparse's 2 too)
EXIT_RUN = 3         # the machine: no CUDA device or build, a GPU failure, a write that failed, out of memory
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, the status a shell reports for a tool killed by the signal


class RunFailure(Exception):
    """The run cannot be done on this machine though its options and input are usable (EXIT_RUN)."""


class Progress:
    """A one-line progress display on a terminal's stderr; silent when the stream is not a terminal.

    ``total=None`` shows the elapsed time (for one long call such as a fit); otherwise a bar that
    :meth:`update` advances. Redrawn from a thread, so it moves while C++ code holds the CPU.
    """

    def __init__(self, label, total=None, stream=None, enabled=None, interval=0.2):
        self.label = label
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.interval = interval
        self.done = 0
        self._stop = threading.Event()
        self._thread = None
        self._start = None
        self._drawn = False  # steps shorter than one interval leave no trace

    def __enter__(self):
        self._start = time.perf_counter()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def update(self, n=1):
        self.done += n

    def _line(self):
        elapsed = time.perf_counter() - self._start
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(30 * frac) + "." * (30 - int(30 * frac))
            return f"{self.label} [{bar}] {100 * frac:3.0f} % {elapsed:6.1f} s"
        return f"{self.label} ... {elapsed:6.1f} s"

    def _run(self):
        while not self._stop.wait(self.interval):
            self.stream.write("\r" + self._line())
            self.stream.flush()
            self._drawn = True

    def __exit__(self, exc_type, exc, tb):
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            if not self._drawn:
                return False
            if exc_type is None and self.total:
                self.done = self.total
            self.stream.write("\r" + self._line() + (" done\n" if exc_type is None else " failed\n"))
            self.stream.flush()
        return False


# ---------------------------------------------------------------------------------------------- input

class _Input:
    """The table to analyse, where it came from (`source`: for messages; `file`: the path, None for the
    bundled data), and its missing values (`gaps`: a namespace with the
    --gaps mode, the number of missing values, of values, of rows with one, of rows read, of rows
    dropped, and the time span of the rows read)."""

    def __init__(self, table, source, file=None):
        self.table = table
        self.source = source
        self.file = file  # None: the bundled data
        self.gaps = None


def _read_input(args, time_column, gaps, channels=None):
    """The table of args.file (read_table's rules with the options in args; `channels`: exactly a fitted
    model's columns) and where it came from, its missing values handled by the --gaps mode `gaps`."""
    inp = _read_table_input(args, time_column, gaps, channels)
    _apply_gaps(inp, gaps)
    return inp


def _read_table_input(args, time_column, gaps, channels):
    file = args.file
    options = dict(ignore=args.ignore_column, label_column=args.label_column, channels=channels,
                   missing="error" if gaps == "error" else "nan")
    if file is not None:
        reader = read_parquet if is_parquet(file) else read_table  # (pyarrow is imported only for Parquet)
        table = reader(file, time_column, **options)
        labels = f", labels from column '{table.label_column}'" if table.label_column else ""
        return _Input(table, f"{file}{labels}", str(file))
    path = datasets.data_path(datasets.MACHINE_TEMPERATURE)
    # NAB's file steps back 55 minutes once (kept as it is; tests/python/test_cli.py): no warning for it.
    table = read_table(path, time_column, display_name=path.name, check_time_order=False, **options)
    windows = datasets.read_windows(datasets.data_path(datasets.MACHINE_TEMPERATURE_WINDOWS))
    table.labels = datasets.window_labels(table.time, windows)
    table.label_column = "NAB anomaly windows"
    return _Input(table, f"{path.name} (bundled NAB sample, MIT licence; labels from NAB's anomaly windows)")


def _apply_gaps(inp, mode):
    """Count the table's missing values (NaN) into inp.gaps and, with mode "drop", remove the rows that
    have one (values, times, labels and line numbers alike)."""
    table = inp.table
    missing = np.isnan(table.values)
    row_has = missing.any(axis=1)
    span = (table.time[0], table.time[-1]) if table.time is not None else None
    inp.gaps = types.SimpleNamespace(mode=mode, n_missing=int(missing.sum()), n_values=missing.size,
                                     n_rows_with=int(row_has.sum()), n_rows_read=table.n_rows, n_dropped=0,
                                     span=span)
    if mode == "drop" and inp.gaps.n_rows_with:
        keep = ~row_has
        table.values = np.ascontiguousarray(table.values[keep])
        if table.time is not None:
            table.time = [t for t, k in zip(table.time, keep.tolist()) if k]
        if table.labels is not None:
            table.labels = table.labels[keep]
        table.lines = table.lines[keep]
        inp.gaps.n_dropped = inp.gaps.n_rows_with


def _check_rows(table, width, gaps=None):
    if table.n_rows < width:
        dropped = (f" left after dropping {gaps.n_dropped} with missing values (--gaps drop)"
                   if gaps is not None and gaps.n_dropped else "")
        raise DataError(f"{table.path}: {table.n_rows} data rows{dropped}, fewer than the window of {width} rows; "
                        f"use a smaller --window")


def _check_device_gaps(device, requested, inp):
    """The device to run on, given the table's missing values: the CUDA backend takes complete rows only,
    so "auto" falls back to the CPU and "cuda" is an error. Returns (device, note for the summary)."""
    if device != "cuda" or not inp.gaps.n_missing or inp.gaps.mode == "drop":
        return device, None
    if requested == "auto":
        return "cpu", "missing values: the CUDA backend takes complete rows only"
    raise DataError(f"--device cuda: {inp.table.path} has missing values (--gaps {inp.gaps.mode}), which the CUDA "
                    f"backend does not take; use --device cpu or auto, or --gaps drop")


def _check_method_gaps(method, inp):
    """A DataError when the table has missing values left (not --gaps drop) and the detector's method is
    kmeans, which takes complete windows only."""
    if method == "kmeans" and inp.gaps.n_missing and inp.gaps.mode != "drop":
        raise DataError(f"{inp.table.path}: {inp.gaps.n_missing} missing value{'s' if inp.gaps.n_missing != 1 else ''} "
                        f"(--gaps {inp.gaps.mode}), which --method kmeans does not take (complete windows only); "
                        f"use --gaps drop or --method gmm")


# -------------------------------------------------------------------------------------------- scoring

class _Windows:
    """The feature rows of the windows (sliding_windows or level_dynamics, by settings), built a slice at
    a time when indexed: all at once raw windows would take n_windows x n_features x 8 bytes (3.8 GB for
    4M rows of 10 channels in windows of 12)."""

    def __init__(self, values, settings):
        self.values = values
        self.width, self.step = settings["window"], settings["step"]
        self.differences, self.features = settings["differences"], settings["features"]
        self.n = n_windows(len(values), self.width, self.step)

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        """Windows key (a slice with step 1, or an increasing array of window indices)."""
        if isinstance(key, slice):
            start, stop, stride = key.indices(self.n)
            if stride != 1:
                raise ValueError("_Windows: slices with a step are not supported")
            rows = self.values[start * self.step:max(start, stop - 1) * self.step + self.width] if stop > start \
                else self.values[:0]
            return _features(rows, self.width, self.step, self.differences, self.features)
        index = np.asarray(key, dtype=np.intp)
        runs = np.split(index, np.flatnonzero(np.diff(index) != 1) + 1) if len(index) else []
        parts = [self[int(run[0]):int(run[-1]) + 1] for run in runs]
        return np.concatenate(parts) if parts else self[0:0]


def _score_all(detector, X, progress, stop=None):
    """score_samples and predict == -1 of every window (of X[:stop]), in chunks of SCORE_CHUNK windows. The
    flags come from the scores by predict's own rule (decision_function = score - offset_ < 0), so each
    window is scored once, not twice. A window with no observed value is not scored: its score is NaN and
    it is not flagged."""
    n = len(X) if stop is None else stop
    scores = np.empty(n, dtype=np.float64)
    for s in range(0, n, SCORE_CHUNK):
        e = min(s + SCORE_CHUNK, n)
        scores[s:e] = _score_windows(detector.score_samples, X[s:e])
        progress.update(e - s)
    return scores, scores - detector.offset_ < 0


def flagged_ranges(flagged):
    """(first, last) window indices of each run of consecutive flagged windows, in order."""
    flagged = np.asarray(flagged, dtype=bool)
    edges = np.diff(np.concatenate([[False], flagged, [False]]).astype(np.int8))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist()))


def channel_contributions(contributions, n_channels, width, differences, features=OLD_FEATURES):
    """Per-channel contribution of each window: the largest |z| over the channel's features
    (its readings and, with differences, its first differences; or its four level-dynamics features); a
    missing feature (NaN) contributes nothing, a channel with none observed in the window 0. Shape
    (n_windows, n_channels)."""
    contributions = np.nan_to_num(np.abs(np.asarray(contributions, dtype=np.float64)), nan=0.0)
    channel = window_channel_index(n_channels, width, differences, features)
    if contributions.shape[1] != len(channel):
        raise ValueError(f"explain returned {contributions.shape[1]} features, the windows have {len(channel)}")
    out = np.zeros((contributions.shape[0], n_channels))
    for c in range(n_channels):
        out[:, c] = contributions[:, channel == c].max(axis=1, initial=0.0)
    return out


def _explained(detector, X, idx, table, settings):
    """Per-channel contributions (channel_contributions of detector.explain) of the windows X[idx]."""
    if not len(idx):
        return np.zeros((0, len(table.channels)))
    explanation = detector.explain(X[idx])
    return channel_contributions(explanation.contributions, len(table.channels), settings["window"],
                                 settings["differences"], settings["features"])


def _score_adapting(detector, X, table, settings, first, half_life, progress):
    """Scores of the windows X[first:] with a copy of `detector` following the stream: StreamScorer with
    adapt=True (partial_fit, half_life set) on chunks of ADAPT_CHUNK windows. Returns the scores, the
    threshold each window is flagged by (the one in force before its chunk was learned: causal), and the
    per-channel contributions of the flagged windows (explained by the copy as it stands after their
    chunk, which learned only the chunk's unflagged windows). `detector` itself is not changed."""
    width, step = settings["window"], settings["step"]
    follower = copy.deepcopy(detector).set_params(half_life=half_life)
    stream = StreamScorer(follower, width, step, settings["differences"], adapt=True, features=settings["features"])
    n = len(X) - first
    scores, thresholds, contributions = np.empty(n), np.empty(n), []
    row = first * step
    for j in range(0, n, ADAPT_CHUNK):
        c = min(ADAPT_CHUNK, n - j)
        stop = (first + j + c - 1) * step + width  # just past the last row of the chunk's last window
        thresholds[j:j + c] = follower.offset_
        scores[j:j + c] = stream.score_chunk(X.values[row:stop])
        flagged = np.flatnonzero(scores[j:j + c] < thresholds[j:j + c])
        contributions.append(_explained(follower, X, first + j + flagged, table, settings))
        row = stop
        progress.update(c)
    return scores, thresholds, np.concatenate(contributions) if contributions else np.zeros((0, len(table.channels)))


def _event_channels(r, table):
    """The top channels of each event: the largest per-channel |z| over its flagged windows."""
    idx = np.flatnonzero(r.flagged)
    out = []
    for e in r.events:
        a, b = np.searchsorted(idx, e.start), np.searchsorted(idx, e.end, side="right")
        peak = r.contributions[a:b].max(axis=0)
        order = np.argsort(-peak, kind="stable")[:TOP_CHANNELS]
        out.append([(table.channels[c], float(peak[c])) for c in order])
    return out


def label_windows(labels):
    """(first, last) index of each run of consecutive labelled (1) windows: the anomaly windows events are
    scored against."""
    return flagged_ranges(np.asarray(labels) == 1)


def _analyse(detector, table, settings, train_rows, stream, events, adapt=None):
    """Scores, flags, thresholds, events with their top channels, and the label metrics of one table.
    events: (min_length, merge_gap); adapt: None, or (first adapted window, half_life)."""
    width, step = settings["window"], settings["step"]
    X = _Windows(table.values, settings)
    r = types.SimpleNamespace()
    r.ends = window_end_index(table.n_rows, width, step)
    first = len(X) if adapt is None else min(adapt[0], len(X))
    try:
        with Progress("scoring", total=len(X), stream=stream) as p:
            r.scores, flagged = _score_all(detector, X, p, first)
            r.thresholds = np.full(len(X), float(detector.offset_))
            r.contributions = _explained(detector, X, np.flatnonzero(flagged), table, settings)
            if first < len(X):
                scores, thresholds, contributions = _score_adapting(detector, X, table, settings, first, adapt[1], p)
                r.scores = np.concatenate([r.scores, scores])
                r.thresholds[first:] = thresholds
                r.contributions = np.concatenate([r.contributions, contributions])
    except RuntimeError as e:  # a CUDA failure, as in _fit
        if detector.device != "cuda":
            raise
        raise RunFailure(f"{table.path}: scoring on the GPU failed: {e}; --device cpu scores on the CPU") from None
    r.flagged = r.scores < r.thresholds  # predict's rule, each window by the threshold in force; NaN: not flagged
    r.adapted = first < len(X)
    r.adapt = adapt
    r.scored = ~np.isnan(r.scores)
    r.n_unscored = int(len(r.scores) - r.scored.sum())
    if len(r.scores) and not r.scored.any():
        raise DataError(f"{table.path}: no window of {width} rows has an observed value; nothing to score")
    r.threshold = float(detector.offset_)
    r.min_event_length, r.merge_gap = events
    r.events = group_events(r.flagged, r.scores, min_length=r.min_event_length, merge_gap=r.merge_gap)
    r.event_channels = _event_channels(r, table)
    r.labels = table.labels[r.ends] if table.labels is not None else None
    r.metrics = None
    if r.labels is not None:
        evaluate = r.ends >= train_rows if train_rows is not None and np.any(r.ends >= train_rows) else \
            np.ones(len(r.ends), dtype=bool)
        first_evaluated = int(np.argmax(evaluate)) if len(evaluate) else 0  # evaluate is a suffix
        if r.n_unscored:
            evaluate = evaluate & r.scored
        y, s = r.labels[evaluate], -r.scores[evaluate]
        r.metrics = {"part": "windows after the training rows" if first_evaluated else "all windows",
                     "n": int(evaluate.sum()), "n_positive": int(y.sum())}
        if 0 < y.sum() < len(y):
            from sklearn.metrics import average_precision_score, roc_auc_score
            r.metrics["roc_auc"] = float(roc_auc_score(y, s))
            r.metrics["average_precision"] = float(average_precision_score(y, s))
        # alarms as an operator sees them: each event once, at its start, in the same part of the series
        windows = label_windows(r.labels[first_evaluated:])
        starts = [e.start - first_evaluated for e in r.events if e.start >= first_evaluated]
        r.metrics["events"] = score_events(starts, windows, n=len(r.labels) - first_evaluated)
        r.metrics["n_label_windows"] = len(windows)
    return r


# -------------------------------------------------------------------------------------------- output

def _fmt(v):
    return repr(float(v))


def _write_scores(path, table, r):
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([table.time_column or "row", "score", "threshold", "flagged"]
                   + (["label"] if r.labels is not None else []))
        for k, end in enumerate(r.ends):
            score = _fmt(r.scores[k]) if r.scored[k] else ""  # no observed value: not scored
            row = [table.time[end] if table.time is not None else int(end), score, _fmt(r.thresholds[k]),
                   int(r.flagged[k])]
            if r.labels is not None:
                row.append(int(r.labels[k]))
            w.writerow(row)


def _write_events(path, table, r):
    """events.csv: one row per event, at the times of its first, last and peak windows' last rows."""
    import csv
    when = "time" if table.time is not None else "row"
    n_top = min(TOP_CHANNELS, len(table.channels))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"start_{when}", f"end_{when}", f"peak_{when}", "peak_score", "n_flagged"]
                   + [c for k in range(1, n_top + 1) for c in (f"channel_{k}", f"abs_z_{k}")])
        for e, top in zip(r.events, r.event_channels):
            ends = [r.ends[i] for i in (e.start, e.end, e.peak)]
            times = [table.time[i] for i in ends] if table.time is not None else [int(i) for i in ends]
            w.writerow(times + [_fmt(e.peak_score), e.n_flagged] + [v for name, z in top for v in (name, _fmt(z))])


def _plot(path, table, r, elbo_trace, train_rows, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = table.time_axis()
    te = t[r.ends]
    n_panels = 3 if elbo_trace is not None else 2
    heights = [3, 2, 2][:n_panels]
    fig, axes = plt.subplots(n_panels, 1, figsize=(12, 2.6 * n_panels + 1), gridspec_kw={"height_ratios": heights})
    ax_x, ax_s = axes[0], axes[1]
    values = table.values
    if values.shape[1] == 1:
        ax_x.plot(t, values[:, 0], lw=0.6, color="C0")
        ax_x.set_ylabel(table.channels[0])
    else:
        with warnings.catch_warnings():  # a channel with no observed value has no mean
            warnings.simplefilter("ignore", RuntimeWarning)
            sd = np.nanstd(values, axis=0)
            z = (values - np.nanmean(values, axis=0)) / np.where(sd > 0, sd, 1.0)
        for c in range(min(values.shape[1], 10)):
            ax_x.plot(t, z[:, c], lw=0.6, label=table.channels[c])
        ax_x.set_ylabel("channels (standardised)")
    if r.labels is not None:
        for k, (first, last) in enumerate(flagged_ranges(r.labels == 1)):
            ax_x.axvspan(te[first], te[last], color="gold", alpha=0.4, lw=0, label=None if k else "labelled anomaly")
    ax_s.plot(te, r.scores, lw=0.6, color="0.25", label="score (log-density)")
    if r.adapted:  # the threshold in force for each window
        ax_s.plot(te, r.thresholds, color="C3", lw=1, ls="--", drawstyle="steps-post", label="threshold (--adapt)")
    else:
        ax_s.axhline(r.threshold, color="C3", lw=1, ls="--", label="threshold")
    scored = r.scores[r.scored]
    low = min(r.thresholds.min(), np.percentile(scored, 0.2)) if len(scored) else r.threshold
    high = scored.max() if len(scored) else r.threshold
    pad = 0.1 * (high - low) + 1e-9
    ax_s.set_ylim(low - pad, high + pad)  # the deepest 0.2 % of scores may be cut off, the threshold never
    for k, e in enumerate(r.events):
        for ax in (ax_x, ax_s):  # the edge keeps 1-window events visible
            ax.axvspan(te[e.start], te[e.end], color="C3", alpha=0.25, lw=0.6,
                       label="event" if k == 0 and ax is ax_s else None)
    if train_rows is not None and 0 < train_rows < table.n_rows:
        for ax in (ax_x, ax_s):
            ax.axvline(t[train_rows - 1], color="0.5", lw=0.8, ls=":")
        ax_s.text(t[train_rows - 1], 1.0, " end of training", transform=ax_s.get_xaxis_transform(), va="top",
                  fontsize=7, color="0.4")
    if values.shape[1] > 1 or r.labels is not None:
        ax_x.legend(loc="upper left", fontsize=7, ncol=6)
    ax_s.set_ylabel("score")
    ax_s.legend(loc="lower left", fontsize=7)
    ax_x.set_title(title, fontsize=9)
    if elbo_trace is not None:
        ax_e = axes[2]
        trace = np.asarray(elbo_trace, dtype=np.float64)
        xs = np.repeat(np.arange(len(trace)), 2) + np.tile([0.0, 0.5], len(trace))
        ax_e.plot(xs, trace.reshape(-1), drawstyle="steps-post", color="0.3", lw=1)
        ax_e.plot(np.arange(len(trace)), trace[:, 0], "o", ms=3, label="L(θ_t) after the E-step")
        ax_e.plot(np.arange(len(trace)) + 0.5, trace[:, 1], "s", ms=3, label="ELBO(q_t, θ_t+1) after the M-step")
        ax_e.set_xlabel("EM iteration of the fit")
        ax_e.set_ylabel("lower bound per window\n(scaled features)")
        ax_e.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _model_description(detector):
    model = getattr(detector, "model_", None)
    parts = [type(model).__name__ if model is not None else type(detector).__name__]
    k = getattr(detector, "n_components_", None)
    if k is not None:
        parts.append(f"{k} component{'s' if k != 1 else ''}")
    cov = getattr(model, "covariance_type", None)
    if cov is not None:
        parts.append(f"{cov} covariance")
    n_iter = getattr(model, "n_iter_", None)
    if n_iter is not None:
        conv = getattr(model, "converged_", None)
        state = "" if conv is None else (", converged" if conv else ", not converged")
        parts.append(f"{n_iter} EM iterations{state}")
    return ", ".join(parts)


def _elbo_trace(detector):
    trace = getattr(getattr(detector, "model_", None), "elbo_trace_", None)
    if trace is None:
        return None
    trace = np.asarray(trace)
    return trace if trace.ndim == 2 and trace.shape[1] == 2 and len(trace) else None


def _print_table_summary(out, inp, settings):
    table, gaps = inp.table, inp.gaps
    span = f" ({gaps.span[0]} .. {gaps.span[1]})" if gaps.span is not None else ""
    n_features = len(window_channel_index(len(table.channels), settings["window"], settings["differences"],
                                          settings["features"]))
    print(f"  data        {inp.source}", file=out)
    print(f"  rows        {gaps.n_rows_read}{span}", file=out)
    print(f"  channels    {len(table.channels)}: {', '.join(table.channels)}", file=out)
    if table.ignored:
        print(f"  left out    {', '.join(table.ignored)}", file=out)
    if gaps.n_missing:  # (--gaps error has stopped at the first one)
        what = (f"those rows are dropped before windowing (--gaps drop): {table.n_rows} rows left"
                if gaps.mode == "drop" else "windows score on their observed values (--gaps marginalize)")
        share = 100 * gaps.n_missing / gaps.n_values
        print(f"  missing     {gaps.n_missing} of {gaps.n_values} values ({share:.3g} %), in {gaps.n_rows_with} "
              f"row{'s' if gaps.n_rows_with != 1 else ''}; {what}", file=out)
    what = ("level and dynamics per channel" if settings["features"] == "level-dynamics" else
            "readings, with first differences" if settings["differences"] else "readings")
    print(f"  windows     {settings['window']} rows, step {settings['step']}, {what} -> {n_features} features",
          file=out)


def _print_results(out, table, r):
    n_flagged = int(r.flagged.sum())
    if r.adapted:
        print(f"  threshold   {r.threshold:.6g} at the fit; while adapting (--adapt) {r.thresholds.min():.6g} .. "
              f"{r.thresholds.max():.6g}, {r.thresholds[-1]:.6g} at the end (log-density; each window in "
              f"scores.csv with its own)", file=out)
    else:
        print(f"  threshold   {r.threshold:.6g} (log-density; windows scoring below it are flagged)", file=out)
    share = 100.0 * n_flagged / max(1, len(r.flagged))
    print(f"  anomalies   {len(r.events)} event{'s' if len(r.events) != 1 else ''} (at least {r.min_event_length} "
          f"flagged window{'s' if r.min_event_length != 1 else ''}, gaps of up to {r.merge_gap} merged), "
          f"{n_flagged} of {len(r.flagged)} windows flagged ({share:.2f} %)", file=out)
    peaks = np.array([e.peak_score for e in r.events])
    shown = np.sort(np.argsort(peaks, kind="stable")[:MAX_EVENTS_SHOWN])  # the strongest, in time order
    if len(shown) < len(r.events):
        print(f"    the {len(shown)} with the lowest peak scores:", file=out)
    for i in shown:
        e, top = r.events[i], r.event_channels[i]
        span = e.end - e.start + 1
        flagged = f"{e.n_flagged} of {span} windows" if span > e.n_flagged else \
            f"{e.n_flagged} window{'s' if e.n_flagged != 1 else ''}"
        channels = ", ".join(f"{name} |z| {z:.1f}" for name, z in top)
        print(f"    {table.time_label(r.ends[e.start])} .. {table.time_label(r.ends[e.end])}  {flagged} flagged, "
              f"peak {table.time_label(r.ends[e.peak])} score {e.peak_score:.4g}; top channels: {channels}", file=out)
    if len(shown) < len(r.events):
        print(f"    ... and {len(r.events) - len(shown)} weaker events (all in events.csv)", file=out)
    if r.n_unscored:
        print(f"  unscored    {r.n_unscored} window{'s' if r.n_unscored != 1 else ''} with no observed value "
              f"(no score in scores.csv, not flagged)", file=out)
    if r.metrics is not None:
        m = r.metrics
        if "roc_auc" in m:
            print(f"  ROC-AUC     {m['roc_auc']:.3f}, average precision {m['average_precision']:.3f} "
                  f"({m['part']}: {m['n']}, {m['n_positive']} labelled anomalous)", file=out)
        else:
            print(f"  ROC-AUC     n/a: the labels of the {m['part']} hold one class only", file=out)
        ev = m["events"]
        if m["n_label_windows"]:
            print(f"  events      {ev.windows_detected} of {m['n_label_windows']} labelled windows detected, "
                  f"{ev.false_events} false event{'s' if ev.false_events != 1 else ''}, NAB-style score "
                  f"{ev.normalized:.1f} (standard profile; 100 = every window at its start, 0 = no alarm)",
                  file=out)
        else:
            print(f"  events      {ev.false_events} event{'s' if ev.false_events != 1 else ''}, no labelled window "
                  f"in the {m['part']} to score them against", file=out)


def _matplotlib_missing(err):
    """True, after one line on err, when matplotlib cannot be imported: plot.png needs the plot extra,
    and everything else is written without it."""
    if importlib.util.find_spec("matplotlib") is None:
        print("plot.png skipped: matplotlib is not installed (pip install 'mixtura[plot]')", file=err)
        return True
    return False


def _result_files(table, r, elbo_trace, train_rows, title, plot, err):
    """{file name: writer(path)} of scores.csv, events.csv and, with plot and matplotlib, plot.png."""
    files = {"scores.csv": lambda path: _write_scores(path, table, r),
             "events.csv": lambda path: _write_events(path, table, r)}
    if plot and not _matplotlib_missing(err):
        files["plot.png"] = lambda path: _plot(path, table, r, elbo_trace, train_rows, title)
    return files


class _Output:
    """The --out folder, written all at once: the files go to a temporary folder (beside it when it is
    new, inside it when it exists) and are renamed into place only when every one is written, so a run
    that fails leaves no folder, or the folder as it was, never new scores beside an old model."""

    STAGING = ".mixtura-partial-"

    def __init__(self, path):
        self.dir = pathlib.Path(path)
        # Checked before the fit, which may be long: the folder or its nearest existing parent must
        # be a folder this process may write in. Nothing is created until the results are there.
        if self.dir.exists() and not self.dir.is_dir():
            raise DataError(f"{self.dir}: cannot write the output folder: a file has that name")
        parent = self.dir
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir():
            raise DataError(f"{self.dir}: cannot create the output folder: {parent} is a file")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise DataError(f"{self.dir}: cannot {'write' if parent == self.dir else 'create'} the output folder: "
                            f"{parent} is not writable")

    def write(self, files, stale=()):
        """Write {name: writer(path)} and remove the older outputs in ``stale`` that this run does not
        write (plot.png of an earlier run with a plot); the paths written. A failure here is the machine's
        (a full disk, a folder changed meanwhile: RunFailure); the folder itself was checked before."""
        name = None
        try:
            new = not self.dir.exists()
            if new:
                self.dir.parent.mkdir(parents=True, exist_ok=True)
            prefix = f".{self.dir.name}.partial-" if new else self.STAGING
            staging = pathlib.Path(tempfile.mkdtemp(prefix=prefix, dir=self.dir.parent if new else self.dir))
            try:
                if new:  # it becomes the folder: the mode a mkdir would give, not mkdtemp's 0o700
                    umask = os.umask(0)
                    os.umask(umask)
                    staging.chmod(0o777 & ~umask)
                for name, writer in files.items():
                    writer(staging / name)
                name = None
                if new:
                    try:
                        os.rename(staging, self.dir)  # the whole folder at once
                        return [self.dir / n for n in files]
                    except OSError:  # created meanwhile: move the files in one by one
                        self.dir.mkdir(parents=True, exist_ok=True)
                for n in files:
                    os.replace(staging / n, self.dir / n)
                for n in stale:
                    if n not in files and (self.dir / n).is_file():
                        (self.dir / n).unlink()
                return [self.dir / n for n in files]
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        except OSError as e:
            what = f"cannot write {name}" if name else "cannot write the output folder"
            reason = e.strerror or str(e)
            raise RunFailure(f"{self.dir}: {what}: {reason}") from None


# ----------------------------------------------------------------------------------------- commands

def _resolve_device(requested):
    """"cpu" or "cuda" for --device (the estimators' rule, _device.resolve); DataError naming the option
    when CUDA is asked for and cannot run."""
    from ._device import cuda_missing, resolve

    if requested == "cuda" and cuda_missing():
        raise RunFailure(f"--device cuda: {cuda_missing()}; use --device cpu or auto")
    return resolve(requested, "--device")


def _print_device(out, device, requested, note=None):
    notes = ((["GPU 0"] if device == "cuda" else []) + ([f"--device {requested}"] if requested != device else [])
             + ([note] if note else []))
    print(f"  device      {device}{' (' + '; '.join(notes) + ')' if notes else ''}", file=out)


def _settings(args):
    return {"window": args.window, "step": args.step, "differences": args.differences, "features": args.features}


def _check_observed_features(table, X_train, train_rows, args):
    """A DataError naming the channel when a feature of the training windows has no observed value (the
    mixture cannot be fitted on it)."""
    unobserved = np.flatnonzero(np.isnan(X_train).all(axis=0))
    if not len(unobserved):
        return
    n_channels, width = len(table.channels), args.window
    j = int(unobserved[0])
    c = j % n_channels
    channel = table.channels[c]
    where = f"the first {train_rows} rows (--train-fraction {args.train_fraction})"
    if np.isnan(table.values[:train_rows, c]).all():
        raise DataError(f"{table.path}: channel '{channel}' has no observed value in {where}; raise --train-fraction "
                        f"or leave the channel out with --ignore-column")
    if args.features == "level-dynamics":
        raise DataError(f"{table.path}: channel '{channel}' has no two consecutive observed values at a window's end "
                        f"in {where}, so its change (--features level-dynamics) is never observed; use --gaps drop "
                        f"or raise --train-fraction")
    if j >= width * n_channels:
        raise DataError(f"{table.path}: channel '{channel}' has no two consecutive observed values in {where}, so "
                        f"its first differences (--differences) are never observed; leave out --differences or "
                        f"use --gaps drop")
    raise DataError(f"{table.path}: channel '{channel}' is observed in too few of {where}: no training window has "
                    f"it at row {j // n_channels + 1} of {width}; raise --train-fraction")


def _detector_params(args):
    """DensityAnomalyDetector's parameters from the options; one not given keeps the detector's default."""
    given = {"method": args.method, "n_components": args.components, "covariance_type": args.covariance_type,
             "contamination": args.contamination, "false_alarm_rate": args.false_alarm_rate,
             "random_state": args.seed}
    return {k: v for k, v in given.items() if v is not None}


def _fit(args, inp, device, stream):
    from . import DensityAnomalyDetector

    table = inp.table
    settings = _settings(args)
    _check_rows(table, args.window, inp.gaps)
    train_rows = max(args.window, int(args.train_fraction * table.n_rows))
    X_train = _features(table.values[:train_rows], args.window, args.step, args.differences, args.features)
    empty = _empty_windows(X_train)
    n_empty = int(empty.sum())
    if n_empty:  # nothing observed: nothing to fit on (and the detector refuses such a row)
        X_train = X_train[~empty]
    if len(X_train) < 2:
        observed = f" with an observed value ({n_empty} have none)" if n_empty else ""
        raise DataError(f"{table.path}: the first {train_rows} rows (--train-fraction {args.train_fraction}) hold "
                        f"{len(X_train)} window(s) of {args.window} rows{observed}; at least 2 are needed: raise "
                        f"--train-fraction or lower --window")
    _check_observed_features(table, X_train, train_rows, args)
    detector = DensityAnomalyDetector(**_detector_params(args), device=device)
    try:
        with Progress(f"fitting on {len(X_train)} windows", stream=stream):
            detector.fit(X_train)
    except ValueError as e:  # the detector's message names the condition and the values
        raise DataError(f"{table.path}: the fit failed: {e}") from None
    except RuntimeError as e:  # a CUDA failure (mixtura::CudaError names the call and the CUDA error)
        if device != "cuda":
            raise
        raise RunFailure(f"{table.path}: the fit on the GPU failed: {e}; --device cpu fits on the CPU") from None
    return detector, settings, train_rows, (len(X_train), n_empty)


def _model_files(detector, table, settings, train_rows, source, gaps, events):
    """{MODEL_FILE: writer(path)}: the detector with, in section SETTINGS_SECTION, the window settings, the
    columns, "gaps" (the --gaps mode `score` takes by default; only when it is not the default) and the
    event settings `score` takes by default."""
    # Saved with device="cpu" whatever this run used: a model file loads and scores anywhere, and
    # `score --device` says where it runs.
    detector.set_params(device="cpu")
    cli_settings = {"format": SETTINGS_FORMAT, "version": 1, **settings, "channels": table.channels,
                    "time_column": table.time_column, "train_rows": train_rows, "fitted_on": source,
                    **({"gaps": gaps} if gaps != DEFAULT_GAPS else {}),
                    "min_event_length": events[0], "merge_gap": events[1]}
    return {MODEL_FILE: lambda path: path.write_bytes(model_file_bytes(detector, cli_settings))}


def model_file_bytes(detector, cli_settings):
    """The model file of a fitted detector holding `cli_settings` (a dict) as JSON in SETTINGS_SECTION."""
    sections = {"mixtura_version": _core.__version__, **detector._to_sections(),
                SETTINGS_SECTION: json.dumps(cli_settings)}
    return _core.model_file_to_bytes(detector._model_kind, sections)


def _print_fit(out, detector, train_rows, n_train, args):
    n_train, n_empty = n_train
    left_out = f" ({n_empty} with no observed value left out)" if n_empty else ""
    print(f"  training    first {train_rows} rows ({100 * args.train_fraction:g} %), {n_train} windows{left_out}",
          file=out)
    print(f"  model       {_model_description(detector)}", file=out)


def default_min_event_length(settings):
    """Flagged windows in half a window's span, ceil(window / (2 step)): an alarm must hold up that long
    (bench/anomaly_eval.py --dynamics, events on NAB: 1 gave 304 false events over five series)."""
    return max(1, math.ceil(settings["window"] / (2 * settings["step"])))


def default_merge_gap(settings):
    """Windows in one window's span, ceil(window / step): alarms closer than that share readings."""
    return math.ceil(settings["window"] / settings["step"])


def _event_settings(args, settings, saved=None):
    """(min_length, merge_gap) of the events: the options, else the model's saved settings for `score` (older
    files have none), else the defaults."""
    saved = saved or {}
    min_length = args.min_event_length if args.min_event_length is not None else \
        saved.get("min_event_length", default_min_event_length(settings))
    merge_gap = args.merge_gap if args.merge_gap is not None else saved.get("merge_gap", default_merge_gap(settings))
    return min_length, merge_gap


def _print_adapt(out, adapt, n_windows_total):
    first, half_life = adapt
    where = ("from the first window" if first == 0 else
             f"from window {first + 1} of {n_windows_total} (after the training rows)")
    print(f"  adapting    {where}, in chunks of {ADAPT_CHUNK} windows, half-life {half_life:g} windows (--adapt)",
          file=out)


def cmd_detect(args, out, err):
    device = _resolve_device(args.device)
    gaps = args.gaps or DEFAULT_GAPS
    inp = _read_input(args, args.time_column, gaps)
    device, note = _check_device_gaps(device, args.device, inp)
    _check_method_gaps(args.method, inp)
    output = _Output(args.out)
    print("mixtura detect", file=out)
    _print_table_summary(out, inp, _settings(args))
    _print_device(out, device, args.device, note)
    detector, settings, train_rows, n_train = _fit(args, inp, device, err)
    _print_fit(out, detector, train_rows, n_train, args)
    events = _event_settings(args, settings)
    adapt = None
    if args.adapt:  # the windows after the training rows follow the stream; the model file stays the fit's
        adapt = (n_windows(train_rows, args.window, args.step), args.half_life or n_train[0])
        _print_adapt(out, adapt, n_windows(inp.table.n_rows, args.window, args.step))
    r = _analyse(detector, inp.table, settings, train_rows, err, events, adapt)
    _print_results(out, inp.table, r)
    files = _result_files(inp.table, r, _elbo_trace(detector), train_rows, f"mixtura detect: {inp.source}",
                          args.plot, err)
    files.update(_model_files(detector, inp.table, settings, train_rows, inp.source, gaps, events))
    written = output.write(files, stale=["plot.png", *OLD_MODEL_FILES])
    print(f"  wrote       {', '.join(str(p) for p in written)}", file=out)
    summary = _summary("detect", inp, settings, device, detector, output.dir / MODEL_FILE, written,
                       _training_summary(train_rows, n_train), r)
    return _status(args, r), summary


def cmd_fit(args, out, err):
    device = _resolve_device(args.device)
    gaps = args.gaps or DEFAULT_GAPS
    inp = _read_input(args, args.time_column, gaps)
    device, note = _check_device_gaps(device, args.device, inp)
    _check_method_gaps(args.method, inp)
    output = _Output(args.out)
    print("mixtura fit", file=out)
    _print_table_summary(out, inp, _settings(args))
    _print_device(out, device, args.device, note)
    detector, settings, train_rows, n_train = _fit(args, inp, device, err)
    _print_fit(out, detector, train_rows, n_train, args)
    print(f"  threshold   {float(detector.offset_):.6g} (log-density)", file=out)
    events = _event_settings(args, settings)
    written = output.write(_model_files(detector, inp.table, settings, train_rows, inp.source, gaps, events),
                           stale=OLD_MODEL_FILES)
    print(f"  wrote       {', '.join(str(p) for p in written)}", file=out)
    summary = _summary("fit", inp, settings, device, detector, output.dir / MODEL_FILE, written,
                       _training_summary(train_rows, n_train))
    summary["event_options"] = {"min_event_length": events[0], "merge_gap": events[1]}  # what score will take
    return EXIT_OK, summary


def _load_model(path):
    """(detector, settings, where) of a model written by fit or detect: MODEL_FILE with its settings in
    SETTINGS_SECTION or, from older versions, model.mixtura with model.json beside it. `where` names the
    settings in messages."""
    from . import DensityAnomalyDetector
    from ._io import _read_path, loads

    model_path = pathlib.Path(path)
    if not model_path.is_file():
        raise DataError(f"{model_path}: no such model file")
    reader = f"mixtura.load({str(model_path)!r})"
    try:
        data = _read_path(model_path, reader)
        _, sections = _core.model_file_from_bytes(data, reader)
        detector = loads(data, where=reader, cls=DensityAnomalyDetector)
    except (OSError, ValueError) as e:
        raise DataError(f"{model_path}: cannot load the model: {e}") from None
    if SETTINGS_SECTION in sections:
        where, text = f"{model_path}: section {SETTINGS_SECTION}", sections[SETTINGS_SECTION]
    else:  # an older pair: model.mixtura and model.json
        sidecar_path = model_path.with_suffix(".json")
        where = str(sidecar_path)
        try:
            text = sidecar_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"{model_path}: no window settings: neither a section {SETTINGS_SECTION} (written by "
                            f"`mixtura fit` into {MODEL_FILE}) nor a {sidecar_path.name} beside it") from None
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{sidecar_path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    try:
        settings = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: line {e.lineno}: not valid JSON ({e.msg})") from None
    keys = ("window", "step", "differences", "channels", "time_column", "train_rows")
    if not isinstance(settings, dict) or settings.get("format") != SETTINGS_FORMAT or any(k not in settings
                                                                                        for k in keys):
        raise DataError(f"{where}: not a window description written by `mixtura fit`")
    for key, minimum in (("min_event_length", 1), ("merge_gap", 0)):  # optional: older files have neither
        v = settings.get(key, minimum)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise DataError(f"{where}: {key} must be an integer >= {minimum}, got {v!r}")
    return detector, settings, where


def cmd_score(args, out, err):
    device = _resolve_device(args.device)
    detector, saved, where = _load_model(args.model)
    time_column = args.time_column if args.time_column is not None else saved["time_column"]
    fit_gaps = saved.get("gaps", DEFAULT_GAPS)
    if fit_gaps not in GAPS:
        raise DataError(f"{where}: unknown gaps mode {fit_gaps!r}; give --gaps")
    gaps = args.gaps or fit_gaps  # the fit's mode unless told otherwise
    # The model's columns in its order; every other column but the time and the label is left out unread.
    inp = _read_input(args, time_column, gaps, channels=saved["channels"])
    table = inp.table
    device, note = _check_device_gaps(device, args.device, inp)
    _check_method_gaps(detector.method, inp)
    if args.adapt and detector.method != "gmm":
        raise DataError(f"{args.model}: --adapt follows a detector of method gmm (partial_fit); this model's method "
                        f"is {detector.method}")
    detector.set_params(device=device)  # where this run scores; the model file does not decide it
    settings = {k: saved[k] for k in ("window", "step", "differences")}
    settings["features"] = saved.get("features", OLD_FEATURES)
    if settings["features"] not in FEATURES:
        raise DataError(f"{where}: unknown features {settings['features']!r}")
    events = _event_settings(args, settings, saved)
    _check_rows(table, settings["window"], inp.gaps)
    output = _Output(args.out)
    print(f"mixtura score {args.model}", file=out)
    _print_table_summary(out, inp, settings)
    _print_device(out, device, args.device, note)
    print(f"  model       {_model_description(detector)}", file=out)
    same_file = saved.get("fitted_on") == inp.source and gaps == fit_gaps
    train_rows = saved["train_rows"] if same_file else None
    adapt = None
    if args.adapt:  # the model follows the file from its first window
        adapt = (0, args.half_life or n_windows(saved["train_rows"], settings["window"], settings["step"]))
        _print_adapt(out, adapt, n_windows(table.n_rows, settings["window"], settings["step"]))
    r = _analyse(detector, table, settings, train_rows, err, events, adapt)
    _print_results(out, table, r)
    written = output.write(_result_files(table, r, _elbo_trace(detector), train_rows, f"mixtura score: {inp.source}",
                                         args.plot, err), stale=["plot.png"])
    print(f"  wrote       {', '.join(str(p) for p in written)}", file=out)
    return _status(args, r), _summary("score", inp, settings, device, detector, args.model, written, None, r)


def _number(v):
    """A float for JSON: None for NaN or an infinity (strict JSON has neither)."""
    v = float(v)
    return v if math.isfinite(v) else None


def _training_summary(train_rows, n_train):
    return {"rows": train_rows, "windows": n_train[0], "windows_without_observed_value": n_train[1]}


def _summary(command, inp, settings, device, detector, model_file, written, training=None, r=None):
    """The --json summary of a run: one object, numbers as written in scores.csv and events.csv. `r` (the
    results of _analyse) is None for fit, which scores nothing."""
    from . import __version__

    table, gaps = inp.table, inp.gaps
    n_features = len(window_channel_index(len(table.channels), settings["window"], settings["differences"],
                                          settings["features"]))
    model = getattr(detector, "model_", None)
    converged = getattr(model, "converged_", None)
    out = {
        "command": command,
        "mixtura_version": __version__,
        "source": inp.source,
        "rows": gaps.n_rows_read,
        "channels": list(table.channels),
        "data": {"file": inp.file, "rows_used": table.n_rows, "first_time": gaps.span[0] if gaps.span else None,
                 "last_time": gaps.span[1] if gaps.span else None, "time_column": table.time_column,
                 "label_column": table.label_column, "left_out": list(table.ignored),
                 "missing_values": gaps.n_missing, "rows_with_missing_values": gaps.n_rows_with,
                 "rows_dropped": gaps.n_dropped, "gaps": gaps.mode},
        "windows": {"window": settings["window"], "step": settings["step"], "features": settings["features"],
                    "differences": bool(settings["differences"]), "n_features": n_features},
        "device": device,
        "model": {"file": str(model_file), "method": detector.method, "components": int(detector.n_components_),
                  "covariance_type": getattr(model, "covariance_type", None) if detector.method == "gmm" else None,
                  "threshold": _number(detector.offset_), "contamination": detector.contamination,
                  "false_alarm_rate": detector.false_alarm_rate, "random_state": detector.random_state,
                  "n_iter": int(detector.n_iter_), "converged": None if converged is None else bool(converged)},
    }
    if training is not None:
        out["training"] = training
    if r is not None:
        out["windows"].update(count=len(r.scores), flagged=int(r.flagged.sum()), unscored=r.n_unscored)
        out["adapt"] = _adapt_summary(r)
        out["event_options"] = {"min_event_length": r.min_event_length, "merge_gap": r.merge_gap}
        out["events"] = _events_summary(table, r)
        out["metrics"] = _metrics_summary(r.metrics)
    out["files"] = [str(p) for p in written]
    return out


def _adapt_summary(r):
    if not r.adapted:
        return None
    first, half_life = r.adapt
    moving = r.thresholds[first:]
    return {"first_window": first, "half_life": half_life, "chunk": ADAPT_CHUNK,
            "threshold_min": _number(moving.min()), "threshold_max": _number(moving.max()),
            "threshold_last": _number(moving[-1])}


def _events_summary(table, r):
    """events.csv's rows: times (or row numbers) of the first, last and peak windows' last rows, with the
    window indices (rows of scores.csv) beside them."""
    def when(window):
        end = int(r.ends[window])
        return table.time[end] if table.time is not None else end

    return [{"start": when(e.start), "end": when(e.end), "peak": when(e.peak), "peak_score": _number(e.peak_score),
             "n_flagged": int(e.n_flagged), "start_window": int(e.start), "end_window": int(e.end),
             "peak_window": int(e.peak),
             "top_channels": [{"channel": name, "abs_z": _number(z)} for name, z in top]}
            for e, top in zip(r.events, r.event_channels)]


def _metrics_summary(m):
    """ROC-AUC, average precision and the NAB-style event score, when the table has labels (else None)."""
    if m is None:
        return None
    ev = m["events"]
    return {"evaluated": m["part"], "windows": m["n"], "windows_labelled_anomalous": m["n_positive"],
            "roc_auc": _number(m["roc_auc"]) if "roc_auc" in m else None,
            "average_precision": _number(m["average_precision"]) if "average_precision" in m else None,
            "events": {"anomaly_windows": m["n_label_windows"], "detected": int(ev.windows_detected),
                       "missed": int(ev.windows_missed), "false_events": int(ev.false_events),
                       "nab_score": _number(ev.normalized), "nab_raw": _number(ev.raw)}}


def _status(args, r):
    """EXIT_ANOMALIES when --fail-on-anomaly is given and an event is reported, else EXIT_OK."""
    return EXIT_ANOMALIES if args.fail_on_anomaly and r.events else EXIT_OK


def _option_value(text, convert, ok, where, word=None):
    """argparse's type for a number: convert(text) (an int or a float), refused unless ok(value) says so.
    word: a name the option also takes ('auto', 'bic'), returned as it is."""
    if word is not None and text == word:
        return word
    kind = "an integer" if convert is int else "a number"
    try:
        v = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is " + (f"neither '{word}' nor {kind}" if word else f"not {kind}")) \
            from None
    if not ok(v):
        raise argparse.ArgumentTypeError(f"{text} is not {where}")
    return v


def _fraction(text):
    return _option_value(text, float, lambda v: 0 < v <= 1, "in (0, 1]")


def _contamination(text):
    return _option_value(text, float, lambda v: 0 < v <= 0.5, "in (0, 0.5]", word="auto")


def _positive_real(text):
    return _option_value(text, float, lambda v: 0 < v < math.inf, "a positive finite number")


def _components(text):
    return _option_value(text, int, lambda v: v >= 1, ">= 1", word="bic")


def _open_fraction(text):
    return _option_value(text, float, lambda v: 0 < v < 1, "in (0, 1)")


def _seed(text):
    return _option_value(text, int, lambda v: 0 <= v <= SEED_MAX, "in [0, 2**64 - 1]")


def _positive_int(text):
    return _option_value(text, int, lambda v: v >= 1, ">= 1")


def _non_negative_int(text):
    return _option_value(text, int, lambda v: v >= 0, ">= 0")


FILE_HELP = ("sensor table: a CSV file, or a Parquet file when its name ends in .parquet (needs pyarrow) "
             "(default: bundled NAB data)")


def build_parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="mixtura", description="Density-based anomaly detection on sensor time series (CSV or Parquet files).",
        epilog="Without FILE the bundled NAB machine-temperature series is used. CSV: a header row, separator "
               "',', ';' or tab, time column by --time-column or the first column when it is not numeric, an "
               "optional 0/1 label column ('label', 'anomaly' or --label-column; used only for ROC-AUC and the event "
               "score), a 'changepoint' column and "
               "--ignore-column columns left out; every other column is a channel (score reads the model's); an "
               "empty cell, NaN or NA is a missing value (--gaps). A FILE ending in .parquet is read with pyarrow "
               "by the same rules (a null or NaN is a missing value). scores.csv: score = log-density of the window "
               "ending at that time (higher = more normal; empty for a window with no observed value), flagged = 1 "
               "when it is below the threshold (the one in force for that window; with --adapt it moves). "
               "events.csv: per event its start, end and peak times (of the windows' last rows), the peak score, "
               "the flagged windows and the top channels with their largest |z| (explain). Exit status: 0 done; "
               "1 events found with --fail-on-anomaly; 2 bad options or input; 3 the machine failed (no CUDA "
               "device, a failed write, memory); 130 interrupted; 141 stdout closed.")
    parser.add_argument("--version", action="version", version=f"mixtura {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{detect,fit,score}")
    sub.required = True

    def data_options(p):
        p.add_argument("--time-column", metavar="NAME", help="column holding the time (default: the first "
                       "column when it is not numeric)")
        p.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT}/)")
        p.add_argument("--label-column", metavar="NAME", help="column of 0/1 labels, used only for ROC-AUC "
                       "(default: a column named 'label' or 'anomaly')")
        p.add_argument("--ignore-column", metavar="NAME", action="append", default=[],
                       help="leave column NAME out (repeat for several); a 'changepoint' column (SKAB's "
                            "annotation) is always left out")
        p.add_argument("--gaps", choices=GAPS, default=None,
                       help="missing values (an empty cell, NaN in any case, NA): 'marginalize' (default; for "
                            "score, the mode the model was fitted with) scores each window by the density of its "
                            "observed values, 'drop' removes the rows that have one before windowing, 'error' "
                            "stops at the first, naming its line and column")

    def event_options(p):
        p.add_argument("--min-event-length", metavar="N", type=_positive_int, default=None,
                       help="report only events of at least N flagged windows (default: the windows in half a "
                            "window's span, ceil(W / 2S), so that an alarm must hold up; 1 reports every flagged "
                            "window; for score, the value the model was fitted with)")
        p.add_argument("--merge-gap", metavar="N", type=_non_negative_int, default=None,
                       help="flagged windows separated by at most N unflagged windows are one event (default: "
                            "the windows in one window's span, ceil(W / S), so alarms that share readings are "
                            "one; 0 merges nothing; for score, the value the model was fitted with)")

    def adapt_options(p, start):
        p.add_argument("--adapt", action="store_true",
                       help=f"follow the stream: score {start} in chunks of {ADAPT_CHUNK} windows, flag each "
                            "window by the threshold in force before its chunk, then let the chunk's unflagged "
                            "windows update the density and move the threshold (DensityAnomalyDetector."
                            "partial_fit); scores.csv gives each window its threshold. The model file is not "
                            "changed")
        p.add_argument("--half-life", metavar="N", type=_positive_real, default=None,
                       help="with --adapt: windows after which a window's weight in the density halves, and how "
                            "many recent scores place the threshold (default: the number of training windows)")

    def fit_options(p):
        p.add_argument("file", metavar="FILE", nargs="?", help=FILE_HELP)
        data_options(p)
        p.add_argument("--train-fraction", metavar="F", type=_fraction, default=DEFAULT_TRAIN_FRACTION,
                       help=f"fit on the first F of the rows (default {DEFAULT_TRAIN_FRACTION})")
        p.add_argument("--window", metavar="W", type=_positive_int, default=DEFAULT_WINDOW,
                       help=f"rows per sliding window (default {DEFAULT_WINDOW})")
        p.add_argument("--step", metavar="S", type=_positive_int, default=1, help="rows between windows (default 1)")
        p.add_argument("--features", choices=FEATURES, default=None,
                       help="what a window becomes: 'level-dynamics' (default: per channel the last reading, the mean "
                            "of the last max(2, W/4), the departure from the window's mean and the last change; "
                            "docs/anomaly-detection.md) or 'windows' (the W readings themselves; the default with "
                            "--differences or --window 1)")
        p.add_argument("--differences", action="store_true",
                       help="with --features windows (implied): add the first differences within each window")
        p.add_argument("--contamination", metavar="C", type=_contamination, default="auto",
                       help="share of training windows flagged, in (0, 0.5], or 'auto' (default: the threshold "
                            "is calibrated to --false-alarm-rate)")
        detector_options(p)
        event_options(p)

    def detector_options(p):  # DensityAnomalyDetector's parameters; the defaults are its own, but the seed
        p.add_argument("--method", choices=METHODS, default=None,
                       help="the density: 'gmm' (default; a Gaussian mixture) or 'kmeans' (K-means centres with a "
                            "spherical variance each; complete windows only, no --adapt)")
        p.add_argument("--components", metavar="K", type=_components, default=None,
                       help="mixture components (clusters), an integer >= 1, or 'bic' (default: the count with the "
                            "lowest BIC among 1..8)")
        p.add_argument("--covariance-type", choices=COVARIANCE_TYPES, default=None,
                       help="of the Gaussian mixture (--method gmm): 'full' (default), 'tied', 'diag' or 'spherical'")
        p.add_argument("--false-alarm-rate", metavar="R", type=_open_fraction, default=None,
                       help="share of normal training windows the threshold flags, in (0, 1) (default 0.01; "
                            "with --contamination auto: a contamination places the threshold itself)")
        p.add_argument("--seed", metavar="S", type=_seed, default=DEFAULT_SEED,
                       help=f"random_state of the fit, an integer in [0, 2**64 - 1] (default {DEFAULT_SEED}): the "
                            "calibration rows held out and the mixture's initialisation")

    def device_option(p):
        p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                       help="where the model is fitted and the windows scored: 'cpu' (default), 'cuda' (GPU 0; an "
                            "error without a CUDA build or device) or 'auto' (the GPU when there is one)")

    def plot_option(p):
        p.add_argument("--no-plot", dest="plot", action="store_false", help="do not write plot.png")

    def json_option(p, what):
        p.add_argument("--json", action="store_true",
                       help=f"write one JSON object to stdout instead of the summary: {what} (README, \"Command "
                            "line\"); warnings and errors stay on stderr")

    def fail_option(p):
        p.add_argument("--fail-on-anomaly", action="store_true",
                       help=f"exit with status {EXIT_ANOMALIES} when at least one event is reported (the outputs are "
                            f"written all the same); without it a run that succeeds exits with {EXIT_OK}")

    p = sub.add_parser("detect", help="fit on the first rows, score all, report and plot the anomalies",
                       description="Fit on the first --train-fraction of the rows, score every window, print the "
                                   "events (flagged windows grouped); write scores.csv, events.csv, plot.png and "
                                   f"{MODEL_FILE} (the detector with the window settings).")
    fit_options(p)
    adapt_options(p, "the windows after the training rows")
    device_option(p)
    plot_option(p)
    fail_option(p)
    json_option(p, "rows, channels, windows, training, model and threshold, events, metrics, files")
    p.set_defaults(run=cmd_detect, subparser=p)
    p = sub.add_parser("fit", help=f"fit and write {MODEL_FILE} (the detector with the window settings)",
                       description=f"Fit on the first --train-fraction of the rows; write {MODEL_FILE} (the detector "
                                   "with the window settings, columns and event options) to --out.")
    fit_options(p)
    device_option(p)
    json_option(p, "rows, channels, windows, training, model and threshold, files")
    p.set_defaults(run=cmd_fit, subparser=p)
    p = sub.add_parser("score", help="score a file with a model written by fit or detect",
                       description="Score every window of FILE with MODEL (which holds the window settings); "
                                   "write scores.csv, events.csv and plot.png.")
    p.add_argument("model", metavar="MODEL", help=f"{MODEL_FILE} written by `mixtura fit` or `mixtura detect` (or an "
                                                   "older model.mixtura with its model.json beside it)")
    p.add_argument("file", metavar="FILE", nargs="?", help=FILE_HELP)
    data_options(p)
    event_options(p)
    adapt_options(p, "every window from the first")
    device_option(p)
    plot_option(p)
    fail_option(p)
    json_option(p, "rows, channels, windows, model and threshold, events, metrics, files")
    p.set_defaults(run=cmd_score, subparser=p)
    return parser


def _check_detector_options(parser, args):
    """parser.error (exit 2) for detector options that do not go together."""
    if args.method == "kmeans":
        if args.covariance_type is not None:
            parser.error(f"--covariance-type applies to --method gmm, not kmeans (got --covariance-type "
                         f"{args.covariance_type})")
        if getattr(args, "adapt", False):
            parser.error("--adapt needs --method gmm: kmeans is fitted in one batch (no partial_fit)")
    if args.false_alarm_rate is not None and args.contamination != "auto":
        parser.error(f"--false-alarm-rate {args.false_alarm_rate:g} applies with --contamination auto, not "
                     f"--contamination {args.contamination:g} (a contamination places the threshold itself)")


def main(argv=None, stdout=None, stderr=None):
    """Run the command line; returns the exit status (EXIT_*: 0 done, 1 events found with --fail-on-anomaly,
    3 the machine failed, 130 interrupted, 141 closed stdout). Bad options or input: 2 (argparse's, as
    SystemExit(2), or returned)."""
    out = sys.stdout if stdout is None else stdout
    err = sys.stderr if stderr is None else stderr
    args = build_parser().parse_args(argv)
    parser = args.subparser  # its errors name the command: "mixtura detect: error: ..."
    if hasattr(args, "features"):  # detect, fit: --differences alone, or one-row windows, mean the readings
        if args.features is None:
            args.features = "windows" if args.differences or args.window == 1 else DEFAULT_FEATURES
        if args.features == "level-dynamics" and args.differences:
            parser.error("--differences applies to --features windows, not level-dynamics")
        if args.features == "level-dynamics" and args.window < 2:
            parser.error(f"--features level-dynamics needs --window >= 2 (a change needs two readings), "
                         f"got {args.window}")
    if getattr(args, "half_life", None) is not None and not args.adapt:
        parser.error("--half-life applies only with --adapt")
    if hasattr(args, "method"):  # detect, fit: the detector's options that go together
        _check_detector_options(parser, args)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"mixtura {args.command}: warning: {message}", file=err)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = show_warning
            # --json: stdout holds the summary alone; the human one is not written
            status, summary = args.run(args, io.StringIO() if args.json else out, err)
            if args.json:
                out.write(json.dumps(summary, allow_nan=False) + "\n")
            out.flush()  # here, not at exit, so that a closed pipe is caught below
            return status
    except DataError as e:
        print(f"mixtura {args.command}: error: {e}", file=err)
        return EXIT_USAGE
    except RunFailure as e:
        print(f"mixtura {args.command}: error: {e}", file=err)
        return EXIT_RUN
    except KeyboardInterrupt:
        print(f"mixtura {args.command}: interrupted", file=err)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`mixtura detect | head`): stop quietly, as Unix tools do
        if out is sys.stdout:  # Python would flush stdout again at exit and fail once more
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as e:  # a file or folder the paths above did not foresee: one line, not a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"mixtura {args.command}: error: {where}{e.strerror or e}", file=err)
        return EXIT_RUN
    except MemoryError:
        print(f"mixtura {args.command}: error: out of memory (a smaller file, --step or --window needs less)",
              file=err)
        return EXIT_RUN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
