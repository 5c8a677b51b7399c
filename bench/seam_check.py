"""Times of the estimators' main calls, to compare two builds side by side (the seam refactor's check).

    python bench/seam_check.py LABEL     # prints the best of several runs of each call, in ms

Run it alternately with two installs (e.g. a venv of the old commit and PYTHONPATH=python with the
new cores copied in) and compare the lines; the machine's noise is the spread between repeated pairs.
"""
import sys
import time
import warnings

import numpy as np

import mixtura


def best(f, n=5):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t)
    return min(ts) * 1e3


def main(label):
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X32 = rng.standard_normal((1_000_000, 16)).astype(np.float32)
    km = mixtura.KMeans(64, random_state=0, max_iter=5).fit(X32[:100_000])
    X = rng.standard_normal((200_000, 16))
    g = mixtura.GaussianMixture(8, random_state=0, max_iter=20, tol=0).fit(X)
    r = {"kmeans_score": best(lambda: km.score(X32)),
         "kmeans_predict": best(lambda: km.predict(X32)),
         "kmeans_transform": best(lambda: km.transform(X32)),
         "kmeans_fit": best(lambda: mixtura.KMeans(32, random_state=0, max_iter=30, tol=0).fit(X), 3),
         "gmm_fit": best(lambda: mixtura.GaussianMixture(8, random_state=0, max_iter=20, tol=0).fit(X), 3),
         "gmm_score_samples": best(lambda: g.score_samples(X)),
         "detector_fit": best(lambda: mixtura.DensityAnomalyDetector(max_components=3, random_state=0).fit(X[:50_000]), 2)}
    print(label, " ".join(f"{k} {v:.1f}" for k, v in r.items()))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
