#!/usr/bin/env python3
"""Side-by-side on one distributed.LocalCluster: mixtura.dask.KMeans vs dask_ml.cluster.KMeans.

Same Dask array (Gaussian clusters of unequal sizes and scales, generated block by block on the
workers and persisted there), same initial centres (rows of X), tol = 0 and the same max_iter, so
both run max_iter Lloyd iterations from the same start; alternating run by run. Reports per shape
the median time per iteration of each (fit time / n_iter_), the ratio of medians and of the fastest
runs, and the final inertia of each, computed the same way for both (exact, by mixtura.dask.KMeans.score
of their centres).

    PYTHONPATH=python python3 bench/compare_dask.py --workers 2 --repeats 3 [--quick]
"""
import argparse
import statistics
import time
import warnings

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import mixtura.dask

SHAPES = [  # n_samples, n_features, n_clusters, rows per block, dtype
    (2_000_000, 16, 16, 250_000, np.float64),
    (4_000_000, 8, 32, 500_000, np.float32),
]
QUICK = [(200_000, 8, 8, 50_000, np.float64)]


def _block(block_id, rows, d, k, dtype, seed):
    """One block of Gaussian clusters, drawn from a generator keyed by (seed, block)."""
    rng = np.random.default_rng((seed, block_id[0]))
    plan = np.random.default_rng(seed)
    centres = plan.uniform(-10, 10, (k, d))
    p = plan.dirichlet(np.full(k, 2.0))
    scales = plan.uniform(0.5, 2.0, k)
    labels = rng.choice(k, rows, p=p)
    return (centres[labels] + rng.standard_normal((rows, d)) * scales[labels, None]).astype(dtype)


def gaussian_clusters(n, d, k, rows, dtype, seed=0):
    chunks = ((rows,) * (n // rows) + ((n % rows,) if n % rows else ()), (d,))
    return da.map_blocks(lambda block_id=None: _block(block_id, rows, d, k, dtype, seed), chunks=chunks,
                         dtype=dtype, meta=np.empty((0, 0), dtype))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="worker processes, one thread each")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10, help="Lloyd iterations (tol = 0)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import dask_ml
    import dask_ml.cluster
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        print(f"dask {dask.__version__}, dask-ml {dask_ml.__version__}, {args.workers} workers x 1 thread, "
              f"{args.iters} iterations, {args.repeats} repeats")
        print("| rows × features, K, block | mixtura s/iter | dask-ml s/iter | ratio of medians | ratio of fastest "
              "| inertia mixtura | inertia dask-ml |")
        print("|---|---|---|---|---|---|---|")
        for n, d, k, rows, dtype in (QUICK if args.quick else SHAPES):
            X = client.persist(gaussian_clusters(n, d, k, rows, dtype))
            dask.distributed.wait(X)
            init = X[:k].compute().astype(dtype)
            ours, theirs, inertia = [], [], {}
            for _ in range(args.repeats):
                for name in ("mixtura", "dask-ml"):
                    if name == "mixtura":
                        est = mixtura.dask.KMeans(k, init=init, n_init=1, max_iter=args.iters, tol=0)
                    else:
                        est = dask_ml.cluster.KMeans(n_clusters=k, init=init, max_iter=args.iters, tol=0)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t = time.perf_counter()
                        est.fit(X)
                        seconds = time.perf_counter() - t
                    (ours if name == "mixtura" else theirs).append(seconds / est.n_iter_)
                    scorer = mixtura.dask.KMeans(k, init=est.cluster_centers_.astype(dtype), n_init=1)
                    scorer.cluster_centers_ = np.asarray(est.cluster_centers_, dtype=dtype)
                    scorer.n_features_in_ = d
                    inertia[name] = -scorer.score(X)
            m, t = statistics.median(ours), statistics.median(theirs)
            print(f"| {n:,} × {d}, {k}, {rows:,} ({np.dtype(dtype).name}) | {m:.3f} | {t:.3f} | {t / m:.1f}× | "
                  f"{min(theirs) / min(ours):.1f}× | {inertia['mixtura']:.6g} | {inertia['dask-ml']:.6g} |")
            del X


if __name__ == "__main__":
    main()
