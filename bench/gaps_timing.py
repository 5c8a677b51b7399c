#!/usr/bin/env python3
"""What gaps cost: the time of a GaussianMixture EM iteration on data with missing values (NaN) against
the same data complete, side by side in one run (medians of `--repeats` alternating rounds).

    PYTHONPATH=python python3 bench/gaps_timing.py [--n 200000] [--d 16] [--k 8] [--repeats 3]

Settings: complete; 5 % and 20 % of the values missing at random (almost every row its own pattern);
one channel missing in a stretch of 20 % of the rows (one pattern, long runs). Each fit runs max_iter
iterations from the same caller-given start (tol = 0), so the times compare the same work.
"""
import argparse
import time
import warnings

import numpy as np

import mixtura


def data(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    mix = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) @ mix
    return X, centres


def with_gaps(X, setting, seed=1):
    rng = np.random.default_rng(seed)
    X = X.copy()
    n, d = X.shape
    if setting.startswith("random"):
        gone = rng.random(X.shape) < float(setting[len("random"):]) / 100
    else:  # one channel out for a stretch of 20 % of the rows
        gone = np.zeros(X.shape, dtype=bool)
        gone[n // 3: n // 3 + n // 5, 1] = True
    gone[gone.all(axis=1), 0] = False
    X[gone] = np.nan
    return X


def per_iteration(X, centres, covariance_type, iterations):
    gm = mixtura.GaussianMixture(len(centres), covariance_type=covariance_type, means_init=centres,
                                 max_iter=iterations, tol=0.0, random_state=0)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    return (time.perf_counter() - t) / iterations


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    X, centres = data(a.n, a.d, a.k)
    settings = ["complete", "random5", "random20", "channel"]
    inputs = {s: X if s == "complete" else with_gaps(X, s) for s in settings}
    print(f"mixtura {mixtura.__version__}, ISA {mixtura.build_info()['isa']}, n={a.n} d={a.d} K={a.k}, "
          f"{a.iterations} iterations, median of {a.repeats}")
    print("| covariance | " + " | ".join(settings) + " |")
    print("|---|" + "---|" * len(settings))
    for cov in ["full", "diag"]:
        times = {s: [] for s in settings}
        for _ in range(a.repeats):  # alternating rounds: drift of the machine hits every setting alike
            for s in settings:
                times[s].append(per_iteration(inputs[s], centres, cov, a.iterations))
        base = np.median(times["complete"])
        cells = [f"{1e3 * base:.1f} ms"] + [f"{1e3 * np.median(times[s]):.1f} ms ({np.median(times[s]) / base:.1f}x)"
                                            for s in settings[1:]]
        print(f"| {cov} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
