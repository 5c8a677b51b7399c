#!/usr/bin/env python3
"""Side-by-side: mixtura.MiniBatchKMeans vs sklearn.cluster.MiniBatchKMeans, in one process.

Same data (Gaussian clusters of unequal sizes and scales), same n_clusters and batch_size, both with
their defaults otherwise (k-means++ on 3 * batch_size rows, max_iter = 100, max_no_improvement = 10,
reassignment_ratio = 0.01, compute_labels = True), the same random_state, alternating run by run.
Reports per shape the median fit time of each, the speed-up (ratio of medians, ratio of the fastest
runs, and the quartiles of the run-by-run ratios; on a shared machine noise only adds time, so the
fastest runs are the steadiest figure), the median steps each took, and the final inertia of each (exact, computed the same
way for both from their centres) with the ratio of medians (ours / theirs; < 1 is better).

    PYTHONPATH=python python3 bench/compare_minibatch.py --seeds 5 [--threads 2] [--quick]
"""
import argparse
import statistics
import time

import numpy as np
import sklearn
import sklearn.cluster
from threadpoolctl import threadpool_limits

import mixtura

SHAPES = [  # n_samples, n_features, n_clusters, batch_size, dtype
    (100_000, 16, 16, 1024, np.float32),
    (200_000, 8, 32, 1024, np.float64),
    (500_000, 4, 8, 4096, np.float32),
]
QUICK = [(20_000, 8, 10, 256, np.float64)]


def gaussian_clusters(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, (k, d))
    labels = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    scales = rng.uniform(0.5, 2.0, k)
    return centres[labels] + rng.standard_normal((n, d)) * scales[labels, None]


def inertia(X, centres, chunk=65_536):
    """Exact inertia in float64 (nearest centre by direct distances), the same for both libraries."""
    c = np.asarray(centres, dtype=np.float64)
    total = 0.0
    for b in range(0, len(X), chunk):
        x = np.asarray(X[b:b + chunk], dtype=np.float64)
        total += float((((x[:, None, :] - c[None]) ** 2).sum(axis=2)).min(axis=1).sum())
    return total


def timed(est, X):
    t = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t, est


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5, help="runs per shape (random_state 0 .. seeds-1)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one small shape (a smoke test)")
    args = ap.parse_args()
    print(f"scikit-learn {sklearn.__version__}, mixtura {mixtura.__version__} ({mixtura.build_info()['isa']}), "
          f"{args.threads} threads, {args.seeds} seeds")
    print("| shape (dtype), K, batch | sklearn s | mixtura s | speed-up: medians, fastest (quartiles) "
          "| steps sklearn / mixtura | inertia sklearn | inertia mixtura | ours / theirs |")
    print("|---|---|---|---|---|---|---|---|")
    with threadpool_limits(args.threads):
        for n, d, k, batch, dtype in QUICK if args.quick else SHAPES:
            X = gaussian_clusters(n, d, k, seed=1).astype(dtype)
            t_s, t_m, j_s, j_m, st_s, st_m = [], [], [], [], [], []
            for seed in range(args.seeds):
                ts, s = timed(sklearn.cluster.MiniBatchKMeans(k, batch_size=batch, random_state=seed, n_init="auto"), X)
                tm, m = timed(mixtura.MiniBatchKMeans(k, batch_size=batch, random_state=seed, n_threads=args.threads), X)
                t_s.append(ts)
                t_m.append(tm)
                st_s.append(s.n_steps_)
                st_m.append(m.n_steps_)
                j_s.append(inertia(X, s.cluster_centers_))
                j_m.append(inertia(X, m.cluster_centers_))
            paired = sorted(a / b for a, b in zip(t_s, t_m))
            q1, _, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else (paired[0],) * 3
            ms, mm = statistics.median(t_s), statistics.median(t_m)
            js, jm = statistics.median(j_s), statistics.median(j_m)
            print(f"| {n:,} x {d} ({np.dtype(dtype).name}), K={k}, {batch} | {ms:.3f} | {mm:.3f} | "
                  f"**{ms / mm:.1f}x**, {min(t_s) / min(t_m):.1f}x ({q1:.1f}-{q3:.1f}) | {statistics.median(st_s):.0f} / {statistics.median(st_m):.0f} "
                  f"| {js:.6g} | {jm:.6g} | {jm / js:.4f} |", flush=True)


if __name__ == "__main__":
    main()
