#!/usr/bin/env python3
"""Evaluation of density-based anomaly detection on the real data in ../shared/data.

One script, numpy + scikit-learn only.  It runs, on identical features for every method:

  pyod-gmm1   PyOD's ODDS protocol with a 1-component full-covariance GMM (checked against
              ODDS/pyod_benchmark_results/roc.csv, GMM column)
  iforest     sklearn IsolationForest(random_state=0), defaults, on StandardScaler features
  sk-gmm      sklearn GaussianMixture(random_state=0), defaults (1 component, full), StandardScaler features
  ours        mixtura.DensityAnomalyDetector(random_state=0) on raw features, when `import mixtura` provides it
  proto       a prototype of the recommended default built from scikit-learn pieces (raw features in;
              robust scaling with a floor, GMM with K chosen by BIC, reg_covar, calibrated threshold)

Protocols (see ../shared/data/README.md):
  ODDS   novelty protocol: 60 % of the normal rows train (fixed permutation, seed 0); test = the other
         40 % of normals + all anomalies.  (The PyOD protocol is run separately as a correctness check.)
  SKAB   per file: first 400 rows train, rest test, label = `anomaly` column; rows used as they are.
  NAB    5 realKnownCause series, first 15 % train (probationary period), label = inside a window of
         labels/combined_windows.json; features = sliding windows of the value (width W, see --width).
  NASA   SMAP/MSL channels E-1, S-1, M-6, D-14: fit on train/*.npy, score test/*.npy, labels from
         labeled_anomalies.csv (inclusive ranges); rows used as they are.

Sliding windows: a window's row is labelled by (and scores) its LAST time step, so scoring is causal.
Test windows may reach back into the training segment for context (every test time step gets a score).

Missing values (--gaps): the same tasks with values removed from both the training and the test features,
in three settings: 5 % and 20 % of the values at random, and channel dropouts (in every column one stretch
of 10 % of the rows, at a random place in train and in test, plus 2 % at random); no row is left without a
value.  For NAB the windows are the features, so values are removed from the window rows as they are given
to the detector.  Compared (ROC-AUC, AP, realised false-alarm rate; --gap-seeds removal seeds):
  complete          mixtura.DensityAnomalyDetector(random_state=0) on the data without gaps (= `ours`)
  marginal          the same detector on the data with gaps, NaN as they are (marginal density)
  mean-impute       SimpleImputer(strategy="mean") fitted on the training rows, then the detector
  iterative-impute  IterativeImputer(random_state=0, max_iter=10) fitted on the training rows, then the detector

Usage:
  python3 bench/anomaly_eval.py                  # baselines + default on all data, ~1 min on 2 cores
  python3 bench/anomaly_eval.py --quick          # small subset, < 1 min (for tests)
  python3 bench/anomaly_eval.py --sweep          # + the candidate defaults and the threshold study, ~5-10 min
  python3 bench/anomaly_eval.py --adapt          # + the detector following the test stream (partial_fit)
  python3 bench/anomaly_eval.py --gaps           # only the missing-values study (below), ~7 min
  python3 bench/anomaly_eval.py --dynamics       # only the window-feature and trimmed-fit study, ~1-2 min
  python3 bench/anomaly_eval.py --out FILE.md    # also write the Markdown tables to FILE.md
"""
import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # shared 2-core machine: one thread per process

import argparse
import csv
import datetime
import json
import sys
import time
import warnings
import zlib

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.mixture import GaussianMixture
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

try:
    from mixtura import sliding_windows
except ImportError:
    sys.exit("bench/anomaly_eval.py needs the mixtura package: pip install . (from the repository root)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data"))

ODDS_SETS = ["6_cardio", "18_Ionosphere", "20_letter", "28_pendigits", "30_satellite", "32_shuttle",
             "38_thyroid", "39_vertebral", "40_vowels", "42_WBC"]
# name in PyOD's roc.csv for each ODDS file, and the shape PyOD used (to flag non-comparable files)
PYOD_NAME = {"6_cardio": ("cardio", (1831, 21)), "18_Ionosphere": ("ionosphere", (351, 33)),
             "20_letter": ("letter", (1600, 32)), "28_pendigits": ("pendigits", (6870, 16)),
             "30_satellite": ("satellite", (6435, 36)), "32_shuttle": ("shuttle", (49097, 9)),
             "39_vertebral": ("vertebral", (240, 6)), "40_vowels": ("vowels", (1456, 12)),
             "42_WBC": ("wbc", (378, 30))}
NAB_SERIES = ["machine_temperature_system_failure", "ambient_temperature_system_failure", "nyc_taxi",
              "ec2_request_latency_system_failure", "cpu_utilization_asg_misconfiguration"]
NASA_CHANNELS = ["E-1", "S-1", "M-6", "D-14"]
GROUPS = ["ODDS", "SKAB", "NAB", "NASA"]

# Published comparison numbers (see ../shared/data/README.md)
PUB_SKAB_T2 = {"F1": 0.66, "FAR": 0.192, "MAR": 0.426}
PUB_NAB_MT = {"windowed Gaussian": 0.856, "Random Cut Forest": 0.875}

# The recommended default (what `proto` implements and `mixtura.DensityAnomalyDetector()` should do)
DEFAULT = dict(standardize="robust", reg_covar=1e-3, max_components=8, covariance_type="full",
               calibration_fraction=0.2, calibration_split="tail", false_alarm_rate=0.01,
               threshold="calibrate")
DEFAULT_WIDTH = 16


# ----------------------------------------------------------------------------------------------- data
class Task:
    """One train/test problem; Xtr/Xte are raw features (rows or windows), yte in {0,1}."""

    def __init__(self, group, name, Xtr, Xte, yte):
        self.group, self.name = group, name
        self.Xtr = np.ascontiguousarray(Xtr, dtype=np.float64)
        self.Xte = np.ascontiguousarray(Xte, dtype=np.float64)
        self.yte = np.asarray(yte, dtype=int)


def windowed_split(x, labels, n_train, width):
    """Windows ending at time t score time t.  Train: windows ending in [width-1, n_train);
    test: windows ending in [n_train, n) (may reach back into the train segment)."""
    Wf = sliding_windows(x, width)           # mixtura's; window j ends at time j + width - 1
    end = np.arange(Wf.shape[0]) + width - 1
    tr = end < n_train
    return Wf[tr], Wf[~tr], labels[end[~tr]]


def load_odds(data, names):
    out = {}
    for nm in names:
        d = np.load(os.path.join(data, "ODDS", nm + ".npz"), allow_pickle=False)
        out[nm] = (d["X"].astype(np.float64), d["y"].astype(int).ravel())
    return out


def odds_novelty_tasks(odds):
    tasks = []
    for nm, (X, y) in odds.items():
        rng = np.random.RandomState(0)
        normal = np.flatnonzero(y == 0)
        perm = rng.permutation(normal)
        ntr = int(round(0.6 * len(normal)))
        tr, te_n = perm[:ntr], perm[ntr:]
        te = np.concatenate([te_n, np.flatnonzero(y == 1)])
        tasks.append(Task("ODDS", nm, X[tr], X[te], y[te]))
    return tasks


def skab_files(data):
    root = os.path.join(data, "SKAB")
    files = []
    for sub in ("valve1", "valve2", "other"):   # anomaly-free/ has no labels: not used
        d = os.path.join(root, sub)
        for f in sorted(os.listdir(d), key=lambda s: int(s.split(".")[0])):
            files.append(os.path.join(d, f))
    return files


def skab_tasks(data, files=None):
    tasks = []
    for path in files or skab_files(data):
        with open(path) as fh:
            header = fh.readline().strip().split(";")
        A = np.genfromtxt(path, delimiter=";", skip_header=1, usecols=range(1, len(header)))
        cols = header[1:]
        ia = cols.index("anomaly")
        sensors = [i for i, c in enumerate(cols) if c not in ("anomaly", "changepoint")]
        X, y = A[:, sensors], A[:, ia].astype(int)
        name = os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path)
        tasks.append(Task("SKAB", name, X[:400], X[400:], y[400:]))
    return tasks


def _ts(s):
    return datetime.datetime.fromisoformat(s.strip())


def nab_series(data, names):
    with open(os.path.join(data, "NAB", "labels", "combined_windows.json")) as fh:
        windows = json.load(fh)
    out = {}
    for nm in names:
        path = os.path.join(data, "NAB", "data", "realKnownCause", nm + ".csv")
        ts, vals = [], []
        with open(path) as fh:
            r = csv.reader(fh)
            next(r)
            for row in r:
                ts.append(_ts(row[0]))
                vals.append(float(row[1]))
        ts = np.array(ts, dtype="datetime64[us]")
        lab = np.zeros(len(ts), dtype=int)
        for a, b in windows["realKnownCause/" + nm + ".csv"]:
            lab[(ts >= np.datetime64(_ts(a))) & (ts <= np.datetime64(_ts(b)))] = 1
        out[nm] = (np.array(vals), lab)
    return out


def nab_tasks(series, width):
    tasks = []
    for nm, (x, lab) in series.items():
        ntr = int(0.15 * len(x))
        Xtr, Xte, yte = windowed_split(x, lab, ntr, width)
        tasks.append(Task("NAB", nm, Xtr, Xte, yte))
    return tasks


def nasa_tasks(data, names):
    ranges = {}
    with open(os.path.join(data, "NASA_SMAP_MSL", "labeled_anomalies.csv")) as fh:
        for row in csv.DictReader(fh):
            ranges[row["chan_id"]] = (row["spacecraft"], json.loads(row["anomaly_sequences"]))
    tasks = []
    for ch in names:
        Xtr = np.load(os.path.join(data, "NASA_SMAP_MSL", "train", ch + ".npy"))
        Xte = np.load(os.path.join(data, "NASA_SMAP_MSL", "test", ch + ".npy"))
        y = np.zeros(len(Xte), dtype=int)
        for a, b in ranges[ch][1]:
            y[a:b + 1] = 1
        tasks.append(Task("NASA", ranges[ch][0] + " " + ch, Xtr, Xte, y))
    return tasks


# -------------------------------------------------------------------------------------------- metrics
def roc(y, s):
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def ap(y, s):
    return float(average_precision_score(y, s)) if y.sum() > 0 else float("nan")


def f1_far_mar(y, flag):
    y, flag = np.asarray(y, bool), np.asarray(flag, bool)
    tp, fp = np.sum(flag & y), np.sum(flag & ~y)
    fn, tn = np.sum(~flag & y), np.sum(~flag & ~y)
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    return float(f1), float(fp / max(fp + tn, 1)), float(fn / max(fn + tp, 1))


# -------------------------------------------------------------------------------------------- methods
def robust_scale(X, mode):
    """center_, scale_ of the standardisation.  'standard': mean / std; 'robust': median /
    IQR/1.349 (a normal's std).  Floor for degenerate channels: where the robust scale is 0
    (a channel that is mostly one value) the std is used, and where that is 0 too (a constant
    channel) the scale is 1 in the channel's own units (scikit-learn's convention); reg_covar
    then bounds the variance from below in standardised units."""
    if mode is None:
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    if mode == "standard":
        c, s = X.mean(0), X.std(0)
    elif mode == "robust":
        c = np.median(X, 0)
        q1, q3 = np.percentile(X, [25, 75], axis=0)
        s = (q3 - q1) / 1.349
        sd = X.std(0)
        tiny = 1e-12 * np.maximum(1.0, np.abs(c))
        s = np.where(s > tiny, s, sd)
    else:
        raise ValueError(mode)
    tiny = 1e-12 * np.maximum(1.0, np.abs(c))
    s = np.where(s > tiny, s, 1.0)
    return c, s


_FIT_CACHE = {}


def _fit_gmm(key, Z, K, cov, reg, seed=0):
    """Fitted GaussianMixture, memoised so that candidates sharing a fit (e.g. max_components 4
    vs 8, or only the threshold rule differing) do not refit."""
    k = key + (K, cov, reg)
    if k not in _FIT_CACHE:
        g = GaussianMixture(n_components=K, covariance_type=cov, reg_covar=reg, n_init=1,
                            max_iter=100, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g.fit(Z)
        _FIT_CACHE[k] = (g, g.bic(Z))
    return _FIT_CACHE[k]


class ProtoDetector:
    """Prototype of mixtura.DensityAnomalyDetector(method="gmm") from scikit-learn pieces.

    score_samples = log-density in the original units (higher = more normal);
    decision_function = score_samples - offset_; predict -> +1 / -1."""

    def __init__(self, n_components="bic", max_components=8, covariance_type="full", reg_covar=1e-3,
                 standardize="robust", false_alarm_rate=0.01, threshold="calibrate",
                 calibration_fraction=0.2, calibration_split="tail", random_state=0, cache_key=None):
        self.n_components, self.max_components = n_components, max_components
        self.covariance_type, self.reg_covar = covariance_type, reg_covar
        self.standardize, self.false_alarm_rate = standardize, false_alarm_rate
        self.threshold, self.calibration_fraction = threshold, calibration_fraction
        self.calibration_split, self.random_state = calibration_split, random_state
        self.cache_key = cache_key

    def _z(self, X):
        return (np.asarray(X, np.float64) - self.center_) / self.scale_

    def fit(self, X):
        X = np.asarray(X, np.float64)
        self.center_, self.scale_ = robust_scale(X, self.standardize)
        Z = self._z(X)
        n = len(Z)
        ncal = int(round(self.calibration_fraction * n)) if self.threshold == "calibrate" else 0
        if ncal > 0 and self.calibration_split == "tail":   # last rows: no leakage between
            fit_idx, cal_idx = np.arange(n - ncal), np.arange(n - ncal, n)   # overlapping windows
        elif ncal > 0:
            perm = np.random.RandomState(self.random_state).permutation(n)
            fit_idx, cal_idx = np.sort(perm[ncal:]), np.sort(perm[:ncal])
        else:
            fit_idx, cal_idx = np.arange(n), np.arange(0)
        Zf = Z[fit_idx]
        key = (self.cache_key, self.standardize, self.threshold == "calibrate" and
               (self.calibration_fraction, self.calibration_split), self.random_state)
        if self.cache_key is None:
            key = (id(self), time.time())
        if self.n_components == "bic":
            # K = 1..max_components, never more parameters than fitted rows allow
            best = None
            for K in range(1, self.max_components + 1):
                g, bic = _fit_gmm(key, Zf, K, self.covariance_type, self.reg_covar, self.random_state)
                if best is None or bic < best[1]:
                    best = (g, bic, K)
                if g._n_parameters() >= len(Zf):
                    break
            self.model_, self.n_components_ = best[0], best[2]
        else:
            self.model_, _ = _fit_gmm(key, Zf, int(self.n_components), self.covariance_type,
                                      self.reg_covar, self.random_state)
            self.n_components_ = int(self.n_components)
        self._logdet_scale = np.sum(np.log(self.scale_))
        if self.threshold == "calibrate":
            ref = self.score_samples(X[cal_idx])
        elif self.threshold == "model-tail":
            Zs, _ = self.model_.sample(100_000)  # model's own samples (chi-square tail for K=1)
            ref = self.model_.score_samples(Zs) - self._logdet_scale
        else:
            raise ValueError(self.threshold)
        self.offset_ = float(np.quantile(ref, self.false_alarm_rate))
        return self

    def set_rate(self, rate):
        """Re-derive the offset for another false-alarm rate without refitting (evaluation only)."""
        self.false_alarm_rate = rate
        return self

    def score_samples(self, X):
        return self.model_.score_samples(self._z(X)) - self._logdet_scale

    def decision_function(self, X):
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        return np.where(self.decision_function(X) < 0, -1, 1)


def run_iforest(t):
    sc = StandardScaler().fit(t.Xtr)
    m = IsolationForest(random_state=0).fit(sc.transform(t.Xtr))
    Z = sc.transform(t.Xte)
    return -m.score_samples(Z), m.predict(Z) == -1, {}


def run_skgmm(t):
    sc = StandardScaler().fit(t.Xtr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = GaussianMixture(random_state=0).fit(sc.transform(t.Xtr))
    return -m.score_samples(sc.transform(t.Xte)), None, {}


def run_proto(t, cfg=None, key=None):
    cfg = dict(DEFAULT if cfg is None else cfg)
    cfg.pop("width", None)
    m = ProtoDetector(random_state=0, cache_key=key, **cfg).fit(t.Xtr)
    s = m.score_samples(t.Xte)
    return -s, s < m.offset_, {"K": m.n_components_, "model": m}


def mixtura_detector():
    """The installed package's detector (`pip install .`), or None."""
    try:
        import mixtura
        return getattr(mixtura, "DensityAnomalyDetector", None)
    except ImportError:
        return None


def run_ours(t):
    Det = mixtura_detector()
    m = Det(random_state=0).fit(t.Xtr)
    s = np.asarray(m.score_samples(t.Xte))
    return -s, np.asarray(m.predict(t.Xte)) == -1, {"K": getattr(m, "n_components_", "?")}


ADAPT_CHUNK = 100  # test rows per partial_fit step


def run_ours_adapt(t):
    """The default detector fitted on the training part, then following the test stream: each chunk of
    ADAPT_CHUNK rows is scored (decision_function: the threshold in force when it arrives, so the
    flags are causal) and then handed to partial_fit with half_life = the training length."""
    Det = mixtura_detector()
    m = Det(random_state=0, half_life=len(t.Xtr)).fit(t.Xtr)
    d = []
    for b in range(0, len(t.Xte), ADAPT_CHUNK):
        chunk = t.Xte[b:b + ADAPT_CHUNK]
        d.append(np.asarray(m.decision_function(chunk)))
        m.partial_fit(chunk)
    d = np.concatenate(d)
    return -d, d < 0, {"K": getattr(m, "n_components_", "?")}


def adaptation_table(res):
    """Realised false-alarm rate (flagged normal test rows; target 0.01) and ROC-AUC on the streams,
    without and with adaptation."""
    L = ["## Following the stream: DensityAnomalyDetector.partial_fit\n",
         f"`ours`: fitted once on the training part. `ours-adapt`: the same fit, then each test chunk of "
         f"{ADAPT_CHUNK} rows is scored with the threshold in force and handed to `partial_fit` (half_life = "
         "the training length); flags and ROC-AUC come from those causal scores (decision_function).\n",
         "| group | realised FA `ours`: median [min, max] | realised FA `ours-adapt` | ROC-AUC `ours` (mean) "
         "| ROC-AUC `ours-adapt` (mean) |", "|---|---|---|---|---|"]
    allfa = {"ours": [], "ours-adapt": []}
    for grp in ("SKAB", "NAB", "NASA"):
        cells = []
        for m in ("ours", "ours-adapt"):
            v = [float(np.mean(r["flag"][r["task"].yte == 0])) for r in res[m] if r["task"].group == grp]
            allfa[m] += v
            cells.append(f"{np.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]" if v else "—")
        for m in ("ours", "ours-adapt"):
            v = [r["roc"] for r in res[m] if r["task"].group == grp and not np.isnan(r["roc"])]
            cells.append(fmt(float(np.mean(v))) if v else "—")
        L.append(f"| {grp} | " + " | ".join(cells) + " |")
    L.append("| all streams | " + " | ".join(f"{np.median(allfa[m]):.3f}" for m in ("ours", "ours-adapt")) +
             " | | |")
    L.append("")
    return L


# ------------------------------------------------------------------------------------- PyOD protocol
def pyod_check(odds, data):
    with open(os.path.join(data, "ODDS", "pyod_benchmark_results", "roc.csv")) as fh:
        pub = {r["Data"]: float(r["GMM"]) for r in csv.DictReader(fh)}
    rows = []
    for nm, (X, y) in odds.items():
        if nm not in PYOD_NAME or PYOD_NAME[nm][0] not in pub:
            continue
        pname, pshape = PYOD_NAME[nm]
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.4, random_state=np.random.RandomState(0))
        sc = StandardScaler().fit(Xtr)
        r = {}
        for who, cls in [("scikit-learn", GaussianMixture), ("mixtura", mixtura_gmm())]:
            if cls is None:
                continue
            g = cls(n_components=1, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                    max_iter=100, n_init=1, init_params="kmeans", random_state=0)
            g.fit(sc.transform(Xtr))
            r[who] = roc(yte, -g.score_samples(sc.transform(Xte)))
        same = tuple(X.shape) == pshape
        rows.append((nm, X.shape, pshape, r, pub[pname], same))
    return rows


def mixtura_gmm():
    """The installed package's GaussianMixture, or None."""
    try:
        import mixtura
        return mixtura.GaussianMixture
    except ImportError:
        return None


# --------------------------------------------------------------------------------------- evaluation
def evaluate(tasks, methods):
    """methods: {name: fn(task) -> (anomaly score, flags or None, info)} -> per-task results."""
    res = {m: [] for m in methods}
    for t in tasks:
        for m, fn in methods.items():
            t0 = time.time()
            s, flag, info = fn(t)
            res[m].append(dict(task=t, roc=roc(t.yte, s), ap=ap(t.yte, s), flag=flag, info=info,
                               sec=time.time() - t0))
    return res


def group_means(rs):
    g = {}
    for grp in GROUPS:
        v = [r["roc"] for r in rs if r["task"].group == grp and not np.isnan(r["roc"])]
        a = [r["ap"] for r in rs if r["task"].group == grp and not np.isnan(r["ap"])]
        if v:
            g[grp] = (float(np.mean(v)), float(np.mean(a)))
    macro = float(np.mean([v[0] for v in g.values()])) if g else float("nan")
    allm = float(np.nanmean([r["roc"] for r in rs]))
    return g, macro, allm


def skab_pooled(rs):
    ys, fs = [], []
    for r in rs:
        if r["task"].group == "SKAB":
            if r["flag"] is None:
                return None
            ys.append(r["task"].yte)
            fs.append(r["flag"])
    if not ys:
        return None
    return f1_far_mar(np.concatenate(ys), np.concatenate(fs))


def fmt(x, p=3):
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{p}f}"


def tables(res, order):
    L = []
    L.append("### Per dataset: ROC-AUC / average precision\n")
    L.append("| group | dataset | train × dim | test (anom.) | " +
             " | ".join(f"{m} ROC | {m} AP" for m in order) + " |")
    L.append("|---|---|---|---|" + "---|---|" * len(order))
    n = len(res[order[0]])
    for i in range(n):
        t = res[order[0]][i]["task"]
        cells = []
        for m in order:
            r = res[m][i]
            cells += [fmt(r["roc"]), fmt(r["ap"])]
        L.append(f"| {t.group} | {t.name} | {t.Xtr.shape[0]}×{t.Xtr.shape[1]} | "
                 f"{len(t.yte)} ({t.yte.sum()}) | " + " | ".join(cells) + " |")
    L.append("")
    L.append("### Means (ROC-AUC / AP per group; headline = mean of the group means)\n")
    L.append("| method | " + " | ".join(f"{g} ROC / AP" for g in GROUPS) +
             " | **mean of groups ROC** | mean over all series ROC | fit+score time |")
    L.append("|---|" + "---|" * (len(GROUPS) + 3))
    for m in order:
        g, macro, allm = group_means(res[m])
        cells = [f"{fmt(g[k][0])} / {fmt(g[k][1])}" if k in g else "—" for k in GROUPS]
        sec = sum(r["sec"] for r in res[m])
        L.append(f"| {m} | " + " | ".join(cells) + f" | **{fmt(macro)}** | {fmt(allm)} | {sec:.1f} s |")
    L.append("")
    return L


def build_tasks(data, quick, width):
    odds_names = ["6_cardio", "40_vowels", "38_thyroid"] if quick else ODDS_SETS
    odds = load_odds(data, odds_names)
    skab = skab_files(data)
    if quick:
        skab = [f for f in skab if f.endswith(("valve1/1.csv", "valve2/1.csv", "other/1.csv"))]
    nab = nab_series(data, ["ec2_request_latency_system_failure"] if quick else NAB_SERIES)
    nasa = ["E-1"] if quick else NASA_CHANNELS
    tasks = odds_novelty_tasks(odds) + skab_tasks(data, skab) + nab_tasks(nab, width) + \
        nasa_tasks(data, nasa)
    return odds, skab, nab, nasa, tasks


# ------------------------------------------------------------------------------------------- sweep
CANDIDATES = [
    # name, changes from DEFAULT (+ NAB window width)
    ("default: robust, reg 1e-3, K<=8 BIC, full, cal 0.2 tail, W=16", {}),
    ("standard scaling", {"standardize": "standard"}),
    ("reg_covar 1e-6", {"reg_covar": 1e-6}),
    ("reg_covar 1e-2", {"reg_covar": 1e-2}),
    ("max_components 4", {"max_components": 4}),
    ("diag covariance", {"covariance_type": "diag"}),
    ("calibration_fraction 0.1", {"calibration_fraction": 0.1}),
    ("calibration split random", {"calibration_split": "random"}),
    ("no hold-out (model-tail threshold)", {"threshold": "model-tail"}),
    ("1 component (no BIC)", {"n_components": 1}),
    ("standard scaling + reg 1e-6", {"standardize": "standard", "reg_covar": 1e-6}),
    ("window width 8", {"width": 8}),
    ("window width 32", {"width": 32}),
]


def sweep(data, tasks_by_width, base_width, out):
    L = ["## Candidate defaults (one configuration for all datasets; every candidate shown)\n",
         "| candidate | ODDS | SKAB | NAB | NASA | **mean of groups** | mean over series | time (fits shared between candidates are memoised) |",
         "|---|---|---|---|---|---|---|---|"]
    results = {}
    for cname, ch in CANDIDATES:
        cfg = dict(DEFAULT)
        cfg.update(ch)
        w = cfg.pop("width", base_width)
        tasks = tasks_by_width(w)
        t0 = time.time()
        rs = evaluate(tasks, {cname: lambda t, cfg=cfg, w=w: run_proto(
            t, cfg, key=(t.group, t.name, w))})[cname]
        results[cname] = rs
        g, macro, allm = group_means(rs)
        row = (f"| {cname} | " + " | ".join(fmt(g[k][0]) if k in g else "—" for k in GROUPS) +
               f" | **{fmt(macro)}** | {fmt(allm)} | {time.time() - t0:.0f} s |")
        L.append(row)
        print(row, file=sys.stderr, flush=True)
    L.append("")
    return L, results


def threshold_study(rules):
    """SKAB pooled F1/FAR/MAR at several false-alarm rates, and realised false-alarm rate on
    held-out normal rows for 'calibrate' vs 'model-tail'."""
    L = ["## Threshold\n", "### SKAB pooled F1 / FAR / MAR vs the false-alarm rate\n",
         "| threshold rule | false_alarm_rate | F1 | FAR | MAR |", "|---|---|---|---|---|"]
    rates = [0.001, 0.01, 0.05, 0.1]

    def flags_at(r, rate):
        m = r["info"]["model"]
        t = r["task"]
        if m.threshold == "calibrate":
            n = len(t.Xtr)
            ncal = int(round(m.calibration_fraction * n))
            if m.calibration_split == "tail":
                ref = m.score_samples(t.Xtr[n - ncal:])
            else:
                perm = np.random.RandomState(m.random_state).permutation(n)
                ref = m.score_samples(t.Xtr[np.sort(perm[:ncal])])
        else:
            Zs, _ = m.model_.sample(100_000)
            ref = m.model_.score_samples(Zs) - m._logdet_scale
        off = float(np.quantile(ref, rate))
        return m.score_samples(t.Xte) < off

    for label, rs in rules:
        sk = [r for r in rs if r["task"].group == "SKAB"]
        for rate in rates:
            f = np.concatenate([flags_at(r, rate) for r in sk])
            y = np.concatenate([r["task"].yte for r in sk])
            f1, far, mar = f1_far_mar(y, f)
            L.append(f"| {label} | {rate} | {f1:.3f} | {100 * far:.1f} % | {100 * mar:.1f} % |")
    L.append(f"| published Hotelling T² | — | {PUB_SKAB_T2['F1']} | {100 * PUB_SKAB_T2['FAR']:.1f} % | "
             f"{100 * PUB_SKAB_T2['MAR']:.1f} % |")
    L.append("")
    L.append("### Realised false-alarm rate on held-out normal test rows (target 0.01)\n")
    L.append("ODDS rows are i.i.d. held-out normals (the clean test of calibration); the streams' test "
             "normals come later in time than the training part, so drift adds false alarms there.\n")
    L.append("| group | " + " | ".join(f"{lab}: median [min, max]" for lab, _ in rules) + " |")
    L.append("|---|" + "---|" * len(rules))
    for grp in GROUPS:
        cells = []
        for _, rs in rules:
            v = [float(np.mean(r["flag"][r["task"].yte == 0])) for r in rs if r["task"].group == grp]
            cells.append(f"{np.median(v):.3f} [{min(v):.3f}, {max(v):.3f}]" if v else "—")
        L.append(f"| {grp} | " + " | ".join(cells) + " |")
    L.append("")
    return L


# ----------------------------------------------------------------------------------- missing values
# (name, fraction of the values removed at random, per-channel stretch as a fraction of the rows)
GAP_SETTINGS = [("5 % at random", 0.05, 0.0), ("20 % at random", 0.20, 0.0),
                ("channel dropouts", 0.02, 0.10)]
GAP_METHODS = ["complete", "marginal", "mean-impute", "iterative-impute"]
GAP_SEEDS = 3
ITERATIVE = dict(random_state=0, max_iter=10)   # IterativeImputer's other parameters: scikit-learn's defaults


def remove_gaps(rng, X, fraction, stretch=0.0):
    """A copy of X with values set to NaN: each value with probability `fraction` and, when stretch > 0,
    in every column one run of round(stretch * n) consecutive rows starting at a random row.  A row left
    with no value gets one of them back (a random column), so that no row is entirely missing."""
    X = np.array(X, dtype=np.float64, copy=True)
    n, d = X.shape
    gone = rng.random((n, d)) < fraction
    run = int(round(stretch * n))
    if run > 0:
        for j in range(d):
            a = int(rng.integers(0, n - run + 1))
            gone[a:a + run, j] = True
    empty = np.flatnonzero(gone.all(axis=1))
    gone[empty, rng.integers(0, d, size=len(empty))] = False
    X[gone] = np.nan
    return X


def gap_task(t, seed, setting):
    """Task t with gaps in both its training and its test features (setting = an entry of GAP_SETTINGS).
    The gaps depend only on (seed, setting, task), not on which other tasks run."""
    rng = np.random.default_rng([seed, zlib.crc32(setting[0].encode()),
                                 zlib.crc32(f"{t.group}/{t.name}".encode())])
    _, fraction, stretch = setting
    return Task(t.group, t.name, remove_gaps(rng, t.Xtr, fraction, stretch),
                remove_gaps(rng, t.Xte, fraction, stretch), t.yte)


def _gap_detector(Xtr, Xte):
    m = mixtura_detector()(random_state=0).fit(Xtr)
    return np.asarray(m.score_samples(Xte)), np.asarray(m.predict(Xte)) == -1


def _gap_imputed(imputer, Xtr, Xte):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # IterativeImputer: "early stopping criterion not reached"
        Ztr = imputer.fit_transform(Xtr)
        Zte = imputer.transform(Xte)
    if Ztr.shape[1] != Xtr.shape[1]:
        raise RuntimeError("an imputer dropped a feature")  # cannot happen: no column is removed entirely
    return _gap_detector(Ztr, Zte)


def gap_methods():
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (scikit-learn's opt-in)
    from sklearn.impute import IterativeImputer, SimpleImputer
    return {"marginal": lambda g: _gap_detector(g.Xtr, g.Xte),
            "mean-impute": lambda g: _gap_imputed(SimpleImputer(strategy="mean"), g.Xtr, g.Xte),
            "iterative-impute": lambda g: _gap_imputed(IterativeImputer(**ITERATIVE), g.Xtr, g.Xte)}


def _gap_record(t, gapped_te, s, flag, sec):
    normal = t.yte == 0
    with_gap = np.isnan(gapped_te).any(axis=1)

    def rate(mask):
        return float(np.mean(flag[mask])) if mask.any() else float("nan")
    return dict(task=t, roc=roc(t.yte, -s), ap=ap(t.yte, -s), fa=rate(normal),
                fa_nogap=rate(normal & ~with_gap), fa_gap=rate(normal & with_gap),
                gap_rows=float(np.mean(with_gap)), sec=sec)


def run_gaps(tasks, seeds=range(GAP_SEEDS), settings=GAP_SETTINGS, log=None):
    """res[(setting name, method)] = one list of per-task records per seed.  `complete` is run once on
    the data without gaps (the same records stand for every seed and setting; its time counted once)."""
    methods = gap_methods()
    res, complete = {}, []
    for t in tasks:
        t0 = time.time()
        s, flag = _gap_detector(t.Xtr, t.Xte)
        complete.append(_gap_record(t, t.Xte, s, flag, time.time() - t0))
    for st in settings:
        res[(st[0], "complete")] = [complete for _ in seeds]
        for m in methods:
            res[(st[0], m)] = []
        for seed in seeds:
            recs = {m: [] for m in methods}
            for t in tasks:
                g = gap_task(t, seed, st)
                for m, fn in methods.items():
                    t0 = time.time()
                    s, flag = fn(g)
                    recs[m].append(_gap_record(t, g.Xte, s, flag, time.time() - t0))
            for m in methods:
                res[(st[0], m)].append(recs[m])
            if log:
                print(f"gaps: {st[0]}, seed {seed}: " + ", ".join(
                    f"{m} {group_means(recs[m])[1]:.3f}" for m in methods), file=log, flush=True)
    return res


def _per_seed(runs, fn):
    """fn(records of one seed) for every seed."""
    return np.array([fn(rs) for rs in runs], dtype=np.float64)


def _spread(v, p=3):
    v = np.asarray(v, np.float64)
    if np.all(np.isnan(v)):
        return "—"
    if np.nanmax(v) - np.nanmin(v) < 0.5 * 10 ** -p:
        return fmt(float(np.nanmean(v)), p)
    return f"{np.nanmean(v):.{p}f} [{np.nanmin(v):.{p}f}, {np.nanmax(v):.{p}f}]"


def _group_median(rs, grp, key):
    v = [r[key] for r in rs if r["task"].group == grp and not np.isnan(r[key])]
    return float(np.median(v)) if v else float("nan")


def gap_tables(res, seeds, settings=GAP_SETTINGS):
    groups = [g for g in GROUPS if any(r["task"].group == g for r in next(iter(res.values()))[0])]
    n = len(list(seeds))
    L = ["### ROC-AUC: group means and the mean of the group means\n",
         f"Mean over {n} removal seeds [min, max over the seeds]; `complete` has no gaps, so no spread. "
         "Δ = the method minus `complete` on the mean of groups, per seed.\n",
         "| gaps | method | " + " | ".join(groups) + " | **mean of groups** | Δ vs complete | AP mean of groups "
         "| time |", "|---|---|" + "---|" * (len(groups) + 4)]
    for st in settings:
        base = _per_seed(res[(st[0], "complete")], lambda rs: group_means(rs)[1])
        for m in GAP_METHODS:
            runs = res[(st[0], m)]
            cells = [_spread(_per_seed(runs, lambda rs, g=g: group_means(rs)[0].get(g, (np.nan,))[0]))
                     for g in groups]
            macro = _per_seed(runs, lambda rs: group_means(rs)[1])
            apm = _per_seed(runs, lambda rs: float(np.mean([v[1] for v in group_means(rs)[0].values()])))
            delta = "—" if m == "complete" else _spread(macro - base)
            sec = sum(r["sec"] for rs in (runs[:1] if m == "complete" else runs) for r in rs)
            L.append(f"| {st[0]} | {m} | " + " | ".join(cells) + f" | **{_spread(macro)}** | {delta} | "
                     f"{_spread(apm)} | {sec:.0f} s |")
    L.append("")
    L += ["### Paired differences: `marginal` minus each imputation, ROC-AUC (same gaps, per seed)\n",
          "Mean over the seeds [min, max over the seeds]; positive = marginalisation ranks better.\n",
          "| gaps | marginal minus | " + " | ".join(groups) + " | **mean of groups** |",
          "|---|---|" + "---|" * (len(groups) + 1)]
    for st in settings:
        mg = res[(st[0], "marginal")]
        for m in GAP_METHODS[2:]:
            runs = res[(st[0], m)]
            cells = [_spread(_per_seed(mg, lambda rs, g=g: group_means(rs)[0][g][0]) -
                             _per_seed(runs, lambda rs, g=g: group_means(rs)[0][g][0])) for g in groups]
            d = _per_seed(mg, lambda rs: group_means(rs)[1]) - _per_seed(runs, lambda rs: group_means(rs)[1])
            L.append(f"| {st[0]} | {m} | " + " | ".join(cells) + f" | **{_spread(d)}** |")
    L.append("")
    L += ["### Average precision: group means (mean over the seeds)\n",
          "| gaps | method | " + " | ".join(groups) + " |", "|---|---|" + "---|" * len(groups)]
    for st in settings:
        for m in GAP_METHODS:
            runs = res[(st[0], m)]
            L.append(f"| {st[0]} | {m} | " + " | ".join(
                fmt(float(np.mean(_per_seed(runs, lambda rs, g=g: group_means(rs)[0].get(g, (0, np.nan))[1]))))
                for g in groups) + " |")
    L.append("")
    L += ["### Realised false-alarm rate on the normal test rows (`predict`, target 0.01)\n",
          "Median over the group's tasks, mean over the seeds [min, max over the seeds]. For `marginal` also split "
          "into the normal test rows without a gap and those with one (the last column: share of all test rows "
          "with a gap). ODDS is the clean test of calibration (i.i.d. held-out normals); the streams drift (see "
          "\"Threshold\").\n",
          "| gaps | group | complete | marginal | marginal, rows without gaps | marginal, rows with gaps "
          "| mean-impute | iterative-impute | test rows with a gap |", "|---|---|---|---|---|---|---|---|---|"]
    for st in settings:
        for g in groups:
            cell = {m: _spread(_per_seed(res[(st[0], m)], lambda rs: _group_median(rs, g, "fa")))
                    for m in GAP_METHODS}
            mg = res[(st[0], "marginal")]
            L.append(f"| {st[0]} | {g} | {cell['complete']} | {cell['marginal']} | "
                     f"{_spread(_per_seed(mg, lambda rs: _group_median(rs, g, 'fa_nogap')))} | "
                     f"{_spread(_per_seed(mg, lambda rs: _group_median(rs, g, 'fa_gap')))} | "
                     f"{cell['mean-impute']} | {cell['iterative-impute']} | "
                     f"{_spread(_per_seed(mg, lambda rs: _group_median(rs, g, 'gap_rows')), 2)} |")
    L.append("")
    L += ["### Per dataset: ROC-AUC, mean over the seeds\n",
          "| group | dataset | complete | " + " | ".join(f"{st[0]}: {m}" for st in settings
                                                          for m in GAP_METHODS[1:]) + " |",
          "|---|---|---|" + "---|" * (len(settings) * (len(GAP_METHODS) - 1))]
    tasks = [r["task"] for r in res[(settings[0][0], "complete")][0]]
    for i, t in enumerate(tasks):
        cells = [fmt(res[(settings[0][0], "complete")][0][i]["roc"])]
        for st in settings:
            for m in GAP_METHODS[1:]:
                cells.append(fmt(float(np.mean([rs[i]["roc"] for rs in res[(st[0], m)]]))))
        L.append(f"| {t.group} | {t.name} | " + " | ".join(cells) + " |")
    L.append("")
    return L


# -------------------------------------------------------------------------------------------- main

# ------------------------------------------------------------------------- level and dynamics, trimming
# --dynamics: which window features (and whether a trimmed fit) for the stream groups. Every candidate is
# one configuration for all series; ODDS rows have no time order, so only the fit options change there.
def _mean_last(values, span):
    """NaN-aware mean of the last `span` steps of (count, width, channels) windows (float64)."""
    v = values[:, -span:, :].astype(np.float64)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(v, axis=1)


def candidate_features(X, kind, width):
    """Feature rows of the windows ending at times width-1 .. n-1 of the series X (n, channels).
    "rows": the reading itself; "windows": the raw window (sliding_windows); "level-dynamics": mixtura's;
    the others are the alternatives measured against it (per channel, each a block of features):
    "lvd" level + changes over 1, width/4 and width-1 steps; "lvms" level-dynamics + the spread of the
    one-step changes; "lm" level + departure from the window mean; "ld" level + departure + change;
    "ms" level, short mean, window mean, change, window spread."""
    from mixtura import level_dynamics
    X = np.asarray(X, dtype=np.float64)
    X = X[:, None] if X.ndim == 1 else X
    if kind == "rows":
        return X[width - 1:]
    if kind == "windows":
        return sliding_windows(X, width)
    if kind == "level-dynamics":
        return level_dynamics(X, width)
    V = np.lib.stride_tricks.sliding_window_view(X, width, axis=0).transpose(0, 2, 1)
    last, short = V[:, -1, :], max(2, width // 4)
    if kind == "lvd":
        blocks = [last, last - V[:, -2, :], last - V[:, -short, :], last - V[:, 0, :]]
    elif kind == "lvms":
        blocks = [last, _mean_last(V, short), last - _mean_last(V, width), last - V[:, -2, :],
                  np.diff(V, axis=1).std(axis=1)]
    elif kind == "lm":
        blocks = [last, last - _mean_last(V, width)]
    elif kind == "ld":
        blocks = [last, last - _mean_last(V, width), last - V[:, -2, :]]
    elif kind == "ms":
        blocks = [last, _mean_last(V, short), _mean_last(V, width), last - V[:, -2, :], V.std(axis=1)]
    else:
        raise ValueError(f"unknown feature kind {kind!r}")
    return np.hstack(blocks)


def stream_feature_tasks(data, kind, width, skab=None, nab=None, nasa=None):
    """SKAB, NAB and NASA tasks with `kind` features of windows of `width` (same splits as above; a test
    window reaches back into the training rows, so every test time step from the first on is scored;
    NASA's test file continues its training file for that purpose). "rows" for NAB means its windows. skab:
    SKAB files (none when empty), nab: {name: series}, nasa: channel names."""
    tasks = []
    for t in skab_tasks(data, skab) if skab else []:
        X = np.vstack([t.Xtr, t.Xte])
        tasks.append(_feature_task(t, X, len(t.Xtr), kind, width))
    for nm, (x, lab) in (nab or {}).items():
        ntr = int(0.15 * len(x))
        t = Task("NAB", nm, x[:ntr, None], x[ntr:, None], lab[ntr:])
        tasks.append(_feature_task(t, x[:, None], ntr, "windows" if kind == "rows" else kind, width))
    for t in nasa_tasks(data, nasa or []):
        tasks.append(_feature_task(t, np.vstack([t.Xtr, t.Xte]), len(t.Xtr), kind, width))
    return tasks


def _feature_task(t, X, n_train, kind, width):
    F = candidate_features(X, kind, width)
    end = np.arange(width - 1, len(X))
    train = end < n_train
    return Task(t.group, t.name, F[train], F[~train], t.yte[end[~train] - n_train])


def run_detector(t, seed=0, **kw):
    """mixtura's detector with parameters kw; its realised flags at the threshold it sets."""
    m = mixtura_detector()(random_state=seed, **kw).fit(t.Xtr)
    s = np.asarray(m.score_samples(t.Xte))
    return -s, s < m.offset_, {"K": m.n_components_, "trimmed": m.n_trimmed_ / len(t.Xtr)}


DYNAMICS_WIDTH = 16  # the NAB width fixed before the first sweep
DYNAMICS_CANDIDATES = [
    # name, feature kind, width, detector parameters
    ("rows (SKAB, NASA), raw windows (NAB): the protocol above", "rows", 16, {}),
    ("**level-dynamics** (level, short level, departure, change)", "level-dynamics", 16, {}),
    ("raw windows + first differences (windows of 16 only on NAB; rows elsewhere)", "rows+diff", 16, {}),
    ("level + changes over 1, 4, 15 steps (lvd)", "lvd", 16, {}),
    ("level-dynamics + spread of the changes (lvms)", "lvms", 16, {}),
    ("level + departure (lm)", "lm", 16, {}),
    ("level + departure + change (ld)", "ld", 16, {}),
    ("level, short and window means, change, spread (ms)", "ms", 16, {}),
    ("level-dynamics, width 8", "level-dynamics", 8, {}),
    ("level-dynamics, width 32", "level-dynamics", 32, {}),
    ("level-dynamics + trim='auto'", "level-dynamics", 16, {"trim": "auto"}),
    ("level-dynamics + trim=0.02", "level-dynamics", 16, {"trim": 0.02}),
    ("level-dynamics + trim=0.05", "level-dynamics", 16, {"trim": 0.05}),
    ("rows + trim='auto'", "rows", 16, {"trim": "auto"}),
    ("rows + trim=0.05", "rows", 16, {"trim": 0.05}),
]
DYNAMICS_SEEDS = (0, 1, 2)
SMOOTHING = (4, 8)  # windows whose scores a smoothed score averages (causal: the last k)


def run_smoothed(t, k):
    """The default detector; a stream window's score is the mean of its own and the k - 1 previous
    windows' scores (training windows give the first test windows their history); ODDS as it is."""
    if t.group == "ODDS":
        return run_detector(t)
    m = mixtura_detector()(random_state=0).fit(t.Xtr)
    s = np.asarray(m.score_samples(np.vstack([t.Xtr, t.Xte])))
    sm = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.full(k - 1, s[0]), s]), k).mean(axis=1)
    sm = sm[len(t.Xtr):]
    return -sm, sm < m.offset_, {}


def _rows_diff_tasks(data, skab, nab, nasa):
    """The protocol's features, NAB's windows with their first differences appended."""
    tasks = stream_feature_tasks(data, "rows", DYNAMICS_WIDTH, skab, None, nasa)
    for nm, (x, lab) in nab.items():
        ntr = int(0.15 * len(x))
        W = sliding_windows(x, DYNAMICS_WIDTH, differences=True)
        end = np.arange(DYNAMICS_WIDTH - 1, len(x))
        tr = end < ntr
        tasks.append(Task("NAB", nm, W[tr], W[~tr], lab[end[~tr]]))
    return tasks


def _summary(rs):
    """Group means, headline, SKAB pooled F1/FAR, NAB machine_temperature ROC, median realised FAR per group."""
    g, macro, allm = group_means(rs)
    far = {grp: float(np.median([np.mean(r["flag"][r["task"].yte == 0]) if r["flag"] is not None else np.nan
                                 for r in rs if r["task"].group == grp]))
           for grp in GROUPS if any(r["task"].group == grp for r in rs)}
    mt = [r["roc"] for r in rs if r["task"].name.startswith("machine_temperature")]
    trimmed = [r["info"].get("trimmed", 0) for r in rs]
    return dict(g=g, macro=macro, skab=skab_pooled(rs), mt=mt[0] if mt else float("nan"), far=far,
                trimmed=float(np.median(trimmed)))


def run_dynamics(data, odds_tasks, skab, nab, nasa, log=None):
    """{candidate: [summary per seed]} (seeds only for the default and the protocol's rows)."""
    out, cache = {}, {}
    for name, kind, width, kw in DYNAMICS_CANDIDATES:
        key = (kind, width)
        if key not in cache:
            cache[key] = (_rows_diff_tasks(data, skab, nab, nasa) if kind == "rows+diff" else
                          stream_feature_tasks(data, kind, width, skab, nab, nasa))
        seeds = DYNAMICS_SEEDS if not kw and kind in ("rows", "level-dynamics") and width == 16 else (0,)
        out[name] = []
        for seed in seeds:
            t0 = time.time()
            rs = evaluate(odds_tasks + cache[key], {"x": lambda t: run_detector(t, seed, **kw)})["x"]
            out[name].append(_summary(rs))
            if log:
                print(f"  {name} seed {seed}: {out[name][-1]['macro']:.3f} ({time.time() - t0:.0f} s)",
                      file=log, flush=True)
    base = cache[("level-dynamics", 16)]
    for k in SMOOTHING:
        out[f"level-dynamics, score = mean of the last {k} window scores"] = [
            _summary(evaluate(odds_tasks + base, {"x": lambda t, k=k: run_smoothed(t, k)})["x"])]
    out["level-dynamics, following the stream (partial_fit, half_life = training rows)"] = [
        _summary(evaluate(odds_tasks + base, {"x": lambda t: run_ours_adapt(t) if t.group != "ODDS" else
                                              run_detector(t)})["x"])]
    for label, fn in (("IsolationForest on level-dynamics", run_iforest),
                      ("scikit-learn GaussianMixture (K=1) on level-dynamics", run_skgmm)):
        out[label] = [_summary(evaluate(odds_tasks + base, {"x": fn})["x"])]
    return out


# --min-event-length candidates (flagged windows): 1, a quarter, half and all of the width; merge gap = the width
EVENT_MIN_LENGTHS = (1, DYNAMICS_WIDTH // 4, DYNAMICS_WIDTH // 2, DYNAMICS_WIDTH)


def nab_event_study(data, nab):
    """NAB-style event scores of the five NAB series (level-dynamics and raw windows of DYNAMICS_WIDTH,
    the default detector, with and without following the stream): flagged test windows grouped with
    merge_gap = the width, events of fewer than m flagged windows dropped, scored against the runs of
    labelled test windows (mixtura.score_events, standard profile)."""
    from mixtura import group_events, score_events
    rows = []
    for kind in ("level-dynamics", "rows"):
        tasks = stream_feature_tasks(data, kind, DYNAMICS_WIDTH, [], nab, [])
        for adapt in (False, True):
            runs = [(t, (run_ours_adapt if adapt else run_detector)(t)) for t in tasks]
            for m in EVENT_MIN_LENGTHS:
                tot = dict(det=0, win=0, false=0, norm=[])
                for t, (neg, flag, _) in runs:
                    ev = group_events(flag, -neg, min_length=m, merge_gap=DYNAMICS_WIDTH)
                    windows = [(int(a), int(b)) for a, b in _runs(t.yte == 1)]
                    sc = score_events(ev, windows, n=len(t.yte))
                    tot["det"] += sc.windows_detected
                    tot["win"] += len(windows)
                    tot["false"] += sc.false_events
                    tot["norm"].append(sc.normalized)
                rows.append((kind, adapt, m, tot["det"], tot["win"], tot["false"], float(np.mean(tot["norm"]))))
    return rows


def _runs(mask):
    edges = np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]]))
    return zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1)


def nab_event_table(rows):
    L = [f"### Events on NAB (5 series; merge gap {DYNAMICS_WIDTH} windows; NAB-style score, standard profile)\n",
         "| features | following the stream | min. flagged windows per event | labelled windows detected | "
         "false events (sum) | NAB-style score (mean of series; 100 = each window at its start, 0 = no alarm) |",
         "|---|---|---|---|---|---|"]
    for kind, adapt, m, det, win, false, norm in rows:
        L.append(f"| {kind} | {'yes' if adapt else 'no'} | {m} | {det} of {win} | {false} | {norm:.1f} |")
    L.append("")
    return L


def dynamics_tables(res):
    L = ["| candidate | ODDS | SKAB | NAB | NASA | **mean of groups** | SKAB pooled F1 / FAR | NAB machine_temperature | "
         "realised FAR, median: SKAB / NAB / NASA (target 0.01) | training rows trimmed (median) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for name, runs in res.items():
        def cell(f, p=3):
            v = [f(r) for r in runs]
            if any(x is None or np.isnan(x) for x in v):
                return "—"
            return f"{np.mean(v):.{p}f}" + (f" [{min(v):.{p}f}, {max(v):.{p}f}]" if len(v) > 1 else "")
        groups = [cell(lambda r, k=k: r["g"][k][0]) for k in GROUPS]
        sk = cell(lambda r: r["skab"] and r["skab"][0]) + " / " + cell(lambda r: r["skab"] and r["skab"][1])
        far = " / ".join(cell(lambda r, k=k: r["far"][k]) for k in ("SKAB", "NAB", "NASA"))
        L.append(f"| {name} | " + " | ".join(groups) + f" | **{cell(lambda r: r['macro'])}** | {sk} | "
                 f"{cell(lambda r: r['mt'])} | {far} | {cell(lambda r: r['trimmed'])} |")
    L.append("")
    L.append(f"Seeds {list(DYNAMICS_SEEDS)} (random_state: the calibration hold-out and the initialisation) for "
             "the first two rows: [min, max] over them is the noise estimate; the other rows use seed 0.")
    L.append("")
    return L


def main():
    ap_ = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap_.add_argument("--data", default=DEFAULT_DATA)
    ap_.add_argument("--quick", action="store_true", help="small subset, < 1 minute")
    ap_.add_argument("--sweep", action="store_true", help="also run the candidate defaults and threshold study")
    ap_.add_argument("--ours", choices=["auto", "yes", "no"], default="auto",
                     help="run mixtura.DensityAnomalyDetector (auto: when importable)")
    ap_.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="sliding-window width for NAB")
    ap_.add_argument("--adapt", action="store_true",
                     help="also run the detector that follows the test stream (partial_fit)")
    ap_.add_argument("--gaps", action="store_true",
                     help="run only the missing-values study (complete / marginal / imputed), ~7 min")
    ap_.add_argument("--gap-seeds", type=int, default=GAP_SEEDS, help="removal seeds of the --gaps study")
    ap_.add_argument("--dynamics", action="store_true",
                     help="run only the study of window features and trimmed fits (level-dynamics), ~1-2 min")
    ap_.add_argument("--out", help="also write the Markdown to this file")
    args = ap_.parse_args()
    if not os.path.isdir(args.data):
        sys.exit(f"data folder not found: {args.data}")
    T0 = time.time()
    cmd = "python3 bench/anomaly_eval.py " + " ".join(sys.argv[1:])
    L = [f"Command: `{cmd.strip()}`  ",
         f"numpy {np.__version__}, scikit-learn {__import__('sklearn').__version__}, "
         f"one thread per process. No data are subsampled"
         + (" (--quick: only a subset of the datasets is run)." if args.quick else "."), ""]

    odds, skab, nab, nasa, tasks = build_tasks(args.data, args.quick, args.width)

    if args.dynamics:
        if mixtura_detector() is None:
            sys.exit("--dynamics needs mixtura.DensityAnomalyDetector")
        res = run_dynamics(args.data, [t for t in tasks if t.group == "ODDS"], skab, nab,
                           ["E-1"] if args.quick else NASA_CHANNELS, log=sys.stderr)
        L.append(f"## Level and dynamics: window features and trimmed fits (width {DYNAMICS_WIDTH} unless named)\n")
        L += dynamics_tables(res)
        L += nab_event_table(nab_event_study(args.data, nab))
        return emit(L, T0, args.out)

    if args.gaps:
        if mixtura_detector() is None:
            sys.exit("--gaps needs mixtura.DensityAnomalyDetector")
        seeds = range(args.gap_seeds)
        res = run_gaps(tasks, seeds, log=sys.stderr)
        L.append(f"## Missing values (NAB window width {args.width}; removal seeds 0..{args.gap_seeds - 1})\n")
        L += gap_tables(res, seeds)
        return emit(L, T0, args.out)

    # PyOD protocol check
    L += ["## ODDS, PyOD protocol: 1-component full GMM vs PyOD's published GMM column\n",
          "| dataset | our file shape | PyOD's shape | ROC-AUC mixtura.GaussianMixture | ROC-AUC scikit-learn "
          "| published | diff (mixtura) | comparable |",
          "|---|---|---|---|---|---|---|---|"]
    for nm, shp, pshp, r, p, same in pyod_check(odds, args.data):
        ours = r.get("mixtura", float("nan"))
        L.append(f"| {nm} | {shp[0]}×{shp[1]} | {pshp[0]}×{pshp[1]} | {ours:.3f} | {r['scikit-learn']:.3f} | "
                 f"{p:.3f} | {ours - p:+.3f} | {'yes' if same else 'no (different file)'} |")
    L.append("")

    methods = {"iforest": run_iforest, "sk-gmm": run_skgmm,
               "proto": lambda t: run_proto(t, key=(t.group, t.name, args.width))}
    Det = mixtura_detector()
    if args.ours == "yes" and Det is None:
        sys.exit("--ours yes: mixtura.DensityAnomalyDetector is not importable")
    if args.ours != "no" and Det is not None:
        methods["ours"] = run_ours
        if args.adapt:
            methods["ours-adapt"] = run_ours_adapt
    else:
        L.append("`mixtura.DensityAnomalyDetector` not importable: `ours` column omitted; "
                 "`proto` is the scikit-learn prototype of the recommended default.\n")
    res = evaluate(tasks, methods)
    order = list(methods)
    L.append(f"## Novelty / stream protocols (NAB window width {args.width})\n")
    L += tables(res, order)

    L.append("### SKAB pooled F1 / false-alarm rate / missed-alarm rate at each method's own threshold\n")
    L.append("| method | threshold | F1 | FAR | MAR |")
    L.append("|---|---|---|---|---|")
    thr = {"iforest": "contamination='auto'", "proto": "calibrate, false_alarm_rate=0.01",
           "ours": "default"}
    for m in order:
        p = skab_pooled(res[m])
        if p:
            L.append(f"| {m} | {thr.get(m, '')} | {p[0]:.3f} | {100 * p[1]:.1f} % | {100 * p[2]:.1f} % |")
    L.append(f"| Hotelling T² (published) | — | {PUB_SKAB_T2['F1']} | {100 * PUB_SKAB_T2['FAR']:.1f} % | "
             f"{100 * PUB_SKAB_T2['MAR']:.1f} % |")
    L.append("")
    if "ours-adapt" in res:
        L += adaptation_table(res)
    mt = [i for i, r in enumerate(res[order[0]]) if r["task"].name.startswith("machine_temperature")]
    if mt:
        i = mt[0]
        L.append("### NAB machine_temperature vs NAB's published detectors (ROC-AUC)\n")
        L.append("| " + " | ".join(order) + " | " + " | ".join(PUB_NAB_MT) + " |")
        L.append("|" + "---|" * (len(order) + len(PUB_NAB_MT)))
        L.append("| " + " | ".join(fmt(res[m][i]["roc"]) for m in order) + " | " +
                 " | ".join(f"{v:.3f}" for v in PUB_NAB_MT.values()) + " |")
        L.append("")
    if "proto" in res:
        L.append("Components chosen by BIC (proto): " + ", ".join(
            f"{r['task'].name}={r['info']['K']}" for r in res["proto"] if r["task"].group != "SKAB") +
            "; SKAB files: " + str(sorted({r['info']['K'] for r in res['proto']
                                           if r['task'].group == 'SKAB'})) + "\n")

    if args.sweep:
        cache = {args.width: tasks}

        def tasks_by_width(w):
            if w not in cache:
                cache[w] = [t for t in tasks if t.group != "NAB"] + nab_tasks(nab, w)
                cache[w].sort(key=lambda t: GROUPS.index(t.group))
            return cache[w]
        S, sres = sweep(args.data, tasks_by_width, args.width, None)
        L += S
        L += threshold_study([("calibrate (tail 20 %)", sres[CANDIDATES[0][0]]),
                               ("calibrate (random 20 %)", sres["calibration split random"]),
                               ("calibrate (tail 10 %)", sres["calibration_fraction 0.1"]),
                               ("model-tail", sres["no hold-out (model-tail threshold)"])])

    emit(L, T0, args.out)


def emit(lines, t0, out):
    """Prints the tables with the run time, and writes them to `out` too when given."""
    lines.append(f"Total run time {time.time() - t0:.0f} s.")
    text = "\n".join(lines)
    print(text)
    if out:
        with open(out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
