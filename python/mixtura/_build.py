"""mixtura.build_info(): which compiled copy of the core runs, and what it was built with."""
from . import _core


def build_info():
    """What this installation of mixtura runs, as a dict.

    ``isa``: the instruction-set level of the compiled core in use ("baseline" = x86-64-v2, "avx2" =
    x86-64-v3, "avx512" = x86-64-v4; "baseline" on other CPUs), the highest one in ``isa_compiled`` that
    the CPU supports (``cpu_levels``) and that the environment variable ``MIXTURA_ISA`` allows
    (``isa_cap``; set it before importing mixtura, e.g. to get the same bits on a fleet of mixed CPUs).
    ``compiler``, ``openmp`` and ``max_threads`` (threads a fit uses by default), ``cuda`` (built with the
    CUDA backend) and ``cuda_devices`` (usable GPUs), ``version``.
    """
    info = dict(_core.build_info())
    info["isa_cap"] = _core.ISA_CAP
    info["isa_compiled"] = list(_core.ISA_COMPILED)
    info["cuda_devices"] = int(_core.cuda_device_count()) if info["cuda"] else 0
    return info
