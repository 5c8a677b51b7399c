"""Every result the three estimators give on the CPU, saved to compare bit for bit across a refactor.

    python tests/bits_check.py save before.npz      # on the old build
    python tests/bits_check.py compare before.npz   # on the new one: exit 1 on any differing bit

Covers KMeans (k-means++, random, given centres, weights), GaussianMixture (every covariance type,
k-means and random init, weights) and DensityAnomalyDetector (gmm and kmeans methods), in float32
and float64: fitted attributes, traces, predictions, transforms, scores, probabilities, BIC/AIC.
Bits depend on the SIMD level (MIXTURA_ISA): compare files made at the same level on one machine.
"""
import sys
import warnings

import numpy as np

import mixtura


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(5, 7))
    X = np.concatenate([c + rng.normal(size=(300, 7)) for c in centres]).astype(dtype)
    X_new = (rng.normal(scale=4.0, size=(200, 7))).astype(dtype)
    w = rng.uniform(0.2, 2.0, size=len(X)).astype(dtype)
    return X, X_new, w


def _as_arrays(prefix, obj, out):
    """Flattens numbers, arrays, lists and dicts of them into out[prefix/...]."""
    if isinstance(obj, dict):
        for k in sorted(obj):
            _as_arrays(f"{prefix}/{k}", obj[k], out)
    elif isinstance(obj, (list, tuple)) and obj and not np.isscalar(obj[0]):
        for i, v in enumerate(obj):
            _as_arrays(f"{prefix}/{i}", v, out)
    elif obj is None:
        out[prefix] = np.array([], dtype=np.float64)
    elif isinstance(obj, str):
        out[prefix] = np.frombuffer(obj.encode(), dtype=np.uint8)
    else:
        out[prefix] = np.asarray(obj)


def _attrs(est):
    return {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_") and k != "model_"}


def results():
    out = {}
    warnings.simplefilter("ignore")
    for dtype in (np.float32, np.float64):
        X, X_new, w = _data(dtype)
        t = np.dtype(dtype).name
        given = X[::300][:5].copy()
        kmeans = {
            "pp": dict(n_clusters=5, random_state=3),
            "pp_n_init3": dict(n_clusters=5, n_init=3, random_state=4),
            "random": dict(n_clusters=5, init="random", random_state=5),
            "given": dict(n_clusters=5, init=given),
            "k1": dict(n_clusters=1, random_state=0),
        }
        for name, kw in kmeans.items():
            for weighted in (False, True):
                sw = w if weighted else None
                km = mixtura.KMeans(**kw).fit(X, sample_weight=sw)
                p = f"kmeans/{t}/{name}/w{int(weighted)}"
                _as_arrays(p + "/fit", _attrs(km), out)
                _as_arrays(p + "/predict", km.predict(X_new), out)
                _as_arrays(p + "/transform", km.transform(X_new), out)
                _as_arrays(p + "/score", km.score(X_new), out)
                _as_arrays(p + "/score_w", km.score(X, sample_weight=sw), out)
        for cov in ("full", "tied", "diag", "spherical"):
            for init in ("kmeans", "random"):
                for weighted in (False, True):
                    sw = w if weighted else None
                    g = mixtura.GaussianMixture(4, covariance_type=cov, init_params=init, n_init=2, random_state=7,
                                                max_iter=50).fit(X, sample_weight=sw)
                    p = f"gmm/{t}/{cov}/{init}/w{int(weighted)}"
                    _as_arrays(p + "/fit", _attrs(g), out)
                    _as_arrays(p + "/predict", g.predict(X_new), out)
                    _as_arrays(p + "/proba", g.predict_proba(X_new), out)
                    _as_arrays(p + "/score_samples", g.score_samples(X_new), out)
                    _as_arrays(p + "/score", g.score(X_new), out)
                    _as_arrays(p + "/component_log_density", g.component_log_density(X_new), out)
                    _as_arrays(p + "/bic", g.bic(X_new), out)
                    _as_arrays(p + "/aic", g.aic(X_new), out)
        for method, kw in (("gmm", {}), ("gmm", dict(n_components=3, covariance_type="diag")),
                           ("kmeans", {}), ("gmm", dict(scaling="standard", contamination=0.05))):
            d = mixtura.DensityAnomalyDetector(method, random_state=1, **kw).fit(X)
            p = f"detector/{t}/{method}/{'_'.join(f'{k}={v}' for k, v in sorted(kw.items())) or 'default'}"
            _as_arrays(p + "/fit", _attrs(d), out)
            _as_arrays(p + "/score_samples", d.score_samples(X_new), out)
            _as_arrays(p + "/decision_function", d.decision_function(X_new), out)
            _as_arrays(p + "/predict", d.predict(X_new), out)
            _as_arrays(p + "/explain", d.explain(X_new[:20]), out)
    return out


def main(argv):
    if len(argv) != 3 or argv[1] not in ("save", "compare"):
        print(__doc__)
        return 2
    mode, path = argv[1], argv[2]
    now = results()
    print(f"{len(now)} arrays at MIXTURA_ISA level {mixtura.build_info()['isa']}")
    if mode == "save":
        np.savez(path, **now)
        return 0
    before = dict(np.load(path, allow_pickle=False))
    bad = sorted(set(before) ^ set(now))
    for k in sorted(set(before) & set(now)):
        a, b = before[k], now[k]
        same = a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        if not same:
            bad.append(k)
    for k in bad:
        print("differs:", k)
    print(f"{len(now) - len(bad)} of {len(set(before) | set(now))} arrays bit-identical")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
