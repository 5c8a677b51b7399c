"""KMeans on SciPy sparse (CSR) input: the same fit as on the same rows dense (bit for bit from the
same start), scikit-learn's sparse KMeans from the same start, exact distances, and clear refusals."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans as SkKMeans

import mixtura


def sparse_blobs(n=3000, d=200, k=5, density=0.03, seed=0, dtype=np.float64):
    """k groups of rows, each with its own columns stored more often and larger, some rows empty."""
    rng = np.random.default_rng(seed)
    group = np.arange(n) % k
    own = (np.arange(d)[None, :] % k) == group[:, None]
    stored = rng.random((n, d)) < np.where(own, 4 * density, density)
    x = np.where(stored, rng.normal(size=(n, d)) + 3.0 * own, 0.0)
    x[::97] = 0.0
    return sp.csr_matrix(x.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_fit_is_the_dense_fit_bit_for_bit(dtype):
    X = sparse_blobs(dtype=dtype)
    init = X[1:6].toarray()
    dense = mixtura.KMeans(5, init=init, n_init=1).fit(X.toarray())
    sparse = mixtura.KMeans(5, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    np.testing.assert_array_equal(sparse.cluster_centers_, dense.cluster_centers_)
    assert sparse.cluster_centers_.dtype == dtype
    assert sparse.n_iter_ == dense.n_iter_
    assert sparse.inertia_ == pytest.approx(dense.inertia_, rel=1e-12)
    np.testing.assert_allclose(sparse.distortion_trace_, dense.distortion_trace_, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_fit_matches_scikit_learn_from_the_same_start(dtype):
    X = sparse_blobs(seed=3, dtype=dtype)
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0]).astype(dtype)
    init = X[[2, 8, 14, 20, 26]].toarray()
    ours = mixtura.KMeans(5, init=init, n_init=1, tol=1e-6).fit(X, sample_weight=w)
    ref = SkKMeans(5, init=init, n_init=1, tol=1e-6, algorithm="lloyd").fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 1e-12)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_transform_score_statistics_of_csr_equal_dense(dtype):
    X = sparse_blobs(n=1200, seed=5, dtype=dtype)
    km = mixtura.KMeans(5, random_state=0).fit(X)
    D = X.toarray()
    np.testing.assert_array_equal(km.predict(X), km.predict(D))
    t = km.transform(X)
    assert isinstance(t, np.ndarray) and t.dtype == dtype and t.shape == (1200, 5)
    np.testing.assert_allclose(t, km.transform(D), rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    w = np.linspace(0.5, 1.5, 1200).astype(dtype)
    assert km.score(X, sample_weight=w) == pytest.approx(km.score(D, sample_weight=w), rel=1e-12)
    s, d = km.statistics(X).to_dict(), km.statistics(D).to_dict()
    for key in ("count", "weight", "sums", "farthest_row", "farthest_values"):
        np.testing.assert_array_equal(s[key], d[key], err_msg=key)
    assert s["distortion"] == pytest.approx(d["distortion"], rel=1e-12)


def test_exact_labels_far_from_the_origin():
    """Values near 1e4 in float32: the expanded distance |c|^2 - 2 x.c cannot separate the centres;
    the labels are still the nearest by exact distance (NumPy in float64 says which)."""
    rng = np.random.default_rng(2)
    x = np.where(rng.random((600, 30)) < 0.5, 1e4 + rng.normal(scale=1e-2, size=(600, 30)), 0.0)
    X = sp.csr_matrix(x.astype(np.float32))
    km = mixtura.KMeans(6, random_state=0, n_init=1).fit(X)
    x64 = X.toarray().astype(np.float64)
    c64 = km.cluster_centers_.astype(np.float64)
    d2 = ((x64[:, None, :] - c64[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(km.predict(X), d2.argmin(axis=1))


def test_other_sparse_formats_int64_indices_and_duplicates():
    X = sparse_blobs(n=800, seed=7)
    ref = mixtura.KMeans(4, random_state=1).fit(X)
    for other in (X.tocsc(), X.tocoo(), sp.csr_array(X)):
        km = mixtura.KMeans(4, random_state=1).fit(other)
        np.testing.assert_array_equal(km.labels_, ref.labels_)
        np.testing.assert_array_equal(km.cluster_centers_, ref.cluster_centers_)
    wide = X.copy()
    wide.indices = wide.indices.astype(np.int64)
    wide.indptr = wide.indptr.astype(np.int64)
    np.testing.assert_array_equal(mixtura.KMeans(4, random_state=1).fit(wide).cluster_centers_, ref.cluster_centers_)
    # Row 1 stored as two halves of its values at the same columns (SciPy sums duplicates), unsorted.
    coo = X.tocoo()
    first = coo.row == 1
    rows = np.concatenate([coo.row, coo.row[first]])
    cols = np.concatenate([coo.col, coo.col[first]])
    vals = np.concatenate([np.where(first, coo.data / 2, coo.data), coo.data[first] / 2])
    order = np.argsort(rows, kind="stable")
    dup = sp.csr_matrix((vals[order], cols[order].astype(np.int32),
                         np.searchsorted(rows[order], np.arange(X.shape[0] + 1))), shape=X.shape)
    assert not dup.has_canonical_format
    before = (dup.data.copy(), dup.indices.copy(), dup.indptr.copy())
    km = mixtura.KMeans(4, random_state=1).fit(dup)
    np.testing.assert_allclose(km.cluster_centers_, ref.cluster_centers_, rtol=1e-12, atol=1e-12)
    for a, b in zip(before, (dup.data, dup.indices, dup.indptr)):  # the caller's matrix is left as it was
        np.testing.assert_array_equal(a, b)


def test_sparse_refusals_name_what_is_wrong():
    X = sparse_blobs(n=300, seed=9)
    bad = X.copy()
    bad.data[bad.indptr[7] + 1] = np.nan
    with pytest.raises(ValueError, match=r"KMeans.fit: X contains NaN \(a missing value\) at row 7, column"):
        mixtura.KMeans(3).fit(bad)
    bad.data[bad.indptr[7] + 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        mixtura.KMeans(3).fit(bad)
    with pytest.raises(ValueError, match=r"sparse \(CSR\) input runs on the CPU; device='cuda'"):
        mixtura.KMeans(3, device="cuda").fit(X)
    km = mixtura.KMeans(3, device="auto", random_state=0).fit(X)  # "auto": the CPU
    with pytest.raises(ValueError, match="X has 199 features, but KMeans is expecting 200 features"):
        km.predict(X[:, :199])
    with pytest.raises(TypeError, match="Sparse data was passed"):
        mixtura.GaussianMixture(2).fit(X)
    with pytest.raises(TypeError, match="Sparse data was passed"):
        mixtura.DensityAnomalyDetector().fit(X)


def test_sparse_fit_is_the_same_for_any_thread_count():
    X = sparse_blobs(n=5000, seed=11, dtype=np.float32)
    one = mixtura.KMeans(8, random_state=3, n_threads=1).fit(X)
    two = mixtura.KMeans(8, random_state=3, n_threads=2).fit(X)
    np.testing.assert_array_equal(one.cluster_centers_, two.cluster_centers_)
    np.testing.assert_array_equal(one.labels_, two.labels_)
    assert one.inertia_ == two.inertia_


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_minibatch_on_csr_is_the_dense_minibatch(dtype):
    X = sparse_blobs(n=4000, d=120, seed=13, dtype=dtype)
    D = X.toarray()
    kw = dict(n_clusters=6, batch_size=256, random_state=4, max_iter=5, reassignment_ratio=0.2)
    dense = mixtura.MiniBatchKMeans(**kw).fit(D)
    sparse = mixtura.MiniBatchKMeans(**kw).fit(X)
    np.testing.assert_array_equal(sparse.cluster_centers_, dense.cluster_centers_)
    np.testing.assert_array_equal(sparse.counts_, dense.counts_)
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    assert sparse.n_steps_ == dense.n_steps_
    assert sparse.inertia_ == pytest.approx(dense.inertia_, rel=1e-12)
    np.testing.assert_array_equal(sparse.predict(X), dense.predict(D))
    np.testing.assert_allclose(sparse.transform(X), dense.transform(D), rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6)
    assert sparse.score(X) == pytest.approx(dense.score(D), rel=1e-12)
    pd_, ps_ = mixtura.MiniBatchKMeans(**kw), mixtura.MiniBatchKMeans(**kw)
    for start in range(0, 4000, 800):
        pd_.partial_fit(D[start:start + 800])
        ps_.partial_fit(X[start:start + 800])
    np.testing.assert_array_equal(ps_.cluster_centers_, pd_.cluster_centers_)
    np.testing.assert_array_equal(ps_.counts_, pd_.counts_)
    # a fitted float32 model takes float64 CSR rows in partial_fit (converted to its dtype)
    if dtype == np.float32:
        ps_.partial_fit(X[:300].astype(np.float64))
        pd_.partial_fit(D[:300].astype(np.float64))
        np.testing.assert_array_equal(ps_.cluster_centers_, pd_.cluster_centers_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_elkan_is_lloyd_bit_for_bit(dtype):
    """Hamerly's bounds on CSR rows skip rows without changing a bit of the fit."""
    X = sparse_blobs(n=6000, d=300, k=10, seed=21, dtype=dtype)
    lloyd = mixtura.KMeans(10, random_state=2, algorithm="lloyd", tol=0, max_iter=40).fit(X)
    for algorithm in ("elkan", "auto"):
        km = mixtura.KMeans(10, random_state=2, algorithm=algorithm, tol=0, max_iter=40).fit(X)
        np.testing.assert_array_equal(km.labels_, lloyd.labels_)
        np.testing.assert_array_equal(km.cluster_centers_, lloyd.cluster_centers_)
        np.testing.assert_array_equal(km.distortion_trace_, lloyd.distortion_trace_)
        assert km.n_iter_ == lloyd.n_iter_ and km.inertia_ == lloyd.inertia_


def test_core_refuses_malformed_csr_arrays_naming_the_estimator():
    """The bindings' own checks of the arrays Python hands them (sizes, indptr's type and end), in the
    caller's name."""
    from mixtura import _core
    X = sparse_blobs(n=50, d=8, seed=3)
    data, indices, indptr = X.data, X.indices.astype(np.int32), X.indptr.astype(np.int64)
    centres = X[:2].toarray()
    predict = _core.typed("kmeans_predict_csr", np.float64)
    with pytest.raises(ValueError, match=r"KMeans: CSR indptr must hold n_samples \+ 1 = 51 entries, got 50"):
        predict(data, indices, indptr[:-1], 50, 8, centres, 1)
    with pytest.raises(ValueError, match="KMeans: CSR indptr must be int32 or int64, got float64"):
        predict(data, indices, indptr.astype(np.float64), 50, 8, centres, 1)
    with pytest.raises(ValueError, match=r"KMeans: CSR indptr ends at \d+ but data holds \d+ values"):
        predict(data[:-1], indices[:-1], indptr, 50, 8, centres, 1)
    args = mixtura.MiniBatchKMeans._core_args(mixtura.MiniBatchKMeans(2)._check_params(50), 0)
    with pytest.raises(ValueError, match="MiniBatchKMeans.fit: sparse rows must be .* got 4 items"):
        _core.typed("minibatch_fit", np.float64)((data, indices, indptr, 50), None, None, *args)
