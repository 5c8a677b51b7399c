import numpy as np
import pytest

# tests/run_all.sh runs this suite in full at the CPU's highest ISA level, then again on each lower copy of
# the compiled core (MIXTURA_ISA=avx2, baseline) with -m "not top_level_only": the lower runs are there
# to check the core's arithmetic, whose bits depend on the vector width. A test or module marked
# top_level_only (always with its reason) checks what is the same at every level: Python plumbing,
# argument errors, files and docs. Tests are unmarked by default, so a new test runs at every level.
# List them: pytest --collect-only -q -m top_level_only tests/python
TOP_LEVEL_ONLY = "top_level_only"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", f"{TOP_LEVEL_ONLY}(reason): run only at the CPU's highest ISA level in tests/run_all.sh, "
                   "not on the lower copies of the core (the reason says why the level does not matter)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        for mark in item.iter_markers(TOP_LEVEL_ONLY):
            reason = mark.kwargs.get("reason", mark.args[0] if mark.args else "")
            if not isinstance(reason, str) or not reason.strip():
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{TOP_LEVEL_ONLY} needs a reason")


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [-4.0, 5.0, 2.0]])
    X = np.vstack([c + rng.standard_normal((300, 3)) for c in centres])
    return X[rng.permutation(len(X))]
