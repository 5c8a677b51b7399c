"""What mixtura needs from other packages: numpy and scikit-learn's public API only (no private
scikit-learn names, which may change in any release), and no matplotlib except for the command
line's plot (the `plot` extra)."""
import ast
import importlib.util
import os
import pathlib
import pkgutil
import subprocess
import sys
import textwrap

import pytest

import mixtura

pytestmark = pytest.mark.top_level_only(reason="imports and package metadata: no arithmetic")

ROOT = pathlib.Path(__file__).resolve().parents[2]


def private_sklearn_imports(source):
    """(line, what) of every import from scikit-learn of a private module (a path segment starting with
    "_") or of a private name, in Python source text."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules, names = [node.module], [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [a.name for a in node.names], []
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] != "sklearn":
                continue
            if any(p.startswith("_") for p in parts[1:]):
                found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{n}") for n in names if n.startswith("_")]
    return found


def mixtura_sources():
    """{module name: source path} of every Python module of the mixtura package (found, not imported, so
    that mixtura.dask is read without dask installed)."""
    names = ["mixtura"] + [m.name for m in pkgutil.walk_packages(mixtura.__path__, "mixtura.")]
    origins = {name: importlib.util.find_spec(name).origin for name in names}
    return {name: origin for name, origin in origins.items() if origin.endswith(".py")}


def test_the_scan_finds_private_imports():
    source = textwrap.dedent("""
        from sklearn.utils.validation import check_is_fitted, _check_sample_weight
        from sklearn.utils._param_validation import Interval
        import sklearn.utils._testing
        from sklearn.base import BaseEstimator
        import sklearn.cluster
        from ._sklearn import _private
        def f():
            from sklearn.cluster._kmeans import _kmeans_plusplus
    """)
    assert private_sklearn_imports(source) == [
        (2, "sklearn.utils.validation._check_sample_weight"), (3, "sklearn.utils._param_validation"),
        (4, "sklearn.utils._testing"), (9, "sklearn.cluster._kmeans"), (9, "sklearn.cluster._kmeans._kmeans_plusplus")]


def test_no_module_imports_private_scikit_learn_names():
    sources = mixtura_sources()
    assert {"mixtura._kmeans", "mixtura._gmm", "mixtura._minibatch", "mixtura.cli", "mixtura.dask"} <= set(sources)
    found = {name: hits for name, path in sources.items()
             if (hits := private_sklearn_imports(pathlib.Path(path).read_text(encoding="utf-8")))}
    assert found == {}


BLOCKED = """
import io
import sys
sys.modules["matplotlib"] = None  # `import matplotlib` raises ImportError, as when it is not installed
import numpy as np
import mixtura, mixtura.cli, mixtura.datasets
X = np.random.default_rng(0).standard_normal((400, 3))
mixtura.KMeans(3, random_state=0).fit(X).predict(X)
mixtura.MiniBatchKMeans(3, random_state=0).fit(X).predict(X)
mixtura.GaussianMixture(2, random_state=0).fit(X).score_samples(X)
det = mixtura.DensityAnomalyDetector(random_state=0).fit(X)
det.predict(X), det.explain(X[:3])
mixtura.PyODDetector(random_state=0).fit(X).predict_proba(X)
mixtura.StreamScorer(det, width=1).score_chunk(X)
buf = io.BytesIO()
det.save(buf)
buf.seek(0)
mixtura.load(buf).score_samples(X)
assert sys.modules["matplotlib"] is None
print("ok")
"""


def test_mixtura_works_without_matplotlib():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in [str(pathlib.Path(mixtura.__file__).parents[1]),
                                                                  os.environ.get("PYTHONPATH")] if p))
    r = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_install_needs_numpy_and_scikit_learn_only():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {d.split(">")[0].split("=")[0].split("[")[0].strip() for d in project["dependencies"]}
    assert names == {"numpy", "scikit-learn"}
    extras = project["optional-dependencies"]
    assert any(d.startswith("matplotlib") for d in extras["plot"])
    assert "mixtura[plot]" in extras["cli"]  # the command line's plot
    assert "mixtura[plot]" in extras["test"]  # the notebooks and the CLI's plot tests
