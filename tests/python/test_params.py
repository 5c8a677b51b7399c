"""Estimator parameters: every one is checked (type, the C++ type's range, n_threads' cap) before the
C++ core sees it, in fit and when a model file's parameters are loaded, with a message that names the
estimator, the parameter and the value."""
import re

import numpy as np
import pytest

import mixtura
from mixtura import _io, _params

# Not run on the lower copies of the core by tests/run_all.sh (conftest.py), for this reason:
pytestmark = pytest.mark.top_level_only(reason=(
    "parameter checks (Python's, and the core's scalar check of max_iter) raise before any arithmetic; "
    "the fits here only show that a value is accepted"))


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(c, 0.3, size=(60, 2)) for c in (-3, 0, 3)])


ESTIMATORS = {
    "KMeans": lambda **kw: mixtura.KMeans(**{"n_clusters": 3, "random_state": 0, **kw}),
    "GaussianMixture": lambda **kw: mixtura.GaussianMixture(**{"n_components": 2, "random_state": 0, **kw}),
    "DensityAnomalyDetector": lambda **kw: mixtura.DensityAnomalyDetector(**{"n_components": 2, "random_state": 0,
                                                                              **kw}),
}

# (estimator, parameter, value, what the message says it must be)
BAD = [
    # n_threads: 50000 made libgomp exit and 100000 crashed the process
    *[(name, "n_threads", v, r"an integer in \[0, 1024\]") for name in ESTIMATORS for v in (100000, 1025, -1, 2.0)],
    # a count beyond the C++ int used to dump pybind11's signature; a float was truncated, a bool taken as 1
    *[(name, "max_iter", v, "an integer") for name in ESTIMATORS for v in (2**40, 2.7, True, "100")],
    ("KMeans", "n_clusters", True, "an integer >= 1"),
    ("KMeans", "n_clusters", 3.0, "an integer >= 1"),
    ("KMeans", "n_init", 2.5, "'auto' or an integer >= 1"),
    ("KMeans", "init", "kmeans", "'k-means\\+\\+', 'random', an array of initial centres or a callable"),
    ("KMeans", "copy_x", "yes", "True or False"),
    ("KMeans", "algorithm", "full", "'auto', 'lloyd', 'elkan', 'hamerly' or 'yinyang'"),
    ("GaussianMixture", "n_components", True, "an integer >= 1"),
    ("GaussianMixture", "n_init", 1.5, "an integer"),
    ("GaussianMixture", "warm_start", "yes", "True or False"),
    ("GaussianMixture", "init_params", "kmeans++", "'kmeans', 'k-means\\+\\+', 'random' or 'random_from_data'"),
    ("DensityAnomalyDetector", "n_components", True, "'bic' or an integer >= 1"),
    ("DensityAnomalyDetector", "max_components", 8.5, "an integer"),
    # NaN reached round() ("cannot convert float NaN to integer")
    ("DensityAnomalyDetector", "calibration_fraction", float("nan"), r"in \(0, 1\)"),
    ("DensityAnomalyDetector", "false_alarm_rate", float("nan"), r"in \(0, 1\)"),
    ("DensityAnomalyDetector", "contamination", float("nan"), r"'auto' or a float in \(0, 0.5\]"),
    ("DensityAnomalyDetector", "scaling", "minmax", "'robust', 'standard' or None"),
    *[(name, "tol", v, "a real number") for name in ESTIMATORS for v in ("1e-3", None, True)],
    *[(name, "verbose", v, "an integer") for name in ("KMeans", "GaussianMixture") for v in (0.5, "yes")],
    *[(name, "device", v, "'cpu', 'cuda' or 'auto'") for name in ESTIMATORS for v in ("gpu", None)],
    # random_state: -1 and 2**64 wrapped silently to another seed; a Generator is not scikit-learn's convention
    *[(name, "random_state", v, r"None, an integer in \[0, 2\*\*64 - 1\] or a numpy.random.RandomState")
      for name in ESTIMATORS for v in (-1, 2**64, 1.5, "0", np.random.default_rng(0))],
]


@pytest.mark.parametrize("name, param, value, expected", BAD,
                         ids=[f"{n}-{p}-{type(v).__name__}-{v if not isinstance(v, np.random.Generator) else ''}"
                              for n, p, v, _ in BAD])
def test_fit_refuses_a_bad_parameter_naming_it(X, name, param, value, expected):
    est = ESTIMATORS[name](**{param: value})
    with pytest.raises(ValueError) as info:
        est.fit(X)
    message = str(info.value)
    assert re.match(rf"{name}: {param} must be {expected}", message), message
    assert "\n" not in message and "incompatible function arguments" not in message
    shown = repr(value) if not isinstance(value, np.random.Generator) else "Generator"
    assert shown.split("(")[0] in message, message  # the value itself, not a converted one


def test_a_count_beyond_the_cpp_int_says_so(X):
    with pytest.raises(ValueError, match=r"^KMeans: max_iter must be an integer that fits a C\+\+ int "
                                         r"\(\[-2147483648, 2147483647\]\), got 1099511627776$"):
        mixtura.KMeans(3, max_iter=2**40).fit(X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_the_cpp_range_checks_still_speak(X, name):
    # ranges the core checks itself are checked once, there (its message names the function)
    with pytest.raises(ValueError, match=r"^[A-Za-z]+\.fit: max_iter must be >= [01], got -1"):
        ESTIMATORS[name](max_iter=-1).fit(X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_numpy_integers_and_the_whole_seed_range_are_accepted(X, name):
    ref = ESTIMATORS[name](random_state=2**64 - 1).fit(X)
    est = ESTIMATORS[name](max_iter=np.int64(100), n_threads=np.int32(2), random_state=np.uint64(2**64 - 1)).fit(X)
    # the largest seed is its own seed (it used to be masked; now nothing is)
    if name == "KMeans":
        np.testing.assert_array_equal(est.cluster_centers_, ref.cluster_centers_)
    assert ESTIMATORS[name](n_threads=_params.MAX_THREADS, max_iter=5).fit(X) is not None


FITTED = {"KMeans": "cluster_centers_", "GaussianMixture": "means_", "DensityAnomalyDetector": "density_means_"}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_random_state_instance_still_seeds(X, name):
    a = ESTIMATORS[name](random_state=np.random.RandomState(7)).fit(X)
    b = ESTIMATORS[name](random_state=np.random.RandomState(7)).fit(X)
    np.testing.assert_array_equal(getattr(a, FITTED[name]), getattr(b, FITTED[name]))


def test_bool_verbose_is_accepted(X):
    mixtura.KMeans(3, verbose=False, random_state=0).fit(X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_prediction_checks_n_threads_too(X, name):
    est = ESTIMATORS[name]().fit(X)
    est.set_params(n_threads=100000)
    method = est.predict if name == "KMeans" else est.score_samples
    with pytest.raises(ValueError, match=rf"^{name}: n_threads must be an integer in \[0, 1024\]"):
        method(X)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_a_model_file_with_a_bad_n_threads_is_refused_on_load(X, name):
    est = ESTIMATORS[name]().fit(X)
    est.set_params(n_threads=100000)  # as a file written by hand or by an older mixtura could say
    data = _io.dumps(est)
    with pytest.raises(ValueError, match=rf"^mixtura.loads: {name}: n_threads must be an integer in \[0, 1024\]"):
        mixtura.loads(data)


def test_sample_checks_n_samples():
    gm = mixtura.GaussianMixture(1, random_state=0).fit(np.random.default_rng(1).normal(size=(20, 2)))
    with pytest.raises(ValueError, match=r"^GaussianMixture.sample: n_samples must be an integer >= 1, got 2.5$"):
        gm.sample(2.5)
    with pytest.raises(ValueError, match="Invalid value for 'n_samples': 0"):
        gm.sample(0)
    assert gm.sample(np.int64(3))[0].shape == (3, 2)
