"""mixtura.KMeans from Python: scikit-learn's estimator checks, agreement with scikit-learn on the
same initial centres, no needless copies, dtypes, errors, traces."""
import re

import numpy as np
import pytest
import sklearn.cluster
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import mixtura
from interrupt_util import assert_ctrl_c_stops
from mixtura import _core


# Every check passes, the sample-weight equivalence ones included (which scikit-learn's own KMeans
# fails): k-means++ walks the rows in an order of their values, so shuffled rows and integer weights
# drawn as repeated rows give the same start.
@parametrize_with_checks([mixtura.KMeans(n_clusters=3, random_state=0)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("Estimator", ["KMeans", "GaussianMixture"])
@pytest.mark.parametrize("sparse", [False, True])
def test_integer_weights_fit_as_repeated_rows_in_any_order(Estimator, sparse):
    # scikit-learn's sample-weight equivalence, harder than its check: many seeds, more clusters than
    # the check's 3, and rows in another order. scikit-learn's own KMeans fails it (k-means++ draws by index).
    if sparse and Estimator == "GaussianMixture":
        pytest.skip("GaussianMixture takes dense data")
    import scipy.sparse
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(c, 1.0, size=(60, 4)) for c in (-6, 0, 6, 12)])
    X[rng.random(X.shape) < 0.3] = 0.0  # zeros: a sparse row skips them
    w = rng.integers(0, 4, size=len(X))
    order = rng.permutation(len(X))
    Xr = np.repeat(X, w, axis=0)[rng.permutation(int(w.sum()))]
    wrap = scipy.sparse.csr_array if sparse else np.asarray
    for seed in range(8):
        make = getattr(mixtura, Estimator)
        est = (make(n_clusters=6, random_state=seed) if Estimator == "KMeans"
               else make(n_components=4, random_state=seed))
        weighted = clone(est).fit(wrap(X[order]), sample_weight=w[order])
        repeated = clone(est).fit(wrap(Xr))
        if Estimator == "KMeans":
            np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(weighted.transform(X), repeated.transform(X), rtol=1e-10, atol=1e-10)
        else:
            np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-8, atol=1e-8)
            np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tol", [0.0, 1e-4])
def test_same_result_as_scikit_learn_from_the_same_centres(blobs, dtype, tol):
    X = blobs.astype(dtype)
    init = X[[0, 1, 2, 3, 4]]
    ours = mixtura.KMeans(5, init=init, tol=tol, max_iter=100).fit(X)
    theirs = sklearn.cluster.KMeans(5, init=init, n_init=1, tol=tol, max_iter=100).fit(X)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=rtol)


@pytest.mark.parametrize("dtype, offset", [(np.float32, 1e5), (np.float64, 1e9)])
def test_far_from_the_origin_the_result_is_scikit_learns(dtype, offset):
    # ||x||^2 - 2 x.c + ||c||^2 cancels there unless the search measures from near the data.
    rng = np.random.default_rng(0)
    centres = 5 * rng.normal(size=(3, 4))
    X = (offset + centres[rng.integers(0, 3, 1500)] + rng.normal(size=(1500, 4))).astype(dtype)
    init = (offset + centres).astype(dtype)
    ours = mixtura.KMeans(3, init=init, max_iter=300).fit(X)
    theirs = sklearn.cluster.KMeans(3, init=init, n_init=1, max_iter=300).fit(X)
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=1e-3)
    assert np.mean(ours.labels_ == theirs.labels_) > 0.998
    exact = ((X[:, None, :].astype(np.float64) - ours.cluster_centers_.astype(np.float64)) ** 2).sum(-1)
    assert np.mean(exact.argmin(1) == ours.predict(X)) > 0.999


def test_trace_columns_never_rise_and_match_n_iter(blobs):
    km = mixtura.KMeans(6, n_init=3, random_state=1, tol=0).fit(blobs)
    assert km.distortion_trace_.shape == (km.n_iter_, 2)
    assert len(km.distortion_traces_) == 3
    for t in km.distortion_traces_:
        assert np.all(t[:, 1] <= t[:, 0] * (1 + 1e-12))
        assert np.all(t[1:, 0] <= t[:-1, 1] * (1 + 1e-12))
    assert km.inertia_ <= km.distortion_trace_[-1, 1] * (1 + 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contiguous_input_reaches_cpp_without_a_copy(blobs, dtype, monkeypatch):
    seen = {}
    for what in ("fit", "predict"):
        for t in ("float32", "float64"):  # the core's entry point for each dtype (bindings.hpp)
            real = getattr(_core, f"kmeans_{what}_{t}")

            def spy(X, *args, what=what, real=real):
                seen[what] = X
                return real(X, *args)

            monkeypatch.setattr(_core, f"kmeans_{what}_{t}", spy)
    X = np.ascontiguousarray(blobs, dtype=dtype)
    km = mixtura.KMeans(3, random_state=0).fit(X)
    km.predict(X)
    assert seen["fit"] is X and seen["predict"] is X
    assert km.cluster_centers_.dtype == dtype and km.transform(X).dtype == dtype
    # Other input is converted once, to float64.
    km.fit(np.asfortranarray(X.astype(np.float64)))
    assert seen["fit"].flags.c_contiguous and seen["fit"].dtype == np.float64


def test_integer_input_is_converted_to_float64(blobs):
    km = mixtura.KMeans(3, random_state=0).fit((blobs * 10).astype(np.int64))
    assert km.cluster_centers_.dtype == np.float64


def test_bad_input_raises_value_error_with_the_cpp_message(blobs):
    with pytest.raises(ValueError, match=r"KMeans\.fit: tol must be finite and >= 0, got -1"):
        mixtura.KMeans(3, tol=-1.0).fit(blobs)
    with pytest.raises(ValueError, match=r"KMeans\.fit: max_iter must be >= 1, got 0"):
        mixtura.KMeans(3, max_iter=0).fit(blobs)
    with pytest.raises(ValueError, match=r"sample_weight\[4\] = -1 is negative"):
        w = np.ones(len(blobs))
        w[4] = -1
        mixtura.KMeans(3).fit(blobs, sample_weight=w)
    with pytest.raises(ValueError, match="n_samples=2 should be >= n_clusters=3"):
        mixtura.KMeans(3).fit(blobs[:2])
    with pytest.raises(ValueError, match="init must be 'k-means\\+\\+', 'random'"):
        mixtura.KMeans(3, init="bogus").fit(blobs)
    with pytest.raises(NotFittedError):
        mixtura.KMeans(3).predict(blobs)
    km = mixtura.KMeans(3, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="X has 2 features"):
        km.predict(blobs[:, :2])


def test_works_in_pipelines_and_grid_search(blobs):
    pipe = make_pipeline(StandardScaler(), mixtura.KMeans(3, random_state=0))
    assert pipe.fit_predict(blobs).shape == (len(blobs),)
    search = GridSearchCV(mixtura.KMeans(random_state=0), {"n_clusters": [2, 3, 4]}, cv=3).fit(blobs)
    assert search.best_params_["n_clusters"] in (2, 3, 4)
    assert clone(mixtura.KMeans(5, tol=0.5)).get_params()["tol"] == 0.5


def test_verbose_prints_each_iteration(blobs, capsys):
    km = mixtura.KMeans(3, random_state=0, verbose=1).fit(blobs)
    out = capsys.readouterr().out
    assert out.count("iteration") == km.n_iter_


def searched_per_iteration(out):
    return [int(n) for n in re.findall(r"(\d+) rows searched", out)]


@pytest.mark.parametrize("algorithm, n_clusters, bounded", [("auto", 64, True), ("auto", 16, False),
                                                            ("lloyd", 64, False), ("elkan", 16, True)])
def test_auto_takes_the_bounds_from_k_times_d_2048(capsys, algorithm, n_clusters, bounded):
    # 32 features: K = 64 is K * D = 2048, where "auto" takes Hamerly's bounds; K = 16 is below. With the
    # bounds the first iteration searches every row and later ones fewer.
    X = np.random.default_rng(5).standard_normal((3000, 32)).astype(np.float32)
    km = mixtura.KMeans(n_clusters, init=X[:n_clusters], n_init=1, max_iter=20, tol=0, algorithm=algorithm,
                        verbose=1).fit(X)
    searched = searched_per_iteration(capsys.readouterr().out)
    assert len(searched) == km.n_iter_ >= 10 and searched[0] == 3000
    if bounded:
        assert min(searched[1:]) < 0.75 * 3000
    else:
        assert searched == [3000] * km.n_iter_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_yinyang_groups_give_lloyds_bits_and_auto_takes_them_from_k_512(capsys, dtype):
    # K = 600 centres make 19 groups of about 32; the rows search only the groups that could hold a nearer
    # centre, and the fit is Lloyd's bit for bit. At 32 features "auto" takes the groups from K = 512 on.
    rng = np.random.default_rng(7)
    X = (rng.standard_normal((12000, 32)) + 6 * rng.standard_normal((600, 32))[rng.integers(0, 600, 12000)])
    X = X.astype(dtype)
    init = X[:600].copy()
    fits = {a: mixtura.KMeans(600, init=init, n_init=1, max_iter=15, tol=0, algorithm=a, verbose=1).fit(X)
            for a in ("lloyd", "yinyang", "auto")}
    searched = searched_per_iteration(capsys.readouterr().out)
    n = fits["lloyd"].n_iter_
    assert n == fits["yinyang"].n_iter_ == fits["auto"].n_iter_ > 5
    for a in ("yinyang", "auto"):
        np.testing.assert_array_equal(fits[a].labels_, fits["lloyd"].labels_)
        np.testing.assert_array_equal(fits[a].cluster_centers_, fits["lloyd"].cluster_centers_)
        np.testing.assert_array_equal(fits[a].distortion_trace_, fits["lloyd"].distortion_trace_)
    lloyd, yinyang, auto = searched[:n], searched[n:2 * n], searched[2 * n:]
    assert lloyd == [12000] * n and yinyang[0] == 12000
    assert min(yinyang[1:]) < 0.5 * 12000 and auto == yinyang


def test_ctrl_c_stops_a_long_fit_promptly():
    # About 8 GFLOP an iteration and hundreds of iterations to stable labels: minutes at any level
    # (200,000 x 8, K = 64 converged in 0.34 s on the AVX-512 copy, before the signal came).
    X = np.random.default_rng(1).standard_normal((1_000_000, 16)).astype(np.float32)
    km = mixtura.KMeans(256, init=X[:256], tol=0.0, max_iter=100_000)
    assert_ctrl_c_stops(lambda: km.fit(X))
    assert not hasattr(km, "cluster_centers_")  # nothing half-fitted is left behind


@pytest.mark.parametrize("Estimator", [mixtura.KMeans, mixtura.GaussianMixture])
def test_device_parameter(blobs, Estimator):
    from mixtura import _core

    has_gpu = _core.HAS_CUDA and _core.cuda_device_count() > 0
    Estimator(2, device="auto", random_state=0).fit(blobs)  # the GPU where there is one, else the CPU
    if not _core.HAS_CUDA:
        with pytest.raises(ValueError, match="device='cuda' was requested, but this build of mixtura has no CUDA"):
            Estimator(2, device="cuda").fit(blobs)
    elif not has_gpu:
        with pytest.raises(ValueError, match="no CUDA device is visible"):
            Estimator(2, device="cuda").fit(blobs)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'auto', got 'tpu'"):
        Estimator(2, device="tpu").fit(blobs)


def test_kmeans_on_the_gpu_matches_the_cpu():
    from mixtura import _core

    if not (_core.HAS_CUDA and _core.cuda_device_count() > 0):
        pytest.skip("no CUDA backend or no CUDA device")
    X = np.random.default_rng(3).standard_normal((20_000, 8)).astype(np.float32)
    for dtype, rtol in ((np.float32, 1e-5), (np.float64, 1e-10)):
        Xd = X.astype(dtype)
        cpu = mixtura.KMeans(16, init=Xd[:16], tol=0.0, max_iter=10, device="cpu").fit(Xd)
        gpu = mixtura.KMeans(16, init=Xd[:16], tol=0.0, max_iter=10, device="cuda").fit(Xd)
        np.testing.assert_allclose(gpu.distortion_trace_, cpu.distortion_trace_, rtol=rtol)
        np.testing.assert_array_equal(gpu.labels_, cpu.labels_)


def test_gaussian_mixture_on_the_gpu_matches_the_cpu():
    from mixtura import _core

    if not (_core.HAS_CUDA and _core.cuda_device_count() > 0):
        pytest.skip("no CUDA backend or no CUDA device")
    X = np.random.default_rng(4).standard_normal((20_000, 6))
    for dtype, rtol in ((np.float32, 1e-5), (np.float64, 1e-10)):
        Xd = X.astype(dtype)
        kw = dict(n_components=4, covariance_type="full", tol=0.0, max_iter=8, random_state=0)
        cpu = mixtura.GaussianMixture(device="cpu", **kw).fit(Xd)
        gpu = mixtura.GaussianMixture(device="cuda", **kw).fit(Xd)
        np.testing.assert_allclose(gpu.elbo_trace_, cpu.elbo_trace_, rtol=rtol)


# ---- What users of scikit-learn's KMeans pass and filter on (issue 24; tests/sklearn_suites.py) ----

def test_copy_x_is_accepted_and_changes_nothing(blobs):
    # scikit-learn centres X in place with copy_x=False; mixtura never modifies X, so both values fit alike.
    X = blobs.copy()
    a = mixtura.KMeans(3, random_state=0, copy_x=False).fit(X)
    b = mixtura.KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(X, blobs)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    sklearn.cluster.KMeans(3, copy_x=False, n_init=1).fit(X.copy())  # the same parameter there
    with pytest.raises(ValueError, match="copy_x must be True or False, got 'no'"):
        mixtura.KMeans(3, copy_x="no").fit(X)


def test_algorithm_auto_is_the_default_and_unknown_names_are_refused(blobs):
    assert mixtura.KMeans().algorithm == "auto"
    a = mixtura.KMeans(3, random_state=0, algorithm="lloyd").fit(blobs)
    b = mixtura.KMeans(3, random_state=0).fit(blobs)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    with pytest.raises(ValueError, match="algorithm must be 'auto', 'lloyd', 'elkan', 'hamerly' or 'yinyang', got 'full'"):
        mixtura.KMeans(3, algorithm="full").fit(blobs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ["elkan", "hamerly", "yinyang"])
def test_bounded_search_gives_lloyds_bits(dtype, algorithm):
    rng = np.random.RandomState(3)
    X = (rng.randn(6000, 12) + 4 * rng.randint(0, 30, size=(6000, 1))).astype(dtype)  # 30 overlapping blobs
    w = rng.uniform(0.5, 2, size=len(X)).astype(dtype)
    for sample_weight in (None, w):
        fits = [mixtura.KMeans(20, n_init=2, tol=0, random_state=3, algorithm=a).fit(X, sample_weight=sample_weight)
                for a in ("lloyd", algorithm)]  # (K * D = 240: "auto" would search every row)
        lloyd, bounded = fits
        assert bounded.n_iter_ == lloyd.n_iter_ > 5
        np.testing.assert_array_equal(bounded.labels_, lloyd.labels_)
        np.testing.assert_array_equal(bounded.cluster_centers_, lloyd.cluster_centers_)
        assert bounded.inertia_ == lloyd.inertia_
        np.testing.assert_array_equal(bounded.distortion_trace_, lloyd.distortion_trace_)
    # and scikit-learn's elkan from the same start reaches the same labels
    init = X[:20].copy()
    ours = mixtura.KMeans(20, init=init, n_init=1, tol=0, algorithm=algorithm).fit(X)
    theirs = sklearn.cluster.KMeans(20, init=init, n_init=1, tol=0, algorithm="elkan").fit(X)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)


@pytest.mark.parametrize("Estimator", ["KMeans", "MiniBatchKMeans"])
def test_callable_init_is_called_as_scikit_learn_calls_it(blobs, Estimator):
    calls = []

    def init(X, n_clusters, random_state):
        calls.append((X, n_clusters, random_state))
        return X[random_state.choice(len(X), n_clusters, replace=False)]

    ours = getattr(mixtura, Estimator)(3, init=init, random_state=5).fit(blobs)
    (X, k, rs), = calls  # once per fit, on the validated X
    assert k == 3 and isinstance(rs, np.random.RandomState) and X.dtype == np.float64
    np.testing.assert_array_equal(X, blobs)
    # The same centres as the array the callable returns, given as init (same random_state for the rest).
    start = blobs[np.random.RandomState(5).choice(len(blobs), 3, replace=False)]
    given = getattr(mixtura, Estimator)(3, init=start, random_state=5).fit(blobs)
    np.testing.assert_array_equal(ours.cluster_centers_, given.cluster_centers_)
    if Estimator == "KMeans":  # and scikit-learn's Lloyd from that start ends at the same centres
        theirs = sklearn.cluster.KMeans(3, init=init, n_init=1, random_state=5).fit(blobs)
        np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-10)
    with pytest.warns(RuntimeWarning, match="A callable init is called once per fit"):
        getattr(mixtura, Estimator)(3, init=init, n_init=3).fit(blobs)


@pytest.mark.parametrize("Estimator", ["KMeans", "MiniBatchKMeans"])
@pytest.mark.parametrize("shape, match", [((2, 3), "does not match the number of clusters"),
                                          ((3, 2), "does not match the number of features of the data")])
def test_wrong_initial_centres_are_refused_in_scikit_learns_words(blobs, Estimator, shape, match):
    for est in (getattr(mixtura, Estimator), getattr(sklearn.cluster, Estimator)):
        for init in (np.zeros(shape), lambda X, k, random_state: np.zeros(shape)):
            with pytest.raises(ValueError, match=r"The shape of the initial centers .* " + match):
                est(3, init=init, n_init=1).fit(blobs)


@pytest.mark.parametrize("Estimator", ["KMeans", "MiniBatchKMeans"])
def test_feature_names_out_are_scikit_learns(blobs, Estimator):
    ours = getattr(mixtura, Estimator)(3, random_state=0).fit(blobs)
    theirs = getattr(sklearn.cluster, Estimator)(3, random_state=0, n_init=1).fit(blobs)
    np.testing.assert_array_equal(ours.get_feature_names_out(), theirs.get_feature_names_out())
    assert list(ours.get_feature_names_out()) == [f"{Estimator.lower()}{i}" for i in range(3)]


@pytest.mark.parametrize("Estimator", ["KMeans", "MiniBatchKMeans"])
def test_set_output_pandas_gives_scikit_learns_columns(blobs, Estimator):
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(blobs, columns=["a", "b", "c"], index=pd.RangeIndex(100, 100 + len(blobs)))
    make = {"mixtura": lambda: getattr(mixtura, Estimator)(3, random_state=0),
            "sklearn": lambda: getattr(sklearn.cluster, Estimator)(3, random_state=0, n_init=1)}
    out = {}
    for who, est in make.items():
        pipe = make_pipeline(StandardScaler(), est()).set_output(transform="pandas")
        out[who] = pipe.fit(X).transform(X)
        fitted = make_pipeline(StandardScaler(), est()).set_output(transform="pandas").fit_transform(X)
        alone = est().set_output(transform="pandas").fit_transform(X)
        for frame in (out[who], fitted, alone):
            assert isinstance(frame, pd.DataFrame) and frame.shape == (len(blobs), 3)
            assert list(frame.columns) == [f"{Estimator.lower()}{i}" for i in range(3)]
            assert frame.index.equals(X.index)
        # same seed, same fit: ours to the bit (scikit-learn's fit_transform differs by round-off)
        np.testing.assert_allclose(fitted.to_numpy(), out[who].to_numpy(), rtol=1e-12 if who == "sklearn" else 0)
    # ours: the distances of the scaled rows to the centres
    scaled = StandardScaler().fit_transform(blobs)
    centres = make_pipeline(StandardScaler(), make["mixtura"]()).fit(X)[-1].cluster_centers_
    expected = np.sqrt(((scaled[:, None, :] - centres[None]) ** 2).sum(axis=2))
    np.testing.assert_allclose(out["mixtura"].to_numpy(), expected, rtol=1e-10)
    # "default" again: an ndarray
    assert type(make["mixtura"]().set_output(transform="default").fit_transform(X)) is np.ndarray


def test_fewer_distinct_clusters_than_n_clusters_warn_as_in_scikit_learn():
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])  # three distinct rows
    msg = r"Number of distinct clusters \(3\) found smaller than n_clusters \(4\)"
    for est in (mixtura.KMeans(4, random_state=0), sklearn.cluster.KMeans(4, random_state=0)):
        with pytest.warns(sklearn.exceptions.ConvergenceWarning, match=msg):
            est.fit(X)
