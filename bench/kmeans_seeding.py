#!/usr/bin/env python3
"""Time of a k-means++ start, side by side: mixtura.KMeans and scikit-learn's KMeans with n_init=1,
max_iter=1 (greedy k-means++ with 2 + ln K local trials, then one Lloyd iteration, the same work in
both), float32 N(0, I) data, the best of --repeat fits per round, rounds alternating. With
--against DIR, the mixtura package in DIR (another build or an older commit's python/ folder) runs
the same fits in a subprocess, alternating with this one's, so that a change's cost is measured on
the same machine at the same time.

    PYTHONPATH=python python3 bench/kmeans_seeding.py [--rounds 2] [--repeat 3] [--threads 2] [--against DIR]
"""
import argparse
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np

SHAPES = [(1_000_000, 8, 16), (200_000, 32, 64), (100_000, 64, 1024)]


def best_time(make, X, repeat):
    best = float("inf")
    for r in range(repeat):
        est = make(r)
        t = time.perf_counter()
        est.fit(X)
        best = min(best, time.perf_counter() - t)
    return best


def mixtura_times(repeat, threads):
    import mixtura
    out = {}
    for n, d, k in SHAPES:
        X = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
        make = lambda r: mixtura.KMeans(k, n_init=1, max_iter=1, random_state=r, n_threads=threads)  # noqa: E731
        out[f"{n}x{d},K={k}"] = best_time(make, X, repeat)
    return out


def sklearn_times(repeat, threads):
    import sklearn.cluster
    from threadpoolctl import threadpool_limits
    out = {}
    with threadpool_limits(threads):
        for n, d, k in SHAPES:
            X = np.random.default_rng(0).standard_normal((n, d)).astype(np.float32)
            make = lambda r: sklearn.cluster.KMeans(k, n_init=1, max_iter=1, random_state=r)  # noqa: E731
            out[f"{n}x{d},K={k}"] = best_time(make, X, repeat)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--against", help="a folder holding another mixtura package (its python/ folder)")
    ap.add_argument("--mixtura-only", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    if a.mixtura_only:
        print(json.dumps(mixtura_times(a.repeat, a.threads)))
        return
    rows = {}
    for _ in range(a.rounds):
        cols = {"mixtura": mixtura_times(a.repeat, a.threads), "scikit-learn": sklearn_times(a.repeat, a.threads)}
        if a.against:
            env = dict(os.environ, PYTHONPATH=a.against)
            res = subprocess.run([sys.executable, __file__, "--mixtura-only", "--repeat", str(a.repeat),
                                  "--threads", str(a.threads)], env=env, capture_output=True, text=True, check=True)
            cols["against"] = json.loads(res.stdout.strip().splitlines()[-1])
        for name, times in cols.items():
            for shape, t in times.items():
                rows.setdefault(shape, {}).setdefault(name, []).append(t)
    names = ["mixtura", "scikit-learn"] + (["against"] if a.against else [])
    print("| shape (float32) | " + " | ".join(f"{n} (s)" for n in names) + " | scikit-learn / mixtura |"
          + (" mixtura / against |" if a.against else ""))
    print("|---" * (len(names) + 2 + bool(a.against)) + "|")
    for shape, c in rows.items():
        span = lambda v: f"{min(v):.3f}–{max(v):.3f}"  # noqa: E731
        line = f"| {shape} | " + " | ".join(span(c[n]) for n in names)
        line += f" | {min(c['scikit-learn']) / min(c['mixtura']):.2f}× |"
        if a.against:
            line += f" {min(c['mixtura']) / min(c['against']):.2f} |"
        print(line)


if __name__ == "__main__":
    main()
