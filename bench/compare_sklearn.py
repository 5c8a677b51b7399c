#!/usr/bin/env python3
"""Side-by-side timing, mixtura vs scikit-learn: K-means (float32) and full-covariance Gaussian
mixtures (float64), same data, same initial centres / parameters; and scoring (score_samples) of
float64 rows through one fitted full-covariance model given to both.

Both run with tol = 0 from the same starting point, on the same number of threads, alternating run
by run. The time per iteration is (t(M_hi) - t(M_lo)) / (M_hi - M_lo)
for whole fits of M_hi and M_lo iterations, which removes the fixed costs (input checks, copies,
the final assignment) from both sides alike. The script also checks that both libraries ran the
same number of iterations and reached the same inertia. Scoring times one whole score_samples call
on each side and compares the per-row scores.

    python3 bench/compare_sklearn.py --build build --threads 2 --runs 5 [--what kmeans|gmm|score|all]
        [--variant native=build-native --variant avx512=build-isa:_avx512 ...]

With several --variant, every variant runs in each round (alternating with scikit-learn), and each
gets its own rows: e.g. a -march=native build beside the dispatched copies of each level.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_info, threadpool_limits

SHAPES = [(200_000, 32, 64), (1_000_000, 8, 16)]
GMM_SHAPES = [(100_000, 16, 16, 1, 4), (200_000, 32, 8, 1, 3)]  # N, D, K, short and long fit iterations
SCORE_SHAPES = [(16, 16), (8, 8)]  # D, K; N from --score-rows


def ratio_summary(theirs_s, ours_s):
    """Speed-ups of ours over theirs: of the medians, of the fastest runs, and the quartiles of the
    run-by-run ratios (each pair ran back to back). On a shared machine noise only adds time."""
    paired = sorted(a / b for a, b in zip(theirs_s, ours_s))
    q1, _, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else (paired[0],) * 3
    return (statistics.median(theirs_s) / statistics.median(ours_s), min(theirs_s) / min(ours_s), q1, q3)


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


def gmm_ours(binary, files, n, d, k, iters, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [binary, "--data", files["x"], "--means", files["m"], "--weights", files["w"], "--precisions", files["p"],
         "--n", str(n), "--d", str(d), "--k", str(k), "--max-iter", str(iters), "--threads", str(threads)],
        check=True, capture_output=True, text=True, env=env).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["fit_seconds"], r["n_iter"], r["lower_bounds"], r["iter_seconds"]


def gmm_theirs(x, w, m, p, iters):
    gm = GaussianMixture(n_components=len(w), covariance_type="full", tol=0.0, max_iter=iters, reg_covar=1e-6,
                         weights_init=w, means_init=m, precisions_init=p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: tol = 0 on purpose
        t = time.perf_counter()
        gm.fit(x)
        elapsed = time.perf_counter() - t
    return elapsed, gm.n_iter_, list(gm.lower_bounds_)


def compare_gmm(args):
    print("Gaussian mixture, full covariance, float64: per-iteration time = (t(long) - t(short)) / (long - short)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=args.threads):
        for n, d, k, lo, hi in GMM_SHAPES:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, d))
            w = np.full(k, 1.0 / k)
            m = x[rng.choice(n, k, replace=False)].copy()
            p = np.stack([np.eye(d)] * k)
            files = {name: os.path.join(tmp, name + ".bin") for name in "xwmp"}
            for name, arr in zip("xwmp", (x, w, m, p)):
                arr.astype(np.float64).tofile(files[name])
            per = {"sklearn": [], **{label: [] for label, _ in args.variants}}
            trace_median = {label: [] for label, _ in args.variants}
            for _ in range(args.runs):
                for label, tools in args.variants:
                    lo_o, _, _, _ = gmm_ours(tools["gmm_timing"], files, n, d, k, lo, args.threads)
                    hi_o, it_o, lb_o, trace = gmm_ours(tools["gmm_timing"], files, n, d, k, hi, args.threads)
                    per[label].append((hi_o - lo_o) / (hi - lo))
                    trace_median[label].append(statistics.median(trace))
                    if it_o != hi:
                        sys.exit(f"GMM {n}x{d} K={k}: {label} stopped early ({it_o} iterations)")
                lo_s, _, _ = gmm_theirs(x, w, m, p, lo)
                hi_s, it_s, lb_s = gmm_theirs(x, w, m, p, hi)
                per["sklearn"].append((hi_s - lo_s) / (hi - lo))
            if it_s != hi:
                sys.exit(f"GMM {n}x{d} K={k}: scikit-learn stopped early ({it_s} iterations)")
            diff = max(abs(a - b) / abs(b) for a, b in zip(lb_o, lb_s))
            so = statistics.median(per["sklearn"])
            for label, _ in args.variants:
                mo = statistics.median(per[label])
                rows.append((n, d, k, label, so * 1e3, mo * 1e3, statistics.median(trace_median[label]) * 1e3,
                             *ratio_summary(per["sklearn"], per[label]), diff))
            print(f"{n}x{d} K={k}: " + ", ".join(f"{label} {[round(v * 1e3, 1) for v in per[label]]} ms" for label in per),
                  flush=True)
    print("\n| shape (float64, full) | ours | scikit-learn ms/iter | ours ms/iter | ours trace median | speed-up (medians) "
          "| speed-up (fastest runs) | run-by-run speed-ups, quartiles | max rel. diff of lower bounds (last variant) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, d, k, label, s, m, tm, ratio, best, q1, q3, diff in rows:
        print(f"| {n:,} x {d}, K={k} | {label} | {s:.1f} | {m:.1f} | {tm:.1f} | {ratio:.2f}x | {best:.2f}x "
              f"| {q1:.2f}-{q3:.2f}x | {diff:.1e} |")
    print()


def score_model(n, d, k):
    """float64 rows of a mixture of k clusters (centres ~ N(0, 3^2 I), per-feature scales 0.5-1.5),
    and a full-covariance model fitted on their first 100,000 by scikit-learn (5 EM iterations from
    k-means, seed 0): the fitted attributes are what both libraries score with."""
    rng = np.random.default_rng(0)
    centres = 3 * rng.standard_normal((k, d))
    scales = rng.uniform(0.5, 1.5, (k, d))
    labels = rng.integers(0, k, n)
    x = rng.standard_normal((n, d))
    x *= scales[labels]
    x += centres[labels]
    gm = GaussianMixture(n_components=k, covariance_type="full", max_iter=5, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 5 iterations on purpose
        gm.fit(x[:100_000])
    return x, gm


def score_ours(binary, files, n, d, k, threads, scores_out=None):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    cmd = [binary, "--mode", "score", "--data", files["x"], "--means", files["m"], "--weights", files["w"],
           "--factors", files["c"], "--n", str(n), "--d", str(d), "--k", str(k), "--threads", str(threads)]
    if scores_out:
        cmd += ["--scores-out", scores_out]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["score_seconds"]


def compare_score(args):
    print("Scoring, full covariance, float64: one score_samples call of all N rows, same fitted model")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=args.threads):
        n = args.score_rows
        for d, k in SCORE_SHAPES:
            x, gm = score_model(n, d, k)
            files = {name: os.path.join(tmp, name + ".bin") for name in "xwmc"}
            for name, arr in zip("xwmc", (x, gm.weights_, gm.means_, gm.precisions_cholesky_)):
                np.ascontiguousarray(arr, dtype=np.float64).tofile(files[name])
            scores_file = os.path.join(tmp, "scores.bin")
            ref = gm.score_samples(x)
            diff = {}
            for label, tools in args.variants:  # untimed: the scores to compare
                score_ours(tools["gmm_timing"], files, n, d, k, args.threads, scores_file)
                got = np.fromfile(scores_file, dtype=np.float64)
                diff[label] = float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), 1.0)))
            del ref
            per = {"sklearn": [], **{label: [] for label, _ in args.variants}}
            for _ in range(args.runs):
                for label, tools in args.variants:
                    per[label].append(score_ours(tools["gmm_timing"], files, n, d, k, args.threads))
                t = time.perf_counter()
                gm.score_samples(x)
                per["sklearn"].append(time.perf_counter() - t)
            s = statistics.median(per["sklearn"])
            for label, _ in args.variants:
                m = statistics.median(per[label])
                rows.append((n, d, k, label, s * 1e3, m * 1e3, n / m / 1e6, *ratio_summary(per["sklearn"], per[label]),
                             diff[label]))
            print(f"{n}x{d} K={k}: " + ", ".join(f"{label} {[round(v * 1e3) for v in per[label]]} ms" for label in per),
                  flush=True)
            del x, gm
    print("\n| shape (float64, full) | ours | scikit-learn ms/call | ours ms/call | ours Mrows/s | speed-up (medians) "
          "| speed-up (fastest runs) | run-by-run speed-ups, quartiles | max rel. diff of scores |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, d, k, label, s, m, rate, ratio, best, q1, q3, diff in rows:
        print(f"| {n:,} x {d}, K={k} | {label} | {s:.0f} | {m:.0f} | {rate:.2f} | {ratio:.2f}x | {best:.2f}x "
              f"| {q1:.2f}-{q3:.2f}x | {diff:.1e} |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="the CMake build folder (with bench/kmeans_timing, bench/gmm_timing)")
    ap.add_argument("--what", choices=["kmeans", "gmm", "score", "all"], default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--score-rows", type=int, default=10_000_000, help="scoring: rows scored per call")
    ap.add_argument("--lo", type=int, default=2, help="K-means: iterations of the short fit")
    ap.add_argument("--hi", type=int, default=12, help="K-means: iterations of the long fit")
    ap.add_argument("--variant", action="append", default=[], metavar="LABEL=BUILD[:SUFFIX]",
                    help="time this build's bench/kmeans_timing<SUFFIX> and gmm_timing<SUFFIX> too, side by side "
                         "(repeatable; e.g. native=build-native avx512=build:_avx512); default: mixtura=--build")
    args = ap.parse_args()
    args.variants = []
    for spec in args.variant or [f"mixtura={args.build}"]:
        label, _, where = spec.partition("=")
        build, _, suffix = where.partition(":")
        if not label or not build:
            ap.error(f"--variant {spec!r}: expected LABEL=BUILD[:SUFFIX]")
        tools = {t: os.path.join(build, "bench", t + suffix) for t in ("kmeans_timing", "gmm_timing")}
        args.variants.append((label, tools))

    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, BLAS: "
          + ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in blas))
    print(f"threads: {args.threads} each; {args.runs} alternating runs\n")
    if args.what in ("gmm", "all"):
        compare_gmm(args)
    if args.what in ("score", "all"):
        compare_score(args)
    if args.what in ("kmeans", "all"):
        compare_kmeans(args)


def compare_kmeans(args):
    print(f"K-means, float32: per-iteration time = (t({args.hi} it) - t({args.lo} it)) / {args.hi - args.lo}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=args.threads):
        for n, d, k in SHAPES:
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n, d)).astype(np.float32)
            c = x[rng.choice(n, k, replace=False)].copy()
            xfile, cfile = os.path.join(tmp, "x.bin"), os.path.join(tmp, "c.bin")
            x.tofile(xfile)
            c.tofile(cfile)
            per_iter = {"sklearn": [], **{label: [] for label, _ in args.variants}}
            trace_median = {label: [] for label, _ in args.variants}
            inertia_o = {}
            for _ in range(args.runs):
                for label, tools in args.variants:
                    lo_o, _, _, _ = ours(tools["kmeans_timing"], xfile, cfile, n, d, k, args.lo, args.threads)
                    hi_o, it_o, inertia_o[label], trace = ours(tools["kmeans_timing"], xfile, cfile, n, d, k, args.hi,
                                                               args.threads)
                    per_iter[label].append((hi_o - lo_o) / (args.hi - args.lo))
                    trace_median[label].append(statistics.median(trace))
                    if it_o != args.hi:
                        sys.exit(f"{n}x{d} K={k}: {label} converged early ({it_o} iterations)")
                lo_s, _, _ = theirs(x, c, args.lo)
                hi_s, it_s, inertia_s = theirs(x, c, args.hi)
                per_iter["sklearn"].append((hi_s - lo_s) / (args.hi - args.lo))
            if it_s != args.hi:
                sys.exit(f"{n}x{d} K={k}: scikit-learn converged early ({it_s} iterations)")
            s = statistics.median(per_iter["sklearn"])
            for label, _ in args.variants:
                m = statistics.median(per_iter[label])
                rows.append((n, d, k, label, s * 1e3, m * 1e3, statistics.median(trace_median[label]) * 1e3,
                             *ratio_summary(per_iter["sklearn"], per_iter[label]),
                             abs(inertia_o[label] - inertia_s) / inertia_s))
            print(f"{n}x{d} K={k}: " + ", ".join(f"{label} {[round(v * 1e3, 2) for v in per_iter[label]]} ms"
                                                  for label in per_iter), flush=True)
    print("\n| shape (float32) | ours | scikit-learn ms/iter | ours ms/iter | ours trace median | speed-up (medians) "
          "| speed-up (fastest runs) | run-by-run speed-ups, quartiles | inertia rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, d, k, label, s, m, tm, ratio, best, q1, q3, diff in rows:
        print(f"| {n:,} x {d}, K={k} | {label} | {s:.2f} | {m:.2f} | {tm:.2f} | {ratio:.2f}x | {best:.2f}x "
              f"| {q1:.2f}-{q3:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
