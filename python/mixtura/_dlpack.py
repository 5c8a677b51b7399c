"""Arrays in CUDA memory through DLPack (``__dlpack__`` / ``__dlpack_device__``), read with ctypes.

The structures below are written from the DLPack specification (dlpack.h, 1.x) and its Python
protocol (the Array API standard's ``__dlpack__``); no compiled dependency. What is accepted:

* device type kDLCUDA (2) or kDLCUDAManaged (13), device id 0; kDLCPU (1) and kDLCUDAHost (3) are
  host memory and go the host path (:func:`host_array`); any other device type is refused;
* 2-dimensional (sample weights: 1-dimensional and contiguous), dtype code kDLFloat (2) with 32 or
  64 bits and 1 lane;
* ``strides`` NULL (C-contiguous) or a row of contiguous elements (strides[1] == 1) with a row
  stride of at least n_features elements; ``byte_offset`` is added to the data pointer.

Protocol: ``__dlpack__(stream=1, max_version=(1, 1))``, and ``__dlpack__(stream=1)`` for producers
that do not know ``max_version`` (TypeError). Stream 1 is the legacy default stream: the producer
orders its pending work on X before it, and the caller waits for that stream on the host
(``cudaStreamSynchronize``) before the C++ code, which runs on streams of its own, reads X. Both
capsules are read: ``dltensor`` (DLManagedTensor) and ``dltensor_versioned``
(DLManagedTensorVersioned, major version 1; another major is refused after calling its deleter, the
one field a consumer may still touch). The capsule is renamed ``used_dltensor[_versioned]`` as soon
as it is taken, and the tensor's deleter runs exactly once: at once when the tensor is refused,
otherwise when the :class:`ManagedTensor` that owns it is released or collected.
"""
import ctypes

import numpy as np

KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED = 1, 2, 3, 13
KDL_FLOAT = 2
DEVICE_TYPE_NAMES = {1: "kDLCPU", 2: "kDLCUDA", 3: "kDLCUDAHost", 4: "kDLOpenCL", 7: "kDLVulkan", 8: "kDLMetal",
                     9: "kDLVPI", 10: "kDLROCM", 11: "kDLROCMHost", 12: "kDLExtDev", 13: "kDLCUDAManaged",
                     14: "kDLOneAPI", 15: "kDLWebGPU", 16: "kDLHexagon", 17: "kDLMAIA", 18: "kDLTrn"}
CUDA_DEVICE_TYPES = (KDL_CUDA, KDL_CUDA_MANAGED)   # read in place by the CUDA backend
HOST_DEVICE_TYPES = (KDL_CPU, KDL_CUDA_HOST)        # readable by the host: NumPy's conversion
MAX_VERSION = (1, 1)                                 # the layout below; a 1.x minor only adds enum values
CONSUMER_STREAM = 1                                  # the legacy default stream (Array API numbering)


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


# void (*deleter)(struct DLManagedTensor[Versioned] *self): the argument is passed as an address.
Deleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", Deleter)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p), ("deleter", Deleter),
                ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]


# Capsule names. PyCapsule_SetName keeps the pointer it is given, so the names live as long as the module.
NAME, USED_NAME = b"dltensor", b"used_dltensor"
VERSIONED_NAME, USED_VERSIONED_NAME = b"dltensor_versioned", b"used_dltensor_versioned"

# Own prototypes of the capsule API (setting argtypes on ctypes.pythonapi would change them for everyone).
_capsule_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_IsValid", ctypes.pythonapi))
_capsule_get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", ctypes.pythonapi))
_capsule_set_name = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_SetName", ctypes.pythonapi))
_capsule_get_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(("PyCapsule_GetName", ctypes.pythonapi))


def device_type_name(device_type):
    return DEVICE_TYPE_NAMES.get(device_type, "unknown")


def device_of(obj):
    """(device_type, device_id) of an object with __dlpack__ and __dlpack_device__, else None."""
    if isinstance(obj, type) or not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        return None
    device_type, device_id = obj.__dlpack_device__()
    return int(device_type), int(device_id)


def is_cuda(obj):
    """Whether obj is a DLPack array in CUDA device or managed memory (kDLCUDA, kDLCUDAManaged)."""
    device = device_of(obj)
    return device is not None and device[0] in CUDA_DEVICE_TYPES


class ManagedTensor:
    """Owns a DLManagedTensor or DLManagedTensorVersioned taken from a capsule: calls its deleter
    exactly once, at release() or, failing that, when this object is collected. The producer's
    memory stays valid until then."""

    def __init__(self, address, versioned):
        self._address = address
        self.versioned = versioned

    @property
    def released(self):
        return self._address is None

    def struct(self):
        """The managed tensor, DLManagedTensorVersioned or DLManagedTensor (None after release)."""
        if self._address is None:
            return None
        return (DLManagedTensorVersioned if self.versioned else DLManagedTensor).from_address(self._address)

    def release(self):
        address, self._address = self._address, None
        if address is not None:
            deleter = (DLManagedTensorVersioned if self.versioned else DLManagedTensor).from_address(address).deleter
            if deleter:  # NULL: the producer has nothing to free
                deleter(address)

    def __del__(self):
        self.release()


def take(capsule, who, name):
    """Takes ownership of the tensor in a `__dlpack__` capsule: renames the capsule 'used_...' and
    returns the ManagedTensor that will call the deleter. ValueError for anything else."""
    if _capsule_is_valid(capsule, VERSIONED_NAME):
        versioned, cap_name, used_name = True, VERSIONED_NAME, USED_VERSIONED_NAME
    elif _capsule_is_valid(capsule, NAME):
        versioned, cap_name, used_name = False, NAME, USED_NAME
    else:
        raise ValueError(f"{who}: {name}.__dlpack__() returned {_describe(capsule)}, not a capsule named 'dltensor' or "
                         "'dltensor_versioned'.")
    address = _capsule_get_pointer(capsule, cap_name)
    if not address:
        raise ValueError(f"{who}: {name}.__dlpack__() returned a capsule with a null DLManagedTensor pointer.")
    if _capsule_set_name(capsule, used_name) != 0:  # cannot fail for a valid capsule; the capsule still owns it
        raise ValueError(f"{who}: could not mark the DLPack capsule of {name} as used.")
    return ManagedTensor(address, versioned)


def _describe(obj):
    if type(obj).__name__ == "PyCapsule":
        got = _capsule_get_name(obj)
        return f"a capsule named {got.decode(errors='replace') if got else None!r}"
    return f"an object of type {type(obj).__name__}"


def export(obj):
    """obj.__dlpack__ for the legacy default stream, with max_version when the producer knows it."""
    try:
        return obj.__dlpack__(stream=CONSUMER_STREAM, max_version=MAX_VERSION)
    except TypeError:  # a producer older than the 2023.12 standard: no max_version keyword
        return obj.__dlpack__(stream=CONSUMER_STREAM)


def parse(obj, who, name="X", vector=False):
    """(pointer, (rows, cols), numpy dtype, row stride in elements, ManagedTensor) of a DLPack array
    in CUDA memory: 2-d, or with `vector` 1-d and contiguous (sample weights), described as one
    column (n, 1) with row stride 1. The ManagedTensor must be kept while the data is read; on any
    refusal its deleter has already run and a ValueError names the field and its value."""
    owner = take(export(obj), who, name)
    try:
        return _describe_tensor(owner, who, name, vector) + (owner,)
    except BaseException:
        owner.release()
        raise


def _describe_tensor(owner, who, name, vector):
    m = owner.struct()
    if owner.versioned and m.version.major != MAX_VERSION[0]:
        raise ValueError(f"{who}: {name}.__dlpack__() returned a DLPack {m.version.major}.{m.version.minor} tensor; "
                         f"only major version {MAX_VERSION[0]} is supported.")
    t = m.dl_tensor
    device_type, device_id = int(t.device.device_type), int(t.device.device_id)
    if device_type not in CUDA_DEVICE_TYPES:
        raise ValueError(f"{who}: {name} is a DLPack tensor on device type {device_type} "
                         f"({device_type_name(device_type)}); only CUDA memory (kDLCUDA = 2, kDLCUDAManaged = 13) "
                         "is read in place.")
    if device_id != 0:
        raise ValueError(f"{who}: {name} is on CUDA device {device_id} (DLPack device_id); only device 0 is supported; "
                         "copy it to device 0 first (e.g. X.to('cuda:0'), or cupy.asarray(X) under "
                         "cupy.cuda.Device(0)).")
    ndim = int(t.ndim)
    shape = tuple(int(t.shape[i]) for i in range(ndim)) if ndim > 0 and t.shape else ()
    if ndim != (1 if vector else 2):
        wanted = "1-dimensional (n_samples,)" if vector else "2-dimensional (n_samples, n_features)"
        raise ValueError(f"{who}: {name} must be {wanted}, got shape {shape} (DLPack ndim {ndim}).")
    code, bits, lanes = int(t.dtype.code), int(t.dtype.bits), int(t.dtype.lanes)
    if code != KDL_FLOAT or bits not in (32, 64) or lanes != 1:
        raise ValueError(f"{who}: {name} must hold float32 or float64 (DLPack dtype code 2, bits 32 or 64, lanes 1), "
                         f"got dtype code {code}, bits {bits}, lanes {lanes}; convert it on the device (e.g. "
                         "X.astype(cupy.float32), X.float()).")
    dtype = np.dtype(np.float32 if bits == 32 else np.float64)
    rows, cols = (shape[0], 1) if vector else shape
    if rows <= 0 or cols <= 0:
        need = "" if vector else "; need at least one row and one column"
        raise ValueError(f"{who}: {name} is empty (shape {shape}){need}.")
    if not t.data:
        raise ValueError(f"{who}: {name} has a null DLPack data pointer for shape {shape}.")
    ptr = int(t.data) + int(t.byte_offset)
    if ptr % dtype.itemsize != 0:
        raise ValueError(f"{who}: {name} starts at an address that is not a multiple of {dtype.itemsize} bytes "
                         f"(DLPack data + byte_offset {t.byte_offset}).")
    if vector:
        strides = (int(t.strides[0]),) if t.strides else None
        if strides is not None and rows > 1 and strides != (1,):
            raise ValueError(f"{who}: the values of {name} must be contiguous (DLPack strides NULL or (1,)), got "
                             f"strides {strides}; pass a contiguous array (e.g. cupy.ascontiguousarray(w), "
                             "w.contiguous()).")
        return ptr, (rows, 1), dtype, 1
    if not t.strides:
        row_stride = cols
    else:
        strides = (int(t.strides[0]), int(t.strides[1]))
        if cols > 1 and strides[1] != 1:
            raise ValueError(f"{who}: the values of a row of {name} must be contiguous (DLPack strides[1] == 1 "
                             f"element), got strides {strides}; pass a C-contiguous array (e.g. "
                             "cupy.ascontiguousarray(X), X.contiguous()).")
        if rows == 1:
            row_stride = cols
        elif strides[0] < cols:
            raise ValueError(f"{who}: the row stride of {name} (DLPack strides[0] = {strides[0]} elements) must be at "
                             f"least n_features ({cols}); got strides {strides}; pass a C-contiguous array (e.g. "
                             "cupy.ascontiguousarray(X), X.contiguous()).")
        else:
            row_stride = strides[0]
    return ptr, (rows, cols), dtype, row_stride


def host_array(obj, who, name="X"):
    """obj as NumPy can read it: np.from_dlpack for a DLPack array in host memory that NumPy cannot
    convert by itself (no __array__ / __array_interface__), obj itself otherwise. A DLPack array on a
    device other than CPU or CUDA (ROCm, OpenCL, ...) without such a conversion is a ValueError."""
    if hasattr(obj, "__array__") or hasattr(obj, "__array_interface__"):
        return obj
    device = device_of(obj)
    if device is None or device[0] in CUDA_DEVICE_TYPES:
        return obj
    if device[0] in HOST_DEVICE_TYPES:
        return np.from_dlpack(obj)
    raise ValueError(f"{who}: {name} is a DLPack array on device type {device[0]} ({device_type_name(device[0])}); "
                     "mixtura reads host arrays and CUDA memory (kDLCUDA, kDLCUDAManaged); copy it to the host first.")
