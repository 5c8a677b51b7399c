"""Where a call's passes run: the one rule for device="cpu" | "cuda" | "auto", used by every estimator
(for host and for device arrays) and by the command line's --device."""
from . import _core

CHOICES = ("cpu", "cuda", "auto")
TO_HOST = "copy it to the host first (e.g. cupy.asnumpy(X), X.cpu().numpy())"


def cuda_missing():
    """Why the CUDA backend cannot run here (no CUDA build, or no device), or None when it can."""
    if not _core.HAS_CUDA:
        return ("this build of mixtura has no CUDA backend; reinstall with `pip install . -C "
                "cmake.define.MIXTURA_WITH_CUDA=ON` on a machine with nvcc")
    if _core.cuda_device_count() == 0:
        return "no CUDA device is visible to this process"
    return None


def resolve(device, who, device_data=None):
    """"cpu" or "cuda" for a call of `who` (named in every error).

    Host data (device_data=None): "cpu" is the CPU; "auto" the GPU when this build has the CUDA backend
    and a device is present, else the CPU; "cuda" the GPU, or a ValueError saying what is missing.
    Data in CUDA device memory (device_data: the argument's name, e.g. "X") runs where it is: "cuda" or
    "auto" give the GPU, or a ValueError saying what is missing; "cpu" is a ValueError (nothing is
    copied to the host silently)."""
    if device not in CHOICES:
        raise ValueError(f"{who}: device must be 'cpu', 'cuda' or 'auto', got {device!r}.")
    if device_data is None:
        if device == "cpu":
            return "cpu"
        missing = cuda_missing()
        if device == "auto":
            return "cpu" if missing else "cuda"
        if missing:
            raise ValueError(f"{who}: device='cuda' was requested, but {missing}; use device='cpu' or 'auto'.")
        return "cuda"
    where = f"{who}: {device_data} is in CUDA device memory (__cuda_array_interface__ or DLPack)"
    if device == "cpu":
        raise ValueError(f"{where} but device='cpu'; use device='cuda' or 'auto', or {TO_HOST}.")
    missing = cuda_missing()
    if missing:
        raise ValueError(f"{where}, but {missing}; or {TO_HOST}.")
    return "cuda"
