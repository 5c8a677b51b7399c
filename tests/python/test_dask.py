"""mixtura.dask: fits over Dask arrays against the one-machine fits (bit for bit where the blocks are the
one-machine pass's reduction groups, to 1e-10 for any chunking), the same bits for any scheduler and any
number of worker processes, k-means|| with weighted candidates, and the errors a user meets."""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
import mixtura  # noqa: E402
import mixtura.dask as md  # noqa: E402

BLOCK = 256  # the one-machine pass's block of rows: below 64 blocks, each block is a reduction group
TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(n, d=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6, size=(4, d))
    return centres[rng.integers(0, 4, n)] + rng.normal(size=(n, d)) * (1 + 0.2 * np.arange(d))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_on_the_pass_blocks_is_the_one_machine_fit(dtype, weighted):
    X = _blobs(6000, seed=1).astype(dtype)
    w = np.random.default_rng(2).uniform(0.2, 3, len(X)).astype(dtype) if weighted else None
    init = X[[5, 17, 40, 99]].copy()
    one = mixtura.KMeans(4, init=init, n_init=1, tol=1e-6).fit(X, sample_weight=w)
    dk = md.KMeans(4, init=init, n_init=1, tol=1e-6).fit(da.from_array(X, chunks=(BLOCK, -1)), sample_weight=w)
    assert dk.cluster_centers_.dtype == dtype
    np.testing.assert_array_equal(dk.cluster_centers_, one.cluster_centers_)
    np.testing.assert_array_equal(dk.distortion_trace_, one.distortion_trace_)
    assert (dk.inertia_, dk.n_iter_, dk.converged_) == (one.inertia_, one.n_iter_, one.converged_)
    assert isinstance(dk.labels_, da.Array)
    np.testing.assert_array_equal(dk.labels_.compute(), one.labels_)
    # Any other chunking: the same sums in another order.
    other = md.KMeans(4, init=init, n_init=1, tol=1e-6).fit(da.from_array(X, chunks=(777, -1)), sample_weight=w)
    np.testing.assert_allclose(other.cluster_centers_, one.cluster_centers_, rtol=1e-10 if dtype == np.float64 else 1e-5)
    assert other.n_iter_ == one.n_iter_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_default_fits_do_not_depend_on_the_chunking(dtype):
    # Every random draw is hashed from its row's index: k-means|| picks the same candidates, random
    # responsibilities are the same, whatever the blocks; the sums differ in order only.
    X = _blobs(6000, seed=31).astype(dtype)
    w = np.random.default_rng(32).uniform(0.5, 2, len(X))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    fits = []
    for rows in (700, 2500):
        Xd = da.from_array(X, chunks=(rows, -1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append((md.KMeans(4, random_state=5).fit(Xd, sample_weight=w),
                         md.GaussianMixture(4, random_state=5).fit(Xd),
                         md.GaussianMixture(4, init_params="random", covariance_type="diag", random_state=5).fit(Xd)))
    (k1, g1, r1), (k2, g2, r2) = fits
    np.testing.assert_allclose(k1.cluster_centers_, k2.cluster_centers_, rtol=rtol)
    assert k1.n_iter_ == k2.n_iter_
    for a, b in ((g1, g2), (r1, r2)):
        np.testing.assert_allclose(a.means_, b.means_, rtol=rtol, atol=rtol * np.abs(a.means_).max())
        np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=rtol)
        assert a.n_iter_ == b.n_iter_


@pytest.mark.top_level_only(reason="counts the first pass's block calls: orchestration, not arithmetic")
def test_the_mixture_checks_its_data_once(monkeypatch):
    # The first pass (checks, moments) serves the K-means of the default start as well.
    calls = []
    real = md._moments_block
    monkeypatch.setattr(md, "_moments_block", lambda *a: calls.append(1) or real(*a))
    X = da.from_array(_blobs(2000, seed=41), chunks=(500, -1))
    with dask.config.set(scheduler="synchronous"):
        md.GaussianMixture(3, random_state=0, max_iter=3).fit(X)
    assert len(calls) == 4  # one per block


def test_an_empty_cluster_is_reseeded_as_on_one_machine():
    X = _blobs(4000, seed=21)
    init = np.vstack([X[[3, 50, 700]], [[1e3, 1e3, 1e3, 1e3]]])  # the last centre wins no row: re-seeded
    one = mixtura.KMeans(4, init=init, n_init=1).fit(X)
    dk = md.KMeans(4, init=init, n_init=1).fit(da.from_array(X, chunks=(BLOCK, -1)))
    assert [e["kind"] for e in one.events_] == ["empty_cluster_reseeded"]
    assert dk.events_ == one.events_
    np.testing.assert_array_equal(dk.cluster_centers_, one.cluster_centers_)
    np.testing.assert_array_equal(dk.distortion_trace_, one.distortion_trace_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol=0: max_iter runs out
@pytest.mark.parametrize("cov", TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gmm_on_the_pass_blocks_is_the_one_machine_fit(cov, dtype):
    X = _blobs(5000, seed=3).astype(dtype)
    w = np.linspace(0.5, 2, len(X)).astype(dtype)
    start = mixtura.GaussianMixture(4, covariance_type=cov, max_iter=2, random_state=0).fit(X)
    given = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)
    one = mixtura.GaussianMixture(4, covariance_type=cov, tol=0, max_iter=7, **given).fit(X, sample_weight=w)
    dg = md.GaussianMixture(4, covariance_type=cov, tol=0, max_iter=7, **given).fit(
        da.from_array(X, chunks=(BLOCK, -1)), sample_weight=w)
    for name in ("weights_", "means_", "precisions_cholesky_", "covariances_", "elbo_trace_"):
        np.testing.assert_array_equal(getattr(dg, name), getattr(one, name), err_msg=name)
    assert (dg.n_iter_, dg.lower_bound_, dg.converged_) == (one.n_iter_, one.lower_bound_, one.converged_)
    # Other chunks: the same sums in another order, to round-off. Before the fixed point: there the bound
    # may fall by round-off on one path and not the other, which ends one fit an iteration earlier.
    one4 = mixtura.GaussianMixture(4, covariance_type=cov, tol=0, max_iter=4, **given).fit(X, sample_weight=w)
    other = md.GaussianMixture(4, covariance_type=cov, tol=0, max_iter=4, **given).fit(
        da.from_array(X, chunks=(1000, -1)), sample_weight=w)
    assert other.n_iter_ == one4.n_iter_ == 4
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(other, name), getattr(one4, name), rtol=1e-10,
                                   atol=1e-10 * np.abs(getattr(one4, name)).max(), err_msg=name)
    # Scoring block by block: the one-machine values (blocks start where SCORE_BLOCK divides the row).
    Xd = da.from_array(X, chunks=(BLOCK, -1))
    for method in ("score_samples", "predict", "predict_proba"):
        got = getattr(dg, method)(Xd)
        assert isinstance(got, da.Array)
        np.testing.assert_array_equal(got.compute(), getattr(one, method)(X), err_msg=method)
    assert dg.score(Xd) == pytest.approx(one.score(X), rel=1e-12)


def test_gmm_takes_float32_weights_init_as_the_one_machine_fit_does():
    # 0.3 + 0.3 + 0.4 in float32 sums to 1 + 3e-8: within float32's rounding, as scikit-learn accepts.
    X = _blobs(2000, seed=4)
    w32 = np.array([0.3, 0.3, 0.4], dtype=np.float32)
    kw = dict(n_components=3, covariance_type="diag", weights_init=w32, means_init=X[:3], precisions_init=np.ones((3, 4)),
              max_iter=5, tol=0)
    one = mixtura.GaussianMixture(**kw).fit(X)
    dg = md.GaussianMixture(**kw).fit(da.from_array(X, chunks=(BLOCK, -1)))
    np.testing.assert_array_equal(dg.means_, one.means_)
    with pytest.raises(ValueError, match="weights"):
        md.GaussianMixture(**{**kw, "weights_init": np.array([0.3, 0.3, 0.40001], dtype=np.float32)}).fit(
            da.from_array(X, chunks=(BLOCK, -1)))


def _fits(X, w):
    """A k-means|| K-means and a default-initialised (k-means|| -> K-means -> EM) mixture on X."""
    with warnings.catch_warnings():  # few iterations: each is a round trip to the scheduler
        warnings.simplefilter("ignore")
        km = md.KMeans(4, random_state=7, n_threads=2, init_max_iter=3, max_iter=8).fit(X, sample_weight=w)
        gm = md.GaussianMixture(4, covariance_type="diag", random_state=7, n_threads=2, init_max_iter=2,
                                max_iter=4).fit(X, sample_weight=w)
    return km, gm


def _same_fit(a, b):
    (ka, ga), (kb, gb) = a, b
    np.testing.assert_array_equal(ka.cluster_centers_, kb.cluster_centers_)
    np.testing.assert_array_equal(ka.distortion_trace_, kb.distortion_trace_)
    for name in ("weights_", "means_", "covariances_", "elbo_trace_"):
        np.testing.assert_array_equal(getattr(ga, name), getattr(gb, name), err_msg=name)


@pytest.mark.top_level_only(reason=(
    "schedulers and worker processes (a minute) run the same core calls elsewhere; the passes' bits "
    "at each level are the other tests'"))
def test_the_same_bits_for_every_scheduler_and_number_of_workers():
    distributed = pytest.importorskip("distributed")
    X = da.from_array(_blobs(9000, seed=4), chunks=(700, -1))
    w = da.from_array(np.random.default_rng(5).uniform(0.5, 2, 9000), chunks=700)
    with dask.config.set(scheduler="synchronous"):
        ref = _fits(X, w)
    with dask.config.set(scheduler="threads", num_workers=2):
        _same_fit(ref, _fits(X, w))
    for n_workers in (1, 2, 3):
        with distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None, silence_logs=40) as cluster, \
                distributed.Client(cluster):
            _same_fit(ref, _fits(X, w))
    # The k-means|| start is a good one: within 2% of the one-machine k-means++ restarts' best.
    best = mixtura.KMeans(4, n_init=5, random_state=0).fit(X.compute(), sample_weight=w.compute())
    assert ref[0].inertia_ <= 1.02 * best.inertia_


def test_kmeans_parallel_weighs_its_candidates_by_the_rows_nearest_them(monkeypatch):
    X = _blobs(4000, seed=6)
    w = np.random.default_rng(7).uniform(0.5, 2, len(X))
    seen = {}
    fit = mixtura.KMeans.fit

    def spy(self, C, y=None, sample_weight=None):
        seen["candidates"], seen["weights"] = np.array(C), np.array(sample_weight)
        return fit(self, C, sample_weight=sample_weight)

    monkeypatch.setattr(md._KMeans, "fit", spy)
    km = md.KMeans(4, random_state=3, oversampling_factor=3, init_max_iter=4).fit(
        da.from_array(X, chunks=(500, -1)), sample_weight=w)
    C, cw = seen["candidates"], seen["weights"]
    assert 4 <= len(C) < len(X)
    nearest = ((X[:, None, :] - C[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_allclose(cw, np.bincount(nearest, weights=w, minlength=len(C)), rtol=1e-12)
    assert cw.sum() == pytest.approx(w.sum(), rel=1e-12)
    assert km.n_iter_ >= 1 and km.converged_


def test_kmeans_parallel_on_fewer_distinct_rows_than_clusters():
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 5.0]]), 300, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = md.KMeans(3, random_state=0).fit(da.from_array(X, chunks=(100, -1)))
    assert km.cluster_centers_.shape == (3, 2) and km.inertia_ == 0.0


@pytest.mark.top_level_only(
    reason="input conversion (DataFrames, NumPy, unknown chunks) into the blocks that the other tests fit")
def test_dataframes_numpy_and_unknown_chunks_are_taken():
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X = _blobs(3000, d=3, seed=8)
    df = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=4)
    init = X[:4].copy()
    one = mixtura.KMeans(4, init=init, n_init=1).fit(X)
    for data in (df, X, da.from_array(X, chunks=(1000, -1))[da.from_array(np.ones(3000, bool), chunks=1000)]):
        km = md.KMeans(4, init=init, n_init=1).fit(data)
        np.testing.assert_allclose(km.cluster_centers_, one.cluster_centers_, rtol=1e-10)
    labels = km.predict(df)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), one.predict(X))
    t = km.transform(da.from_array(X.astype(np.float32), chunks=700))
    assert t.dtype == np.float32 and t.compute().dtype == np.float32
    np.testing.assert_allclose(km.transform(da.from_array(X, chunks=700)).compute(), one.transform(X), rtol=1e-12)
    assert km.score(df) == pytest.approx(one.score(X), rel=1e-12)
    np.testing.assert_array_equal(km.predict(X), one.predict(X))  # NumPy in, NumPy out


@pytest.mark.top_level_only(reason="weights checked in Python, before any core call")
@pytest.mark.parametrize("Estimator", [md.KMeans, md.GaussianMixture])
def test_dask_scores_check_their_weights_as_the_host_scores(Estimator):
    X = _blobs(400, d=2, seed=5)
    est = Estimator(2, random_state=0).fit(X)
    dX = da.from_array(X, chunks=100)
    who = f"{Estimator.__name__}.score"
    for w, message in [(np.r_[np.ones(399), -2.0], r"sample_weight\[399\] = -2 is negative"),
                       (np.r_[np.ones(7), np.nan, np.ones(392)], r"sample_weight\[7\] = nan is not finite"),
                       (np.zeros(400), "sample_weight is all zero"),
                       (np.full(400, 1e308), "sample_weight sums to inf")]:
        with pytest.raises(ValueError, match=f"{who}: {message}"):
            est.score(dX, sample_weight=da.from_array(w, chunks=100))
        with pytest.raises(ValueError, match=f"{who}: {message}"):  # the host score says the same
            est.score(X, sample_weight=w)
    w = np.linspace(0.5, 2.0, 400)
    assert est.score(dX, sample_weight=da.from_array(w, chunks=100)) == pytest.approx(est.score(X, sample_weight=w),
                                                                                      rel=1e-12)


@pytest.mark.top_level_only(reason="names checked in Python, before any core call")
@pytest.mark.parametrize("make", [lambda: md.KMeans(3, n_init=1, random_state=0),
                                  lambda: md.GaussianMixture(2, random_state=0),
                                  lambda: md.DensityAnomalyDetector(n_components=2, random_state=0)])
def test_dask_dataframes_set_and_check_feature_names_as_scikit_learn(make):
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X = _blobs(600, d=3, seed=4)
    df = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]), npartitions=3)
    est = make().fit(df)
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c"])
    method = "predict"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(est, method)(df).compute()  # the same names: silent
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        getattr(est, method)(da.from_array(X, chunks=200))
    renamed = dd.from_pandas(pd.DataFrame(X, columns=["a", "c", "b"]), npartitions=3)
    with pytest.raises(ValueError, match="feature names should match"):
        getattr(est, method)(renamed)
    # A refit on an array drops them (scikit-learn's rule); a failed fit keeps the previous fit's.
    with pytest.raises(ValueError):
        est.set_params(random_state=-1).fit(da.from_array(X, chunks=200))
    np.testing.assert_array_equal(est.feature_names_in_, ["a", "b", "c"])
    est.set_params(random_state=0).fit(da.from_array(X, chunks=200))
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but"):
        getattr(est, method)(df)


@pytest.mark.top_level_only(reason="checks raised in Python, before any core call")
def test_bad_input_is_refused_with_the_reason():
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    X = da.from_array(_blobs(600), chunks=(200, -1))
    with pytest.raises(ValueError, match="2-d"):
        md.KMeans(2).fit(X[:, 0])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(600,\)"):
        md.KMeans(2).fit(X, sample_weight=np.ones(5))
    with pytest.raises(ValueError, match="columns must be numeric.*'name'"):
        md.KMeans(2).fit(dd.from_pandas(pd.DataFrame({"x": [1.0, 2, 3], "name": ["a", "b", "c"]}), npartitions=1))
    with pytest.raises(ValueError, match="n_samples=600 should be >= n_clusters=700"):
        md.KMeans(700).fit(X)
    with pytest.raises(ValueError, match="init_params must be 'kmeans' or 'random', got 'k-means\\+\\+'"):
        md.GaussianMixture(2, init_params="k-means++").fit(X)
    with pytest.raises(ValueError, match="split_every must be an integer >= 2, got 1"):
        md.KMeans(2, split_every=1).fit(X)
    with pytest.raises(ValueError, match="init must be 'k-means\\|\\|'"):
        md.KMeans(2, init="kmeans").fit(X)
    with pytest.raises(ValueError, match="means_init: The parameter 'means' should have the shape of \\(2, 4\\)"):
        md.GaussianMixture(2, means_init=np.zeros((3, 4))).fit(X)
    with pytest.raises(ValueError, match="'diag precision' should be positive"):
        md.GaussianMixture(2, covariance_type="diag", precisions_init=-np.ones((2, 4))).fit(X)
    with pytest.raises(ValueError, match=r"precisions_init\[1\]: 'full precision' should be symmetric, positive-definite "
                                         r"\(it is not symmetric\)"):
        md.GaussianMixture(2, precisions_init=np.stack([np.eye(4), np.triu(np.ones((4, 4)))])).fit(X)
    bad = X.copy()
    bad[423, 1] = np.nan  # in the third block: named by its row in the whole array
    with pytest.raises(ValueError, match=r"KMeans.fit: X contains a non-finite value \(nan\) at row 423, column 1"):
        md.KMeans(2, random_state=0).fit(bad)
    bad[423, 1] = 1e200
    with pytest.raises(ValueError, match=r"GaussianMixture.fit: X holds 1e\+200 at row 423, column 1"):
        md.GaussianMixture(2, random_state=0).fit(bad)
    w = np.ones(600)
    w[301] = -1
    with pytest.raises(ValueError, match=r"sample_weight\[301\] = -1; weights must be finite and >= 0"):
        md.GaussianMixture(2).fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="sample_weight sums to 0"):
        md.KMeans(2).fit(X, sample_weight=np.zeros(600))
    km = md.KMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 4"):
        km.predict(X[:, :3])


@pytest.mark.top_level_only(
    reason="pickles and model files of the fitted estimators; their fits and scores are the other tests'")
def test_fitted_estimators_save_pickle_and_load_as_the_one_machine_kind(tmp_path):
    X = da.from_array(_blobs(2000, seed=9), chunks=(500, -1))
    km = md.KMeans(3, random_state=1, split_every=3).fit(X)
    gm = md.GaussianMixture(3, random_state=1, split_every=4).fit(X)
    det = md.DensityAnomalyDetector(n_components=2, random_state=1, split_every=5).fit(X)
    for est, kind in ((km, mixtura.KMeans), (gm, mixtura.GaussianMixture), (det, mixtura.DensityAnomalyDetector)):
        back = pickle.loads(pickle.dumps(est))
        assert type(back) is type(est) and back.split_every == est.split_every
        path = tmp_path / f"{kind.__name__}.mxt"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning about unknown parameters
            est.save(path)
            loaded = mixtura.load(path)
        assert type(loaded) is kind
        np.testing.assert_array_equal(loaded.predict(X.compute()), est.predict(X).compute())
    assert isinstance(back.score_samples(X), da.Array)


@pytest.mark.top_level_only(reason="import machinery in a fresh interpreter")
def test_import_mixtura_works_without_dask_and_mixtura_dask_says_what_to_install():
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'dask' or name.startswith('dask.'):\n"
            "            raise ImportError('no dask here')\n"
            "sys.meta_path.insert(0, Block())\n"
            "import mixtura\n"
            "mixtura.KMeans(2).fit([[0.0], [1.0], [2.0]])\n"
            "try:\n"
            "    import mixtura.dask\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'mixtura[dask]'" in out.stdout


def _cpp_quantile(v, q):
    """The one-machine detector's quantile (C++ detail::quantile): a + (h - lo) (b - a)."""
    v = np.sort(np.asarray(v, dtype=np.float64))
    h = (len(v) - 1) * q
    lo = int(np.floor(h))
    b = v[min(lo + 1, len(v) - 1)]
    return v[lo] + (h - lo) * (b - v[lo])


@pytest.mark.top_level_only(reason="mixtura.dask's order statistics are NumPy: no core call")
def test_order_statistics_are_exact_on_heavy_tails_ties_and_constants(monkeypatch):
    monkeypatch.setattr(md, "_GATHER", 500)  # force several counting passes before the gather
    rng = np.random.default_rng(11)
    n = 100_003
    V = np.column_stack([rng.standard_cauchy(n), np.round(rng.normal(size=n), 1), np.full(n, -3.5),
                         1.0 + rng.exponential(size=n) * 1e-12, rng.normal(size=n) * 1e140])
    parts = [dask.delayed(V[s:s + 7000]) for s in range(0, n, 7000)]
    qs = [0.0, 0.013, 0.25, 0.5, 0.75, 0.9999, 1.0]
    got = md._quantiles(parts, n, V.shape[1], qs, 4)
    want = [[_cpp_quantile(V[:, c], q) for q in qs] for c in range(V.shape[1])]
    np.testing.assert_array_equal(np.array(got), np.array(want))


@pytest.mark.parametrize("scaling", ["robust", None])
def test_detector_scaling_and_contamination_threshold_are_exact(scaling):
    rng = np.random.default_rng(12)
    n = 12_000
    X = np.column_stack([rng.normal(size=n) * 3 + 10, rng.standard_t(3, size=n), np.round(rng.normal(size=n), 1),
                         np.full(n, 2.0)])
    Xd = da.from_array(X, chunks=(2500, -1))
    det = md.DensityAnomalyDetector(n_components=2, contamination=0.05, scaling=scaling, random_state=0).fit(Xd)
    one = mixtura.DensityAnomalyDetector(n_components=2, contamination=0.05, scaling=scaling, random_state=0).fit(X)
    np.testing.assert_array_equal(det.center_, one.center_)  # exact medians and quartiles over the blocks
    np.testing.assert_array_equal(det.scale_, one.scale_)
    scores = det.score_samples(Xd)
    assert isinstance(scores, da.Array)
    scores = scores.compute()
    assert det.offset_ == _cpp_quantile(scores, 0.05) and det.score_median_ == _cpp_quantile(scores, 0.5)
    assert (det.predict(Xd).compute() == -1).mean() == pytest.approx(0.05, abs=1 / n)
    np.testing.assert_array_equal(det.decision_function(X), scores - det.offset_)


def test_detector_calibrates_on_held_out_rows_and_picks_a_count_by_bic():
    rng = np.random.default_rng(13)
    centres = np.array([[0.0, 0, 0], [8, 8, 0], [-8, 4, 4]])
    X = centres[rng.integers(0, 3, 24_000)] + rng.normal(size=(24_000, 3))
    fresh = centres[rng.integers(0, 3, 50_000)] + rng.normal(size=(50_000, 3))
    a = md.DensityAnomalyDetector(max_components=4, random_state=1).fit(da.from_array(X, chunks=(5000, -1)))
    b = md.DensityAnomalyDetector(max_components=4, random_state=1).fit(da.from_array(X, chunks=(3333, -1)))
    assert a.n_components_ == b.n_components_ == 3 and a.bic_.shape == (4, 2)
    assert np.argmin(a.bic_[:, 1]) == 2
    # The held-out rows do not depend on the chunking: the same threshold to rounding.
    assert a.offset_ == pytest.approx(b.offset_, rel=1e-9)
    assert (a.predict(fresh) == -1).mean() == pytest.approx(0.01, abs=0.004)  # the target false-alarm rate
    with pytest.warns(UserWarning, match="training rows are held out for calibration"):
        md.DensityAnomalyDetector(n_components=1).fit(da.from_array(X[:300], chunks=100))
    with pytest.raises(ValueError, match="calibration needs at least 1 held-out and 2 fitting rows"):
        md.DensityAnomalyDetector(calibration_fraction=1e-9, n_components=1).fit(da.from_array(X[:50], chunks=25))
    with pytest.raises(ValueError, match="method must be 'gmm' or 'kmeans'"):
        md.DensityAnomalyDetector("knn").fit(da.from_array(X, chunks=(5000, -1)))


def test_detector_method_kmeans_is_the_one_machine_detector_at_scale():
    rng = np.random.default_rng(14)
    centres = np.array([[0.0, 0, 0], [8, 8, 0], [-8, 4, 4]])
    X = centres[rng.integers(0, 3, 20_000)] + rng.normal(size=(20_000, 3))
    fresh = centres[rng.integers(0, 3, 50_000)] + rng.normal(size=(50_000, 3))
    Xd = da.from_array(X, chunks=(3000, -1))
    det = md.DensityAnomalyDetector("kmeans", max_components=4, random_state=0).fit(Xd)
    one = mixtura.DensityAnomalyDetector("kmeans", max_components=4, random_state=0).fit(X)
    assert det.n_components_ == one.n_components_ and isinstance(det.model_, mixtura.KMeans)
    assert det.density_covariance_type_ == "spherical"
    # Other held-out rows (about 20%, hashed from the row index) and other starts: the same choice, BIC
    # and scores within a few percent.
    np.testing.assert_array_equal(det.bic_[:, 0], one.bic_[:, 0])
    np.testing.assert_allclose(det.bic_[:, 1], one.bic_[:, 1], rtol=0.05)
    assert (det.predict(fresh) == -1).mean() == pytest.approx(0.01, abs=0.004)
    scores = det.score_samples(Xd).compute()
    np.testing.assert_allclose(np.median(scores), np.median(one.score_samples(X)), rtol=0.02)
    # model-tail: rows drawn from the spherical components, scored as the data are: the one-machine
    # detector's false-alarm rate (a property of the method: ~3% here for a 1% target, on both).
    tail = md.DensityAnomalyDetector("kmeans", n_components=3, threshold="model-tail", random_state=0).fit(Xd)
    ref = mixtura.DensityAnomalyDetector("kmeans", n_components=3, threshold="model-tail", random_state=0).fit(X)
    assert (tail.predict(fresh) == -1).mean() == pytest.approx((ref.predict(fresh) == -1).mean(), abs=0.004)
