"""Arrays in CUDA memory through DLPack (__dlpack__ / __dlpack_device__). Without a GPU the producers
are fakes built here with ctypes: a DLManagedTensor (or DLManagedTensorVersioned) whose data pointer
nothing reads, in a capsule with the destructor the specification asks of a producer, and a deleter
that counts its calls. The fits on a real device array skip without a GPU and CuPy or PyTorch."""
import ctypes
import gc

import numpy as np
import pytest

import mixtura
from mixtura import _core, _cuda_array, _dlpack

from gpu_util import HAS_GPU, to_device

# Not run on the lower copies of the core by tests/run_all.sh (conftest.py), for this reason:
pytestmark = pytest.mark.top_level_only(reason=(
    "DLPack descriptors and refusals, no arithmetic: a host DLPack array reaches the NumPy array's core "
    "call (that equality is the check), and device fits run on the GPU, not on a CPU copy of the core"))

DATA = 0x7F0000000000  # a device address for the descriptor; never dereferenced

_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi))
_capsule_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))
# Raw-address versions for the capsule destructor, which runs while the capsule is being freed.
_raw_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_raw_get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))
_NAMES = {False: b"dltensor", True: b"dltensor_versioned"}


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _producer_capsule_destructor(capsule):
    """What the specification asks of a producer: call the deleter unless a consumer renamed the capsule."""
    for versioned, name in _NAMES.items():
        if _raw_is_valid(capsule, name):
            address = _raw_get_pointer(capsule, name)
            struct = (_dlpack.DLManagedTensorVersioned if versioned else _dlpack.DLManagedTensor).from_address(address)
            if struct.deleter:
                struct.deleter(address)


class FakeCudaTensor:
    """A DLPack producer for a 2-d tensor at DATA. `versioned`: None = a producer older than max_version (its
    __dlpack__ has no such keyword), True = answers max_version with a DLManagedTensorVersioned."""

    def __init__(self, shape=(100, 3), code=2, bits=64, lanes=1, device=(2, 0), data=DATA, strides=None,
                 byte_offset=0, versioned=None, version=(1, 0), null_deleter=False, capsule_device=None):
        self.device = device
        self.capsule_device = capsule_device or device
        self.shape, self.code, self.bits, self.lanes = shape, code, bits, lanes
        self.data, self.strides, self.byte_offset = data, strides, byte_offset
        self.versioned, self.version, self.null_deleter = versioned, version, null_deleter
        self.calls = []       # keyword arguments of each __dlpack__ call
        self.deleted = []     # addresses the deleter was called with
        self.capsules = []    # every capsule handed out (kept, to read its name afterwards)
        self.structs = []
        self._deleter = _dlpack.Deleter(self.deleted.append)

    def __dlpack_device__(self):
        return self.device

    def __dlpack__(self, *, stream=None, **kw):
        if self.versioned is None and kw:
            raise TypeError(f"__dlpack__() got an unexpected keyword argument {next(iter(kw))!r}")
        self.calls.append(dict(stream=stream, **kw))
        versioned = self.versioned is not None and kw.get("max_version") is not None
        m = _dlpack.DLManagedTensorVersioned() if versioned else _dlpack.DLManagedTensor()
        if versioned:
            m.version.major, m.version.minor = self.version
        t = m.dl_tensor
        t.data = self.data
        t.device.device_type, t.device.device_id = self.capsule_device
        t.ndim = len(self.shape)
        t.dtype.code, t.dtype.bits, t.dtype.lanes = self.code, self.bits, self.lanes
        shape = (ctypes.c_int64 * max(1, len(self.shape)))(*self.shape)
        strides = None if self.strides is None else (ctypes.c_int64 * len(self.strides))(*self.strides)
        t.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
        if strides is not None:
            t.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
        t.byte_offset = self.byte_offset
        if not self.null_deleter:
            m.deleter = self._deleter
        self.structs.append((m, shape, strides))  # the producer's memory, valid until the fake goes
        capsule = _capsule_new(ctypes.addressof(m), _NAMES[versioned], ctypes.cast(_producer_capsule_destructor,
                                                                                   ctypes.c_void_p))
        self.capsules.append(capsule)
        return capsule

    def names(self):
        return [_capsule_name(c) for c in self.capsules]

    def addresses(self):
        return [ctypes.addressof(m) for m, _, _ in self.structs]


def _collect():
    """Frees what a caught exception's frames still hold (the descriptor, hence the tensor's owner)."""
    gc.collect()


# ---- the layout, from the specification (64-bit) ------------------------------------------------

@pytest.mark.skipif(ctypes.sizeof(ctypes.c_void_p) != 8, reason="offsets written for 64-bit pointers")
def test_structures_have_the_layout_of_dlpack_h():
    # DLTensor: void* data; DLDevice{int32 type, int32 id}; int32 ndim; DLDataType{u8 code, u8 bits, u16 lanes};
    # int64* shape; int64* strides; uint64 byte_offset.
    T = _dlpack.DLTensor
    assert [(f, getattr(T, f).offset) for f, _ in T._fields_] == [
        ("data", 0), ("device", 8), ("ndim", 16), ("dtype", 20), ("shape", 24), ("strides", 32), ("byte_offset", 40)]
    assert ctypes.sizeof(T) == 48
    M = _dlpack.DLManagedTensor
    assert (M.dl_tensor.offset, M.manager_ctx.offset, M.deleter.offset, ctypes.sizeof(M)) == (0, 48, 56, 64)
    # DLManagedTensorVersioned: DLPackVersion{u32 major, u32 minor}; manager_ctx; deleter; uint64 flags; DLTensor.
    V = _dlpack.DLManagedTensorVersioned
    assert (V.version.offset, V.manager_ctx.offset, V.deleter.offset, V.flags.offset, V.dl_tensor.offset,
            ctypes.sizeof(V)) == (0, 8, 16, 24, 32, 80)
    assert ctypes.sizeof(_dlpack.DLDevice) == 8 and ctypes.sizeof(_dlpack.DLDataType) == 4


# ---- the descriptor -----------------------------------------------------------------------------

@pytest.mark.parametrize("versioned", [None, True])
@pytest.mark.parametrize("bits, dtype", [(32, np.float32), (64, np.float64)])
def test_parse_gives_the_interface_descriptor_and_calls_the_deleter_once(versioned, bits, dtype):
    p = FakeCudaTensor(bits=bits, versioned=versioned, byte_offset=4096)
    dev = _cuda_array.parse(p, "t")
    # The pointer includes byte_offset; stream 1 (the legacy default stream, the one the producer was asked
    # to order its work before) is what synchronize() waits for.
    assert (dev.ptr, dev.shape, dev.dtype, dev.row_stride, dev.stream) == (DATA + 4096, (100, 3), np.dtype(dtype), 3, 1)
    if versioned:
        assert p.calls == [dict(stream=1, max_version=(1, 1))]
        assert p.names() == [b"used_dltensor_versioned"]
    else:  # max_version refused with a TypeError, then asked again without it
        assert p.calls == [dict(stream=1)]
        assert p.names() == [b"used_dltensor"]
    # Taken, not yet given back: the C++ code may still be reading it.
    assert p.deleted == [] and not dev.owner.released
    del dev
    assert p.deleted == p.addresses()  # once, with the tensor's own address
    p.capsules.clear()  # the renamed capsule's destructor must not call it again
    _collect()
    assert len(p.deleted) == 1


def test_release_calls_the_deleter_once_however_often_it_is_asked():
    p = FakeCudaTensor(versioned=True)
    dev = _cuda_array.parse(p, "t")
    dev.owner.release()
    dev.owner.release()
    del dev
    _collect()
    assert len(p.deleted) == 1


def test_a_null_deleter_is_not_called():
    p = FakeCudaTensor(null_deleter=True)
    dev = _cuda_array.parse(p, "t")
    assert dev.shape == (100, 3)
    del dev  # nothing to call, nothing to crash
    assert p.deleted == [] and p.names() == [b"used_dltensor"]


def test_a_producer_that_returns_its_own_version_in_major_1_is_read():
    p = FakeCudaTensor(versioned=True, version=(1, 7))  # a later minor only adds enum values
    assert _cuda_array.parse(p, "t").shape == (100, 3)


@pytest.mark.parametrize("strides, shape, row_stride", [
    ((3, 1), (100, 3), 3),       # C-contiguous spelled out
    ((8, 1), (100, 3), 8),       # a column slice of an 8-wide array: rows 8 elements apart
    ((0, 1), (1, 3), 3),         # one row: its stride means nothing
    ((2, 77), (5, 1), 2),        # one column: the element stride means nothing
])
def test_strides_are_in_elements(strides, shape, row_stride):
    p = FakeCudaTensor(shape=shape, strides=strides)
    assert _cuda_array.parse(p, "t").row_stride == row_stride


def test_managed_memory_is_read_in_place_too():
    p = FakeCudaTensor(device=(13, 0))
    assert _cuda_array.is_device_array(p)
    assert _cuda_array.parse(p, "t").ptr == DATA


@pytest.mark.parametrize("kw, message", [
    ({"capsule_device": (1, 0)}, r"X is a DLPack tensor on device type 1 \(kDLCPU\); only CUDA memory"),
    ({"capsule_device": (10, 0)}, r"device type 10 \(kDLROCM\)"),
    ({"capsule_device": (2, 1)}, r"X is on CUDA device 1 \(DLPack device_id\); only device 0 is supported"),
    ({"shape": (100,)}, r"must be 2-dimensional \(n_samples, n_features\), got shape \(100,\) \(DLPack ndim 1\)"),
    ({"shape": (2, 3, 4)}, r"got shape \(2, 3, 4\) \(DLPack ndim 3\)"),
    ({"code": 0, "bits": 64}, r"float32 or float64 \(DLPack dtype code 2, bits 32 or 64, lanes 1\), got dtype code 0, "
                              r"bits 64, lanes 1"),
    ({"code": 2, "bits": 16}, "got dtype code 2, bits 16, lanes 1"),
    ({"code": 4, "bits": 16}, "got dtype code 4, bits 16, lanes 1"),  # bfloat16
    ({"code": 2, "bits": 32, "lanes": 4}, "got dtype code 2, bits 32, lanes 4"),
    ({"shape": (0, 3)}, r"X is empty \(shape \(0, 3\)\)"),
    ({"shape": (4, 0)}, r"X is empty \(shape \(4, 0\)\)"),
    ({"data": 0}, r"null DLPack data pointer for shape \(100, 3\)"),
    ({"byte_offset": 4}, r"not a multiple of 8 bytes \(DLPack data \+ byte_offset 4\)"),
    ({"strides": (3, 2)}, r"values of a row of X must be contiguous \(DLPack strides\[1\] == 1 element\), got "
                          r"strides \(3, 2\)"),
    ({"strides": (1, 100)}, r"got strides \(1, 100\)"),  # Fortran order
    ({"strides": (2, 1)}, r"row stride of X \(DLPack strides\[0\] = 2 elements\) must be at least n_features \(3\)"),
    ({"strides": (-3, 1)}, r"DLPack strides\[0\] = -3 elements"),
    ({"versioned": True, "version": (2, 0)}, r"returned a DLPack 2\.0 tensor; only major version 1 is supported"),
    ({"versioned": True, "version": (0, 8)}, r"DLPack 0\.8 tensor"),
])
def test_refusals_name_the_field_and_give_the_tensor_back_at_once(kw, message):
    p = FakeCudaTensor(**kw)
    with pytest.raises(ValueError, match=message) as e:
        _cuda_array.parse(p, "KMeans.fit")
    assert str(e.value).startswith("KMeans.fit: ")
    # Taken (renamed), then its deleter called exactly once before the error left parse.
    assert p.deleted == p.addresses()
    assert p.names() == [b"used_dltensor_versioned" if kw.get("versioned") else b"used_dltensor"]
    p.capsules.clear()
    _collect()
    assert len(p.deleted) == 1


def test_something_other_than_a_fresh_capsule_is_refused_and_left_to_its_owner():
    class NotACapsule(FakeCudaTensor):
        def __dlpack__(self, **kw):
            return object()

    with pytest.raises(ValueError, match=r"X.__dlpack__\(\) returned an object of type object, not a capsule "
                                         "named 'dltensor'"):
        _cuda_array.parse(NotACapsule(), "t")

    class UsedCapsule(FakeCudaTensor):
        def __dlpack__(self, **kw):
            capsule = super().__dlpack__(**kw)
            _dlpack._capsule_set_name(capsule, _dlpack.USED_NAME)  # someone consumed it already
            return capsule

    p = UsedCapsule()
    with pytest.raises(ValueError, match="returned a capsule named 'used_dltensor', not a capsule named 'dltensor'"):
        _cuda_array.parse(p, "t")
    assert p.deleted == []  # not ours to give back


def test_a_failing_export_is_not_swallowed():
    class Refuses(FakeCudaTensor):
        def __dlpack__(self, **kw):
            raise BufferError("cannot export a tensor that requires grad")

    with pytest.raises(BufferError, match="requires grad"):
        _cuda_array.parse(Refuses(), "t")


# ---- 1-d vectors (sample weights beside a device X) ---------------------------------------------

@pytest.mark.parametrize("versioned", [None, True])
@pytest.mark.parametrize("bits, dtype", [(32, np.float32), (64, np.float64)])
@pytest.mark.parametrize("strides", [None, (1,)])
def test_parse_vector_reads_a_contiguous_dlpack_vector(versioned, bits, dtype, strides):
    p = FakeCudaTensor(shape=(100,), bits=bits, versioned=versioned, strides=strides, byte_offset=64)
    w = _cuda_array.parse_vector(p, "KMeans.fit")
    assert (w.ptr, w.shape, w.dtype, w.row_stride, w.stream) == (DATA + 64, (100, 1), np.dtype(dtype), 1, 1)
    assert p.deleted == [] and not w.owner.released  # held while the C++ code reads it
    del w
    assert p.deleted == p.addresses()
    # One value: its stride means nothing.
    assert _cuda_array.parse_vector(FakeCudaTensor(shape=(1,), strides=(7,)), "t").shape == (1, 1)


@pytest.mark.parametrize("kw, message", [
    ({"shape": (100, 1)}, r"sample_weight must be 1-dimensional \(n_samples,\), got shape \(100, 1\) \(DLPack ndim 2\)"),
    ({"shape": ()}, r"got shape \(\) \(DLPack ndim 0\)"),
    ({"shape": (100,), "strides": (2,)}, r"values of sample_weight must be contiguous \(DLPack strides NULL or "
                                         r"\(1,\)\), got strides \(2,\)"),
    ({"shape": (100,), "strides": (-1,)}, r"got strides \(-1,\)"),
    ({"shape": (0,)}, r"sample_weight is empty \(shape \(0,\)\)\.$"),
    ({"shape": (100,), "code": 0, "bits": 32}, "sample_weight must hold float32 or float64 .* got dtype code 0"),
    ({"shape": (100,), "data": 0}, r"null DLPack data pointer for shape \(100,\)"),
    ({"shape": (100,), "capsule_device": (1, 0)}, r"device type 1 \(kDLCPU\)"),
])
def test_parse_vector_refuses_a_bad_dlpack_vector_and_gives_it_back_at_once(kw, message):
    p = FakeCudaTensor(**kw)
    with pytest.raises(ValueError, match=message) as e:
        _cuda_array.parse_vector(p, "KMeans.fit")
    assert str(e.value).startswith("KMeans.fit: ")
    assert p.deleted == p.addresses()
    _collect()
    assert len(p.deleted) == 1


@pytest.mark.parametrize("weights, message", [
    (dict(shape=(99,)), r"KMeans.fit: sample_weight.shape == \(99,\), expected \(100,\)!"),
    (dict(shape=(100,), bits=32), r"KMeans.fit: sample_weight in CUDA device memory must have X's dtype \(float64\), "
                                  r"got float32"),
])
@pytest.mark.parametrize("estimator", [mixtura.KMeans, mixtura.GaussianMixture])
def test_dlpack_weights_are_checked_with_x_before_the_backend_is_chosen(weights, message, estimator):
    X, w = FakeCudaTensor(shape=(100, 3)), FakeCudaTensor(**weights)
    with pytest.raises(ValueError, match=message.replace("KMeans", estimator.__name__)):
        estimator(3, device="auto").fit(X, sample_weight=w)
    _collect()
    assert len(X.deleted) == 1 and len(w.deleted) == 1


@pytest.mark.parametrize("estimator", [mixtura.KMeans, mixtura.GaussianMixture])
def test_dlpack_weights_beside_a_dlpack_x_are_taken_as_far_as_the_backend(estimator):
    if HAS_GPU:
        pytest.skip("this machine has a CUDA backend and a device")
    match = "this build of mixtura has no CUDA backend" if not _core.HAS_CUDA else "no CUDA device is visible"
    X, w = FakeCudaTensor(shape=(100, 3)), FakeCudaTensor(shape=(100,), versioned=True)
    with pytest.raises(ValueError, match=match):
        estimator(3, device="auto").fit(X, sample_weight=w)
    assert w.calls == [dict(stream=1, max_version=(1, 1))]  # exported, checked, held until the error
    _collect()
    assert len(X.deleted) == 1 and len(w.deleted) == 1


# ---- which objects are device arrays, and which protocol is read -------------------------------

def test_device_arrays_are_cuda_or_managed_dlpack_objects():
    assert _cuda_array.is_device_array(FakeCudaTensor(device=(2, 0)))
    assert _cuda_array.is_device_array(FakeCudaTensor(device=(13, 0)))
    assert _cuda_array.is_device_array(FakeCudaTensor(device=(2, 1)))  # refused by parse, with the reason
    assert not _cuda_array.is_device_array(FakeCudaTensor(device=(1, 0)))   # kDLCPU: host memory
    assert not _cuda_array.is_device_array(FakeCudaTensor(device=(3, 0)))   # kDLCUDAHost: pinned host memory
    assert not _cuda_array.is_device_array(np.zeros((3, 3)))  # NumPy has __dlpack__ too, on kDLCPU
    assert np.zeros((3, 3)).__dlpack_device__() == (1, 0)
    assert not _cuda_array.is_device_array(np.ndarray)  # the class, not an array


def test_the_interface_is_preferred_when_an_object_has_both():
    class Both(FakeCudaTensor):
        __cuda_array_interface__ = {"version": 3, "shape": (7, 2), "typestr": "<f4", "data": (1234, False),
                                    "strides": None, "stream": None}

    p = Both()
    dev = _cuda_array.parse(p, "t")
    assert (dev.ptr, dev.shape, dev.dtype, dev.stream, dev.owner) == (1234, (7, 2), np.dtype(np.float32), None, None)
    assert p.calls == []  # __dlpack__ never called: nothing taken, nothing to give back
    assert _cuda_array.protocol(p) == "__cuda_array_interface__"
    assert _cuda_array.protocol(FakeCudaTensor()) == "DLPack"


# ---- the estimators -----------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["fit", "predict", "transform", "score"])
def test_kmeans_with_device_cpu_refuses_a_dlpack_array_as_an_interface_array(blobs, call):
    km = mixtura.KMeans(3, device="cpu", random_state=0).fit(blobs)
    p = FakeCudaTensor()
    with pytest.raises(ValueError, match=r"is in CUDA device memory .* but device='cpu'; use device='cuda' or "
                                         r"'auto', or copy it to the host first \(e.g. cupy.asnumpy\(X\)"):
        getattr(km, call)(p)
    _collect()
    assert len(p.deleted) == 1 and p.names() == [b"used_dltensor"]
    np.testing.assert_array_equal(km.predict(blobs), km.labels_)


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_kmeans_on_a_dlpack_array_without_a_cuda_backend_or_device_says_why(blobs, device):
    if HAS_GPU:
        pytest.skip("this machine has a CUDA backend and a device")
    match = "this build of mixtura has no CUDA backend" if not _core.HAS_CUDA else "no CUDA device is visible"
    p = FakeCudaTensor(versioned=True)
    with pytest.raises(ValueError, match=match):
        mixtura.KMeans(3, device=device).fit(p)
    _collect()
    assert len(p.deleted) == 1


def test_a_bad_dlpack_array_is_refused_before_the_backend_is_chosen():
    p = FakeCudaTensor(code=0, bits=32)  # int32
    with pytest.raises(ValueError, match="KMeans.fit: X must hold float32 or float64 .* got dtype code 0, bits 32"):
        mixtura.KMeans(3, device="auto").fit(p)
    assert len(p.deleted) == 1


@pytest.mark.parametrize("call", ["fit", "score_samples", "predict", "predict_proba", "score"])
def test_gaussian_mixture_with_device_cpu_refuses_a_dlpack_array_as_an_interface_array(blobs, call):
    gm = mixtura.GaussianMixture(2, device="cpu", random_state=0).fit(blobs)
    p = FakeCudaTensor()
    with pytest.raises(ValueError, match=r"GaussianMixture\.\w+: X is in CUDA device memory .* but device='cpu'; use "
                                         r"device='cuda' or 'auto', or copy it to the host first \(e.g. "
                                         r"cupy.asnumpy\(X\), X.cpu\(\).numpy\(\)\)"):
        getattr(gm, call)(p)
    _collect()
    assert len(p.deleted) == 1 and p.names() == [b"used_dltensor"]  # taken, and given back once


def test_gaussian_mixture_on_a_dlpack_array_without_a_cuda_backend_or_device_says_why():
    if HAS_GPU:
        pytest.skip("this machine has a CUDA backend and a device")
    match = "this build of mixtura has no CUDA backend" if not _core.HAS_CUDA else "no CUDA device is visible"
    p = FakeCudaTensor(versioned=True)
    with pytest.raises(ValueError, match="GaussianMixture.fit: .*" + match):
        mixtura.GaussianMixture(2, device="auto").fit(p)
    _collect()
    assert len(p.deleted) == 1


def _interface_array():
    class Iface:
        __cuda_array_interface__ = {"version": 3, "shape": (100, 3), "typestr": "<f8", "data": (DATA, False),
                                    "strides": None, "stream": None}
    return Iface()


@pytest.mark.parametrize("make, protocol", [(FakeCudaTensor, "DLPack"),
                                            (_interface_array, "__cuda_array_interface__")])
@pytest.mark.parametrize("method", ["fit", "score_samples", "decision_function", "predict", "explain"])
@pytest.mark.parametrize("device", ["cpu", "cuda", "auto"])
def test_the_anomaly_detector_reads_host_arrays_and_says_how_to_copy(blobs, make, protocol, method, device):
    # Whatever the device: the rows are scaled on the host. Refused before the device is resolved.
    det = mixtura.DensityAnomalyDetector(n_components=2, random_state=0)
    if method != "fit":
        det.fit(blobs)
    det.set_params(device=device)
    X = make()
    with pytest.raises(ValueError, match=rf"^DensityAnomalyDetector\.{method}: X is in CUDA device memory "
                                         rf"\({protocol}\); the detector reads host arrays only \(it scales them "
                                         r"on the host\); "
                                         r"copy it to the host first \(e.g. cupy.asnumpy\(X\), X.cpu\(\).numpy\(\)\)"):
        getattr(det, method)(X)
    if protocol == "DLPack":
        assert X.calls == [] and X.deleted == []


def test_windows_are_refused_on_the_device():
    p = FakeCudaTensor()
    with pytest.raises(ValueError, match=r"sliding_windows: X is in CUDA device memory \(DLPack\); windows are "
                                         "built on the CPU"):
        mixtura.sliding_windows(p, 4)
    gm = mixtura.GaussianMixture(1).fit(np.random.default_rng(0).standard_normal((50, 4)))
    scorer = mixtura.StreamScorer(gm, 4)
    with pytest.raises(ValueError, match=r"StreamScorer.score_chunk: chunk is in CUDA device memory \(DLPack\)"):
        scorer.score_chunk(p)
    assert scorer.n_seen_ == 0


# ---- DLPack arrays in host memory: NumPy's path -------------------------------------------------

class HostDLPack:
    """Only __dlpack__ and __dlpack_device__ of a NumPy array (kDLCPU): np.asarray cannot read it."""

    def __init__(self, a, device=None):
        self._a, self._device = a, device

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._device or self._a.__dlpack_device__()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_host_dlpack_array_is_fitted_as_the_numpy_array(blobs, dtype):
    X = blobs.astype(dtype)
    Xd = HostDLPack(X)
    assert not _cuda_array.is_device_array(Xd) and np.asarray(Xd).dtype == object  # NumPy's own conversion fails
    a = mixtura.KMeans(3, device="cpu", random_state=0).fit(X)
    for data in (Xd, X):  # the array's own __dlpack__ (kDLCPU) changes nothing either
        b = mixtura.KMeans(3, device="cpu", random_state=0).fit(data)
        np.testing.assert_array_equal(b.labels_, a.labels_)
        np.testing.assert_array_equal(b.cluster_centers_, a.cluster_centers_)
        assert b.cluster_centers_.dtype == dtype and b.inertia_ == a.inertia_
        np.testing.assert_array_equal(b.predict(data), a.predict(X))
        np.testing.assert_array_equal(b.transform(data), a.transform(X))
        assert b.score(data) == a.score(X)
    det = mixtura.DensityAnomalyDetector(n_components=2, random_state=0).fit(X)
    np.testing.assert_array_equal(mixtura.DensityAnomalyDetector(n_components=2, random_state=0).fit(Xd)
                                  .score_samples(Xd), det.score_samples(X))
    np.testing.assert_array_equal(mixtura.sliding_windows(HostDLPack(X[:, 0].copy()), 5),
                                  mixtura.sliding_windows(X[:, 0], 5))


def test_a_dlpack_array_on_another_device_is_refused_by_name(blobs):
    Xd = HostDLPack(blobs, device=(10, 0))
    with pytest.raises(ValueError, match=r"KMeans.fit: X is a DLPack array on device type 10 \(kDLROCM\); mixtura "
                                         r"reads host arrays and CUDA memory"):
        mixtura.KMeans(3).fit(Xd)


# ---- on a GPU, with CuPy or PyTorch (skip without) ----------------------------------------------

class OnlyDLPack:
    """A device array seen through DLPack alone (CuPy and PyTorch also have __cuda_array_interface__)."""

    def __init__(self, a):
        self._a = a

    def __dlpack__(self, **kw):
        return self._a.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_on_a_dlpack_device_array_is_the_host_array_fit(dtype):
    rng = np.random.default_rng(5)
    X = (rng.standard_normal((20000, 8)) + 4 * rng.integers(0, 6, (20000, 1))).astype(dtype)
    wide = np.hstack([X, np.full((len(X), 3), np.nan, dtype=dtype)])
    Xd, wide_d = to_device(X), to_device(wide)
    host = mixtura.KMeans(6, device="cuda", random_state=1, n_init=2).fit(X)
    for data in (OnlyDLPack(Xd), OnlyDLPack(wide_d[:, :8])):  # dense, and rows 11 values apart
        dev = mixtura.KMeans(6, device="auto", random_state=1, n_init=2).fit(data)
        np.testing.assert_array_equal(dev.labels_, host.labels_)
        np.testing.assert_array_equal(dev.cluster_centers_, host.cluster_centers_)
        np.testing.assert_array_equal(dev.predict(data), host.predict(X))
        np.testing.assert_allclose(dev.transform(data), host.transform(X), rtol=1e-5 if dtype == np.float32 else 1e-12)
        assert dev.score(data) == pytest.approx(host.score(X), rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_with_dlpack_weights_is_the_host_weights_fit(dtype):
    rng = np.random.default_rng(6)
    X = (rng.standard_normal((20000, 4)) + 4 * rng.integers(0, 5, (20000, 1))).astype(dtype)
    w = rng.uniform(0.1, 3.0, len(X)).astype(dtype)
    Xd, wd = to_device(X), to_device(w)
    host = mixtura.KMeans(5, device="cuda", random_state=2, n_init=2).fit(X, sample_weight=w)
    dev = mixtura.KMeans(5, device="cuda", random_state=2, n_init=2).fit(OnlyDLPack(Xd), sample_weight=OnlyDLPack(wd))
    np.testing.assert_array_equal(dev.labels_, host.labels_)
    np.testing.assert_array_equal(dev.cluster_centers_, host.cluster_centers_)
    assert dev.score(OnlyDLPack(Xd), sample_weight=OnlyDLPack(wd)) == pytest.approx(
        host.score(X, sample_weight=w), rel=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_mixture_with_dlpack_weights_is_the_host_weights_fit(dtype):
    rng = np.random.default_rng(7)
    X = (rng.standard_normal((20000, 3)) + 5 * rng.integers(0, 3, (20000, 1))).astype(dtype)
    w = rng.uniform(0.1, 3.0, len(X)).astype(dtype)
    Xd, wd = to_device(X), to_device(w)
    host = mixtura.GaussianMixture(3, device="cuda", random_state=3).fit(X, sample_weight=w)
    dev = mixtura.GaussianMixture(3, device="cuda", random_state=3).fit(OnlyDLPack(Xd), sample_weight=OnlyDLPack(wd))
    np.testing.assert_array_equal(dev.means_, host.means_)
    np.testing.assert_array_equal(dev.precisions_cholesky_, host.precisions_cholesky_)
    assert dev.lower_bound_ == host.lower_bound_
