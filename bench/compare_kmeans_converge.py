#!/usr/bin/env python3
"""Time to converge, side by side in one process: mixtura.KMeans (lloyd, elkan = Hamerly's bounds, and
yinyang = Yinyang's group bounds; the default "auto" takes Hamerly's from K * D = 2048 on and Yinyang's
from K = 512 and D = 32 on) against scikit-learn's KMeans (lloyd and elkan) and, when faiss is installed (pip install faiss-cpu), FAISS's Kmeans, from the same initial
centres.

Data: Gaussian clusters of unequal sizes and scales (bench/compare_minibatch.py's), float32, with as
many true clusters as centres; the initial centres are the first K rows of a random permutation (the
same array for all four); tol=1e-4 (each library's own rule: scikit-learn's relative to the data's
variance, as mixtura's), n_init=1. FAISS has no tolerance: it runs as many iterations as mixtura's
lloyd took, on every row (max_points_per_centroid above N: no subsample), one redo. Rounds alternate
the fits; per shape the median time of each, the iterations each took (scikit-learn's elkan and
lloyd must agree, and mixtura's three), and the speed-up of mixtura's default (the search "auto"
picks) against the best of the others.

    PYTHONPATH=python python3 bench/compare_kmeans_converge.py [--rounds 3] [--threads 2] [--quick]
    PYTHONPATH=python python3 bench/compare_kmeans_converge.py --grid   # mixtura alone: lloyd / hamerly
"""
import argparse
import statistics
import time
import warnings

import numpy as np
import sklearn
import sklearn.cluster
from threadpoolctl import threadpool_limits

import mixtura

try:
    import faiss
except ImportError:  # the comparison runs without it
    faiss = None

SHAPES = [  # n_samples, n_features, n_clusters
    (200_000, 32, 64),
    (1_000_000, 8, 16),
    (100_000, 64, 1024),
    (100_000, 64, 4096),
]
QUICK = [(20_000, 8, 16)]


def gaussian_clusters(n, d, k, seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, (k, d))
    labels = rng.choice(k, n, p=rng.dirichlet(np.full(k, 2.0)))
    scales = rng.uniform(0.5, 2.0, k)
    return (centres[labels] + rng.standard_normal((n, d)) * scales[labels, None]).astype(np.float32)


def fit_time(make, X):
    est = make()
    t = time.perf_counter()
    est.fit(X)
    return time.perf_counter() - t, est.n_iter_


class FaissKMeans:
    """FAISS's Kmeans behind fit/n_iter_: n_iter iterations from the given centres, all rows used."""

    def __init__(self, init, n_iter, threads):
        self.init, self.n_iter_, self.threads = init, n_iter, threads

    def fit(self, X):
        faiss.omp_set_num_threads(self.threads)
        k, d = self.init.shape
        km = faiss.Kmeans(d, k, niter=self.n_iter_, nredo=1, min_points_per_centroid=1,
                          max_points_per_centroid=len(X) + 1, seed=0, verbose=False)
        km.train(X, init_centroids=self.init)
        self.cluster_centers_ = km.centroids
        return self


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="one small shape (a smoke run)")
    ap.add_argument("--grid", action="store_true",
                    help="mixtura's lloyd time / its Hamerly time over D x K at 200,000 rows (where auto switches)")
    args = ap.parse_args()
    if args.grid:
        return grid(args)
    print(f"scikit-learn {sklearn.__version__}, mixtura {mixtura.__version__} ({mixtura.build_info()['isa']}), "
          f"FAISS {faiss.__version__ if faiss else 'not installed'}, "
          f"{args.threads} threads, median of {args.rounds} alternating rounds, float32, tol=1e-4")
    print("| shape | mixtura lloyd | mixtura elkan (Hamerly) | mixtura yinyang | scikit-learn lloyd "
          "| scikit-learn elkan | FAISS | iterations (m-l / m-e / m-y / s-l / s-e) | auto picks "
          "| auto vs best of the others |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, d, k in (QUICK if args.quick else SHAPES):
        X = gaussian_clusters(n, d, k, seed=0)
        init = X[np.random.default_rng(1).permutation(n)[:k]].copy()
        makers = {
            "ml": lambda: mixtura.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="lloyd", n_threads=args.threads),
            "me": lambda: mixtura.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="elkan", n_threads=args.threads),
            "my": lambda: mixtura.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="yinyang", n_threads=args.threads),
            "sl": lambda: sklearn.cluster.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="lloyd"),
            "se": lambda: sklearn.cluster.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm="elkan"),
        }
        iters = {}
        if faiss is not None:  # as many iterations as mixtura's lloyd takes (known after its first fit)
            makers["fa"] = lambda: FaissKMeans(init, iters["ml"], args.threads)
        times = {key: [] for key in makers}
        with threadpool_limits(args.threads):
            with warnings.catch_warnings():  # warm-up: thread pools and first-call costs out of the timings
                warnings.simplefilter("ignore")
                for key, make in makers.items():
                    if key != "fa":  # FAISS needs lloyd's iteration count, known after its first fit
                        make().set_params(max_iter=1).fit(X[:max(2 * k, 1000)])
            for _ in range(args.rounds):
                for key, make in makers.items():
                    t, it = fit_time(make, X)
                    times[key].append(t)
                    iters[key] = it
        med = {key: statistics.median(v) for key, v in times.items()}
        best_other = min(v for key, v in med.items() if key in ("sl", "se", "fa"))
        # mixtura::kHamerlyMinWork, kYinyangMinK, kYinyangMinD
        auto = "ml" if k * d < 2048 else "my" if k >= 512 and d >= 32 else "me"
        fa = f"{med['fa']:.3f} s" if "fa" in med else "—"
        print(f"| {n:,} × {d}, K={k} | {med['ml']:.3f} s | {med['me']:.3f} s | {med['my']:.3f} s | {med['sl']:.3f} s "
              f"| {med['se']:.3f} s | {fa} | {iters['ml']} / {iters['me']} / {iters['my']} / {iters['sl']} / {iters['se']} "
              f"| {dict(ml='lloyd', me='elkan', my='yinyang')[auto]} | **{best_other / med[auto]:.1f}×** |", flush=True)
        if faiss is not None:  # the same iterations from the same start: the same centres, up to near-ties
            ours = makers["ml"]().fit(X).cluster_centers_
            theirs = makers["fa"]().fit(X).cluster_centers_
            print(f"  (FAISS's centres against mixtura lloyd's: max |difference| {np.abs(ours - theirs).max():.2e}, "
                  f"data spread {X.std():.2f})", flush=True)


def grid(args):
    ks = (8, 16, 32, 64, 256)
    print(f"lloyd time / hamerly time, mixtura alone, 200,000 rows, {args.threads} threads, medians of {args.rounds}")
    print("| D \\ K | " + " | ".join(map(str, ks)) + " |")
    print("|---|" + "---|" * len(ks))
    for d in (4, 8, 32):
        ratios = []
        for k in ks:
            X = gaussian_clusters(200_000, d, k, seed=0)
            init = X[np.random.default_rng(1).permutation(len(X))[:k]].copy()
            med = {}
            for a in ("lloyd", "hamerly"):
                med[a] = statistics.median(fit_time(lambda: mixtura.KMeans(k, init=init, n_init=1, tol=1e-4, algorithm=a,
                                                                            n_threads=args.threads), X)[0]
                                           for _ in range(args.rounds))
            ratios.append(med["lloyd"] / med["hamerly"])
        print(f"| {d} | " + " | ".join(f"{r:.2f}" for r in ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
