"""mixtura's C++ core, chosen once at import: the package holds one compiled copy per instruction-set
level (``_core_baseline``, ``_core_avx2``, ``_core_avx512``); this module loads the highest one that
the CPU supports, at most ``MIXTURA_ISA`` when that is set, and takes its functions as its own.
"""
import importlib
import importlib.util
import os

import numpy as np

from . import _cpu

LEVELS = tuple(_cpu.LEVELS)  # lowest first


def _choose():
    present = [level for level in LEVELS if importlib.util.find_spec(f"{__package__}._core_{level}") is not None]
    cpu = list(_cpu.cpu_levels())
    cap = os.environ.get("MIXTURA_ISA") or None
    if cap is not None and cap not in LEVELS:
        raise ImportError(f"mixtura: MIXTURA_ISA={cap!r} is not a level; expected one of {', '.join(LEVELS)} "
                          "(or unset for the highest this CPU supports)")
    usable = [level for level in present
              if level in cpu and (cap is None or LEVELS.index(level) <= LEVELS.index(cap))]
    if not usable:
        if not cpu:
            raise ImportError("mixtura: this CPU lacks the baseline level (x86-64-v2: SSE4.2, POPCNT) that "
                              "mixtura's compiled core needs")
        raise ImportError(f"mixtura: no compiled core for this CPU (levels compiled: {', '.join(present) or 'none'}; "
                          f"CPU: {', '.join(cpu)}); reinstall the package")
    return usable[-1], present, cpu, cap


ISA, ISA_COMPILED, CPU_LEVELS, ISA_CAP = _choose()
_module = importlib.import_module(f"{__package__}._core_{ISA}")
globals().update({name: value for name, value in vars(_module).items()
                  if not (name.startswith("__") and name != "__version__")})
del _module


def typed(name, dtype):
    """The core's entry point `name` for a float dtype: gmm_fit -> gmm_fit_float32 or gmm_fit_float64 (host
    and device entry points are named alike, python/src/bindings.hpp)."""
    return globals()[f"{name}_{np.dtype(dtype).name}"]
