"""The sample-weight check of the estimators (mixtura._validation, in place of scikit-learn's private
_check_sample_weight): what it accepts, what it refuses and with which message, that the C++ core
still names a bad entry, and that score, whose pass checks no entry, names it in Python."""
import numpy as np
import pytest

import mixtura
from mixtura._validation import check_sample_weight

pytestmark = pytest.mark.top_level_only(reason="argument checks in Python and the C++ messages: no arithmetic")

X64 = np.zeros((4, 2))
X32 = np.zeros((4, 2), dtype=np.float32)


@pytest.mark.parametrize("given", [[1, 2, 3, 4], (1.0, 2.0, 3.0, 4.0), np.arange(1, 5), np.arange(1, 5, dtype=np.uint8),
                                   np.array([1.0, 2.0, 3.0, 4.0], dtype=object)])
@pytest.mark.parametrize("X", [X64, X32])
def test_one_real_number_per_row_becomes_a_contiguous_array_of_x_dtype(given, X):
    w = check_sample_weight(given, X, "f")
    assert w.dtype == X.dtype and w.shape == (4,) and w.flags.c_contiguous
    np.testing.assert_array_equal(w, [1, 2, 3, 4])


def test_a_scalar_is_broadcast_and_none_stays_none():
    np.testing.assert_array_equal(check_sample_weight(2.5, X32, "f"), np.full(4, 2.5, dtype=np.float32))
    np.testing.assert_array_equal(check_sample_weight(np.float64(3), X64, "f"), np.full(4, 3.0))
    np.testing.assert_array_equal(check_sample_weight(np.array(1), X64, "f"), np.ones(4))
    assert check_sample_weight(None, X64, "f") is None


def test_a_contiguous_array_of_x_dtype_is_used_as_it_is():
    w = np.ones(4)
    assert check_sample_weight(w, X64, "f") is w
    strided = np.ones(8)[::2]
    assert check_sample_weight(strided, X64, "f").flags.c_contiguous and strided.base is not None


def test_pandas_series_are_taken():
    pd = pytest.importorskip("pandas")
    np.testing.assert_array_equal(check_sample_weight(pd.Series([1, 2, 3, 4]), X64, "f"), [1, 2, 3, 4])
    np.testing.assert_array_equal(check_sample_weight(pd.Series([1, 2, 3, 4], dtype="Float64"), X64, "f"),
                                  [1, 2, 3, 4])
    w = check_sample_weight(pd.Series([1, None, 3, 4], dtype="Int64"), X64, "f")  # NA: NaN, for the core to name
    assert np.isnan(w[1]) and w.dtype == np.float64


@pytest.mark.parametrize("given, message", [
    (np.ones(3), r"who: sample_weight.shape == \(3,\), expected \(4,\)!"),
    (np.ones((4, 2)), r"who: sample_weight.shape == \(4, 2\), expected \(4,\)!"),
    (np.ones((4, 1)), r"who: sample_weight.shape == \(4, 1\), expected \(4,\)!"),
    ([], r"who: sample_weight.shape == \(0,\), expected \(4,\)!"),
    (["1", "2", "3", "4"], r"who: sample_weight must hold real numbers, got dtype <U1"),
    (np.ones(4, dtype=complex), r"who: sample_weight must hold real numbers, got dtype complex128"),
    (np.array(["a", 1, 2, 3], dtype=object), r"who: sample_weight must hold real numbers \(could not convert"),
    (np.zeros(4), r"who: sample_weight is all zero \(4 rows\); at least one weight must be > 0"),
    (0.0, r"who: sample_weight is all zero"),
])
def test_what_is_refused_names_the_caller_and_the_value(given, message):
    with pytest.raises(ValueError, match=message):
        check_sample_weight(given, X64, "who")


def test_all_zero_weights_pass_where_the_caller_allows_them():
    np.testing.assert_array_equal(check_sample_weight(np.zeros(4), X64, "f", allow_all_zero=True), np.zeros(4))


@pytest.mark.parametrize("estimator, who", [(mixtura.KMeans(2, random_state=0), "KMeans"),
                                            (mixtura.MiniBatchKMeans(2, random_state=0), "MiniBatchKMeans"),
                                            (mixtura.GaussianMixture(2, random_state=0), "GaussianMixture")])
def test_the_estimators_name_themselves_and_leave_bad_entries_to_the_core(blobs, estimator, who):
    w = np.ones(len(blobs))
    with pytest.raises(ValueError, match=rf"^{who}.fit: sample_weight.shape == \(899,\), expected \(900,\)!"):
        estimator.fit(blobs, sample_weight=w[1:])
    with pytest.raises(ValueError, match=rf"^{who}.fit: sample_weight is all zero"):
        estimator.fit(blobs, sample_weight=0 * w)
    # Entries: the C++ check names the first bad one (checked once, there).
    w[7] = np.nan
    with pytest.raises(ValueError, match=rf"{who}\.fit: sample_weight\[7\] = nan is not finite"):
        estimator.fit(blobs, sample_weight=w)
    w[7] = -2
    with pytest.raises(ValueError, match=rf"{who}\.fit: sample_weight\[7\] = -2 is negative"):
        estimator.fit(blobs, sample_weight=w)


def test_kmeans_statistics_and_a_later_minibatch_chunk_may_weigh_nothing(blobs):
    km = mixtura.KMeans(3, random_state=0).fit(blobs)
    assert km.statistics(blobs, sample_weight=np.zeros(len(blobs))).weight.sum() == 0
    mb = mixtura.MiniBatchKMeans(3, random_state=0).partial_fit(blobs)
    mb.partial_fit(blobs[:10], sample_weight=np.zeros(10))
    with pytest.raises(ValueError, match=r"MiniBatchKMeans.partial_fit: sample_weight is all zero"):
        mixtura.MiniBatchKMeans(3, random_state=0).partial_fit(blobs, sample_weight=np.zeros(len(blobs)))


@pytest.mark.parametrize("given, message", [
    ([1.0, np.nan, -1.0, 1.0], r"^who: sample_weight\[1\] = nan is not finite$"),
    ([1.0, 1.0, -0.5, np.inf], r"^who: sample_weight\[2\] = -0.5 is negative$"),
    ([1.0, -np.inf, 1.0, 1.0], r"^who: sample_weight\[1\] = -inf is not finite$"),
    ([1e308, 1e308, 0.0, 0.0], r"^who: sample_weight sums to inf; need a positive finite sum$"),
])
def test_check_values_names_the_first_bad_entry_in_the_cores_words(given, message):
    assert check_sample_weight(given, X64, "who") is not None  # without check_values: left to the core
    with pytest.raises(ValueError, match=message):
        check_sample_weight(given, X64, "who", check_values=True)
    np.testing.assert_array_equal(check_sample_weight([0, 1, 2, 3], X64, "who", check_values=True), [0, 1, 2, 3])


@pytest.mark.parametrize("estimator, who", [(mixtura.KMeans(2, random_state=0), "KMeans"),
                                            (mixtura.MiniBatchKMeans(2, random_state=0), "MiniBatchKMeans"),
                                            (mixtura.GaussianMixture(2, random_state=0), "GaussianMixture")])
def test_score_refuses_bad_weights_that_its_pass_would_take(blobs, estimator, who):
    # score's pass (kmeans_score, or the mean of score_samples) checks no weight: NaN or negative
    # weights used to give NaN or a meaningless score, a wrong length a bare numpy TypeError.
    est = estimator.fit(blobs)
    w = np.ones(len(blobs))
    for bad, message in ((np.nan, "nan is not finite"), (-2.0, "-2 is negative"), (np.inf, "inf is not finite")):
        w[7] = bad
        with pytest.raises(ValueError, match=rf"^{who}.score: sample_weight\[7\] = {message}$"):
            est.score(blobs, sample_weight=w)
    with pytest.raises(ValueError, match=rf"^{who}.score: sample_weight.shape == \(899,\), expected \(900,\)!"):
        est.score(blobs, sample_weight=w[1:])
    with pytest.raises(ValueError, match=rf"^{who}.score: sample_weight is all zero"):
        est.score(blobs, sample_weight=np.zeros(len(blobs)))
    # Good weights: the weighted mean of the rows' scores (a scalar weighs every row alike).
    w = np.random.default_rng(0).uniform(0, 2, len(blobs))
    rows = est.score_samples(blobs) if who == "GaussianMixture" else -est.transform(blobs).min(axis=1) ** 2
    expected = np.average(rows, weights=w) if who == "GaussianMixture" else w @ rows
    assert est.score(blobs, sample_weight=w) == pytest.approx(expected, rel=1e-9)
    assert est.score(blobs, sample_weight=3.0) == pytest.approx(est.score(blobs) * (1 if who == "GaussianMixture"
                                                                                     else 3), rel=1e-12)
