"""Writes the fuzzers' seed corpus (tests/fuzz/corpus): one small valid model file of each kind and
dtype, and the container reproducers of issue 21. Run from the repository root with the package
importable: python tests/fuzz/make_corpus.py. The files are committed; rerun only to refresh them."""
import pathlib
import struct
import warnings
import zlib

import numpy as np

import mixtura

OUT = pathlib.Path(__file__).resolve().parent / "corpus"


def main():
    OUT.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    X = np.vstack([rng.standard_normal((6, 2)), rng.standard_normal((6, 2)) + 4])  # 12 rows, 2 blobs
    for dtype in (np.float32, np.float64):
        km = mixtura.KMeans(2, n_init=1, max_iter=3, random_state=0).fit(X.astype(dtype))
        km.save(OUT / f"kmeans_{np.dtype(dtype).name}.mxt")
        mb = mixtura.MiniBatchKMeans(2, batch_size=4, max_iter=2, random_state=0).fit(X.astype(dtype))
        mb.save(OUT / f"minibatch_kmeans_{np.dtype(dtype).name}.mxt")
    for cov in ("full", "tied", "diag", "spherical"):
        gm = mixtura.GaussianMixture(2, covariance_type=cov, max_iter=3, random_state=0).fit(X)
        gm.save(OUT / f"gmm_{cov}.mxt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few calibration rows: fine for a seed
        Xd = np.vstack([X, X + 0.1, X - 0.1])
        for method in ("gmm", "kmeans"):
            det = mixtura.DensityAnomalyDetector(method=method, n_components=2, max_iter=3, random_state=0).fit(Xd)
            det.save(OUT / f"detector_{method}.mxt")
        # A streaming detector: its own and its mixture's stream_* sections (partial_fit's state).
        det = mixtura.DensityAnomalyDetector(n_components=2, max_iter=3, random_state=0, half_life=20.0).fit(Xd)
        det.partial_fit(Xd[:12] + 0.2)
        det.save(OUT / "detector_gmm_stream.mxt")
    # Issue 21: a float64 scalar section with no payload (read 8 bytes past the buffer).
    body = struct.pack("<I", 1) + b"x" + bytes([2, 0, 0, 0])
    head = b"MIXTURA\0" + struct.pack("<IIQII", 1, 0, 0, 1, 6) + b"KMeans"
    b = bytearray(head + body + b"\0\0\0\0")
    struct.pack_into("<Q", b, 16, len(b))
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])))
    (OUT / "scalar_without_payload.mxt").write_bytes(bytes(b))


if __name__ == "__main__":
    main()
