"""The evaluation script against published numbers: PyOD's protocol with one full-covariance
component lands within 0.03 ROC-AUC of PyOD's GMM column (../shared/data; skipped where absent)."""
import importlib.util
import os
import pathlib

import numpy as np
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


def test_gaps_study_runs_on_a_tiny_subset(evaluation):
    """bench/anomaly_eval.py --gaps on two small tasks, two seeds, two settings: every method has a
    finite ROC-AUC, the gaps are where they should be, and the table names the four methods."""
    pytest.importorskip("mixtura")
    tasks = (evaluation.odds_novelty_tasks(evaluation.load_odds(str(DATA), ["42_WBC"])) +
             evaluation.skab_tasks(str(DATA), [str(DATA / "SKAB" / "other" / "1.csv")]))
    settings = evaluation.GAP_SETTINGS[1:]              # 20 % at random, channel dropouts
    for st in settings:
        for t in tasks:
            g = evaluation.gap_task(t, 0, st)
            for X in (g.Xtr, g.Xte):
                gone = np.isnan(X)
                assert 0.1 < gone.mean() < 0.3 and not gone.all(axis=1).any()
            assert np.array_equal(g.Xtr[~np.isnan(g.Xtr)], t.Xtr[~np.isnan(g.Xtr)])
    res = evaluation.run_gaps(tasks, seeds=range(2), settings=settings)
    assert set(res) == {(st[0], m) for st in settings for m in evaluation.GAP_METHODS}
    assert set(evaluation.GAP_METHODS) == {"complete", "marginal", "mean-impute", "iterative-impute"}
    for runs in res.values():
        assert len(runs) == 2
        for rs in runs:
            assert [r["task"].name for r in rs] == [t.name for t in tasks]
            assert all(np.isfinite(r["roc"]) and 0 <= r["roc"] <= 1 and 0 <= r["fa"] <= 1 for r in rs)
    text = "\n".join(evaluation.gap_tables(res, range(2), settings))
    for st in settings:
        for m in evaluation.GAP_METHODS:
            assert f"| {st[0]} | {m} |" in text
    assert "marginal minus" in text
