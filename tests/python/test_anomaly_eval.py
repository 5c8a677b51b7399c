"""The evaluation script against published numbers: PyOD's protocol with one full-covariance
component lands within 0.03 ROC-AUC of PyOD's GMM column (../shared/data; skipped where absent)."""
import importlib.util
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("MIXTURA_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="module")
def evaluation():
    if not (DATA / "ODDS" / "pyod_benchmark_results" / "roc.csv").exists():
        pytest.skip(f"the shared anomaly datasets are not at {DATA} (set MIXTURA_SHARED_DATA)")
    spec = importlib.util.spec_from_file_location("anomaly_eval", ROOT / "bench" / "anomaly_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["6_cardio", "40_vowels", "30_satellite", "28_pendigits", "32_shuttle"])
def test_one_component_matches_pyods_published_gmm(evaluation, name):
    odds = evaluation.load_odds(str(DATA), [name])
    rows = evaluation.pyod_check(odds, str(DATA))
    assert len(rows) == 1
    _, shape, pyod_shape, roc, published, same = rows[0]
    assert same, f"{name}: our file {shape} is not PyOD's {pyod_shape}"
    assert abs(roc["mixtura"] - published) <= 0.03, (roc, published)
    assert abs(roc["mixtura"] - roc["scikit-learn"]) < 1e-6
