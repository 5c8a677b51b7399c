"""Model files from Python: save/load and pickle round trips, hostile files, and the C++ API both
ways (tests/cpp/model_tool, found through MIXTURA_MODEL_TOOL or in build/)."""
import io
import os
import pathlib
import pickle
import struct
import subprocess
import warnings
import zlib

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import mixtura
from mixtura import _core, _io
from model_tool_util import model_tool

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "models"
TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    centres = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, 1.0, -2.0, 3.0], [-4.0, 5.0, 2.0, -1.0]])
    return np.vstack([c + rng.standard_normal((120, 4)) for c in centres])


def assert_same_kmeans(a, b, X):
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    assert a.score(X) == b.score(X)
    assert a.cluster_centers_.dtype == b.cluster_centers_.dtype
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert (a.inertia_, a.n_iter_, a.converged_, a.n_features_in_) == (b.inertia_, b.n_iter_, b.converged_,
                                                                      b.n_features_in_)
    assert len(a.distortion_traces_) == len(b.distortion_traces_)
    for s, t in zip(a.distortion_traces_, b.distortion_traces_):
        np.testing.assert_array_equal(s, t)
    np.testing.assert_array_equal(a.distortion_trace_, b.distortion_trace_)
    assert a.events_ == b.events_


def assert_same_gmm(a, b, X):
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    for name in ["weights_", "means_", "precisions_cholesky_", "covariances_", "precisions_"]:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.lower_bound_, a.n_iter_, a.converged_, a.n_features_in_) == (b.lower_bound_, b.n_iter_, b.converged_,
                                                                          b.n_features_in_)
    assert a.lower_bounds_ == b.lower_bounds_
    for s, t in zip(a.elbo_traces_, b.elbo_traces_, strict=True):
        np.testing.assert_array_equal(s, t)
    assert a.events_ == b.events_


# ---- Python round trips ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_save_load_round_trip(data, dtype, tmp_path):
    X = data.astype(dtype)
    km = mixtura.KMeans(4, n_init=3, random_state=5, tol=0).fit(X)
    path = tmp_path / "km.mxt"
    km.save(path)
    back = mixtura.load(path)
    assert type(back) is mixtura.KMeans
    assert back.get_params() == km.get_params()
    assert_same_kmeans(km, back, X)
    # A file object works as well as a path, and gives the same bytes.
    buf = io.BytesIO()
    back.save(buf)
    assert buf.getvalue() == path.read_bytes()


@pytest.mark.parametrize("cov", TYPES)
def test_gmm_save_load_round_trip(data, cov, tmp_path):
    X = data.copy()
    X[:, 3] = 2.0  # a constant column: floored covariances, recorded as events
    gm = mixtura.GaussianMixture(3, covariance_type=cov, n_init=2, reg_covar=0, random_state=1).fit(X)
    if cov != "spherical":
        assert gm.events_
    gm.save(tmp_path / "gm.mxt")
    back = mixtura.load(tmp_path / "gm.mxt")
    assert type(back) is mixtura.GaussianMixture
    assert back.get_params() == gm.get_params()
    assert_same_gmm(gm, back, X)
    assert back.bic(X) == gm.bic(X)


def test_array_parameters_and_feature_names_survive(data, tmp_path):
    X = data[:, :3]
    init = X[:3].copy()
    km = mixtura.KMeans(3, init=init).fit(X)
    km.feature_names_in_ = np.array(["a", "b", "température"], dtype=object)
    km.save(tmp_path / "km.mxt")
    back = mixtura.load(tmp_path / "km.mxt")
    np.testing.assert_array_equal(back.init, init)
    np.testing.assert_array_equal(back.feature_names_in_, km.feature_names_in_)
    gm = mixtura.GaussianMixture(3, means_init=X[:3], weights_init=[0.2, 0.3, 0.5]).fit(X)
    back = mixtura.loads(_io.dumps(gm))
    np.testing.assert_array_equal(back.means_init, X[:3])
    np.testing.assert_array_equal(back.weights_init, [0.2, 0.3, 0.5])


def test_refitting_a_loaded_model_gives_the_same_fit(data, tmp_path):
    km = mixtura.KMeans(3, random_state=7).fit(data)
    km.save(tmp_path / "km.mxt")
    again = mixtura.load(tmp_path / "km.mxt").fit(data)
    np.testing.assert_array_equal(again.cluster_centers_, km.cluster_centers_)


def test_save_needs_a_fitted_estimator(tmp_path):
    with pytest.raises(NotFittedError):
        mixtura.KMeans().save(tmp_path / "x.mxt")
    assert not (tmp_path / "x.mxt").exists()


def test_a_random_state_instance_is_not_written_to_the_file(data, tmp_path):
    km = mixtura.KMeans(3, random_state=np.random.RandomState(0)).fit(data)
    with pytest.warns(UserWarning, match="random_state=RandomState.*cannot be stored in a model file"):
        km.save(tmp_path / "km.mxt")
    back = mixtura.load(tmp_path / "km.mxt")
    assert back.random_state is None
    np.testing.assert_array_equal(back.predict(data), km.predict(data))


# ---- Pickling -------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: mixtura.KMeans(3, n_init=2, random_state=0),
                                  lambda: mixtura.GaussianMixture(3, covariance_type="diag", random_state=0)])
def test_pickle_goes_through_the_model_file(data, make):
    est = make().fit(data.astype(np.float32))
    blob = pickle.dumps(est)
    assert b"MIXTURA\x00" in blob
    back = pickle.loads(blob)
    assert type(back) is type(est)
    if isinstance(est, mixtura.KMeans):
        assert_same_kmeans(est, back, data.astype(np.float32))
    else:
        assert_same_gmm(est, back, data)
    # The file inside the pickle is exactly what save() writes.
    state = est.__getstate__()
    assert state["mixtura_model_file"] == _io.dumps(est)
    assert state["side_params"] == {}


def test_unfitted_estimators_and_unstorable_parameters_pickle():
    rs = np.random.RandomState(4)
    est = mixtura.KMeans(5, init=np.zeros((5, 2)), random_state=rs, tol=0.5)
    back = pickle.loads(pickle.dumps(est))
    assert not hasattr(back, "cluster_centers_")
    assert back.n_clusters == 5 and back.tol == 0.5
    np.testing.assert_array_equal(back.init, np.zeros((5, 2)))
    # The RandomState travels beside the file bytes, with its state.
    assert isinstance(back.random_state, np.random.RandomState)
    assert back.random_state.randint(1 << 30) == np.random.RandomState(4).randint(1 << 30)


def test_loaded_extras_are_kept_until_a_refit(data):
    km = mixtura.KMeans(3, random_state=0).fit(data)
    sections = km._to_sections()
    sections["trace_seconds_"] = np.full(km.n_iter_, 0.25)  # as the C++ API writes
    back = mixtura.loads(_core.model_file_to_bytes("KMeans", sections))
    assert "trace_seconds_" in _core.model_file_from_bytes(_io.dumps(back))[1]
    back.fit(data)
    assert "trace_seconds_" not in _core.model_file_from_bytes(_io.dumps(back))[1]


# ---- Hostile files --------------------------------------------------------------------------------

@pytest.fixture
def saved(data, tmp_path):
    path = tmp_path / "gm.mxt"
    mixtura.GaussianMixture(2, random_state=0).fit(data).save(path)
    return path


def test_the_trailer_is_zlib_crc32_and_the_header_is_as_documented(saved):
    b = saved.read_bytes()
    assert b[:8] == b"MIXTURA\x00"
    version, flags, total, n_sections, kind_len = struct.unpack_from("<IIQII", b, 8)
    assert (version, flags, total) == (1, 0, len(b))
    assert b[32:32 + kind_len] == b"GaussianMixture"
    assert struct.unpack_from("<I", b, len(b) - 4)[0] == zlib.crc32(b[:-4])
    assert n_sections == len(_core.model_file_from_bytes(b)[1])


def test_a_corrupted_file_is_a_clear_value_error(saved):
    b = bytearray(saved.read_bytes())
    b[len(b) // 2] ^= 0x10
    saved.write_bytes(bytes(b))
    with pytest.raises(ValueError, match=r"mixtura.load\('.*gm.mxt'\): checksum mismatch \(stored 0x[0-9a-f]{8}, "
                                         r"computed 0x[0-9a-f]{8}\): the file is corrupted"):
        mixtura.load(saved)


def test_every_truncation_is_a_clear_value_error(saved):
    b = saved.read_bytes()
    for n in range(len(b)):
        with pytest.raises(ValueError, match="truncated|empty") as e:
            mixtura.loads(b[:n])
        assert "mixtura.loads" in str(e.value)


def test_not_a_model_file_future_version_and_unknown_kind(saved, tmp_path):
    with pytest.raises(ValueError, match="not a mixtura model file"):
        mixtura.loads(pickle.dumps({"a": 1}))
    b = bytearray(saved.read_bytes())
    struct.pack_into("<I", b, 8, 2)
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))
    with pytest.raises(ValueError, match="format version 2 is newer than this build of mixtura reads"):
        mixtura.loads(bytes(b))
    with pytest.raises(ValueError, match="unknown model kind 'Forest'"):
        mixtura.loads(_core.model_file_to_bytes("Forest", {"x": np.zeros(2)}))
    with pytest.raises(FileNotFoundError):
        mixtura.load(tmp_path / "missing.mxt")


def test_a_valid_checksum_does_not_make_contents_valid(data):
    gm = mixtura.GaussianMixture(3, random_state=0).fit(data)
    s = gm._to_sections()
    s["weights_"] = s["weights_"] * 0.5
    with pytest.raises(ValueError, match=r"GaussianMixture model: weights_ sum to 0.5, expected 1"):
        mixtura.loads(_core.model_file_to_bytes("GaussianMixture", s))
    s = gm._to_sections()
    s["precisions_cholesky_"] = s["precisions_cholesky_"][:, :2, :2].copy()
    with pytest.raises(ValueError, match=r"section 'precisions_cholesky_' has shape \(3, 2, 2\), expected \(3, 4, 4\)"):
        mixtura.loads(_core.model_file_to_bytes("GaussianMixture", s))
    s = gm._to_sections()
    s["params"] = "[1, 2"
    with pytest.raises(ValueError, match="section 'params' is not valid JSON text"):
        mixtura.loads(_core.model_file_to_bytes("GaussianMixture", s))
    s = gm._to_sections()
    s["means_"] = s["means_"].astype(np.float32)
    with pytest.raises(ValueError, match="section 'means_' has dtype f32, expected f64"):
        mixtura.loads(_core.model_file_to_bytes("GaussianMixture", s))
    km = mixtura.KMeans(3, random_state=0).fit(data)
    s = km._to_sections()
    s["labels_"] = s["labels_"] + 5
    with pytest.raises(ValueError, match=r"labels_\[0\] = \d+ is outside \[0, n_clusters = 3\)"):
        mixtura.loads(_core.model_file_to_bytes("KMeans", s))
    with pytest.raises(ValueError, match="has dtype bool"):
        _core.model_file_to_bytes("KMeans", {"x": np.zeros(3, dtype=bool)})


# ---- The C++ API, both ways -----------------------------------------------------------------------

def run_tool(*args):
    r = subprocess.run([model_tool(), *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def to_csv(path, X):
    np.savetxt(path, X, fmt="%.17g", delimiter=",")  # 17 digits: every float64 (and float32) round-trips
    return path


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kmeans_trained_in_python_predicts_the_same_in_cpp(data, dtype, tmp_path):
    X = data.astype(dtype)
    km = mixtura.KMeans(4, n_init=2, random_state=2).fit(X)
    km.save(tmp_path / "km.mxt")
    assert run_tool("info", tmp_path / "km.mxt").split() == ["KMeans", np.dtype(dtype).name, "4"]
    run_tool("score", tmp_path / "km.mxt", to_csv(tmp_path / "X.csv", X), tmp_path / "out.csv")
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", ndmin=2)
    np.testing.assert_array_equal(out[:, 0], km.predict(X))
    # Same centres, same code, same build flags: the distances agree to the last bit or close to it.
    np.testing.assert_allclose(out[:, 1:], km.transform(X), rtol=1e-6 if dtype == np.float32 else 1e-12)
    # C++ keeps everything it loaded: resaving through a C++ KMeans loses no fitted state.
    run_tool("resave", tmp_path / "km.mxt", tmp_path / "again.mxt")
    assert_same_kmeans(km, mixtura.load(tmp_path / "again.mxt"), X)


@pytest.mark.parametrize("cov", TYPES)
def test_gmm_trained_in_python_scores_the_same_in_cpp(data, cov, tmp_path):
    gm = mixtura.GaussianMixture(3, covariance_type=cov, n_init=2, random_state=4).fit(data)
    gm.save(tmp_path / "gm.mxt")
    run_tool("score", tmp_path / "gm.mxt", to_csv(tmp_path / "X.csv", data), tmp_path / "out.csv")
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", ndmin=2)
    np.testing.assert_allclose(out[:, 0], gm.score_samples(data), rtol=1e-12)
    np.testing.assert_array_equal(out[:, 1], gm.predict(data))
    np.testing.assert_allclose(out[:, 2:], gm.predict_proba(data), rtol=1e-10, atol=1e-15)
    run_tool("resave", tmp_path / "gm.mxt", tmp_path / "again.mxt")
    assert_same_gmm(gm, mixtura.load(tmp_path / "again.mxt"), data)


@pytest.mark.parametrize("what,extra", [("kmeans", []), ("gmm", ["--covariance", "full"]),
                                        ("gmm", ["--covariance", "tied"]), ("gmm", ["--covariance", "diag"]),
                                        ("gmm", ["--covariance", "spherical"])])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_model_trained_in_cpp_scores_the_same_in_python(data, what, extra, dtype, tmp_path):
    X = data.astype(dtype)
    csv = to_csv(tmp_path / "X.csv", X)
    run_tool("fit", what, csv, tmp_path / "m.mxt", "--k", 3, "--n-init", 2, "--seed", 9, "--dtype", dtype, *extra)
    run_tool("score", tmp_path / "m.mxt", csv, tmp_path / "out.csv", "--dtype", dtype)
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", ndmin=2)
    est = mixtura.load(tmp_path / "m.mxt")
    assert len(est.lower_bounds_ if what == "gmm" else est.distortion_traces_) >= 1
    if what == "kmeans":
        assert type(est) is mixtura.KMeans and est.cluster_centers_.dtype == np.dtype(dtype)
        assert est.get_params()["n_clusters"] == 3 and est.get_params()["random_state"] == 9
        assert len(est.distortion_traces_) == 2 and len(est.labels_) == len(X)
        np.testing.assert_array_equal(est.predict(X), out[:, 0])
        np.testing.assert_allclose(est.transform(X), out[:, 1:], rtol=1e-6 if dtype == "float32" else 1e-12)
    else:
        assert type(est) is mixtura.GaussianMixture and est.covariance_type == extra[1]
        assert len(est.elbo_traces_) == 2
        np.testing.assert_allclose(est.score_samples(X), out[:, 0], rtol=1e-12)
        np.testing.assert_array_equal(est.predict(X), out[:, 1])
    # Python keeps what only C++ records (timings, per-restart values) and writes it back.
    again = _core.model_file_from_bytes(_io.dumps(est))[1]
    original = _core.model_file_from_bytes((tmp_path / "m.mxt").read_bytes())[1]
    for name in original:
        if name != "params":
            np.testing.assert_array_equal(again[name], original[name], err_msg=name)


@pytest.mark.parametrize("what", ["kmeans", "minibatch"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_given_initial_centres_written_by_cpp_are_pythons_init(data, what, dtype, tmp_path):
    # C++ fitted from given centres: the file holds them as the init parameter, so that the loaded
    # estimator refits from the same start (an "init": "given" with no centres would be refused).
    X = data.astype(dtype)
    csv = to_csv(tmp_path / "X.csv", X)
    run_tool("fit", what, csv, tmp_path / "m.mxt", "--k", 3, "--init-first-rows", "--dtype", dtype,
             "--batch-size", 64)
    est = mixtura.load(tmp_path / "m.mxt")
    assert isinstance(est.init, np.ndarray) and est.init.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(est.init, X[:3])
    assert est.get_params()["n_init"] == 1
    centres = est.cluster_centers_.copy()
    if what == "kmeans":  # the same start, data and parameters: the same fit (to the two builds' rounding)
        np.testing.assert_allclose(est.fit(X).cluster_centers_, centres, rtol=1e-5 if dtype == "float32" else 1e-12)
    else:
        assert est.fit(X).cluster_centers_.shape == (3, X.shape[1])


# ---- Committed fixtures (format version 1, written by tests/fixtures/models/make_models.py) ----------

def test_files_written_by_the_cpp_api_are_read_by_python():
    km = mixtura.load(FIXTURES / "cpp_kmeans_float64.mxt")
    sections = _core.model_file_from_bytes((FIXTURES / "cpp_kmeans_float64.mxt").read_bytes())[1]
    np.testing.assert_array_equal(km.predict(sections["test.X"]), sections["test.labels"])
    np.testing.assert_array_equal(km.labels_, sections["test.labels"])
    gm = mixtura.load(FIXTURES / "cpp_gmm_full.mxt")
    sections = _core.model_file_from_bytes((FIXTURES / "cpp_gmm_full.mxt").read_bytes())[1]
    np.testing.assert_allclose(gm.score_samples(sections["test.X"]), sections["test.score_samples"], rtol=1e-12)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_files_written_by_python_still_load():
    km = mixtura.load(FIXTURES / "python_kmeans_float32.mxt")
    assert list(km.feature_names_in_) == ["temperature", "pressure", "flow"]
    sections = _core.model_file_from_bytes((FIXTURES / "python_kmeans_float32.mxt").read_bytes())[1]
    np.testing.assert_array_equal(km.predict(sections["test.X"]), sections["test.labels"])
    for cov in TYPES:
        gm = mixtura.load(FIXTURES / f"python_gmm_{cov}.mxt")
        s = _core.model_file_from_bytes((FIXTURES / f"python_gmm_{cov}.mxt").read_bytes())[1]
        np.testing.assert_allclose(gm.score_samples(s["test.X"]), s["test.score_samples"], rtol=1e-12)


# ---- DensityAnomalyDetector: a composite file (scaling, threshold, the model under "model.") -------

def assert_same_detector(a, b, X):
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    ea, eb = a.explain(X), b.explain(X)
    np.testing.assert_array_equal(ea.contributions, eb.contributions)
    np.testing.assert_array_equal(ea.component, eb.component)
    assert (a.offset_, a.n_components_, a.n_iter_, a.n_features_in_, a.n_trimmed_) == (
        b.offset_, b.n_components_, b.n_iter_, b.n_features_in_, b.n_trimmed_)
    for name in ["center_", "scale_", "bic_", "density_weights_", "density_means_", "density_precisions_cholesky_"]:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_detector_save_load_and_pickle(data, method, tmp_path):
    det = mixtura.DensityAnomalyDetector(method, max_components=4, random_state=1).fit(data)
    det.save(tmp_path / "det.mxt")
    back = mixtura.load(tmp_path / "det.mxt")
    assert type(back) is mixtura.DensityAnomalyDetector and back.get_params() == det.get_params()
    assert type(back.model_) is type(det.model_)
    assert_same_detector(det, back, data)
    assert_same_detector(det, pickle.loads(pickle.dumps(det)), data)


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_detector_crosses_languages_both_ways(data, method, dtype, tmp_path):
    X = data.astype(dtype)
    csv = to_csv(tmp_path / "X.csv", X)
    # Python -> C++: same scores, flags, components and contributions (a trimmed fit: n_trimmed_ crosses too).
    det = mixtura.DensityAnomalyDetector(method, max_components=4, random_state=3, trim=0.05).fit(X)
    assert det.n_trimmed_ > 0
    det.save(tmp_path / "py.mxt")
    run_tool("score", tmp_path / "py.mxt", csv, tmp_path / "out.csv", "--dtype", dtype)
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", ndmin=2)
    np.testing.assert_allclose(out[:, 0], det.score_samples(X), rtol=1e-12)
    np.testing.assert_array_equal(out[:, 1], det.predict(X))
    e = det.explain(X)
    np.testing.assert_array_equal(out[:, 2], e.component)
    np.testing.assert_allclose(out[:, 3:], e.contributions, rtol=1e-9, atol=1e-12)
    run_tool("resave", tmp_path / "py.mxt", tmp_path / "again.mxt")
    assert_same_detector(det, mixtura.load(tmp_path / "again.mxt"), X)
    # C++ -> Python.
    run_tool("fit", "detector", csv, tmp_path / "cpp.mxt", "--k", 0, "--seed", 5, "--dtype", dtype, "--method", method)
    run_tool("score", tmp_path / "cpp.mxt", csv, tmp_path / "out2.csv", "--dtype", dtype)
    out = np.loadtxt(tmp_path / "out2.csv", delimiter=",", ndmin=2)
    est = mixtura.load(tmp_path / "cpp.mxt")
    assert est.method == method and est.n_components == "bic" and len(est.bic_) == 8
    np.testing.assert_allclose(est.score_samples(X), out[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(est.predict(X), out[:, 1])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_detector_stream_resumes_in_cpp(data, dtype, tmp_path):
    # A detector fitted in Python, then stepped chunk by chunk both in Python and, through its file, by
    # C++'s DensityAnomalyDetector::partial_fit (each step loaded, stepped and saved again): the same
    # rows learnt, the same recent scores, threshold and density (to the rounding of the two builds).
    rng = np.random.default_rng(8)
    X = data.astype(dtype)
    det = mixtura.DensityAnomalyDetector(max_components=3, random_state=4, half_life=150.0, reg_covar=2e-3).fit(X)
    det.save(tmp_path / "step0.mxt")
    rtol = 1e-5 if dtype == "float32" else 1e-10
    for step in range(1, 5):
        chunk = (data[rng.integers(0, len(data), 80)] + 0.4 * step + 0.3 * rng.standard_normal((80, 4))).astype(dtype)
        chunk[::10, 2] += 25  # faults: flagged, not learnt
        scores = det.score_samples(chunk)
        det.partial_fit(chunk)
        run_tool("partial_fit", tmp_path / f"step{step - 1}.mxt", to_csv(tmp_path / "chunk.csv", chunk),
                 tmp_path / f"step{step}.mxt", "--dtype", dtype, "--half-life", 150, "--reg-covar", 2e-3)
        cpp = mixtura.load(tmp_path / f"step{step}.mxt")
        assert cpp.n_steps_ == det.n_steps_ == step
        assert 8 <= np.sum(scores < det.offset_) < 40  # the faults, and what the drift makes look like them
        np.testing.assert_allclose(cpp.stream_recent_scores_, det.stream_recent_scores_, rtol=rtol)
        np.testing.assert_allclose([cpp.offset_, cpp.score_median_], [det.offset_, det.score_median_], rtol=rtol)
        for name in ["density_weights_", "density_means_", "density_precisions_cholesky_"]:
            np.testing.assert_allclose(getattr(cpp, name), getattr(det, name), rtol=rtol, atol=1e-12, err_msg=name)
        assert cpp.model_.n_steps_ == det.model_.n_steps_
    assert len(det.stream_recent_scores_) == 200  # max(200, half_life) of the 320 rows


def test_detector_file_with_a_bad_scale_is_refused(data):
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(data)
    s = det._to_sections()
    s["scale_"] = s["scale_"] * np.array([1, -1, 1, 1])
    with pytest.raises(ValueError, match=r"scale_\[1\] = -[0-9.e+-]+, expected in \[1e-150, 1e\+150\]"):
        mixtura.loads(_core.model_file_to_bytes("DensityAnomalyDetector", s))
    s = det._to_sections()
    s["method"] = "svm"
    with pytest.raises(ValueError, match="expected 'gmm' or 'kmeans'"):
        mixtura.loads(_core.model_file_to_bytes("DensityAnomalyDetector", s))


# ---- Issue 21: reliability (each test failed before its fix) --------------------------------------

def _raw_file(kind, n_sections, body):
    """A container by hand: header, kind, ``body`` as the sections, checksum."""
    head = b"MIXTURA\0" + struct.pack("<IIQII", 1, 0, 0, n_sections, len(kind)) + kind.encode()
    b = bytearray(head + body + b"\0\0\0\0")
    struct.pack_into("<Q", b, 16, len(b))
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))
    return bytes(b)


def _resealed(kind, sections):
    return _core.model_file_to_bytes(kind, sections)


def test_a_scalar_section_without_its_bytes_is_refused():
    # Read 8 bytes past the buffer; Python's message showed a size of 18446744073709551608 bytes.
    b = _raw_file("KMeans", 1, struct.pack("<I", 1) + b"x" + bytes([2, 0, 0, 0]))
    assert len(b) == 51
    with pytest.raises(ValueError, match=r"section 'x' declares shape \(\) of f64 \(8 bytes each\) but only 0 bytes "
                                         r"remain"):
        mixtura.loads(b)


def test_gmm_scoring_checks_the_arrays_against_covariance_type(data):
    # set_params changed covariance_type under fitted diag arrays: score_samples read out of bounds
    # and returned values that changed between calls.
    g = mixtura.GaussianMixture(1, covariance_type="diag").fit(data)
    g.set_params(covariance_type="full")
    with pytest.raises(ValueError, match=r"GaussianMixture: precisions_cholesky_ has shape \(1, 4\), expected "
                                         r"\(1, 4, 4\) for covariance_type 'full' with n_components = 1 and "
                                         r"n_features = 4"):
        g.score_samples(data)
    g = mixtura.GaussianMixture(2, covariance_type="spherical").fit(data)
    g.weights_ = g.weights_[:1]
    with pytest.raises(ValueError, match=r"weights_ has shape \(1,\), expected \(2,\) for n_components = 2"):
        g.predict(data)
    g = mixtura.GaussianMixture(2, covariance_type="spherical").fit(data)
    g.precisions_cholesky_ = -g.precisions_cholesky_
    with pytest.raises(ValueError, match=r"precisions_cholesky_ has entry -[0-9.e+-]+ at flat index 0"):
        g.sample(3)


def test_a_file_whose_params_name_another_covariance_type_is_refused(data):
    s = mixtura.GaussianMixture(2, covariance_type="diag", random_state=0).fit(data)._to_sections()
    s["params"] = s["params"].replace('"covariance_type": "diag"', '"covariance_type": "full"')
    with pytest.raises(ValueError, match=r"section 'params' gives covariance_type='full' but the fitted arrays are "
                                         r"for covariance_type='diag'"):
        mixtura.loads(_resealed("GaussianMixture", s))


@pytest.mark.parametrize("make, anchor", [(lambda: mixtura.KMeans(3, random_state=0), "cluster_centers_"),
                                          (lambda: mixtura.MiniBatchKMeans(3, random_state=0), "cluster_centers_"),
                                          (lambda: mixtura.GaussianMixture(3, random_state=0), "means_"),
                                          (lambda: mixtura.DensityAnomalyDetector(random_state=0), "offset_")])
def test_a_model_file_without_its_fitted_arrays_is_refused(data, make, anchor):
    est = make().fit(data)
    s = est._to_sections()
    del s[anchor]
    with pytest.raises(ValueError, match=f"the model file has no section '{anchor}'"):
        mixtura.loads(_resealed(est._model_kind, s))
    # An unfitted estimator still pickles (its file holds params only), but is no model file.
    unfitted = make()
    assert not hasattr(pickle.loads(pickle.dumps(unfitted)), anchor)
    with pytest.raises(ValueError, match="no section"):
        mixtura.loads(_io.dumps(unfitted, {}))


def test_a_kind_swapped_to_another_class_is_refused(data):
    s = mixtura.KMeans(3, random_state=0).fit(data)._to_sections()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the KMeans parameters are unknown to GaussianMixture
        with pytest.raises(ValueError, match="section 'cluster_centers_' is not one a GaussianMixture model has"):
            mixtura.loads(_resealed("GaussianMixture", s))
        with pytest.raises(ValueError, match="not one a DensityAnomalyDetector model has|no section"):
            mixtura.loads(_resealed("DensityAnomalyDetector", s))


def test_sections_of_another_estimator_are_refused(data):
    gm = mixtura.GaussianMixture(3, random_state=0).fit(data)
    s = gm._to_sections()
    s["cluster_centers_"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match="section 'cluster_centers_' is not one a GaussianMixture model has"):
        mixtura.loads(_resealed("GaussianMixture", s))
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(data)
    s = det._to_sections()
    s["model.labels_"] = np.zeros(3, dtype=np.int32)
    with pytest.raises(ValueError, match="section 'model.labels_' is not one a GaussianMixture model has"):
        mixtura.loads(_resealed("DensityAnomalyDetector", s))
    # The application's own namespaces stay allowed (the fixtures' test.X).
    s = gm._to_sections()
    s["myapp.notes"] = "kept out of the model"
    mixtura.loads(_resealed("GaussianMixture", s))


def test_deeply_nested_or_non_scalar_parameters_are_value_errors(data):
    km = mixtura.KMeans(3, random_state=0).fit(data)
    s = km._to_sections()
    s["params"] = "[" * 100000 + "]" * 100000  # RecursionError in json before
    with pytest.raises(ValueError, match="section 'params' nests JSON too deeply"):
        mixtura.loads(_resealed("KMeans", s))
    s = km._to_sections()
    s["params"] = s["params"].replace('"tol": 0.0001', '"tol": [[1]]')
    with pytest.raises(ValueError, match="parameter 'tol' is a JSON list"):
        mixtura.loads(_resealed("KMeans", s))
    s = km._to_sections()
    s["params"] = s["params"].replace('"tol": 0.0001', '"tol": 1e999')
    with pytest.raises(ValueError, match="parameter 'tol' = inf is not a usable number"):
        mixtura.loads(_resealed("KMeans", s))
    s = km._to_sections()
    s["params"] = s["params"].replace('"n_threads": 0', '"n_threads": 100000000000000000000')
    with pytest.raises(ValueError, match="parameter 'n_threads' = 100000000000000000000 is outside"):
        mixtura.loads(_resealed("KMeans", s))
    s = km._to_sections()
    s["feature_names_in_"] = "[" * 100000 + "]" * 100000
    with pytest.raises(ValueError, match="section 'feature_names_in_' nests JSON too deeply"):
        mixtura.loads(_resealed("KMeans", s))


def test_a_subnormal_scale_is_refused_at_load(data):
    # It loaded, then scoring failed with "X contains -inf" (x / scale_ overflowed).
    det = mixtura.DensityAnomalyDetector(random_state=0).fit(data)
    s = det._to_sections()
    s["scale_"] = s["scale_"] * np.array([1, 1e-310, 1, 1])
    with pytest.raises(ValueError, match=r"scale_\[1\] = [0-9.e+-]+, expected in \[1e-150, 1e\+150\]"):
        mixtura.loads(_resealed("DensityAnomalyDetector", s))


def test_only_regular_files_are_read(tmp_path):
    # A FIFO blocked both readers, /dev/zero was read until MemoryError, a directory gave
    # std::bad_alloc in C++.
    with pytest.raises(IsADirectoryError, match="not a regular file"):
        mixtura.load(tmp_path)
    with pytest.raises(OSError, match=r"is not a regular file \(a directory\)"):
        _core.model_file_read(str(tmp_path))
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.mxt"
        os.mkfifo(fifo)
        with pytest.raises(OSError, match=r"not a regular file \(a device, FIFO or socket\)"):
            mixtura.load(fifo)
        with pytest.raises(OSError, match=r"not a regular file \(a device, FIFO or socket\)"):
            _core.model_file_read(str(fifo))
    if os.path.exists("/dev/zero"):
        with pytest.raises(OSError, match="not a regular file"):
            mixtura.load("/dev/zero")
        with open("/dev/zero", "rb") as f:  # a file object: judged by its first 32 bytes
            with pytest.raises(ValueError, match="not a mixtura model file"):
                mixtura.load(f)


def test_a_large_file_is_judged_by_its_header_first(saved, tmp_path):
    sparse = tmp_path / "sparse.mxt"
    with open(sparse, "wb") as f:
        f.truncate(3 << 30)  # 3 GB of zeros, nothing written
    with pytest.raises(ValueError, match="not a mixtura model file"):
        mixtura.load(sparse)
    with pytest.raises(ValueError, match="not a mixtura model file"):
        _core.model_file_read(str(sparse))
    good = saved.read_bytes()
    with open(sparse, "wb") as f:
        f.write(good)
        f.truncate(3 << 30)
    with pytest.raises(ValueError, match=f"3221225472 bytes where the header declares {len(good)}: trailing data"):
        mixtura.load(sparse)
    # A file object whose header declares 2^62 bytes: only what is there is read.
    b = bytearray(good)
    struct.pack_into("<Q", b, 16, 1 << 62)
    with pytest.raises(ValueError, match="file truncated"):
        mixtura.load(io.BytesIO(bytes(b)))
    with pytest.raises(ValueError, match="trailing data"):
        mixtura.load(io.BytesIO(good + b"x"))
    assert isinstance(mixtura.load(io.BytesIO(good)), mixtura.GaussianMixture)


# ---- MiniBatchKMeans: the file carries the state partial_fit resumes from -------------------------

def assert_same_minibatch(a, b, X):
    """Same fitted state and record, and the same predictions, bit for bit."""
    assert type(b) is mixtura.MiniBatchKMeans
    assert a.cluster_centers_.dtype == b.cluster_centers_.dtype
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.counts_.dtype == b.counts_.dtype == np.float64
    np.testing.assert_array_equal(a.counts_, b.counts_)
    assert (a.n_steps_, a._n_since_last_reassign, a._seed, a.n_features_in_) == (
        b.n_steps_, b._n_since_last_reassign, b._seed, b.n_features_in_)
    for name in ("n_iter_", "inertia_", "labels_"):
        assert hasattr(a, name) == hasattr(b, name), name
        if hasattr(a, name):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.distortion_trace_, b.distortion_trace_)
    assert a.events_ == b.events_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    np.testing.assert_array_equal(a.transform(X), b.transform(X))


def _minibatch_chunks(X, w, starts):
    for a, b in zip(starts[:-1], starts[1:]):
        yield X[a:b], None if w is None else w[a:b]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("start", ["fit", "partial_fit"])
def test_minibatch_saved_and_loaded_resumes_bit_for_bit(data, dtype, weighted, start, tmp_path):
    X = data.astype(dtype)
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(X)) if weighted else None
    init = np.vstack([X[:3], np.full((1, 4), 1e3)]).astype(dtype)  # the fourth centre starves: reassigned
    # random_state=None: the seed drawn at the first call must travel in the file.
    km = mixtura.MiniBatchKMeans(4, init=init, batch_size=40, max_iter=2, reassignment_ratio=0.2)
    if start == "fit":
        km.fit(X, sample_weight=w)
        km.partial_fit(X[:50], sample_weight=None if w is None else w[:50])
    else:
        for c, cw in _minibatch_chunks(X, w, [0, 60, 120]):
            km.partial_fit(c, sample_weight=cw)
    assert km.events_ and len(km.distortion_trace_) == km.n_steps_
    km.save(tmp_path / "mb.mxt")
    copies = [mixtura.load(tmp_path / "mb.mxt"), pickle.loads(pickle.dumps(km))]
    for back in copies:
        assert back.get_params(deep=False).keys() == km.get_params(deep=False).keys()
        np.testing.assert_array_equal(back.init, init)
        assert_same_minibatch(km, back, X)
    # More chunks (one shorter than batch_size): every copy takes the steps the original takes.
    for c, cw in _minibatch_chunks(X, w, [120, 200, 230, 360]):
        for est in [km, *copies]:
            est.partial_fit(c, sample_weight=cw)
        for back in copies:
            assert back.n_steps_ == km.n_steps_
            np.testing.assert_array_equal(back.cluster_centers_, km.cluster_centers_)
            np.testing.assert_array_equal(back.counts_, km.counts_)
            np.testing.assert_array_equal(back.distortion_trace_, km.distortion_trace_)
            assert back.events_ == km.events_
    assert len(km.distortion_trace_) == km.n_steps_  # the record goes on; it does not restart


def test_minibatch_file_is_checked_as_strictly_as_kmeans(data):
    km = mixtura.MiniBatchKMeans(3, batch_size=50, random_state=0).fit(data)
    s = km._to_sections()
    assert s["distortion_trace_"].shape == (km.n_steps_, 2) and s["events_"].shape[1] == 3
    s["counts_"] = s["counts_"] * np.array([1, -1, 1])
    with pytest.raises(ValueError, match=r"MiniBatchKMeans model: counts_\[1\] = -[0-9.e+]+ must be finite and in "
                                         r"\[0, 1e\+150\]"):
        mixtura.loads(_resealed("MiniBatchKMeans", s))
    s = km._to_sections()
    s["n_steps_"] = _io.scalar(km.n_steps_ - 1, np.int64)
    with pytest.raises(ValueError, match=r"section 'distortion_trace_' has shape \(\d+, 2\), expected \(n, 2\) with "
                                         r"n <= n_steps_"):
        mixtura.loads(_resealed("MiniBatchKMeans", s))
    s = km._to_sections()
    s["events_"] = np.array([[0, 5, 0]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"event 0 \(step 0, cluster 5, row 0\) is out of range"):
        mixtura.loads(_resealed("MiniBatchKMeans", s))
    s = km._to_sections()
    s["converged_"] = _io.scalar(1, np.int32)
    with pytest.raises(ValueError, match="section 'converged_' is not one a MiniBatchKMeans model has"):
        mixtura.loads(_resealed("MiniBatchKMeans", s))
    s = km._to_sections()
    s["params"] = s["params"].replace('"n_clusters": 3', '"n_clusters": 4')
    with pytest.raises(ValueError, match="section 'params' gives n_clusters=4 but the fitted arrays are for "
                                         "n_clusters=3"):
        mixtura.loads(_resealed("MiniBatchKMeans", s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the parameters differ between the kinds
        with pytest.raises(ValueError, match="section 'counts_' is not one a KMeans model has"):
            mixtura.loads(_resealed("KMeans", km._to_sections()))
        with pytest.raises(ValueError, match="section 'converged_' is not one a MiniBatchKMeans model has"):
            mixtura.loads(_resealed("MiniBatchKMeans", mixtura.KMeans(3, random_state=0).fit(data)._to_sections()))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_minibatch_crosses_languages_both_ways(data, dtype, tmp_path):
    X = data.astype(dtype)
    csv = to_csv(tmp_path / "X.csv", X)
    w = np.random.default_rng(2).uniform(0.5, 1.5, 90)
    # Python -> C++: the same labels; resaved through a C++ MiniBatchKMeans, nothing fitted is lost.
    km = mixtura.MiniBatchKMeans(3, batch_size=64, reassignment_ratio=0.05).fit(X)  # a seed drawn at fit
    km.save(tmp_path / "py.mxt")
    assert run_tool("info", tmp_path / "py.mxt").split() == ["MiniBatchKMeans", dtype, "4"]
    run_tool("score", tmp_path / "py.mxt", csv, tmp_path / "out.csv")
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", ndmin=2)
    np.testing.assert_array_equal(out[:, 0], km.predict(X))
    np.testing.assert_allclose(out[:, 1:], km.transform(X), rtol=1e-6 if dtype == "float32" else 1e-12)
    run_tool("resave", tmp_path / "py.mxt", tmp_path / "again.mxt")
    again = mixtura.load(tmp_path / "again.mxt")
    assert again.get_params()["n_clusters"] == 3
    assert_same_minibatch(km, again, X)
    before = _core.model_file_from_bytes((tmp_path / "py.mxt").read_bytes())[1]
    after = _core.model_file_from_bytes((tmp_path / "again.mxt").read_bytes())[1]
    for name in before:
        if name != "params":
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)
    # Resuming in C++ a model saved in Python: the step Python takes (the same counters, labels and
    # events; the values to the rounding of the two builds, whose instruction sets differ: model_tool
    # is built for the baseline, the Python core for the machine; bit for bit within one build above).
    chunk = X[:90]
    run_tool("partial_fit", tmp_path / "py.mxt", to_csv(tmp_path / "chunk.csv", chunk), tmp_path / "step.mxt",
             "--weights", to_csv(tmp_path / "w.csv", w), "--batch-size", 64, "--reassignment-ratio", 0.05)
    km.partial_fit(chunk, sample_weight=w)
    stepped = mixtura.load(tmp_path / "step.mxt")
    rtol = 1e-6 if dtype == "float32" else 1e-12
    for name in ("cluster_centers_", "counts_", "distortion_trace_"):
        np.testing.assert_allclose(getattr(stepped, name), getattr(km, name), rtol=rtol, err_msg=name)
    np.testing.assert_array_equal(stepped.labels_, km.labels_)
    assert (stepped.n_steps_, stepped._n_since_last_reassign, stepped._seed, stepped.events_) == (
        km.n_steps_, km._n_since_last_reassign, km._seed, km.events_)
    # C++ -> Python: the C++ fit loads with its centres bit for bit and predicts alike.
    run_tool("fit", "minibatch", csv, tmp_path / "cpp.mxt", "--k", 3, "--seed", 9, "--batch-size", 50, "--dtype", dtype,
             "--with-test-data")
    run_tool("score", tmp_path / "cpp.mxt", csv, tmp_path / "out2.csv")
    out = np.loadtxt(tmp_path / "out2.csv", delimiter=",", ndmin=2)
    est = mixtura.load(tmp_path / "cpp.mxt")
    assert type(est) is mixtura.MiniBatchKMeans and est.cluster_centers_.dtype == np.dtype(dtype)
    assert est.get_params()["random_state"] == 9 and est._seed == 9 and est.batch_size == 50
    assert len(est.distortion_trace_) == est.n_steps_ and len(est.labels_) == len(X)
    np.testing.assert_array_equal(est.predict(X), out[:, 0])
    original = _core.model_file_from_bytes((tmp_path / "cpp.mxt").read_bytes())[1]
    np.testing.assert_array_equal(est.predict(X), original["test.labels"])
    np.testing.assert_allclose(est.transform(X), out[:, 1:], rtol=1e-6 if dtype == "float32" else 1e-12)
    # The same fit in Python, to the rounding of the two builds.
    py = mixtura.MiniBatchKMeans(3, random_state=9, batch_size=50).fit(X)
    assert py.n_steps_ == est.n_steps_
    np.testing.assert_allclose(py.cluster_centers_, est.cluster_centers_, rtol=1e-5 if dtype == "float32" else 1e-10)
    # Python keeps what only C++ records (per-step centre shifts and seconds) and writes it back.
    written = _core.model_file_from_bytes(_io.dumps(est))[1]
    assert set(written) == {name for name in original if not name.startswith("test.")}
    for name in written:
        if name != "params":
            np.testing.assert_array_equal(written[name], original[name], err_msg=name)


@pytest.mark.parametrize("seed", [2**31, 2**40, 2**64 - 1])
def test_a_64_bit_random_state_survives_the_file(data, seed, tmp_path):
    # random_state is the 64-bit key of the counter-based generator: a file holds all of it (the limit of
    # an int parameter, 2**31 - 1, refused these on load).
    for est in (mixtura.KMeans(3, random_state=seed), mixtura.GaussianMixture(2, random_state=seed),
                mixtura.DensityAnomalyDetector(max_components=2, random_state=seed)):
        est.fit(data)
        est.save(tmp_path / "m.mxt")
        back = mixtura.load(tmp_path / "m.mxt")
        assert back.get_params()["random_state"] == seed
    s = mixtura.KMeans(3, random_state=0).fit(data)._to_sections()
    s["params"] = s["params"].replace('"random_state": 0', f'"random_state": {2**64}')
    with pytest.raises(ValueError, match=r"parameter 'random_state' = 18446744073709551616 is outside \[0, "):
        mixtura.loads(_core.model_file_to_bytes("KMeans", s))
    s["params"] = s["params"].replace(f'"random_state": {2**64}', '"random_state": -1')
    with pytest.raises(ValueError, match=r"parameter 'random_state' = -1 is outside \[0, "):
        mixtura.loads(_core.model_file_to_bytes("KMeans", s))
