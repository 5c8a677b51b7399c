"""Checks of the estimators' parameters: one table per estimator (``_param_checks``; not scikit-learn's
``_parameter_constraints``, whose format its estimator checks read), applied once by :func:`validate`
before anything reaches the C++ core.

Each check returns the value the C++ binding takes (a Python int, float or str). It refuses what the
binding would mangle or refuse with its signature dump: a bool or a float for a count (2.7 became 2),
an integer beyond the binding's C++ type (``int`` counts, ``std::uint64_t`` seed: -1 wrapped), a string
for a number. Ranges the C++ core checks itself with a message naming the function (tol >= 0,
max_iter >= 1, reg_covar >= 0, ...) are left to it, so each condition is checked once; Python checks
the ranges of the values it uses itself before the core sees them (n_clusters, n_init, n_threads, ...).
"""
import math
import numbers

import numpy as np
from sklearn.utils import check_random_state

INT_MIN, INT_MAX = -2**31, 2**31 - 1  # the C++ `int` of every count
SEED_MAX = 2**64 - 1                  # the C++ `std::uint64_t` seed

# More OpenMP threads than any shared-memory machine has cores only costs thread stacks: 50000 made
# libgomp give up and 100000 crashed the process. A fixed cap, not one from os.cpu_count(), so that a
# model file valid on one machine is valid on every other.
MAX_THREADS = 1024


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class Int:
    """An integer (not a bool; numpy integers too) in [low, high] (by default the C++ int's range), or
    one of the strings in ``also``."""

    def __init__(self, low=INT_MIN, high=INT_MAX, *, also=(), what=None, bool_ok=False):
        self.low, self.high, self.also, self.what, self.bool_ok = low, high, also, what, bool_ok

    def describe(self):
        if self.what:
            text = self.what
        elif self.low == INT_MIN and self.high == INT_MAX:
            text = "an integer"
        elif self.high == INT_MAX:
            text = f"an integer >= {self.low}"
        else:
            text = f"an integer in [{self.low}, {self.high}]"
        return " or ".join([repr(a) for a in self.also] + [text])

    def __call__(self, who, name, value):
        if isinstance(value, str) and value in self.also:
            return str(value)
        if not (_is_int(value) or (self.bool_ok and isinstance(value, (bool, np.bool_)))):
            raise ValueError(f"{who}: {name} must be {self.describe()}, got {value!r}")
        v = int(value)
        if self.low <= v <= self.high:
            return v
        if v > INT_MAX or v < INT_MIN:
            raise ValueError(f"{who}: {name} must be {self.describe()} that fits a C++ int "
                             f"([{INT_MIN}, {INT_MAX}]), got {v}")
        raise ValueError(f"{who}: {name} must be {self.describe()}, got {v}")


class Real:
    """A real number (not a bool); with bounds, a finite one in the interval from ``low`` to ``high``
    (``closed``: "both", "left", "right" or "neither" end belongs to it). Or one of the strings in ``also``."""

    def __init__(self, low=-math.inf, high=math.inf, closed="both", *, also=(), what=None):
        self.low, self.high, self.closed, self.also, self.what = low, high, closed, also, what

    def describe(self):
        if self.what:
            text = self.what
        elif self.low == -math.inf and self.high == math.inf:
            text = "a real number"
        else:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            text = f"a number in {left}{self.low:g}, {self.high:g}{right}"
        return " or ".join([repr(a) for a in self.also] + [text])

    def __call__(self, who, name, value):
        if isinstance(value, str) and value in self.also:
            return str(value)
        if not _is_real(value):
            raise ValueError(f"{who}: {name} must be {self.describe()}, got {value!r}")
        v = float(value)
        if self.low == -math.inf and self.high == math.inf:
            return v  # NaN and the infinities: the C++ core refuses them where they matter
        left_ok = v >= self.low if self.closed in ("both", "left") else v > self.low
        right_ok = v <= self.high if self.closed in ("both", "right") else v < self.high
        if not (left_ok and right_ok):  # NaN fails both
            raise ValueError(f"{who}: {name} must be {self.describe()}, got {v!r}")
        return v


class Options:
    """One of the given values (strings, or None)."""

    def __init__(self, *options):
        self.options = options

    def __call__(self, who, name, value):
        for o in self.options:
            if (o is None and value is None) or (isinstance(value, str) and value == o):
                return o
        names = [repr(o) if o is not None else "None" for o in self.options]
        listed = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        raise ValueError(f"{who}: {name} must be {listed}, got {value!r}")


class Bool:
    """True or False (numpy's bool too)."""

    def __call__(self, who, name, value):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{who}: {name} must be True or False, got {value!r}")
        return bool(value)


class RandomState:
    """None, an integer seed in [0, 2**64 - 1] (the C++ seed) or a numpy RandomState (scikit-learn's
    convention; a numpy Generator is not one). Checked only: :func:`seed` draws, once per fit."""

    def __call__(self, who, name, value):
        if value is None or isinstance(value, np.random.RandomState):
            return value
        if _is_int(value) and 0 <= int(value) <= SEED_MAX:
            return int(value)
        raise ValueError(f"{who}: {name} must be None, an integer in [0, 2**64 - 1] or a numpy.random.RandomState, "
                         f"got {value!r}")


def seed(random_state):
    """The 64-bit key of the counter-based generator from a checked random_state: the integer itself,
    else one draw from the RandomState (numpy's global one for None), so that a shared instance advances."""
    if isinstance(random_state, int):
        return random_state
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


class Optional:
    """None, or what ``check`` accepts."""

    def __init__(self, check):
        self.check = check

    def __call__(self, who, name, value):
        if value is None:
            return None
        try:
            return self.check(who, name, value)
        except ValueError:
            raise ValueError(f"{who}: {name} must be None or {self.check.describe()}, got {value!r}") from None


class Any:
    """Checked elsewhere (arrays that the C++ core checks with their shapes)."""

    def __call__(self, who, name, value):
        return value


def validate(est, names=None):
    """The checked value of each parameter of ``est`` (all, or those in ``names``) by its class's
    ``_param_checks``; ValueError naming the estimator, the parameter and the value."""
    who = type(est).__name__
    table = type(est)._param_checks
    return {name: table[name](who, name, getattr(est, name)) for name in (names or table)}


def n_threads(est):
    """The checked n_threads of ``est`` (every call into the core that runs threads takes it)."""
    return validate(est, ["n_threads"])["n_threads"]


#: The checks shared by the three estimators.
THREADS = Int(0, MAX_THREADS, what=f"an integer in [0, {MAX_THREADS}] (0: OpenMP's default)")
DEVICE = Options("cpu", "cuda", "auto")
VERBOSE = Int(bool_ok=True)
