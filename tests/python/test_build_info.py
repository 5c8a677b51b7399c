"""mixtura.build_info() and the choice of the compiled core (MIXTURA_ISA), in fresh interpreters."""
import json
import os
import subprocess
import sys

import pytest

import mixtura

LEVELS = ["baseline", "avx2", "avx512"]

# Not run on the lower copies of the core by tests/run_all.sh (conftest.py):
FRESH_INTERPRETERS = pytest.mark.top_level_only(
    reason="fresh interpreters with their own MIXTURA_ISA: the same outcome at every level of the suite")


def run_python(code, isa):
    env = dict(os.environ)
    env.pop("MIXTURA_ISA", None)
    if isa is not None:
        env["MIXTURA_ISA"] = isa
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


def info_under(isa):
    r = run_python("import json, mixtura; print(json.dumps(mixtura.build_info()))", isa)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_build_info_describes_the_core_in_use():
    b = mixtura.build_info()
    assert b["version"] == mixtura.__version__
    assert b["isa"] in b["isa_compiled"] and b["isa"] in b["cpu_levels"]
    assert b["cpu_levels"] == LEVELS[:len(b["cpu_levels"])]  # each level implies the ones below
    assert "baseline" in b["isa_compiled"]
    assert isinstance(b["openmp"], bool) and b["max_threads"] >= 1 and b["compiler"]
    assert b["cuda_devices"] >= 0 and (b["cuda"] or b["cuda_devices"] == 0)


@FRESH_INTERPRETERS
def test_without_a_cap_the_highest_level_of_the_cpu_runs():
    b = info_under(None)
    runnable = [level for level in b["isa_compiled"] if level in b["cpu_levels"]]
    assert b["isa"] == runnable[-1] and b["isa_cap"] is None


@FRESH_INTERPRETERS
@pytest.mark.parametrize("cap", LEVELS)
def test_mixtura_isa_caps_the_level(cap):
    top = info_under(None)
    b = info_under(cap)
    assert b["isa_cap"] == cap
    allowed = [level for level in top["isa_compiled"]
               if level in top["cpu_levels"] and LEVELS.index(level) <= LEVELS.index(cap)]
    assert b["isa"] == allowed[-1]


@FRESH_INTERPRETERS
def test_a_bad_mixtura_isa_is_a_clear_import_error():
    r = run_python("import mixtura", "avx1024")
    assert r.returncode != 0
    assert "MIXTURA_ISA='avx1024' is not a level; expected one of baseline, avx2, avx512" in r.stderr
