"""Gaussian mixtures on streams from Python: the sufficient statistics (against NumPy's sums of the
responsibilities), fits from merged chunk statistics against the batch fit, pickling, and online EM
(partial_fit) on a stationary stream and after an abrupt change."""
import pickle
import re

import numpy as np
import pytest
import sklearn.mixture

import mixtura

TYPES = ["full", "tied", "diag", "spherical"]
BLOCK = 256  # the E-step's block of rows: with fewer than 64 blocks, each is one reduction group


def _blobs(n, d=3, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5, size=(3, d)) + offset
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, d)) * (1 + 0.3 * np.arange(d))


def _merged(gm, X, cuts, w=None):
    total = None
    for b, e in zip(cuts[:-1], cuts[1:]):
        s = gm.statistics(X[b:e], None if w is None else w[b:e], first_row=b)
        total = s if total is None else total + s
    return total


@pytest.mark.parametrize("cov", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_statistics_are_the_sums_of_the_responsibilities(cov, dtype):
    X = _blobs(1500, seed=1, offset=50).astype(dtype)
    w = np.linspace(0.5, 2, len(X)).astype(dtype)
    gm = mixtura.GaussianMixture(3, covariance_type=cov, random_state=0).fit(X)
    s = gm.statistics(X, w)
    # float64 oracles: the float32 outputs are rounded; the statistics come from the kept float64 model
    r = gm._eval(X, "predict_proba", exact=True) * w[:, None].astype(np.float64)
    x = X.astype(np.float64)
    assert s.covariance_type == cov and (s.n_components, s.n_features) == (3, 3)
    np.testing.assert_allclose(s.nk, r.sum(0), rtol=1e-10)
    np.testing.assert_allclose(s.weight, w.astype(np.float64).sum(), rtol=1e-12)
    for k in range(3):
        d = x - s.shift[k]
        np.testing.assert_allclose(s.s1[k], r[:, k] @ d, rtol=1e-8, atol=1e-8 * np.abs(d).max() * s.nk[k])
        scatter = (d * r[:, [k]]).T @ d
        s2 = s.s2[k] if s.s2.ndim == 3 else np.diag(s.s2[k])
        want = scatter if s.s2.ndim == 3 else np.diag(np.diag(scatter))
        np.testing.assert_allclose(s2, want, rtol=1e-9, atol=1e-9 * np.abs(scatter).max())
    np.testing.assert_allclose(s.log_likelihood, w.astype(np.float64) @ gm._score_samples64(X), rtol=1e-10)
    # The worst-explained rows, with their values, lowest log-likelihood first.
    order = np.argsort(gm._score_samples64(X), kind="stable")[:3]
    np.testing.assert_array_equal(s.worst_rows, order)
    np.testing.assert_array_equal(s.worst_values, x[order])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # max_iter=6, tol=0
@pytest.mark.parametrize("cov", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_from_chunk_statistics_is_the_batch_fit(cov, dtype):
    n = 5000
    X = _blobs(n, seed=2, offset=-30).astype(dtype)
    batch = mixtura.GaussianMixture(3, covariance_type=cov, tol=0, max_iter=6, random_state=4).fit(X)
    start = mixtura.GaussianMixture(3, covariance_type=cov, tol=0, max_iter=1, random_state=4).fit(X)
    groups = list(range(0, n, BLOCK)) + [n]  # the pass's own reduction groups: the same bits
    gm = pickle.loads(pickle.dumps(start))
    for _ in range(5):
        gm.update(_merged(gm, X, groups))
    for name in ("weights_", "means_", "precisions_cholesky_", "covariances_"):
        np.testing.assert_array_equal(getattr(gm, name), getattr(batch, name), err_msg=name)
    np.testing.assert_array_equal(gm.elbo_trace_, batch.elbo_trace_)
    assert gm.n_iter_ == batch.n_iter_ == 6
    # Any other chunking: the same sums in another order.
    other = pickle.loads(pickle.dumps(start))
    for _ in range(5):
        other.update(_merged(other, X, [0, 1, 999, 2500, 4321, n]))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(other, name), getattr(batch, name), rtol=1e-12,
                                   atol=1e-12 * np.abs(getattr(batch, name)).max(), err_msg=name)


def test_update_drops_a_step_whose_bound_fell_within_round_off_as_fit_does():
    X = _blobs(2000, seed=5)
    gm = mixtura.GaussianMixture(3, covariance_type="tied", max_iter=3, random_state=1).fit(X)
    stats = gm.statistics(X)
    bound = stats.log_likelihood / stats.weight
    # The last record's bound a few 1e-15 above the statistics': a fall that only round-off makes.
    gm.lower_bound_ = bound + 4e-15 * abs(bound)
    trace, n_iter, means = gm.elbo_trace_.copy(), gm.n_iter_, gm.means_.copy()
    gm.converged_ = False
    gm.update(stats)
    np.testing.assert_array_equal(gm.elbo_trace_, trace)  # no record: the step is not applied
    np.testing.assert_array_equal(gm.means_, means)
    assert gm.n_iter_ == n_iter and gm.converged_
    fall = [e for e in gm.events_ if e["kind"] == "roundoff_decrease"]
    assert len(fall) == 1 and fall[0]["iteration"] == n_iter  # numbered as fit numbers the dropped step
    assert fall[0]["value"] == pytest.approx(4e-15 * abs(bound), rel=0.5)
    # A rise is applied as usual.
    gm.lower_bound_ = bound - 1e-3
    gm.update(stats)
    assert gm.n_iter_ == n_iter + 1 and gm.elbo_trace_[-1, 0] == bound


def test_statistics_pickle_and_merge_are_small_and_exact():
    X = _blobs(20000, d=4, seed=3)
    gm = mixtura.GaussianMixture(2, random_state=0).fit(X)
    a, b = gm.statistics(X[:7000]), gm.statistics(X[7000:], first_row=7000)
    blob = pickle.dumps(a)
    assert len(blob) < 4000  # O(K D^2): nothing per row
    back = pickle.loads(blob)
    for name in ("nk", "s1", "s2", "shift", "worst_rows", "worst_values"):
        np.testing.assert_array_equal(getattr(back, name), getattr(a, name))
    np.testing.assert_array_equal((back + b).s2, a.merge(b).s2)
    assert "GaussianMixtureStatistics(covariance_type='full', n_components=2" in repr(a)
    with pytest.raises(ValueError, match="merged with diag"):
        a + mixtura.GaussianMixture(2, covariance_type="diag", random_state=0).fit(X).statistics(X[:10])
    with pytest.raises(ValueError, match="GaussianMixture.update: statistics must be a GaussianMixtureStatistics"):
        gm.update({"nk": 1})
    # update works on an unfitted estimator: the statistics carry the sizes.
    fresh = mixtura.GaussianMixture(2).update(a + b)
    assert fresh.n_iter_ == 1 and fresh.means_.shape == (2, 4)
    with pytest.raises(ValueError, match="expected tied with 2"):
        mixtura.GaussianMixture(2, covariance_type="tied").update(a)


STATE_FIELDS = ("covariance_type", "n_components", "n_features", "nk", "s1", "shift", "s2", "log_likelihood",
                "entropy", "weight", None, "worst_log_likelihood", "worst_rows", "worst_values")  # None: capacity


@pytest.mark.parametrize("cov", TYPES)
def test_statistics_attributes_are_the_pickle_state(tmp_path, cov):
    # Each attribute is built on its own, not cut from the whole pickle state; it is that state's
    # field, dtype and shape included: worst rows kept with their values, and those of a loaded
    # stream, which keeps none (an empty list read by NumPy: float64).
    X = _blobs(600, d=3, seed=4)
    gm = mixtura.GaussianMixture(3, covariance_type=cov, half_life=300, random_state=0).fit(X[:300])
    gm.partial_fit(X[300:])
    gm.save(tmp_path / "stream.mxt")
    loaded = mixtura.load(tmp_path / "stream.mxt").stream_statistics_
    for stats, m in ((gm.statistics(X), 3), (gm.statistics(X[:2]), 2), (loaded, 0)):
        state = stats.__reduce__()[1][0]
        for name, field in zip(STATE_FIELDS, state):
            if name is None:
                continue
            value = getattr(stats, name)
            if isinstance(field, np.ndarray):
                assert value.dtype == field.dtype and value.shape == field.shape, name
            np.testing.assert_array_equal(value, field, err_msg=name)
        assert stats.nk.dtype == np.float64 and stats.nk.shape == (3,)
        assert stats.worst_log_likelihood.dtype == np.float64 and stats.worst_log_likelihood.shape == (m,)
        assert stats.worst_rows.dtype == (np.int64 if m else np.float64) and stats.worst_rows.shape == (m,)
        assert stats.worst_values.dtype == np.float64 and stats.worst_values.shape == ((m, 3) if m else (0, 3))


def test_a_tampered_statistics_state_names_the_field_and_its_shapes():
    X = _blobs(300, d=2)
    state = mixtura.GaussianMixture(3, random_state=0).fit(X).statistics(X).__reduce__()[1][0]

    def unpickle(**fields):
        tampered = [fields.get(name, field) for name, field in zip(STATE_FIELDS, state)]
        return mixtura._gmm._statistics_from_state(tuple(tampered))

    where = "GaussianMixtureStatistics: pickled state: "
    for fields, says in (
            (dict(nk=np.ones(2)), "nk has shape (2,), expected (3,)"),
            (dict(s1=np.zeros((3, 4))), "s1 has shape (3, 4), expected (3, 2)"),
            (dict(shift=np.zeros(6)), "shift has shape (6,), expected (3, 2)"),
            (dict(s2=np.zeros((3, 2))), "s2 has shape (3, 2), expected (3, 2, 2)"),  # full: (K, D, D)
            (dict(worst_log_likelihood=np.zeros(4)), "worst_log_likelihood has shape (4,), expected (m,) with m <= 3"),
            (dict(worst_rows=np.zeros(2, np.int64)), "worst_rows has shape (2,), expected (3,), one per"),
            (dict(worst_values=np.zeros((3, 5))), "worst_values has shape (3, 5), expected (3, 2) or none")):
        with pytest.raises(ValueError, match=re.escape(where + says)):
            unpickle(**fields)
    assert unpickle().s1.shape == (3, 2)  # the untampered state loads


def _mixture_rows(rng, n, centres):
    k = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    return centres[k] + rng.normal(size=(n, 2))


def _sorted_means(m):
    return m[np.argsort(m[:, 0])]


def test_online_em_on_a_stationary_stream_approaches_the_batch_fit():
    rng = np.random.default_rng(42)
    centres = np.array([[0.0, 0.0], [6.0, 1.0], [3.0, 7.0]])
    X = _mixture_rows(rng, 40000, centres)
    online = mixtura.GaussianMixture(3, random_state=1)
    for chunk in np.array_split(X, 80):
        online.partial_fit(chunk)
    assert online.n_steps_ == 80 and online.n_iter_ > 79
    reference = sklearn.mixture.GaussianMixture(3, random_state=0).fit(X)  # scikit-learn's batch EM
    gap = np.abs(_sorted_means(online.means_) - _sorted_means(reference.means_)).max()
    assert gap < 0.05, gap  # a mean's standard error is about 0.01 here
    assert 0 <= reference.score(X) - online.score(X) < 2e-3
    assert online.elbo_trace_.shape == (online.n_iter_, 2)
    assert not online.converged_


def test_online_em_with_a_half_life_follows_an_abrupt_change():
    rng = np.random.default_rng(7)
    before = np.array([[0.0, 0.0], [3.0, 7.0], [6.0, 1.0]])
    after = before + [1.5, -1.0]
    follows = mixtura.GaussianMixture(3, half_life=2000, random_state=3)
    decays = mixtura.GaussianMixture(3, random_state=3)
    for _ in range(30):
        x = _mixture_rows(rng, 500, before)
        follows.partial_fit(x)
        decays.partial_fit(x)
    for _ in range(16):  # 8000 rows: four half-lives
        x = _mixture_rows(rng, 500, after)
        follows.partial_fit(x)
        decays.partial_fit(x)
    assert np.abs(_sorted_means(follows.means_) - after).max() < 0.25
    assert np.abs(_sorted_means(decays.means_) - after).max() > 0.5


def test_partial_fit_goes_on_from_a_fitted_or_loaded_model(tmp_path):
    rng = np.random.default_rng(0)
    X = _mixture_rows(rng, 4000, np.array([[0.0, 0.0], [6.0, 1.0], [3.0, 7.0]]))
    gm = mixtura.GaussianMixture(3, random_state=0).fit(X[:2000])
    assert gm.n_steps_ == 0 and gm.stream_statistics_ is None
    n_iter = gm.n_iter_
    gm.partial_fit(X[2000:3000])
    assert gm.n_steps_ == 2 and gm.n_iter_ == n_iter + 1
    assert isinstance(gm.stream_statistics_, mixtura.GaussianMixtureStatistics)
    np.testing.assert_allclose(gm.stream_statistics_.weight, 1.0, rtol=1e-12)  # per unit weight
    gm.partial_fit(X[3000:3500].astype(np.float32))
    assert gm.n_steps_ == 3


def test_partial_fit_refuses_bad_parameters_and_shapes():
    X = _blobs(300, d=2)
    with pytest.raises(ValueError, match=r"GaussianMixture: learning_decay must be a number in \(0.5, 1\], got 0.5"):
        mixtura.GaussianMixture(2, learning_decay=0.5).partial_fit(X)
    with pytest.raises(ValueError, match=r"half_life must be None or a number in \(0, inf\), got 0"):
        mixtura.GaussianMixture(2, half_life=0).partial_fit(X)
    with pytest.raises(ValueError, match=r"learning_offset must be a number in \[0, inf\), got -1"):
        mixtura.GaussianMixture(2, learning_offset=-1).partial_fit(X)
    gm = mixtura.GaussianMixture(2).partial_fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2 features"):
        gm.partial_fit(_blobs(10, d=3))
    with pytest.raises(ValueError, match="first_row must be an integer >= 0, got -1"):
        gm.statistics(X, first_row=-1)


@pytest.mark.parametrize("cov", TYPES)
def test_a_saved_stream_resumes_where_it_stopped(tmp_path, cov):
    rng = np.random.default_rng(1)
    chunks = [_mixture_rows(rng, 400, np.array([[0.0, 0.0], [6.0, 1.0], [3.0, 7.0]])) for _ in range(7)]
    gm = mixtura.GaussianMixture(3, covariance_type=cov, half_life=1000, random_state=0)
    for c in chunks[:5]:
        gm.partial_fit(c)
    gm.save(tmp_path / "stream.mxt")
    copies = [mixtura.load(tmp_path / "stream.mxt"), pickle.loads(pickle.dumps(gm))]
    for c in chunks[5:]:
        for est in [gm] + copies:
            est.partial_fit(c)
    for est in copies:
        assert est.n_steps_ == gm.n_steps_ == 7
        for name in ("weights_", "means_", "precisions_cholesky_", "elbo_trace_"):
            np.testing.assert_array_equal(getattr(est, name), getattr(gm, name), err_msg=name)
        np.testing.assert_array_equal(est.stream_statistics_.s2, gm.stream_statistics_.s2)
    # A file without the stream sections (a batch fit's, or an older file) resumes from its model.
    fitted = mixtura.GaussianMixture(3, covariance_type=cov, random_state=0).fit(np.vstack(chunks[:2]))
    fitted.save(tmp_path / "batch.mxt")
    again = mixtura.load(tmp_path / "batch.mxt")
    assert again.n_steps_ == 0
    again.partial_fit(chunks[2])
    assert again.n_steps_ == 2


@pytest.mark.parametrize("cov", ["full", "diag"])
def test_cpp_keeps_the_stream_state_it_loads(tmp_path, cov):
    from test_model_files import run_tool

    rng = np.random.default_rng(2)
    chunks = [_mixture_rows(rng, 300, np.array([[0.0, 0.0], [6.0, 1.0], [3.0, 7.0]])) for _ in range(5)]
    gm = mixtura.GaussianMixture(3, covariance_type=cov, half_life=900, random_state=0)
    for c in chunks[:4]:
        gm.partial_fit(c)
    gm.save(tmp_path / "py.mxt")
    run_tool("resave", tmp_path / "py.mxt", tmp_path / "cpp.mxt")  # through a C++ GaussianMixture
    again = mixtura.load(tmp_path / "cpp.mxt")
    assert again.n_steps_ == 4
    again.set_params(half_life=900)
    gm.partial_fit(chunks[4])
    again.partial_fit(chunks[4])
    np.testing.assert_array_equal(again.means_, gm.means_)
    np.testing.assert_array_equal(again.precisions_cholesky_, gm.precisions_cholesky_)


def test_stream_events_belong_to_the_kept_restart(tmp_path):
    rng = np.random.default_rng(8)
    centres = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]])
    gm = mixtura.GaussianMixture(3, half_life=500, random_state=0).fit(_mixture_rows(rng, 2000, centres))
    # As if the fit had kept its second restart, the first one shorter than the stream's trace.
    gm.elbo_traces_ = [gm.elbo_trace_[:1].copy(), gm.elbo_trace_]
    two = centres.copy()
    two[2] = centres[0]  # the third component's rows stop coming: it starves
    for _ in range(60):
        gm.partial_fit(_mixture_rows(rng, 500, two))
    starved = [e for e in gm.events_ if e["kind"] == "component_starved"]
    assert len(starved) == 1 and starved[0]["restart"] == 1
    assert gm.elbo_traces_[1] is gm.elbo_trace_
    gm.save(tmp_path / "gm.mxt")  # the loader checks every event against its restart's trace
    again = mixtura.load(tmp_path / "gm.mxt")
    assert again.events_ == gm.events_
