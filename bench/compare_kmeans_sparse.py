#!/usr/bin/env python3
"""KMeans on sparse (CSR) input, side by side in one process: mixtura against scikit-learn (its lloyd
and elkan), from the same initial centres, and with each library's own k-means++.

Data: documents as tf-idf-like rows (the realistic sparse shape): n_samples rows over n_features terms,
about density * n_features stored values per row, K topics that each favour their own terms, values
log(1 + count) scaled by an idf and each row scaled to unit length; float32 or float64.

Columns: time to converge from the same initial centres (the first K rows of a random permutation,
tol=1e-4, n_init=1) with each library's iterations (mixtura's default "auto" takes Hamerly's bounds here,
"lloyd" searches every row; the two give the same bits); the time per iteration (the same start, tol=0,
max_iter=10); MiniBatchKMeans (batch_size=1024, seed 0, defaults otherwise) with its steps and final
inertia; a default fit (k-means++, n_init=1, seed 0) with its inertia. Rounds alternate the
libraries; medians of --rounds.

    PYTHONPATH=python python3 bench/compare_kmeans_sparse.py [--rounds 3] [--threads 2] [--quick]
"""
import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
import sklearn
import sklearn.cluster
from threadpoolctl import threadpool_limits

import mixtura

SHAPES = [(100_000, 10_000, 0.01, 100)]  # n_samples, n_features, density, n_clusters
QUICK = [(5_000, 2_000, 0.01, 10)]


def documents(n, d, density, k, seed, dtype):
    """n tf-idf-like rows (CSR, unit length) drawn from k topics over d terms."""
    rng = np.random.default_rng(seed)
    per_row = max(1, int(round(1.7 * density * d)))  # draws; repeated terms merge (counts): ~density stored
    topic = rng.integers(0, k, n)
    base = 1.0 / np.arange(1, d + 1) ** 0.8  # Zipf-like term frequencies
    favoured = rng.permuted(np.tile(np.arange(d), (k, 1)), axis=1)[:, : max(1, d // (4 * k))]
    rows, cols = [], []
    for t in range(k):  # each topic: half of its terms from its favoured ones, the rest from the corpus
        members = np.flatnonzero(topic == t)
        if not len(members):
            continue
        p = base / base.sum()
        own = rng.choice(favoured[t], (len(members), per_row // 2))
        common = rng.choice(d, (len(members), per_row - per_row // 2), p=p)
        rows.append(np.repeat(members, per_row))
        cols.append(np.concatenate([own, common], axis=1).ravel())
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    X = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, d))  # duplicates summed: counts
    X.data = np.log1p(X.data)
    df = np.bincount(X.indices, minlength=d)
    X = X @ sp.diags(np.log((1 + n) / (1 + df)) + 1.0)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.diags(1.0 / np.maximum(norms, 1e-12)) @ X
    X = sp.csr_matrix(X, dtype=dtype)
    X.sort_indices()
    return X


def timed(make, X):
    est = make()
    t = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t, est


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--quick", action="store_true", help="one small shape (a smoke run)")
    args = ap.parse_args()
    dtype = np.dtype(args.dtype)
    print(f"scikit-learn {sklearn.__version__}, mixtura {mixtura.__version__} ({mixtura.build_info()['isa']}), "
          f"{args.threads} threads, median of {args.rounds} alternating rounds, {dtype}")
    for n, d, density, k in (QUICK if args.quick else SHAPES):
        X = documents(n, d, density, k, seed=0, dtype=dtype)
        init = X[np.random.default_rng(1).permutation(n)[:k]].toarray()
        print(f"\n{n} x {d}, {X.nnz} stored values ({X.nnz / n / d:.2%}), K={k}")
        makers = {
            "converge": {
                "mixtura": lambda: mixtura.KMeans(k, init=init, n_init=1, tol=1e-4, n_threads=args.threads),
                "mixtura lloyd": lambda: mixtura.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="lloyd",
                                                        n_threads=args.threads),
                "scikit-learn lloyd": lambda: sklearn.cluster.KMeans(k, init=init, n_init=1, tol=1e-4,
                                                                     algorithm="lloyd"),
                "scikit-learn elkan": lambda: sklearn.cluster.KMeans(k, init=init, n_init=1, tol=1e-4,
                                                                     algorithm="elkan"),
            },
            "10 iterations": {
                "mixtura": lambda: mixtura.KMeans(k, init=init, n_init=1, tol=0, max_iter=10, n_threads=args.threads),
                "scikit-learn lloyd": lambda: sklearn.cluster.KMeans(k, init=init, n_init=1, tol=0, max_iter=10,
                                                                     algorithm="lloyd"),
            },
            "MiniBatchKMeans (batch_size=1024, seed 0)": {
                "mixtura": lambda: mixtura.MiniBatchKMeans(k, batch_size=1024, random_state=0, n_threads=args.threads),
                "scikit-learn": lambda: sklearn.cluster.MiniBatchKMeans(k, batch_size=1024, random_state=0),
            },
            "k-means++": {
                "mixtura": lambda: mixtura.KMeans(k, n_init=1, random_state=0, n_threads=args.threads),
                "scikit-learn lloyd": lambda: sklearn.cluster.KMeans(k, n_init=1, random_state=0, algorithm="lloyd"),
            },
        }
        with threadpool_limits(args.threads), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter=10
            timed(makers["10 iterations"]["mixtura"], X[:2000])  # first-call costs out of the timings
            timed(makers["10 iterations"]["scikit-learn lloyd"], X[:2000])
            for case, group in makers.items():
                times = {name: [] for name in group}
                last = {}
                for _ in range(args.rounds):
                    for name, make in group.items():
                        t, est = timed(make, X)
                        times[name].append(t)
                        last[name] = est
                ours = statistics.median(times["mixtura"])
                best_other = min(statistics.median(v) for name, v in times.items() if name.startswith("scikit"))
                print(f"  {case}:")
                for name in group:
                    est = last[name]
                    steps = f"{est.n_steps_} steps" if hasattr(est, "n_steps_") else f"{est.n_iter_} it"
                    print(f"    {name:20s} {statistics.median(times[name]):8.3f} s  ({steps}, inertia {est.inertia_:.6g})")
                print(f"    speed-up of mixtura (default, algorithm='auto') against the best of scikit-learn: "
                      f"{best_other / ours:.2f}x")
                if case == "converge":
                    same = np.array_equal(last["mixtura"].labels_, last["scikit-learn lloyd"].labels_)
                    print(f"    labels equal to scikit-learn lloyd's: {same}")


if __name__ == "__main__":
    main()
