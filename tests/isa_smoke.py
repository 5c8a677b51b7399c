"""Smoke test of an installed mixtura on this CPU: import, fit KMeans / GaussianMixture /
DensityAnomalyDetector, 1 and 2 threads alike, save and load, and print one JSON line with
build_info() and the results (also cibuildwheel's test command, pyproject.toml).

    python tests/isa_smoke.py [--expect-isa LEVEL] [--compare RESULTS.json [--exact]] [--out RESULTS.json]

Run natively with MIXTURA_ISA=<level> and under qemu-x86_64 -cpu Nehalem / Haswell (tests/isa_qemu.sh):
--expect-isa checks the level chosen, --compare checks the results against another run's within the
tolerances that hold between levels (below), or bit for bit with --exact.
"""
import argparse
import io
import json
import sys

import numpy as np

import mixtura

# Between levels the vector width changes the order of sums (and FMA contracts products), so results
# agree to rounding, not to the bit: relative tolerances of the compared values, per dtype (measured
# between levels on an AVX-512 machine: <= 4e-15 for both dtypes, the parameters being held in double;
# the margin is for iterative fits, which can amplify a difference).
TOLERANCE = {"float32": 1e-6, "float64": 1e-9}


def data(dtype):
    rng = np.random.default_rng(7)
    centres = np.array([[0.0, 0.0, 0.0, 0.0], [8.0, 1.0, -2.0, 3.0], [-5.0, 6.0, 2.0, -1.0]])
    X = np.vstack([c + rng.standard_normal((400, 4)) for c in centres]) + 1e3  # sensors sit off the origin
    return X[rng.permutation(len(X))].astype(dtype)


def roundtrip(model):
    buf = io.BytesIO()
    model.save(buf)
    buf.seek(0)
    return mixtura.load(buf)


def run():
    out = {"build_info": mixtura.build_info()}
    for dtype in ("float32", "float64"):
        X = data(dtype)
        km = mixtura.KMeans(n_clusters=3, random_state=0, n_init=2).fit(X)
        gm = mixtura.GaussianMixture(n_components=3, covariance_type="full", random_state=0).fit(X)
        km1 = mixtura.KMeans(n_clusters=3, random_state=0, n_init=2, n_threads=1).fit(X)
        gm1 = mixtura.GaussianMixture(n_components=3, covariance_type="full", random_state=0, n_threads=1).fit(X)
        assert np.array_equal(km1.cluster_centers_, km.cluster_centers_), "KMeans: 1 thread gave other bits"
        assert np.array_equal(gm1.means_, gm.means_) and gm1.lower_bound_ == gm.lower_bound_, \
            "GaussianMixture: 1 thread gave other bits"
        det = mixtura.DensityAnomalyDetector(random_state=0).fit(X)
        km2, gm2, det2 = roundtrip(km), roundtrip(gm), roundtrip(det)
        assert np.array_equal(km2.predict(X), km.predict(X)), "KMeans: predict changed through save/load"
        assert np.array_equal(gm2.score_samples(X), gm.score_samples(X)), "GaussianMixture: scores changed through save/load"
        assert np.array_equal(det2.decision_function(X), det.decision_function(X)), "detector: scores changed through save/load"
        out[dtype] = {
            "kmeans_inertia": float(km.inertia_),
            "kmeans_centers": np.sort(km.cluster_centers_, axis=0).ravel().tolist(),
            "gmm_lower_bound": float(gm.lower_bound_),
            "gmm_mean_score": float(gm.score(X)),
            "detector_scores": det.score_samples(X[:50]).tolist(),
            "detector_flagged": int((det.predict(X) == -1).sum()),
        }
    return out


def compare(a, b, exact):
    """Messages for every value of run a that differs from run b beyond the tolerance (at all if exact)."""
    problems = []
    for dtype, tol in TOLERANCE.items():
        for key, va in a[dtype].items():
            x, y = np.atleast_1d(np.asarray(va, float)), np.atleast_1d(np.asarray(b[dtype][key], float))
            if key == "detector_flagged":
                bad = abs(x[0] - y[0]) > (0 if exact else 2)  # rows at the threshold may flip between levels
            else:
                bad = not (np.array_equal(x, y) if exact else np.allclose(x, y, rtol=tol, atol=0))
            if bad:
                problems.append(f"{dtype} {key}: {x[:4].tolist()} vs {y[:4].tolist()}"
                                f" ({'must be equal' if exact else f'rtol {tol}'})")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expect-isa")
    ap.add_argument("--compare")
    ap.add_argument("--exact", action="store_true", help="--compare: bit for bit")
    ap.add_argument("--out")
    args = ap.parse_args()
    res = run()
    info = res["build_info"]
    print(json.dumps({"isa": info["isa"], "cpu_levels": info["cpu_levels"], "isa_cap": info["isa_cap"],
                      "kmeans_inertia_f64": res["float64"]["kmeans_inertia"]}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f)
    failed = []
    if args.expect_isa and info["isa"] != args.expect_isa:
        failed.append(f"chose level {info['isa']!r}, expected {args.expect_isa!r} (CPU: {info['cpu_levels']})")
    if args.compare:
        with open(args.compare) as f:
            failed += compare(res, json.load(f), args.exact)
    for line in failed:
        print("isa_smoke: " + line, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
