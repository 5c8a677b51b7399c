#!/usr/bin/env python3
"""The full-covariance EM iteration of bench/cuda_gmm_bench.cpp in plain PyTorch, for comparison.

Same shapes (1,000,000 x 16, K = 16 and 1,000,000 x 32, K = 64; --quick: 100,000 rows), float32 data,
the same start (unit covariances, the first K rows as means), the same FLOP count (3 N K D^2 per
iteration). One iteration:

  E-step, in chunks of rows (no N x K x D tensor for all the data): rows centred on the mixture mean c,
    y = xc @ [U_1 ... U_K] - (mu_k - c) U_k with U_k the precision Cholesky factors (precision = U U^T),
    log-densities from the squared norms, logsumexp, responsibilities; N_k, S1_k (r^T xc) and S2_k
    (einsum) per chunk, added up in float64;
  M-step on the GPU: means, covariances + reg_covar, batched Cholesky, triangular solves for U_k.

Timed with CUDA events (torch_util.median_ms), median of --iters iterations after one warm-up. Prints a table and one line
per shape "TORCH_GMM_BENCH {json}". Without torch or without a CUDA device it says so and exits 0.
"""
import argparse
import json
import math
import sys

from torch_util import cuda_torch, median_ms


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--chunk", type=int, default=131072, help="rows per E-step chunk")
    args = ap.parse_args()
    torch = cuda_torch("torch_gmm.py")
    if torch is None:
        return 0
    dev = torch.device("cuda")

    n8 = 8192
    A = torch.rand(n8, n8, device=dev) - 0.5
    B = torch.rand(n8, n8, device=dev) - 0.5
    peak = 2 * n8**3 / (median_ms(torch, lambda: torch.matmul(A, B), 5) * 1e-3) / 1e9
    del A, B
    print(f"torch.matmul 8192^3 (FP32): {peak:.0f} GFLOP/s\n")
    print("| N x D, K (float32, full) | ms / EM iteration | GFLOP/s (3NKD^2) | % of SGEMM |")
    print("|---|---|---|---|")

    n = 100_000 if args.quick else 1_000_000
    for d, k in ((16, 16), (32, 64)):
        g = torch.Generator(device="cpu").manual_seed(7)
        centers = 4 * torch.randn(k, d, generator=g)
        x = (centers[torch.arange(n) % k] + torch.randn(n, d, generator=g)).to(dev)
        weights = torch.full((k,), 1.0 / k, dtype=torch.float64, device=dev)
        means = x[:k].double().clone()
        prec_chol = torch.eye(d, dtype=torch.float64, device=dev).repeat(k, 1, 1)  # U_k, precision = U U^T
        reg = 1e-6
        eye = torch.eye(d, dtype=torch.float64, device=dev)

        def iteration():
            nonlocal weights, means, prec_chol
            c = weights @ means  # mixture mean (D), float64
            cf = c.float()
            f = prec_chol.float().permute(1, 0, 2).reshape(d, k * d)  # [U_1 ... U_K], D x K D
            off = torch.einsum("kd,kde->ke", means - cf.double(), prec_chol).float()  # (mu_k - c) U_k
            const = (torch.log(weights) - 0.5 * d * math.log(2 * math.pi)
                     + torch.log(torch.diagonal(prec_chol, dim1=1, dim2=2)).sum(1)).float()
            nk = torch.zeros(k, dtype=torch.float64, device=dev)
            s1 = torch.zeros(k, d, dtype=torch.float64, device=dev)
            s2 = torch.zeros(k, d, d, dtype=torch.float64, device=dev)
            ll = torch.zeros((), dtype=torch.float64, device=dev)
            for i in range(0, n, args.chunk):
                xc = x[i:i + args.chunk] - cf
                y = (xc @ f).view(-1, k, d) - off
                lp = const - 0.5 * (y * y).sum(-1)
                logp = torch.logsumexp(lp, dim=1)
                r = torch.exp(lp - logp[:, None])
                ll += logp.double().sum()
                nk += r.double().sum(0)
                s1 += (r.T @ xc).double()
                s2 += torch.einsum("nk,na,nb->kab", r, xc, xc).double()
            nk10 = nk + 10 * torch.finfo(torch.float64).eps
            dmean = s1 / nk10[:, None]
            means = c + dmean
            cov = s2 / nk10[:, None, None] - dmean[:, :, None] * dmean[:, None, :] + reg * eye
            chol = torch.linalg.cholesky(cov)
            prec_chol = torch.linalg.solve_triangular(chol, eye.expand(k, d, d), upper=False).mT
            weights = nk10 / nk10.sum()
            return ll / n

        ms = median_ms(torch, iteration, args.iters, warmup=1)
        gflops = 3.0 * n * k * d * d / (ms * 1e-3) / 1e9
        print(f"| {n} x {d}, K={k} | {ms:.2f} | {gflops:.0f} | {100 * gflops / peak:.1f} |")
        print("TORCH_GMM_BENCH " + json.dumps({"n": n, "d": d, "k": k, "iter_ms": round(ms, 4),
                                                "gflops": round(gflops, 1), "sgemm_gflops": round(peak, 1)}))
        sys.stdout.flush()
        del x
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
