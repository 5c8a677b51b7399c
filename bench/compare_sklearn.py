#!/usr/bin/env python3
"""Side-by-side K-means timing: mixtura vs scikit-learn, same data, same initial centres.

Both run Lloyd's algorithm with tol = 0 from the same initial centres, on the same number of
threads, alternating run by run. The time per iteration is (t(M_hi) - t(M_lo)) / (M_hi - M_lo)
for whole fits of M_hi and M_lo iterations, which removes the fixed costs (input checks, copies,
the final assignment) from both sides alike. The script also checks that both libraries ran the
same number of iterations and reached the same inertia.

    python3 bench/compare_sklearn.py --timing-bin build/bench/kmeans_timing --threads 2 --runs 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info, threadpool_limits

SHAPES = [(200_000, 32, 64), (1_000_000, 8, 16)]


def ours(binary, xfile, cfile, n, d, k, iters, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [binary, "--data", xfile, "--centers", cfile, "--n", str(n), "--d", str(d), "--k", str(k),
         "--dtype", "f32", "--max-iter", str(iters), "--threads", str(threads)],
        check=True, capture_output=True, text=True, env=env).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["fit_seconds"], r["n_iter"], r["inertia"], r["iter_seconds"]


def theirs(x, c, iters):
    km = KMeans(n_clusters=c.shape[0], init=c, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd")
    t = time.perf_counter()
    km.fit(x)
    return time.perf_counter() - t, km.n_iter_, km.inertia_


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timing-bin", required=True, help="path to the built bench/kmeans_timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--lo", type=int, default=2, help="iterations of the short fit")
    ap.add_argument("--hi", type=int, default=12, help="iterations of the long fit")
    args = ap.parse_args()

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, BLAS: "
          + ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in blas))
    print(f"threads: {args.threads} each; {args.runs} alternating runs; per-iteration time = "
          f"(t({args.hi} it) - t({args.lo} it)) / {args.hi - args.lo}\n")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=args.threads):
        for n, d, k in SHAPES:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, d)).astype(np.float32)
            c = x[rng.choice(n, k, replace=False)].copy()
            xfile, cfile = os.path.join(tmp, "x.bin"), os.path.join(tmp, "c.bin")
            x.tofile(xfile)
            c.tofile(cfile)
            per_iter = {"mixtura": [], "sklearn": []}
            trace_median = []
            for _ in range(args.runs):
                lo_o, _, _, _ = ours(args.timing_bin, xfile, cfile, n, d, k, args.lo, args.threads)
                hi_o, it_o, inertia_o, trace = ours(args.timing_bin, xfile, cfile, n, d, k, args.hi, args.threads)
                lo_s, _, _ = theirs(x, c, args.lo)
                hi_s, it_s, inertia_s = theirs(x, c, args.hi)
                per_iter["mixtura"].append((hi_o - lo_o) / (args.hi - args.lo))
                per_iter["sklearn"].append((hi_s - lo_s) / (args.hi - args.lo))
                trace_median.append(statistics.median(trace))
            if it_o != args.hi or it_s != args.hi:
                sys.exit(f"{n}x{d} K={k}: a fit converged early (mixtura {it_o}, sklearn {it_s} iterations)")
            m = statistics.median(per_iter["mixtura"])
            s = statistics.median(per_iter["sklearn"])
            rows.append((n, d, k, s * 1e3, m * 1e3, statistics.median(trace_median) * 1e3, s / m,
                         abs(inertia_o - inertia_s) / inertia_s))
            print(f"{n}x{d} K={k}: sklearn {[round(v * 1e3, 2) for v in per_iter['sklearn']]} ms, "
                  f"mixtura {[round(v * 1e3, 2) for v in per_iter['mixtura']]} ms", flush=True)
    print("\n| shape (float32) | scikit-learn ms/iter | mixtura ms/iter | mixtura trace median | speed-up | inertia rel. diff |")
    print("|---|---|---|---|---|---|")
    for n, d, k, s, m, tm, ratio, diff in rows:
        print(f"| {n:,} x {d}, K={k} | {s:.2f} | {m:.2f} | {tm:.2f} | {ratio:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
