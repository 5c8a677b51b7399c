"""Arrays in CUDA device memory (__cuda_array_interface__): the parser and every refusal run anywhere
with stand-in objects (nothing reads their pointer); the fits on a real device array skip without a
GPU and CuPy or PyTorch."""
import numpy as np
import pytest

import mixtura
from mixtura import _core, _cuda_array


class FakeDeviceArray:
    """Only an interface dict: an object that says its data is on the device."""

    def __init__(self, **iface):
        base = {"version": 3, "shape": (100, 3), "typestr": "<f8", "data": (0x7F0000000000, False),
                "strides": None, "stream": None}
        base.update(iface)
        self.__cuda_array_interface__ = {k: v for k, v in base.items() if v is not _MISSING}


_MISSING = object()
HAS_GPU = _core.HAS_CUDA and _core.cuda_device_count() > 0


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


def test_weights_and_initial_centres_must_be_host_arrays():
    if not HAS_GPU:
        pytest.skip("checked after the backend: needs a CUDA device")
    with pytest.raises(ValueError, match="sample_weight must be a host"):
        mixtura.KMeans(3, device="cuda").fit(FakeDeviceArray(), sample_weight=FakeDeviceArray(shape=(100,)))
    with pytest.raises(ValueError, match="init must be a host"):
        mixtura.KMeans(3, device="cuda", init=FakeDeviceArray(shape=(3, 3))).fit(FakeDeviceArray())


def test_gaussian_mixture_refuses_device_arrays():
    with pytest.raises(ValueError, match="GaussianMixture does not accept device arrays yet"):
        mixtura.GaussianMixture(2, device="auto").fit(FakeDeviceArray())


# ---- on a GPU, with CuPy or PyTorch (skip without) ----------------------------------------------

def _to_device(x):
    """x copied to device 0 by CuPy (else PyTorch), or a skip."""
    if not HAS_GPU:
        pytest.skip("no CUDA backend or no CUDA device")
    try:
        import cupy
        return cupy.asarray(x)
    except ImportError:
        torch = pytest.importorskip("torch", reason="needs CuPy or PyTorch for device arrays")
        return torch.as_tensor(x, device="cuda")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_on_a_device_array_on_the_gpu_is_the_host_array_fit(dtype):
    rng = np.random.default_rng(3)
    X = (rng.standard_normal((20000, 8)) + 4 * rng.integers(0, 6, (20000, 1))).astype(dtype)
    w = rng.uniform(0.5, 2.0, len(X)).astype(dtype)
    wide = np.hstack([X, np.full((len(X), 3), np.nan, dtype=dtype)])
    Xd, wide_d = _to_device(X), _to_device(wide)
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


def test_nan_in_a_device_array_gives_the_cpu_error():
    X = np.random.default_rng(0).standard_normal((5000, 4))
    X[4321, 2] = np.nan
    Xd = _to_device(X)
    with pytest.raises(ValueError) as cpu:  # the C++ check (KMeans.fit on the CPU stops in scikit-learn's)
        _core.kmeans_fit(X, None, None, 3, "k-means++", 1, 10, 1e-4, 0, 0, 0, "cpu")
    with pytest.raises(ValueError) as gpu:
        mixtura.KMeans(3, device="cuda").fit(Xd)
    assert str(gpu.value) == str(cpu.value)
    assert "non-finite value (nan) at row 4321, column 2" in str(gpu.value)
