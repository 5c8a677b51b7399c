"""Arrays in CUDA device memory (CuPy, PyTorch, Numba, ...) through ``__cuda_array_interface__`` or DLPack.

The estimators that accept them (KMeans, GaussianMixture) hand the device address to the C++ CUDA backend, which
reads the data in place: nothing is copied through the host. What is accepted: versions 2 and 3 of
the interface, 2-dimensional, typestr ``<f4`` or ``<f8``, rows contiguous (strides None, or a row
stride that is a whole number of elements >= n_features and an element stride of one element), no
mask. Read-only arrays are fine (they are only read). A version-3 ``stream`` is synchronised
(``cudaStreamSynchronize``) before the C++ code reads the data, as the interface asks of a consumer.
Objects without the interface whose ``__dlpack_device__`` is CUDA (kDLCUDA or kDLCUDAManaged) are
read through DLPack (``_dlpack.py``: same checks, same descriptor); an object with both is read
through the interface. Sample weights beside a device X (KMeans, GaussianMixture) may be on the device
too: 1-d, contiguous, X's dtype, through either protocol (:func:`parse_vector`, :func:`device_data_weights`).
"""
from collections import namedtuple
import numbers

import numpy as np

from . import _core, _device, _dlpack, _validation

DeviceArray = namedtuple("DeviceArray", "ptr shape dtype row_stride stream owner", defaults=(None,))
DeviceArray.__doc__ = """A 2-d float array in CUDA device memory: device address, (rows, cols), numpy dtype, distance
between row starts in elements, the stream to wait for (None: nothing to wait for), and what keeps the memory
valid while it is read (a DLPack array's _dlpack.ManagedTensor, whose deleter runs once it is released or
collected; None for the interface, whose memory the caller's object keeps)."""

_TYPESTRS = {"<f4": np.dtype(np.float32), "<f8": np.dtype(np.float64)}

TO_HOST = _device.TO_HOST


def is_device_array(obj):
    """Whether obj exposes __cuda_array_interface__ (a CPU torch tensor does not: it raises AttributeError) or is
    a DLPack array whose __dlpack_device__ is CUDA memory (kDLCUDA, kDLCUDAManaged)."""
    return hasattr(obj, "__cuda_array_interface__") or _dlpack.is_cuda(obj)


def protocol(obj):
    """How a device array is read: '__cuda_array_interface__' (preferred when obj has both) or 'DLPack'."""
    return "__cuda_array_interface__" if hasattr(obj, "__cuda_array_interface__") else "DLPack"


def parse(obj, who, name="X"):
    """The DeviceArray that obj's __cuda_array_interface__ (else its DLPack capsule) describes; ValueError
    naming what is not supported. A DLPack array is exported for the legacy default stream (stream 1, which
    synchronize() then waits for) and the result owns it until it is collected."""
    if not hasattr(obj, "__cuda_array_interface__"):
        ptr, shape, dtype, row_stride, owner = _dlpack.parse(obj, who, name)
        return DeviceArray(ptr, shape, dtype, row_stride, _dlpack.CONSUMER_STREAM, owner)
    iface = obj.__cuda_array_interface__
    if not isinstance(iface, dict):
        raise ValueError(f"{who}: {name}.__cuda_array_interface__ must be a dict, got {type(iface).__name__}.")
    version = iface.get("version")
    if version not in (2, 3):
        raise ValueError(f"{who}: {name}.__cuda_array_interface__ version {version!r} is not supported "
                         "(versions 2 and 3 are).")
    for key in ("shape", "typestr", "data"):
        if key not in iface:
            raise ValueError(f"{who}: {name}.__cuda_array_interface__ has no {key!r}.")
    shape = tuple(iface["shape"])
    if len(shape) != 2:
        raise ValueError(f"{who}: {name} must be 2-dimensional (n_samples, n_features), got shape {shape}.")
    rows, cols = (int(s) for s in shape)
    typestr = iface["typestr"]
    if typestr not in _TYPESTRS:
        raise ValueError(f"{who}: {name} must hold float32 or float64 (typestr '<f4' or '<f8'), got typestr "
                         f"{typestr!r}; convert it on the device (e.g. X.astype(cupy.float32)).")
    dtype = _TYPESTRS[typestr]
    if iface.get("mask") is not None:
        raise ValueError(f"{who}: {name} is a masked device array (__cuda_array_interface__ 'mask' is set); masks "
                         "are not supported.")
    data = iface["data"]
    if not (isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], numbers.Integral)):
        raise ValueError(f"{who}: {name}.__cuda_array_interface__ 'data' must be (pointer, read_only), got {data!r}.")
    if rows == 0 or cols == 0:
        raise ValueError(f"{who}: {name} is empty (shape {shape}); need at least one row and one column.")
    ptr = int(data[0])
    if ptr == 0:
        raise ValueError(f"{who}: {name}.__cuda_array_interface__ has a null data pointer for shape {shape}.")
    itemsize = dtype.itemsize
    strides = iface.get("strides")
    if strides is None:
        row_stride = cols
    else:
        strides = tuple(int(s) for s in strides)
        if len(strides) != 2:
            raise ValueError(f"{who}: {name} has {len(strides)} strides for shape {shape}.")
        if cols > 1 and strides[1] != itemsize:
            raise ValueError(f"{who}: the values of a row of {name} must be contiguous (strides[1] == {itemsize} "
                             f"bytes), got strides {strides}; pass a C-contiguous array (e.g. "
                             "cupy.ascontiguousarray(X), X.contiguous()).")
        if rows == 1:
            row_stride = cols
        elif strides[0] % itemsize != 0 or strides[0] < cols * itemsize:
            raise ValueError(f"{who}: the row stride of {name} ({strides[0]} bytes) must be a multiple of "
                             f"{itemsize} bytes and at least n_features * {itemsize}; got strides {strides}; pass a "
                             "C-contiguous array (e.g. cupy.ascontiguousarray(X), X.contiguous()).")
        else:
            row_stride = strides[0] // itemsize
    stream = iface.get("stream") if version >= 3 else None
    if stream is not None:
        if not isinstance(stream, numbers.Integral) or isinstance(stream, bool):
            raise ValueError(f"{who}: {name}.__cuda_array_interface__ 'stream' must be an integer or None, got "
                             f"{stream!r}.")
        if stream == 0:
            raise ValueError(f"{who}: {name}.__cuda_array_interface__ 'stream' is 0, which the interface forbids "
                             "(1: legacy default stream, 2: per-thread default stream).")
        stream = int(stream)
    return DeviceArray(ptr, (rows, cols), dtype, row_stride, stream)


class _AsColumn:
    """A 1-d interface seen as one column of shape (n, 1), so that parse() checks everything else."""

    def __init__(self, iface, n):
        self.__cuda_array_interface__ = dict(iface, shape=(n, 1), strides=None)


def parse_vector(obj, who, name="sample_weight"):
    """The DeviceArray (shape (n, 1)) of a 1-d float array in CUDA device memory (sample weights beside a device
    X), described by obj's __cuda_array_interface__ or, without it, its DLPack capsule: the same checks as
    parse(), for one contiguous column. ValueError naming what is not supported."""
    if not hasattr(obj, "__cuda_array_interface__"):
        ptr, shape, dtype, row_stride, owner = _dlpack.parse(obj, who, name, vector=True)
        return DeviceArray(ptr, shape, dtype, row_stride, _dlpack.CONSUMER_STREAM, owner)
    iface = obj.__cuda_array_interface__
    if not isinstance(iface, dict):
        raise ValueError(f"{who}: {name}.__cuda_array_interface__ must be a dict, got {type(iface).__name__}.")
    if "shape" not in iface:
        raise ValueError(f"{who}: {name}.__cuda_array_interface__ has no 'shape'.")
    shape = tuple(int(s) for s in iface["shape"])
    if len(shape) != 1:
        raise ValueError(f"{who}: {name} must be 1-dimensional (n_samples,), got shape {shape}.")
    if shape[0] == 0:
        raise ValueError(f"{who}: {name} is empty (shape {shape}).")
    dev = parse(_AsColumn(iface, shape[0]), who, name)
    strides = iface.get("strides")
    if strides is not None and shape[0] > 1 and tuple(int(s) for s in strides) != (dev.dtype.itemsize,):
        raise ValueError(f"{who}: the values of {name} must be contiguous (strides None or ({dev.dtype.itemsize},)), "
                         f"got strides {tuple(strides)}; pass a contiguous array (e.g. cupy.ascontiguousarray(w), "
                         "w.contiguous()).")
    return dev


def host_only(obj, who, name):
    """ValueError if obj is a device array where only host arrays are accepted."""
    if obj is not None and is_device_array(obj):
        raise ValueError(f"{who}: {name} must be a host (NumPy) array; CUDA device arrays are not accepted here; "
                         f"{TO_HOST}.")


def host_weights(sample_weight, dev, who):
    """Host sample weights for the device array dev: n_samples contiguous values of its dtype (a scalar
    is broadcast), or None; a device array here is a ValueError."""
    if sample_weight is None:
        return None
    host_only(sample_weight, who, "sample_weight")
    return _validation.check_sample_weight(sample_weight, dev, who)


def device_data_weights(sample_weight, dev, who):
    """Sample weights for the device array dev: (host array or None, DeviceArray or None). Weights in device
    memory are read in place: 1-d, contiguous, n_samples values of dev's dtype (ValueError otherwise)."""
    if sample_weight is None or not is_device_array(sample_weight):
        return host_weights(sample_weight, dev, who), None
    w = parse_vector(sample_weight, who)
    if w.shape[0] != dev.shape[0]:
        raise ValueError(f"{who}: sample_weight.shape == {(w.shape[0],)}, expected {(dev.shape[0],)}!")
    if w.dtype != dev.dtype:
        raise ValueError(f"{who}: sample_weight in CUDA device memory must have X's dtype ({dev.dtype.name}), got "
                         f"{w.dtype.name}; convert it on the device (e.g. w.astype(cupy.{dev.dtype.name})).")
    return None, w


def refuse_device_array(obj, who, why, name="X"):
    """ValueError, saying `why` and how to copy to the host, if obj is in CUDA device memory (either protocol)
    where an estimator reads host arrays only."""
    if is_device_array(obj):
        raise ValueError(f"{who}: {name} is in CUDA device memory ({protocol(obj)}); {why}; {TO_HOST}.")


# obj, or np.from_dlpack(obj) for a DLPack array in host memory that NumPy cannot convert by itself.
host_array = _dlpack.host_array


def synchronize(dev):
    """Waits for the stream of a device array (the v3 interface's, or DLPack's stream 1), if any."""
    if dev.stream is not None:
        _core.cuda_stream_synchronize(dev.stream)
