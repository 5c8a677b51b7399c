"""mixtura.group_events (flagged windows -> events) and mixtura.score_events (NAB-style event scoring)."""
import math

import numpy as np
import pytest

import mixtura
from mixtura import Event, group_events, score_events


def spans(events):
    return [(e.start, e.end, e.n_flagged) for e in events]


# --------------------------------------------------------------------------------------- group_events

def test_nothing_flagged_no_event():
    assert group_events([]) == []
    assert group_events(np.zeros(5, dtype=bool), np.zeros(5)) == []


def test_all_flagged_is_one_event():
    assert group_events([1, 1, 1], [-1.0, -3.0, -2.0]) == [Event(0, 2, 1, -3.0, 3)]


def test_runs_merge_at_exactly_merge_gap_and_not_one_more():
    flags = [1, 0, 0, 1, 0, 0, 0, 1]  # gaps of 2 then 3 unflagged windows
    assert spans(group_events(flags, merge_gap=0)) == [(0, 0, 1), (3, 3, 1), (7, 7, 1)]
    assert spans(group_events(flags, merge_gap=2)) == [(0, 3, 2), (7, 7, 1)]
    assert spans(group_events(flags, merge_gap=3)) == [(0, 7, 3)]


def test_min_length_counts_flagged_windows_not_the_span():
    flags = [1, 0, 1, 0, 0, 0, 1, 1, 1]
    # the first event spans 3 windows but holds 2 flagged ones
    assert spans(group_events(flags, merge_gap=1, min_length=2)) == [(0, 2, 2), (6, 8, 3)]
    assert spans(group_events(flags, merge_gap=1, min_length=3)) == [(6, 8, 3)]
    assert group_events(flags, merge_gap=1, min_length=4) == []


def test_unscored_windows_are_never_flagged():
    flags = [1, 1, 1]
    scores = [-5.0, np.nan, -6.0]
    # the NaN window is a gap between two events...
    assert spans(group_events(flags, scores)) == [(0, 0, 1), (2, 2, 1)]
    # ...which a merge gap of 1 bridges, without counting it
    (e,) = group_events(flags, scores, merge_gap=1)
    assert (e.start, e.end, e.n_flagged, e.peak, e.peak_score) == (0, 2, 2, 2, -6.0)
    assert group_events([1], [np.nan]) == []


def test_peak_is_the_first_lowest_flagged_score():
    (e,) = group_events([1, 1, 1], [-2.0, -3.0, -3.0])
    assert (e.peak, e.peak_score) == (1, -3.0)
    # an unflagged window inside a merged event is no peak, even scoring lower (a threshold that moved)
    (e,) = group_events([1, 0, 1], [-1.0, -10.0, -2.0], merge_gap=1)
    assert (e.peak, e.peak_score) == (2, -2.0)
    # without scores: the start, and no score
    (e,) = group_events([0, 1, 1])
    assert e.peak == 1 and math.isnan(e.peak_score)


def test_flags_as_numbers_or_booleans_alike():
    flags = np.array([0, 1, 1, 0, 1])
    expected = group_events(flags.astype(bool), merge_gap=1)
    assert group_events(flags, merge_gap=1) == expected
    assert group_events(flags.astype(np.float32), merge_gap=1) == expected
    assert group_events(flags.tolist(), merge_gap=1) == expected


def reference_events(flagged, scores, min_length, merge_gap):
    """A plain loop: walk the windows, close an event after more than merge_gap unflagged windows."""
    flagged = [bool(f) and not math.isnan(s) for f, s in zip(flagged, scores)]
    events, current, gap = [], None, 0
    for i, f in enumerate(flagged + [False] * (merge_gap + 1)):
        if f:
            current = [i, i, 1] if current is None else [current[0], i, current[2] + 1]
            gap = 0
        elif current is not None:
            gap += 1
            if gap > merge_gap:
                events.append(current)
                current = None
    out = []
    for s, e, k in events:
        if k >= min_length:
            inside = [(scores[i], i) for i in range(s, e + 1) if flagged[i]]
            peak_score, peak = min(inside)  # ties: the lower index
            out.append(Event(s, e, peak, peak_score, k))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_against_a_plain_loop(seed):
    rng = np.random.default_rng(seed)
    n = 300
    flagged = rng.random(n) < 0.3
    scores = np.round(rng.normal(size=n), 1)  # ties happen
    scores[rng.random(n) < 0.05] = np.nan
    for min_length in (1, 2, 4):
        for merge_gap in (0, 1, 3):
            got = group_events(flagged, scores, min_length=min_length, merge_gap=merge_gap)
            assert got == reference_events(flagged.tolist(), scores.tolist(), min_length, merge_gap)


@pytest.mark.parametrize("call,message", [
    (lambda: group_events([1, 0], merge_gap=-1), r"group_events: merge_gap must be an integer >= 0, got -1"),
    (lambda: group_events([1, 0], min_length=0), r"group_events: min_length must be an integer >= 1, got 0"),
    (lambda: group_events([1, 0], min_length=1.5), r"min_length must be an integer >= 1, got 1\.5"),
    (lambda: group_events([1, 0], merge_gap=True), r"merge_gap must be an integer >= 0, got True"),
    (lambda: group_events([1, 0], [0.0]), r"group_events: scores has shape \(1,\), flagged has shape \(2,\)"),
    (lambda: group_events([0, 2]), r"group_events: flagged must be booleans or 0/1, got 2 at index 1"),
    (lambda: group_events([0, np.nan]), r"flagged must be booleans or 0/1, got nan at index 1"),
    (lambda: group_events(["yes"]), r"flagged must be booleans or 0/1, got dtype <U3"),
    (lambda: group_events([[1, 0]]), r"group_events: flagged must be 1-D, got shape \(1, 2\)"),
])
def test_bad_arguments_name_the_function_and_value(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------- score_events

def sigma(y):
    """NAB's scaled sigmoid, 2 / (1 + exp(5 y)) - 1, written as -tanh(5 y / 2)."""
    return -1.0 if y >= 3 else -math.tanh(2.5 * y)


WINDOW = (10, 19)  # L = 10


def test_a_detection_at_the_window_start_is_perfect():
    s = score_events([10], [WINDOW])
    assert s.raw == pytest.approx(1.0, abs=1e-15) and s.normalized == pytest.approx(100.0)
    assert (s.windows_detected, s.windows_missed, s.false_events, s.mean_earliness) == (1, 0, 0, 0.0)


def test_a_detection_at_the_window_end_scores_little():
    s = score_events([19], [WINDOW])
    # y = -(19 - 19 + 1) / 10 = -0.1: tanh(0.25) / tanh(2.5) = 0.24824
    assert s.raw == pytest.approx(math.tanh(0.25) / math.tanh(2.5), rel=1e-12)
    assert s.raw == pytest.approx(0.248242, abs=1e-6)
    assert s.normalized == pytest.approx(100 * (0.248242 + 1) / 2, abs=1e-4)
    assert s.mean_earliness == 1.0


def test_a_missed_window_costs_a_fn():
    s = score_events([], [WINDOW])
    assert (s.raw, s.normalized, s.windows_detected, s.windows_missed) == (-1.0, 0.0, 0, 1)
    assert math.isnan(s.mean_earliness)
    assert score_events([], [WINDOW], profile="reward_low_FN").raw == -2.0


def test_a_false_positive_before_any_window_costs_a_fp():
    s = score_events([3], [WINDOW])
    assert s.raw == pytest.approx(-0.11 - 1.0) and s.normalized == pytest.approx(-5.5)
    assert (s.false_events, s.windows_missed) == (1, 1)
    assert score_events([3], [WINDOW], profile="reward_low_FP").raw == pytest.approx(-0.22 - 1.0)


def test_a_false_positive_after_a_window_is_weighted_by_its_distance():
    # y = (25 - 19) / (10 - 1): just after the window a false alarm costs less than A_FP
    s = score_events([10, 25], [WINDOW])
    assert s.raw == pytest.approx(1.0 + 0.11 * sigma(6 / 9), rel=1e-12)
    assert s.raw == pytest.approx(1.0 - 0.102422, abs=1e-6)
    assert s.false_events == 1 and s.windows_detected == 1
    # from three window lengths past the end on, a full A_FP
    assert score_events([10, 19 + 27], [WINDOW]).raw == pytest.approx(1.0 - 0.11)


def test_two_detections_in_one_window_count_once():
    s = score_events([15, 12], [WINDOW])  # any order; the first (12) counts, 15 adds nothing
    assert s.raw == pytest.approx(math.tanh(2.0) / math.tanh(2.5), rel=1e-12)  # y = -8 / 10
    assert (s.windows_detected, s.false_events) == (1, 0)
    assert s.mean_earliness == pytest.approx(2 / 9)


def test_events_count_at_their_start():
    events = group_events(np.arange(30) >= 8, merge_gap=0)  # one event 8..29: it started before the window
    s = score_events(events, [WINDOW], n=30)
    assert (s.windows_detected, s.false_events) == (0, 1)
    assert s.raw == pytest.approx(-0.11 - 1.0)


def test_several_windows_and_no_window():
    windows = [(40, 44), (10, 19)]  # any order
    s = score_events([10, 21, 44], windows)
    # 10 opens the first window (+1), 21 is 2 past it (y = 2 / 9), 44 ends the second (y = -1/5)
    expected = 1.0 + 0.11 * sigma(2 / 9) + sigma(-1 / 5) / sigma(-1)
    assert s.raw == pytest.approx(expected, rel=1e-12)
    assert s.normalized == pytest.approx(100 * (expected + 2) / 4, rel=1e-12)
    assert s.mean_earliness == pytest.approx((0 + 1) / 2)
    none = score_events([1, 2], [])
    assert none.raw == pytest.approx(-0.22) and math.isnan(none.normalized) and none.false_events == 2
    one = score_events([5], [(5, 5)])  # a window of one index: detected at its start and end at once
    assert one.raw == pytest.approx(1.0) and one.mean_earliness == 0.0


@pytest.mark.parametrize("call,message", [
    (lambda: score_events([1], [(0, 4)], profile="strict"), r"score_events: profile must be one of 'standard'"),
    (lambda: score_events([-1], [(0, 4)]), r"score_events: a detection must be an index >= 0 or an Event, got -1"),
    (lambda: score_events([9], [(0, 4)], n=9), r"score_events: detection 9 lies past the sequence of n=9"),
    (lambda: score_events([1], [(4, 2)]), r"score_events: label window \(4, 2\) ends before it starts"),
    (lambda: score_events([1], [(0, 9)], n=9), r"label window \(0, 9\) ends past the sequence of n=9"),
    (lambda: score_events([1], [(0, 4), (4, 6)]), r"label windows overlap: one ends at 4, the next starts at 4"),
    (lambda: score_events([1], [(0,)]), r"a label window must be a \(start, end\) pair, got \(0,\)"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_exported():
    assert {"Event", "EventScore", "group_events", "score_events"} <= set(mixtura.__all__)
