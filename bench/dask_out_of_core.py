#!/usr/bin/env python3
"""mixtura.dask.KMeans over a .npy file larger than the workers' memory, read block by block.

Writes (once) --rows x --features float32 Gaussian clusters to --path with numpy's open_memmap, a
block at a time; builds a Dask array whose tasks each read their rows from the file (nothing of the
data sits in the graph), and fits mixtura.dask.KMeans (k-means|| start, --iters Lloyd iterations,
tol = 0) on a LocalCluster whose workers have --memory-limit each. Reports the file size, the fit's
time (and per pass), the workers' peak resident memory (ru_maxrss of each worker process) and the
inertia.

    PYTHONPATH=python python3 bench/dask_out_of_core.py --rows 100_000_000 --features 16 --path /tmp/x.npy
"""
import argparse
import os
import resource
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster

import mixtura.dask


def write(path, n, d, k, block, seed=0):
    plan = np.random.default_rng(seed)
    centres = plan.uniform(-10, 10, (k, d))
    p = plan.dirichlet(np.full(k, 2.0))
    scales = plan.uniform(0.5, 2.0, k)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for b, start in enumerate(range(0, n, block)):
        rng = np.random.default_rng((seed, b))
        rows = min(block, n - start)
        labels = rng.choice(k, rows, p=p)
        out[start:start + rows] = centres[labels] + rng.standard_normal((rows, d)) * scales[labels, None]
    out.flush()
    del out


def read_rows(path, start, stop):
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def from_npy(path, block):
    n, d = np.load(path, mmap_mode="r").shape
    parts = [da.from_delayed(dask.delayed(read_rows)(path, s, min(s + block, n)), shape=(min(s + block, n) - s, d),
                             dtype=np.float32) for s in range(0, n, block)]
    return da.concatenate(parts)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=100_000_000)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--clusters", type=int, default=16)
    ap.add_argument("--block", type=int, default=1_000_000, help="rows per Dask block")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="2GiB", help="per worker")
    ap.add_argument("--path", default="/tmp/mixtura_out_of_core.npy")
    args = ap.parse_args()
    if not os.path.exists(args.path) or np.load(args.path, mmap_mode="r").shape != (args.rows, args.features):
        t = time.perf_counter()
        write(args.path, args.rows, args.features, args.clusters, args.block)
        print(f"wrote {args.path} in {time.perf_counter() - t:.0f} s")
    size = os.path.getsize(args.path) / 2**30
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, memory_limit=args.memory_limit,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        X = from_npy(args.path, args.block)
        km = mixtura.dask.KMeans(args.clusters, random_state=0, max_iter=args.iters, tol=0)
        t = time.perf_counter()
        km.fit(X)
        seconds = time.perf_counter() - t
        peaks = client.run(peak_rss_mib)
    passes = 1 + 2 * km.init_max_iter + 1 + km.n_iter_ + 1  # checks, k-means|| rounds, weights, Lloyd, inertia
    print(f"{args.rows:,} x {args.features} float32 = {size:.2f} GiB on disk; {args.workers} workers x 1 thread, "
          f"memory_limit {args.memory_limit} each; blocks of {args.block:,} rows")
    print(f"fit: {seconds:.1f} s for about {passes} passes ({seconds / passes:.2f} s a pass), {km.n_iter_} Lloyd "
          f"iterations; inertia {km.inertia_:.6g}")
    print("workers' peak resident memory: " + ", ".join(f"{v:.0f} MiB" for v in peaks.values()))


if __name__ == "__main__":
    main()
