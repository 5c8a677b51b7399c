#!/usr/bin/env python3
"""The K-means iteration of bench/cuda_kmeans_bench.cu in plain PyTorch, for comparison.

Same shapes (10,000,000 x 16, K = 16 and 1,000,000 x 64, K = 256; --quick: 1,000,000 x 16 and
200,000 x 64), float32 data uniform in [0, 1), the first K rows as centres. One iteration:

  distances by the expanded form, ||c||^2 - 2 X C^T (one matmul, the row norms left out of the argmin),
  argmin, then per cluster the count (bincount) and the sum of rows (index_add_), new centres.

All on the GPU, timed with CUDA events, median of --iters iterations after two warm-ups. Note what
this does not do and mixtura does: sums in float64, an exact distortion, reproducible sums (index_add_
adds with atomics, in any order). Prints a table and one line per shape "TORCH_KMEANS_BENCH {json}".
Without torch or without a CUDA device it says so and exits 0.
"""
import argparse
import json

from torch_util import cuda_torch, median_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller shapes")
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    torch = cuda_torch("torch_kmeans.py")
    if torch is None:
        return 0
    dev = torch.device("cuda")

    shapes = [(1_000_000, 16, 16), (200_000, 64, 256)] if args.quick else [(10_000_000, 16, 16), (1_000_000, 64, 256)]
    print("| N x D, K (float32) | ms / iteration | GB/s (X once) | GFLOP/s (2NKD) |")
    print("|---|---|---|---|")
    for n, d, k in shapes:
        g = torch.Generator(device=dev).manual_seed(0)
        X = torch.rand(n, d, device=dev, generator=g)
        C = X[:k].clone()

        def iteration():
            dist = torch.addmm((C * C).sum(1), X, C.t(), alpha=-2.0)  # ||c||^2 - 2 x.c, n x k
            labels = dist.argmin(1)
            counts = torch.bincount(labels, minlength=k)
            sums = torch.zeros(k, d, device=dev).index_add_(0, labels, X)
            return torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], C)

        ms = median_ms(torch, iteration, args.iters)
        gbs = n * d * 4 / (ms * 1e-3) / 1e9
        gflops = 2 * n * k * d / (ms * 1e-3) / 1e9
        print(f"| {n} x {d}, K = {k} | {ms:.3f} | {gbs:.0f} | {gflops:.0f} |")
        print("TORCH_KMEANS_BENCH " + json.dumps({"n": n, "d": d, "k": k, "ms": ms, "gbs": gbs, "gflops": gflops}))
        del X, C
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
