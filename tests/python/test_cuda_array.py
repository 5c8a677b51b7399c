"""Arrays in CUDA device memory (__cuda_array_interface__): the parser and every refusal run anywhere
with stand-in objects (nothing reads their pointer); the fits on a real device array skip without a
GPU and CuPy or PyTorch."""
import numpy as np
import pytest

import mixtura
from mixtura import _core, _cuda_array

from gpu_util import HAS_GPU, to_device


class FakeDeviceArray:
    """Only an interface dict: an object that says its data is on the device."""

    def __init__(self, **iface):
        base = {"version": 3, "shape": (100, 3), "typestr": "<f8", "data": (0x7F0000000000, False),
                "strides": None, "stream": None}
        base.update(iface)
        self.__cuda_array_interface__ = {k: v for k, v in base.items() if v is not _MISSING}


_MISSING = object()


@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("typestr, dtype", [("<f4", np.float32), ("<f8", np.float64)])
def test_parse_reads_shape_type_pointer_and_row_stride(version, typestr, dtype):
    a = _cuda_array.parse(FakeDeviceArray(version=version, typestr=typestr, data=(1234, True)), "t")
    # Read-only data is fine: it is only read.
    assert (a.ptr, a.shape, a.dtype, a.row_stride) == (1234, (100, 3), np.dtype(dtype), 3)
    item = np.dtype(dtype).itemsize
    # C-contiguous strides spelled out, and a row stride wider than the row (a column slice of a wider array).
    assert _cuda_array.parse(FakeDeviceArray(typestr=typestr, strides=(3 * item, item)), "t").row_stride == 3
    assert _cuda_array.parse(FakeDeviceArray(typestr=typestr, strides=(8 * item, item)), "t").row_stride == 8
    # Strides of a dimension of length one mean nothing (the interface allows any value there).
    assert _cuda_array.parse(FakeDeviceArray(typestr=typestr, shape=(1, 3), strides=(0, item)), "t").row_stride == 3
    assert _cuda_array.parse(FakeDeviceArray(typestr=typestr, shape=(5, 1), strides=(2 * item, 77)),
                             "t").row_stride == 2


def test_parse_keeps_a_v3_stream_and_ignores_none_and_v2():
    assert _cuda_array.parse(FakeDeviceArray(stream=1), "t").stream == 1
    assert _cuda_array.parse(FakeDeviceArray(stream=0xABCDEF), "t").stream == 0xABCDEF
    assert _cuda_array.parse(FakeDeviceArray(stream=None), "t").stream is None
    assert _cuda_array.parse(FakeDeviceArray(stream=_MISSING), "t").stream is None
    assert _cuda_array.parse(FakeDeviceArray(version=2, stream=_MISSING), "t").stream is None


@pytest.mark.parametrize("iface, message", [
    ({"version": 1}, "version 1 is not supported"),
    ({"version": 4}, "version 4 is not supported"),
    ({"version": _MISSING}, "version None is not supported"),
    ({"shape": _MISSING}, "has no 'shape'"),
    ({"data": _MISSING}, "has no 'data'"),
    ({"shape": (100,)}, r"must be 2-dimensional \(n_samples, n_features\), got shape \(100,\)"),
    ({"shape": (2, 3, 4)}, "must be 2-dimensional"),
    ({"typestr": "<f2"}, "float32 or float64 .* got typestr '<f2'"),
    ({"typestr": ">f8"}, "got typestr '>f8'"),
    ({"typestr": "<i4"}, "got typestr '<i4'"),
    ({"mask": (0x1000, False)}, "masked device array"),
    ({"data": 1234}, r"'data' must be \(pointer, read_only\)"),
    ({"shape": (0, 3)}, r"X is empty \(shape \(0, 3\)\)"),
    ({"shape": (4, 0)}, "X is empty"),
    ({"data": (0, False)}, "null data pointer"),
    ({"strides": (8,)}, "has 1 strides"),
    ({"strides": (24, 16)}, r"values of a row of X must be contiguous \(strides\[1\] == 8 bytes\)"),
    ({"strides": (8, 24)}, "values of a row of X must be contiguous"),  # Fortran order
    ({"strides": (16, 8)}, "row stride of X .16 bytes. must be a multiple of 8 bytes and at least"),
    ({"strides": (28, 8)}, "must be a multiple of 8 bytes"),
    ({"strides": (-24, 8)}, "row stride"),
    ({"stream": 0}, "'stream' is 0, which the interface forbids"),
    ({"stream": "default"}, "'stream' must be an integer or None"),
    ({"stream": True}, "'stream' must be an integer or None"),
])
def test_parse_refuses_what_it_cannot_use_and_says_so(iface, message):
    with pytest.raises(ValueError, match=message):
        _cuda_array.parse(FakeDeviceArray(**iface), "KMeans.fit")


def test_an_interface_that_is_not_a_dict_is_refused():
    class Odd:
        __cuda_array_interface__ = [("shape", (3, 3))]

    with pytest.raises(ValueError, match="must be a dict, got list"):
        _cuda_array.parse(Odd(), "KMeans.fit")


def test_device_arrays_are_recognised_by_the_interface_alone():
    assert _cuda_array.is_device_array(FakeDeviceArray())
    assert not _cuda_array.is_device_array(np.zeros((3, 3)))

    class CpuTensor:  # what a CPU torch tensor does: the property raises AttributeError
        @property
        def __cuda_array_interface__(self):
            raise AttributeError("Can't get __cuda_array_interface__ on non-CUDA tensor type")

    assert not _cuda_array.is_device_array(CpuTensor())


@pytest.mark.parametrize("call", ["fit", "predict", "transform", "score"])
def test_device_arrays_with_device_cpu_are_refused_without_a_copy(blobs, call):
    km = mixtura.KMeans(3, device="cpu", random_state=0).fit(blobs)
    with pytest.raises(ValueError, match=r"is in CUDA device memory .* but device='cpu'; use device='cuda' or "
                                         r"'auto', or copy it to the host first \(e.g. cupy.asnumpy\(X\)"):
        getattr(km, call)(FakeDeviceArray())
    np.testing.assert_array_equal(km.predict(blobs), km.labels_)  # the fitted model is untouched


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_device_arrays_without_a_cuda_backend_or_device_say_why(blobs, device):
    if HAS_GPU:
        pytest.skip("this machine has a CUDA backend and a device")
    km = mixtura.KMeans(3, device=device, random_state=0)
    if not _core.HAS_CUDA:
        match = (r"this build of mixtura has no CUDA backend; reinstall with `pip install \. -C "
                 r"cmake\.define\.MIXTURA_WITH_CUDA=ON` on a machine with nvcc")
    else:
        match = "no CUDA device is visible to this process"
    with pytest.raises(ValueError, match=match):
        km.fit(FakeDeviceArray())
    km.set_params(device="cpu").fit(blobs).set_params(device=device)
    for call in (km.predict, km.transform, km.score):
        with pytest.raises(ValueError, match=match):
            call(FakeDeviceArray())


def test_bad_device_arrays_are_refused_before_the_backend_is_chosen():
    # The parser speaks first: a build without CUDA still names the real problem with the array.
    with pytest.raises(ValueError, match="got typestr '<i8'"):
        mixtura.KMeans(3, device="auto").fit(FakeDeviceArray(typestr="<i8"))
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'auto', got 'tpu'"):
        mixtura.KMeans(3, device="tpu").fit(FakeDeviceArray())


def test_initial_centres_must_be_host_arrays():
    if not HAS_GPU:
        pytest.skip("checked after the backend: needs a CUDA device")
    with pytest.raises(ValueError, match="init must be a host"):
        mixtura.KMeans(3, device="cuda", init=FakeDeviceArray(shape=(3, 3))).fit(FakeDeviceArray())


# ---- sample weights in device memory (beside a device X) ------------------------------------------

@pytest.mark.parametrize("typestr, dtype", [("<f4", np.float32), ("<f8", np.float64)])
def test_parse_vector_reads_a_contiguous_device_vector(typestr, dtype):
    item = np.dtype(dtype).itemsize
    for strides in (None, (item,)):
        w = _cuda_array.parse_vector(FakeDeviceArray(shape=(100,), typestr=typestr, data=(4321, True), strides=strides,
                                                     stream=7), "KMeans.fit")
        assert (w.ptr, w.shape, w.dtype, w.stream) == (4321, (100, 1), np.dtype(dtype), 7)
    # One value: its stride means nothing.
    assert _cuda_array.parse_vector(FakeDeviceArray(shape=(1,), strides=(999,)), "t").shape == (1, 1)


class FakeDLPackOnly:
    """A DLPack array in CUDA memory without __cuda_array_interface__ whose capsule must never be taken (DLPack
    vectors that are read: test_dlpack.py)."""

    def __dlpack__(self, stream=None, max_version=None):
        raise AssertionError("a refused DLPack array must not be exported")

    def __dlpack_device__(self):
        return (2, 0)


@pytest.mark.parametrize("obj, message", [
    (FakeDeviceArray(shape=(100, 1)), r"sample_weight must be 1-dimensional \(n_samples,\), got shape \(100, 1\)"),
    (FakeDeviceArray(shape=(100,), strides=(16,)), r"values of sample_weight must be contiguous .* strides \(16,\)"),
    (FakeDeviceArray(shape=(100,), strides=(-8,)), "must be contiguous"),
    (FakeDeviceArray(shape=(100,), typestr="<i4"), "sample_weight must hold float32 or float64 .* got typestr '<i4'"),
    (FakeDeviceArray(shape=(100,), mask=(0x1000, False)), "sample_weight is a masked device array"),
    (FakeDeviceArray(shape=(0,)), r"sample_weight is empty \(shape \(0,\)\)"),
    (FakeDeviceArray(shape=(100,), stream=0), "'stream' is 0"),
    (FakeDeviceArray(shape=(100,), version=1), "version 1 is not supported"),
    (FakeDeviceArray(shape=_MISSING), "has no 'shape'"),
])
def test_parse_vector_refuses_what_it_cannot_use_and_says_so(obj, message):
    with pytest.raises(ValueError, match=message):
        _cuda_array.parse_vector(obj, "KMeans.fit")


def test_device_weights_with_a_host_x_are_refused_without_a_copy(blobs):
    # Refused whatever the build: nothing is copied silently, and the fitted model is untouched.
    w = FakeDeviceArray(shape=(len(blobs),))
    match = (r"KMeans.fit: sample_weight is in CUDA device memory \(__cuda_array_interface__\) but X is a host "
             r"array; pass X on the device too .* or copy the weights to the host")
    km = mixtura.KMeans(3, random_state=0)
    with pytest.raises(ValueError, match=match):
        km.fit(blobs, sample_weight=w)
    assert not hasattr(km, "cluster_centers_")
    km.fit(blobs)
    with pytest.raises(ValueError, match=match.replace("KMeans.fit", "KMeans.score")):
        km.score(blobs, sample_weight=w)
    with pytest.raises(ValueError, match=r"sample_weight is in CUDA device memory \(DLPack\)"):
        km.fit(blobs, sample_weight=FakeDLPackOnly())


@pytest.mark.parametrize("weights, message", [
    (FakeDeviceArray(shape=(99,)), r"sample_weight.shape == \(99,\), expected \(100,\)!"),
    (FakeDeviceArray(shape=(100,), typestr="<f4"),
     r"KMeans.fit: sample_weight in CUDA device memory must have X's dtype \(float64\), got float32"),
    (FakeDeviceArray(shape=(100, 1)), "sample_weight must be 1-dimensional"),
])
def test_bad_device_weights_are_refused_before_the_backend_is_chosen(weights, message):
    # Checked with X, before device='auto' is resolved: a build or machine without CUDA names them too.
    with pytest.raises(ValueError, match=message):
        mixtura.KMeans(3, device="auto").fit(FakeDeviceArray(), sample_weight=weights)


GMM_CALLS = ["fit", "score_samples", "score", "predict", "predict_proba", "component_log_density", "bic", "aic"]


@pytest.mark.parametrize("call", GMM_CALLS)
def test_gaussian_mixture_with_device_cpu_refuses_device_arrays_without_a_copy(blobs, call):
    gm = mixtura.GaussianMixture(3, device="cpu", random_state=0).fit(blobs)
    means = gm.means_.copy()
    with pytest.raises(ValueError, match=r"GaussianMixture\.\w+: X is in CUDA device memory .* but device='cpu'; use "
                                         r"device='cuda' or 'auto', or copy it to the host first \(e.g. "
                                         r"cupy.asnumpy\(X\)"):
        getattr(gm, call)(FakeDeviceArray())
    np.testing.assert_array_equal(gm.means_, means)  # the fitted model is untouched


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_gaussian_mixture_on_device_arrays_without_a_cuda_backend_or_device_says_why(blobs, device):
    if HAS_GPU:
        pytest.skip("this machine has a CUDA backend and a device")
    if not _core.HAS_CUDA:
        match = (r"this build of mixtura has no CUDA backend; reinstall with `pip install \. -C "
                 r"cmake\.define\.MIXTURA_WITH_CUDA=ON` on a machine with nvcc")
    else:
        match = "no CUDA device is visible to this process"
    gm = mixtura.GaussianMixture(3, device=device, random_state=0)
    with pytest.raises(ValueError, match="GaussianMixture.fit: .*" + match):
        gm.fit(FakeDeviceArray())
    assert not hasattr(gm, "means_")
    gm.set_params(device="cpu").fit(blobs).set_params(device=device)
    for call in GMM_CALLS[1:]:
        with pytest.raises(ValueError, match=match):
            getattr(gm, call)(FakeDeviceArray())


def test_gaussian_mixture_refuses_bad_device_arrays_before_the_backend_is_chosen(blobs):
    with pytest.raises(ValueError, match="GaussianMixture.fit: X must hold float32 or float64 .* got typestr '<i8'"):
        mixtura.GaussianMixture(2, device="auto").fit(FakeDeviceArray(typestr="<i8"))
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda' or 'auto', got 'tpu'"):
        mixtura.GaussianMixture(2, device="tpu").fit(FakeDeviceArray())
    gm = mixtura.GaussianMixture(2, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match=r"GaussianMixture.predict_proba: X must be 2-dimensional"):
        gm.predict_proba(FakeDeviceArray(shape=(100,)))


def test_gaussian_mixture_device_weights_with_a_host_x_are_refused_without_a_copy(blobs):
    # As for KMeans, whatever the build: nothing is copied silently, and the fitted model is untouched.
    gm = mixtura.GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match=r"GaussianMixture.fit: sample_weight is in CUDA device memory "
                                         r"\(__cuda_array_interface__\) but X is a host array; pass X on the device "
                                         r"too .* or copy the weights to the host"):
        gm.fit(blobs, sample_weight=FakeDeviceArray(shape=(len(blobs),)))
    assert not hasattr(gm, "means_")
    with pytest.raises(ValueError, match=r"GaussianMixture.fit: sample_weight is in CUDA device memory \(DLPack\)"):
        gm.fit(blobs, sample_weight=FakeDLPackOnly())


def test_gaussian_mixture_score_takes_device_weights_only_beside_a_device_x(blobs):
    gm = mixtura.GaussianMixture(3, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match=r"GaussianMixture.score: sample_weight is in CUDA device memory "
                                         r"\(__cuda_array_interface__\) but X is a host array"):
        gm.score(blobs, sample_weight=FakeDeviceArray(shape=(len(blobs),)))
    # Checked with X, before the backend is chosen.
    with pytest.raises(ValueError, match=r"GaussianMixture.score: sample_weight.shape == \(99,\), expected \(100,\)!"):
        gm.score(FakeDeviceArray(), sample_weight=FakeDeviceArray(shape=(99,)))
    with pytest.raises(ValueError, match=r"GaussianMixture.score: sample_weight in CUDA device memory must have X's "
                                         r"dtype \(float64\), got float32"):
        gm.score(FakeDeviceArray(), sample_weight=FakeDeviceArray(shape=(100,), typestr="<f4"))


def test_gaussian_mixture_predict_is_the_argmax_of_the_weighted_log_densities(blobs):
    gm = mixtura.GaussianMixture(3, random_state=0).fit(blobs)
    labels = gm.predict(blobs)
    assert labels.dtype == np.int64 and labels.shape == (len(blobs),)
    lp = gm.component_log_density(blobs) + np.log(gm.weights_)
    np.testing.assert_array_equal(labels, lp.argmax(axis=1))
    np.testing.assert_array_equal(labels, gm.predict_proba(blobs).argmax(axis=1))


@pytest.mark.parametrize("weights, message", [
    (FakeDeviceArray(shape=(99,)), r"GaussianMixture.fit: sample_weight.shape == \(99,\), expected \(100,\)!"),
    (FakeDeviceArray(shape=(100,), typestr="<f4"),
     r"GaussianMixture.fit: sample_weight in CUDA device memory must have X's dtype \(float64\), got float32"),
    (FakeDeviceArray(shape=(100, 1)), "GaussianMixture.fit: sample_weight must be 1-dimensional"),
    (FakeDeviceArray(shape=(100,), strides=(16,)), r"values of sample_weight must be contiguous .* strides \(16,\)"),
])
def test_gaussian_mixture_bad_device_weights_are_refused_before_the_backend_is_chosen(weights, message):
    # Checked with X, before device='auto' is resolved: a build or machine without CUDA names them too.
    gm = mixtura.GaussianMixture(2, device="auto")
    with pytest.raises(ValueError, match=message):
        gm.fit(FakeDeviceArray(), sample_weight=weights)
    assert not hasattr(gm, "means_")


def test_gaussian_mixture_starting_parameters_must_be_host_arrays(blobs):
    if not HAS_GPU:
        pytest.skip("checked after the backend: needs a CUDA device")
    with pytest.raises(ValueError, match="GaussianMixture: means_init must be a host"):
        mixtura.GaussianMixture(2, device="cuda", means_init=FakeDeviceArray(shape=(2, 3))).fit(FakeDeviceArray())
    with pytest.raises(ValueError, match=r"Expected n_samples >= n_components but got n_components = 200"):
        mixtura.GaussianMixture(200, device="cuda").fit(FakeDeviceArray())
    gm = mixtura.GaussianMixture(2, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="X has 5 features, but GaussianMixture is expecting 3 features"):
        gm.set_params(device="cuda").score_samples(FakeDeviceArray(shape=(100, 5)))


# ---- on a GPU, with CuPy or PyTorch (skip without) ----------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_on_a_device_array_on_the_gpu_is_the_host_array_fit(dtype):
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((20000, 8)) + 4 * rng.integers(0, 6, (20000, 1))).astype(dtype)
    w = rng.uniform(0.5, 2.0, len(X)).astype(dtype)
    wide = np.hstack([X, np.full((len(X), 3), np.nan, dtype=dtype)])
    Xd, wide_d = to_device(X), to_device(wide)
    strided = wide_d[:, :8]  # rows 11 values apart: compacted on the device, never read on the host
    for kw in [dict(init="k-means++", n_init=3), dict(init="random", n_init=2), dict(init=X[:6])]:
        host = mixtura.KMeans(6, device="cuda", random_state=1, **kw).fit(X, sample_weight=w)
        for data in (Xd, strided):
            dev = mixtura.KMeans(6, device="auto", random_state=1, **kw).fit(data, sample_weight=w)
            # The same kernels on the same dense rows: the same bits.
            np.testing.assert_array_equal(dev.labels_, host.labels_)
            np.testing.assert_array_equal(dev.cluster_centers_, host.cluster_centers_)
            for a, b in zip(dev.distortion_traces_, host.distortion_traces_):
                np.testing.assert_array_equal(a, b)
            assert dev.inertia_ == host.inertia_ and dev.n_features_in_ == 8
            np.testing.assert_array_equal(dev.predict(data), host.predict(X))
            np.testing.assert_allclose(dev.transform(data), host.transform(X), rtol=1e-5 if dtype == np.float32 else 1e-12)
            assert dev.score(data, sample_weight=w) == pytest.approx(host.score(X, sample_weight=w), rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_mixture_on_a_device_array_on_the_gpu_is_the_host_array_fit(dtype):
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((20000, 5)) + 5 * rng.integers(0, 4, (20000, 1)) + 40).astype(dtype)
    w = rng.uniform(0.5, 2.0, len(X)).astype(dtype)
    wide = np.hstack([X, np.full((len(X), 2), np.nan, dtype=dtype)])
    Xd, wide_d = to_device(X), to_device(wide)
    strided = wide_d[:, :5]  # rows 7 values apart: compacted on the device, never read on the host
    for kw in [dict(covariance_type="full", init_params="kmeans", n_init=2),
               dict(covariance_type="tied", init_params="random"),
               dict(covariance_type="diag", init_params="k-means++"),
               dict(covariance_type="spherical", init_params="random_from_data")]:
        host = mixtura.GaussianMixture(4, device="cuda", random_state=2, max_iter=20, **kw).fit(X, sample_weight=w)
        for data in (Xd, strided):
            dev = mixtura.GaussianMixture(4, device="auto", random_state=2, max_iter=20, **kw).fit(data, sample_weight=w)
            # The same passes on the same dense rows: the same bits.
            for a, b in zip(dev.elbo_traces_, host.elbo_traces_):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(dev.means_, host.means_)
            np.testing.assert_array_equal(dev.covariances_, host.covariances_)
            assert dev.n_features_in_ == 5 and dev.lower_bound_ == host.lower_bound_
            # Scoring of device data on the device; of host data on the CPU: close, not the same bits.
            tol = 1e-5 if dtype == np.float32 else 1e-10
            np.testing.assert_allclose(dev.score_samples(data), host.score_samples(X), rtol=tol)
            np.testing.assert_array_equal(dev.predict(data), host.predict(X))
            np.testing.assert_allclose(dev.predict_proba(data), host.predict_proba(X), atol=100 * tol)
            assert dev.score(data, sample_weight=w) == pytest.approx(host.score(X, sample_weight=w), rel=tol)
            assert dev.bic(data) == pytest.approx(host.bic(X), rel=tol)


def test_nan_in_a_device_array_gives_the_gaussian_mixtures_cpu_error():
    X = np.random.default_rng(1).standard_normal((5000, 4))
    X[1234, 3] = np.inf
    Xd = to_device(X)
    with pytest.raises(ValueError) as cpu:  # the C++ check (GaussianMixture.fit on the CPU stops in scikit-learn's)
        _core.typed("gmm_fit", X.dtype)(X, None, 2, "full", 1e-3, 1e-6, 10, 1, "kmeans", 0, 0, 0, None, None, None, "cpu")
    with pytest.raises(ValueError) as gpu:
        mixtura.GaussianMixture(2, device="cuda").fit(Xd)
    assert str(gpu.value) == str(cpu.value)
    assert "non-finite value (inf) at row 1234, column 3" in str(gpu.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_with_device_weights_on_the_gpu_is_the_host_weights_fit(dtype):
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((20000, 5)) + 4 * rng.integers(0, 6, (20000, 1))).astype(dtype)
    w = np.where(np.arange(len(X)) % 7 == 0, 0.0, rng.uniform(0.5, 2.0, len(X))).astype(dtype)
    Xd, wd = to_device(X), to_device(w)
    for kw in [dict(init="k-means++", n_init=3), dict(init="random", n_init=2), dict(init=X[:6])]:
        host_w = mixtura.KMeans(6, device="cuda", random_state=2, **kw).fit(Xd, sample_weight=w)
        dev_w = mixtura.KMeans(6, device="cuda", random_state=2, **kw).fit(Xd, sample_weight=wd)
        # The same kernels read the same weights (uploaded, or in place): the same bits.
        np.testing.assert_array_equal(dev_w.labels_, host_w.labels_)
        np.testing.assert_array_equal(dev_w.cluster_centers_, host_w.cluster_centers_)
        for a, b in zip(dev_w.distortion_traces_, host_w.distortion_traces_):
            np.testing.assert_array_equal(a, b)
        assert dev_w.inertia_ == host_w.inertia_
        assert dev_w.score(Xd, sample_weight=wd) == host_w.score(Xd, sample_weight=w)
    bad = w.copy()
    bad[1234] = -1
    with pytest.raises(ValueError, match=r"sample_weight\[1234\] = -1 is negative"):
        mixtura.KMeans(3, device="cuda").fit(Xd, sample_weight=to_device(bad))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_mixture_with_device_weights_on_the_gpu_is_the_host_weights_fit(dtype):
    rng = np.random.default_rng(6)
    X = (rng.standard_normal((20000, 5)) + 5 * rng.integers(0, 4, (20000, 1)) + 40).astype(dtype)
    w = np.where(np.arange(len(X)) % 7 == 0, 0.0, rng.uniform(0.5, 2.0, len(X))).astype(dtype)
    Xd, wd = to_device(X), to_device(w)
    for kw in [dict(covariance_type="full", init_params="kmeans", n_init=2),
               dict(covariance_type="tied", init_params="random"),
               dict(covariance_type="diag", init_params="k-means++"),
               dict(covariance_type="spherical", init_params="random_from_data")]:
        host_w = mixtura.GaussianMixture(4, device="cuda", random_state=2, max_iter=20, **kw).fit(Xd, sample_weight=w)
        dev_w = mixtura.GaussianMixture(4, device="cuda", random_state=2, max_iter=20, **kw).fit(Xd, sample_weight=wd)
        # The same kernels read the same weights (uploaded, or in place): the same bits.
        for a, b in zip(dev_w.elbo_traces_, host_w.elbo_traces_):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(dev_w.weights_, host_w.weights_)
        np.testing.assert_array_equal(dev_w.means_, host_w.means_)
        np.testing.assert_array_equal(dev_w.covariances_, host_w.covariances_)
        assert dev_w.lower_bound_ == host_w.lower_bound_
    bad = w.copy()
    bad[1234] = -1
    with pytest.raises(ValueError, match=r"GaussianMixture\.fit: sample_weight\[1234\] = -1 is negative"):
        mixtura.GaussianMixture(3, device="cuda").fit(Xd, sample_weight=to_device(bad))


def test_nan_in_a_device_array_gives_the_cpu_error():
    X = np.random.default_rng(0).standard_normal((5000, 4))
    X[4321, 2] = np.nan
    Xd = to_device(X)
    with pytest.raises(ValueError) as cpu:  # the C++ check (KMeans.fit on the CPU stops in scikit-learn's)
        _core.typed("kmeans_fit", X.dtype)(X, None, None, 3, "k-means++", 1, 10, 1e-4, 0, 0, 0, "cpu")
    with pytest.raises(ValueError) as gpu:
        mixtura.KMeans(3, device="cuda").fit(Xd)
    assert str(gpu.value) == str(cpu.value)
    assert "non-finite value (nan) at row 4321, column 2" in str(gpu.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_mixture_scores_device_data_with_device_weights_on_the_gpu(dtype):
    rng = np.random.default_rng(8)
    X = (rng.standard_normal((20000, 4)) + 5 * rng.integers(0, 4, (20000, 1))).astype(dtype)
    w = rng.uniform(0.2, 2.0, len(X)).astype(dtype)
    Xd, wd = to_device(X), to_device(w)
    gm = mixtura.GaussianMixture(4, device="cuda", random_state=0).fit(Xd, sample_weight=wd)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    assert gm.score(Xd, sample_weight=wd) == pytest.approx(gm.score(Xd, sample_weight=w), rel=tol)
    assert gm.score(Xd, sample_weight=wd) == pytest.approx(gm.score(X, sample_weight=w), rel=tol)
    np.testing.assert_array_equal(gm.predict(Xd), gm.predict(X))
    bad = w.copy()
    bad[77] = np.nan
    with pytest.raises(ValueError, match=r"GaussianMixture\.score: sample_weight\[77\] = -?nan is not finite"):
        gm.score(Xd, sample_weight=to_device(bad))
