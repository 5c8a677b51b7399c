"""What the GPU tests share: whether a CUDA device is usable, and copies of host arrays to it."""
import pytest

from mixtura import _core

HAS_GPU = _core.HAS_CUDA and _core.cuda_device_count() > 0


def to_device(x):
    """x copied to device 0 by CuPy (else PyTorch), or a skip."""
    if not HAS_GPU:
        pytest.skip("no CUDA backend or no CUDA device")
    try:
        import cupy
        return cupy.asarray(x)
    except ImportError:
        torch = pytest.importorskip("torch", reason="needs CuPy or PyTorch for device arrays")
        return torch.as_tensor(x, device="cuda")
