"""mixtura.loads on mutated valid model files (hypothesis): every input either loads a model that
scores finitely and saves again, or raises ValueError; never another exception, a crash or a hang.

The seeds are tests/fuzz/corpus (the libFuzzer target's, tests/fuzz.sh). Each example applies a
few mutations (bit flips, bytes, interesting 64-bit integers and doubles at any offset, inserted
and deleted bytes), then makes the size field and the checksum right again, as a hostile writer
would, so that the mutations reach the sections and the loaders rather than stop at the CRC.
Deterministic (derandomized) by default; MIXTURA_FUZZ_EXAMPLES sets the count (default 300) and
MIXTURA_FUZZ_RANDOM=1 draws new examples on each run.
"""
import datetime
import io
import os
import pathlib
import pickle
import struct
import warnings
import zlib

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

import mixtura  # noqa: E402
from mixtura import _io  # noqa: E402

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "fuzz" / "corpus"
SEEDS = [p.read_bytes() for p in sorted(CORPUS.glob("*.mxt")) if p.stat().st_size > 100]

_U64 = [0, 1, 2, 7, 8, 255, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63, 2**64 - 1]
_F64 = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1.0, 1e-310, 5e-324, 1e-150, 1e150, 1e300,
        2.0**1023, 1.0 + 2**-52]
_POS = st.integers(0, 1 << 16)
_INTS = [0, 1, -1, 2, 3, 5, 2**31 - 1, -2**31, 2**62, -2**63]


def payloads(data):
    """(offset, format) of every numeric element of a valid file: the container walked as
    docs/model-format.md lays it out, so that mutations can hit values as well as structure."""
    out = []
    n_sections, kind_len = struct.unpack_from("<II", data, 24)
    pos = 32 + kind_len
    for _ in range(n_sections):
        (name_len,) = struct.unpack_from("<I", data, pos)
        pos += 4 + name_len
        dtype, ndim = data[pos], data[pos + 1]
        pos += 4
        shape = struct.unpack_from(f"<{ndim}Q", data, pos)
        pos += 8 * ndim
        fmt, size = {1: ("<f", 4), 2: ("<d", 8), 3: ("<i", 4), 4: ("<q", 8), 5: (None, 1)}[dtype]
        count = int(np.prod(shape, dtype=np.int64))
        if fmt:
            out += [(pos + i * size, fmt) for i in range(count)]
        pos += count * size
    return out
_MUTATION = st.one_of(
    st.tuples(st.just("flip"), _POS, st.integers(0, 7)),
    st.tuples(st.just("byte"), _POS, st.integers(0, 255)),
    st.tuples(st.just("u64"), _POS, st.sampled_from(_U64)),
    st.tuples(st.just("u32"), _POS, st.sampled_from([v for v in _U64 if v < 2**32])),
    st.tuples(st.just("f64"), _POS, st.sampled_from(_F64)),
    st.tuples(st.just("insert"), _POS, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), _POS, st.integers(1, 16)),
    st.tuples(st.just("value"), _POS, st.sampled_from(_F64 + _INTS)),
    st.tuples(st.just("value"), _POS, st.sampled_from(_F64 + _INTS)),  # twice: values are most of a model
)


def mutate(seed, mutations):
    b = bytearray(seed)
    values = payloads(seed)
    for kind, pos, arg in mutations:
        at = pos % max(len(b), 1)
        if kind == "flip" and b:
            b[at] ^= 1 << arg
        elif kind == "byte" and b:
            b[at] = arg
        elif kind in ("u64", "u32", "f64"):
            fmt = {"u64": "<Q", "u32": "<I", "f64": "<d"}[kind]
            n = struct.calcsize(fmt)
            if len(b) >= n:
                struct.pack_into(fmt, b, min(at, len(b) - n), arg)
        elif kind == "value" and values and len(b) == len(seed):  # an element of a numeric section
            at, fmt = values[pos % len(values)]
            if fmt in ("<f", "<d"):
                with np.errstate(over="ignore"):  # 1e300 as float32 is inf, which is what we want
                    b[at:at + struct.calcsize(fmt)] = np.array(arg, dtype={"<f": "<f4", "<d": "<f8"}[fmt]).tobytes()
            else:
                bits = 8 * struct.calcsize(fmt)
                v = int(arg) if np.isfinite(arg) else 0
                struct.pack_into(fmt, b, at, (v + 2**(bits - 1)) % 2**bits - 2**(bits - 1))  # wrapped to fit
        elif kind == "insert":
            b[at:at] = arg
        elif kind == "delete":
            del b[at:at + arg]
    if len(b) >= 36:  # size field and checksum made right again
        struct.pack_into("<Q", b, 16, len(b))
        struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))
    return bytes(b)


def probe(n_features, dtype=np.float64):
    return (np.sin(0.7 * np.arange(5 * n_features)) * 3).reshape(5, n_features).astype(dtype)


def check_scores(est):
    """A loaded model scores a small probe finitely and in range."""
    X = probe(est.n_features_in_)
    if isinstance(est, (mixtura.KMeans, mixtura.MiniBatchKMeans)):
        X = X.astype(est.cluster_centers_.dtype)
        labels = est.predict(X)
        assert labels.min() >= 0 and labels.max() < est.cluster_centers_.shape[0]
        assert np.all(np.isfinite(est.transform(X)))
        assert np.isfinite(est.score(X))
        if isinstance(est, mixtura.MiniBatchKMeans):  # a step from the loaded state, on a copy
            step = pickle.loads(pickle.dumps(est)).partial_fit(X)
            assert np.all(np.isfinite(step.cluster_centers_)) and np.all(np.isfinite(step.counts_))
    elif isinstance(est, mixtura.GaussianMixture):
        assert np.all(np.isfinite(est.score_samples(X)))
        p = est.predict_proba(X)
        assert np.all(np.isfinite(p)) and np.allclose(p.sum(axis=1), 1)
    else:
        if isinstance(getattr(est, "model_", None), mixtura.KMeans):
            X = X.astype(est.model_.cluster_centers_.dtype)
        assert np.all(np.isfinite(est.score_samples(X)))
        assert set(np.unique(est.predict(X))) <= {-1, 1}


@pytest.mark.skipif(not SEEDS, reason="no seed corpus (tests/fuzz/corpus)")
@settings(max_examples=int(os.environ.get("MIXTURA_FUZZ_EXAMPLES", "300")),
          derandomize=os.environ.get("MIXTURA_FUZZ_RANDOM") != "1", database=None,
          deadline=datetime.timedelta(seconds=10),  # a hang shows as a deadline error
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(_MUTATION, min_size=1, max_size=4))
def test_mutated_model_files_load_and_score_or_raise_value_error(seed, mutations):
    data = mutate(seed, mutations)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unknown parameters, few calibration rows: warnings, not errors
        try:
            est = mixtura.loads(data)
        except ValueError:
            return
        check_scores(est)
        # What loaded saves and loads again, through a file object and through pickle.
        f = io.BytesIO()
        est.save(f)
        check_scores(mixtura.load(io.BytesIO(f.getvalue())))
        check_scores(pickle.loads(pickle.dumps(est)))


def test_the_seeds_themselves_load_and_score():
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_scores(mixtura.loads(seed))
