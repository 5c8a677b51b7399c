"""K-means, Gaussian mixtures and the density anomaly detector on Dask arrays: each iteration's statistics
are computed where the blocks live, merged in a fixed tree over block order, and the small update runs on
the client (docs/dask.md).

``pip install 'mixtura[dask]'`` brings dask and distributed; ``import mixtura`` works without them.
"""
import functools
import json
import math
import warnings

try:
    import dask
    import dask.array as da
except ImportError as e:  # pragma: no cover - exercised by a subprocess test without dask
    raise ImportError("mixtura.dask needs dask: pip install 'mixtura[dask]' (or pip install 'dask[array]' "
                      "distributed)") from e

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from . import _core, _params
from ._anomaly import DensityAnomalyDetector as _DensityAnomalyDetector
from ._gmm import GaussianMixture as _GaussianMixture, _check_initial_shapes
from ._kmeans import KMeans as _KMeans, _init_of
from ._kmeans_stats import KMeansStatistics

__all__ = ["KMeans", "GaussianMixture", "DensityAnomalyDetector"]

# A merge node folds this many children in block order. 64 is the number of reduction groups of the
# one-machine pass, which folds them in order: up to 64 blocks, the same sums in the same order.
_SPLIT_EVERY = 64
_SPLIT = _params.Int(2, what="an integer >= 2")


# ---- Input: a Dask array of rows, chunked along the rows only ---------------------------------------

def _rows(X, who):
    """X as a 2-d float32/float64 Dask array with one chunk across the columns and known row chunks.
    Takes a Dask array, a Dask DataFrame of numeric columns, or anything NumPy reads (one block)."""
    if hasattr(X, "to_dask_array") and hasattr(X, "dtypes"):  # a Dask DataFrame
        dtypes = X.dtypes if hasattr(X.dtypes, "items") else {X.name: X.dtypes}
        bad = [f"{c!r} ({t})" for c, t in dtypes.items() if getattr(t, "kind", "O") not in "biuf"]
        if bad:
            raise ValueError(f"{who}: the DataFrame's columns must be numeric; not: {', '.join(bad)}")
        X = X.to_dask_array(lengths=True)
    elif not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X))  # one block
    if X.ndim != 2:
        raise ValueError(f"{who}: X must be 2-d (n_samples, n_features), got {X.ndim}-d of shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{who}: X must hold numbers, got dtype {X.dtype}")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if any(math.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.shape[1] < 1:
        raise ValueError(f"{who}: X has 0 features (shape {X.shape}); at least 1 is required")
    return X.rechunk({1: -1})


def _feature_names(X):
    """X's column names when it is a (Dask or pandas) DataFrame whose names are all strings, else None
    (scikit-learn's rule for feature_names_in_)."""
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "dtypes"):
        return None
    names = list(columns)
    return np.asarray(names, dtype=object) if names and all(isinstance(c, str) for c in names) else None


def _with_feature_names(fit):
    """fit that sets feature_names_in_ from X as scikit-learn does (removed for X without names); a fit
    that raises leaves the previous value."""
    @functools.wraps(fit)
    def wrapped(self, X, *args, **kwargs):
        names = _feature_names(X)
        previous = self.__dict__.pop("feature_names_in_", None)
        try:
            out = fit(self, X, *args, **kwargs)
        except BaseException:
            if previous is not None:
                self.feature_names_in_ = previous
            raise
        if names is not None:
            self.feature_names_in_ = names
        return out
    return wrapped


def _check_feature_names(est, X):
    """scikit-learn's check of X's column names against the fit's, for Dask input: an error when both
    have names that differ, a warning when only one side has them."""
    names, fitted = _feature_names(X), getattr(est, "feature_names_in_", None)
    kind = type(est).__name__
    if names is None and fitted is not None:
        warnings.warn(f"X does not have valid feature names, but {kind} was fitted with feature names", UserWarning,
                      stacklevel=3)
    elif names is not None and fitted is None:
        warnings.warn(f"X has feature names, but {kind} was fitted without feature names", UserWarning, stacklevel=3)
    elif names is not None and (len(names) != len(fitted) or np.any(names != fitted)):
        raise ValueError(f"The feature names should match those that were passed during fit. Fitted with: "
                         f"{list(fitted)}; X has: {list(names)}")


def _scoring_weights(sample_weight, X, who):
    """_weights for a score: the values checked as the host scores check them (finite, >= 0, not all
    zero, a finite sum), in one pass over the weights, since no first pass over X reads them."""
    w = _weights(sample_weight, X, who)
    if w is None:
        return None
    bad = ~da.isfinite(w) | (w < 0)
    any_bad, first, total, positive = dask.compute(bad.any(), da.argmax(bad), w.astype(np.float64).sum(),
                                                   (w > 0).any())
    if any_bad:
        i = int(first)
        v = float(w[i].compute())
        raise ValueError(f"{who}: sample_weight[{i}] = {v:g} " + ("is not finite" if not math.isfinite(v) else
                                                                  "is negative"))
    if not positive:
        raise ValueError(f"{who}: sample_weight is all zero ({X.shape[0]} rows); at least one weight must be > 0")
    if not math.isfinite(total):
        raise ValueError(f"{who}: sample_weight sums to {total:g}; need a positive finite sum")
    return w


def _weights(sample_weight, X, who):
    """sample_weight as a 1-d Dask array in X's dtype with X's row chunks (None stays None)."""
    if sample_weight is None:
        return None
    w = sample_weight if isinstance(sample_weight, da.Array) else da.from_array(np.asarray(sample_weight))
    if w.ndim != 1 or w.shape[0] != X.shape[0]:
        raise ValueError(f"{who}: sample_weight must have shape ({X.shape[0]},), got {w.shape}")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{who}: sample_weight must hold numbers, got dtype {w.dtype}")
    return w.astype(X.dtype).rechunk((X.chunks[0],))


class _Blocks:
    """The row blocks of X (and of the weights) as delayed objects, with each block's first row."""

    def __init__(self, X, w):
        self.X = X
        self.w = w
        self.x = list(X.to_delayed().ravel())
        self.wb = [None] * len(self.x) if w is None else list(w.to_delayed().ravel())
        sizes = np.asarray(X.chunks[0], dtype=np.int64)
        self.sizes = sizes
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    def nonempty(self):
        return [b for b in range(len(self.x)) if self.sizes[b] > 0]

    def moments(self, who, split):
        """The first pass: every value and weight checked; (rows, total weight, feature means, feature
        sums of squared deviations)."""
        parts = [dask.delayed(_moments_block, pure=True)(self.x[b], self.wb[b], int(self.starts[b]), who)
                 for b in self.nonempty()]
        out = _compute(_tree(parts, _merge_moments, split))
        if not out[1] > 0:
            raise ValueError(f"{who}: sample_weight sums to {out[1]:g}; at least one row must weigh > 0")
        return out


def _tree(parts, merge, split_every):
    """The parts merged in a fixed tree over their order: each node folds up to split_every children
    left to right. The tree depends on the number of parts only, never on where they are computed."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [dask.delayed(merge, pure=True)(*parts[i:i + split_every]) if len(parts[i:i + split_every]) > 1
                 else parts[i] for i in range(0, len(parts), split_every)]
    return parts[0]


def _shared(a):
    """One graph key holding a (small) array that many block tasks read: sent once to each worker,
    not embedded in every task."""
    return dask.delayed(a, pure=True, traverse=False)


def _compute(obj):
    (out,) = dask.compute(obj)
    return out


# ---- Block functions (module level: workers unpickle them by name) ----------------------------------

def _c(a):
    return np.ascontiguousarray(a)


def _stream_key(*parts):
    """A 64-bit key for one random stream, from (seed, restart, round, ...)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0])


def _row_uniforms(key, first_row, n, per_row=1):
    """per_row uniforms in [0, 1) for each of rows first_row .. first_row + n - 1, from a hash of (key, row,
    j) alone: the same draws for any chunking and any worker. SplitMix64's finaliser."""
    with np.errstate(over="ignore"):
        z = np.arange(first_row * per_row, (first_row + n) * per_row, dtype=np.uint64)
        z = z * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    return u.reshape(n, per_row) if per_row > 1 else u


_VALUE_LIMIT = 1e150  # the core's kDataValueLimit: beyond it, squares overflow double


def _moments_block(x, w, first_row, who):
    """Rows, total weight, feature means and sums of squared deviations of one block (unweighted); a
    ValueError naming the row in the whole array for a value the core refuses or a bad weight."""
    x = np.asarray(x)
    n = x.shape[0]
    if n and not float(np.abs(x).max()) <= _VALUE_LIMIT:  # (NaN fails too) then find the first bad value
        bad = ~(np.abs(x.astype(np.float64)) <= _VALUE_LIMIT)
        i, j = (int(v) for v in np.argwhere(bad)[0])
        row, v = first_row + i, float(x[i, j])
        if np.isfinite(v):
            raise ValueError(f"{who}: X holds {v:g} at row {row}, column {j}: values must be within +-1e+150 "
                             "(beyond, their squares overflow double); rescale the data")
        raise ValueError(f"{who}: X contains a non-finite value ({v:g}) at row {row}, column {j}")
    if w is not None:
        w = np.asarray(w, dtype=np.float64)
        bad = ~(np.isfinite(w) & (w >= 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{who}: sample_weight[{first_row + i}] = {w[i]:g}; weights must be finite and >= 0")
    x = x.astype(np.float64, copy=False)
    D = x.shape[1]
    mean = np.ones(n) @ x / n if n else np.zeros(D)
    # Squared deviations in slices against a tiled mean: one long loop (broadcasting a short row per
    # row costs ten times more), no N-sized temporary.
    rows = 16384
    tiled = np.tile(mean, min(n, rows))
    m2 = np.zeros(D)
    for a in range(0, n, rows):
        part = x[a:a + rows]
        d = (part.reshape(-1) - tiled[:part.size]).reshape(part.shape)
        m2 += np.einsum("ij,ij->j", d, d)
    total = float(n) if w is None else float(w.sum())
    return n, total, mean, m2


def _merge_moments(*parts):
    """Chan et al.'s pairwise update, folded in order."""
    n, total, mean, m2 = parts[0]
    for n2, t2, mean2, m22 in parts[1:]:
        if n2 == 0:
            continue
        delta = mean2 - mean
        both = n + n2
        mean = mean + delta * (n2 / both)
        m2 = m2 + m22 + delta ** 2 * (n * n2 / both)
        n, total = both, total + t2
    return n, total, mean, m2


def _kmeans_stats_block(x, w, centres, n_threads, keep_farthest=-1):
    x = _c(x)
    return _core.typed("kmeans_statistics", x.dtype)(x, None if w is None else _c(w), centres, n_threads,
                                                     keep_farthest)


def _merge_kmeans(*parts):
    out = parts[0]
    for p in parts[1:]:
        out = _core.kmeans_statistics_merge(out, p)
    return out


def _inertia_block(x, w, centres, n_threads):
    x = _c(x)
    return -_core.typed("kmeans_score", x.dtype)(x, None if w is None else _c(w), centres, n_threads)


def _sum_in_order(*parts):
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _inertia(blocks, centres, n_threads, split):
    """The weighted distortion of all rows under centres (the one-machine fit's final pass, per block)."""
    centres = _shared(centres)
    return float(_compute(_tree([dask.delayed(_inertia_block, pure=True)(blocks.x[b], blocks.wb[b], centres, n_threads)
                                 for b in blocks.nonempty()], _sum_in_order, split)))


def _nearest(x, centres, n_threads):
    """(index of the nearest centre, squared distance to it in double) of each row."""
    x = _c(x)
    labels = _core.typed("kmeans_predict", x.dtype)(x, centres, n_threads)
    d = x.astype(np.float64) - centres[labels].astype(np.float64)
    return labels, np.einsum("ij,ij->i", d, d)


def _nearest_block(x, w, candidates, n_threads):
    """Weighted squared distance of each row to its nearest candidate."""
    _, d2 = _nearest(x, candidates, n_threads)
    if w is not None:
        d2 = d2 * np.asarray(w, dtype=np.float64)
    return d2


def _cost_block(x, w, candidates, n_threads):
    return float(_nearest_block(x, w, candidates, n_threads).sum()) if len(x) else 0.0


def _sample_block(x, w, candidates, n_threads, ell, cost, key, first_row):
    """k-means|| round: each row joins the candidates with probability min(1, ell w d^2 / cost), its
    uniform hashed from (the round's key, its row): no chunking or schedule changes the draw."""
    if not len(x):
        return np.empty((0, candidates.shape[1]), dtype=candidates.dtype)
    d2 = _nearest_block(x, w, candidates, n_threads)
    u = _row_uniforms(key, first_row, len(d2))
    return _c(np.asarray(x)[u * cost < ell * d2])


def _concat(*parts):
    return np.concatenate(parts)


def _gmm_stats_block(x, w, model, first_row, n_threads):
    x = _c(x)
    return _core.typed("gmm_statistics", x.dtype)(x, None if w is None else _c(w), *model, first_row, n_threads)


def _soft_stats_block(x, w, centres, covariance_type, n_threads, init, key, first_row):
    """GaussianMixtureStatistics of given responsibilities (the EM's starting M-step): hard labels of the
    nearest centre (init "kmeans") or uniform random ones, normalised (init "random"), moments taken
    around the centres."""
    x = _c(x)
    n, D = x.shape
    K = centres.shape[0]
    if init == "kmeans":
        labels = _core.typed("kmeans_predict", x.dtype)(x, centres.astype(x.dtype), n_threads)
        resp = np.zeros((n, K))
        resp[np.arange(n), labels] = 1.0
    else:
        resp = _row_uniforms(key, first_row, n, K).reshape(n, K)
        resp /= resp.sum(axis=1, keepdims=True)
    wv = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    rw = resp * wv[:, None]
    nk = rw.sum(axis=0)
    xd = x.astype(np.float64)
    s1 = rw.T @ xd - nk[:, None] * centres
    full = covariance_type in ("full", "tied")
    s2 = np.empty((K, D, D) if full else (K, D))
    for k in range(K):
        d = xd - centres[k]
        s2[k] = (d * rw[:, [k]]).T @ d if full else rw[:, k] @ (d * d)
    state = (covariance_type, K, D, nk, s1, _c(centres), s2, 0.0, 0.0, float(wv.sum()), K, np.empty(0),
             np.empty(0, dtype=np.int64), np.empty((0, D)))
    return _core.gmm_statistics_from_state(state)


def _method_block(x, est, name):
    return getattr(est, name)(_c(x))


# ---- Exact order statistics over blocks -------------------------------------------------------------

_BINS = 2048         # a counting pass narrows each bracket to one of this many equal-width bins
_GATHER = 1 << 17    # a bracket holding at most this many values is gathered and sorted on the client


def _minmax_block(v):
    v = np.asarray(v, dtype=np.float64)
    return v.min(axis=0), v.max(axis=0)


def _merge_minmax(*parts):
    lo, hi = parts[0]
    for a, b in parts[1:]:
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    return lo, hi


def _count_block(v, edges):
    """For each (column, edges): how many of the block's values in that column are below each edge."""
    v = np.asarray(v, dtype=np.float64)
    columns = {}
    out = []
    for c, e in edges:
        if c not in columns:
            columns[c] = np.sort(v[:, c])
        out.append(np.searchsorted(columns[c], e, side="left"))
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def _gather_block(v, brackets):
    """For each (column, lo, hi): the block's values in [lo, hi) in that column."""
    v = np.asarray(v, dtype=np.float64)
    return [v[(v[:, c] >= lo) & (v[:, c] < hi), c] for c, lo, hi in brackets]


def _concat_lists(*parts):
    return [np.concatenate(vs) for vs in zip(*parts)]


def _order_statistics(parts, targets, split):
    """Exact order statistics of the values in `parts` (delayed 2-d arrays, one column per series):
    targets is a list of (column, rank), rank counted from 0 in ascending order. One pass finds each
    column's range; each counting pass narrows every bracket [lo, hi) to the bin of _BINS holding its
    rank; a bracket of at most _GATHER values is gathered and sorted, one of a single value is it."""
    lo, hi = _compute(_tree([dask.delayed(_minmax_block, pure=True)(p) for p in parts], _merge_minmax, split))
    brackets = {t: (lo[t[0]], np.nextafter(hi[t[0]], np.inf), 0) for t in targets}  # (lo, hi, values below lo)
    todo = list(dict.fromkeys(targets))
    result = {}
    while todo:
        edges = [(c, np.unique(np.linspace(brackets[(c, r)][0], brackets[(c, r)][1], _BINS + 1))) for c, r in todo]
        counts = _compute(_tree([dask.delayed(_count_block, pure=True)(p, edges) for p in parts], _sum_in_order,
                                split))
        gather, offset = [], 0
        for (c, r), (_, e) in zip(todo, edges):
            below = counts[offset:offset + len(e)]
            offset += len(e)
            i = int(np.searchsorted(below, r, side="right")) - 1  # below[i] <= r < below[i + 1]
            a, b = e[i], e[i + 1]
            brackets[(c, r)] = (a, b, int(below[i]))
            if np.nextafter(a, np.inf) >= b:  # the bracket holds one value (ties): that is the answer
                result[(c, r)] = float(a)
            elif below[i + 1] - below[i] <= _GATHER:
                gather.append((c, r))
        if gather:
            wanted = [(c, brackets[(c, r)][0], brackets[(c, r)][1]) for c, r in gather]
            values = _compute(_tree([dask.delayed(_gather_block, pure=True)(p, wanted) for p in parts],
                                    _concat_lists, split))
            for (c, r), v in zip(gather, values):
                result[(c, r)] = float(np.sort(v)[r - brackets[(c, r)][2]])
        todo = [t for t in todo if t not in result]
    return [result[t] for t in targets]


def _quantiles(parts, n, columns, qs, split):
    """numpy's default (linear) q-quantiles of each column of the n rows in parts: a list per column."""
    targets = []
    for c in range(columns):
        for q in qs:
            h = (n - 1) * q
            targets += [(c, int(math.floor(h))), (c, min(int(math.floor(h)) + 1, n - 1))]
    values = dict(zip(targets, _order_statistics(parts, targets, split)))
    out = []
    for c in range(columns):
        row = []
        for q in qs:
            h = (n - 1) * q
            lo = int(math.floor(h))
            a, b = values[(c, lo)], values[(c, min(lo + 1, n - 1))]
            row.append(a + (h - lo) * (b - a))
        out.append(row)
    return out


# ---- k-means|| -------------------------------------------------------------------------------------

def _kmeans_parallel(blocks, n_clusters, seed, restart, ell, rounds, n_threads, dtype, split):
    """Bahmani et al.'s k-means|| (2012): a first row drawn by weight, then `rounds` rounds that each add
    every row with probability min(1, ell w d^2 / cost); the candidates, weighted by the rows nearest to
    them, are reduced to n_clusters centres by a weighted k-means++ and Lloyd on the client."""
    nonempty = blocks.nonempty()
    rng = np.random.default_rng((seed, restart, 0))
    if blocks.w is None:
        row = int(rng.integers(int(blocks.sizes.sum())))
    else:  # the row whose cumulative weight first passes a uniform draw: blocks first, then within one
        sums = _compute([dask.delayed(np.sum)(blocks.wb[b], dtype=np.float64) for b in nonempty])
        cum = np.cumsum(sums)
        target = rng.random() * cum[-1]
        j = min(int(np.searchsorted(cum, target, side="right")), len(nonempty) - 1)
        wb = np.asarray(_compute(blocks.wb[nonempty[j]]), dtype=np.float64)
        inner = np.cumsum(wb)
        local = min(int(np.searchsorted(inner, target - (cum[j - 1] if j else 0.0), side="right")), len(wb) - 1)
        while local > 0 and wb[local] <= 0:  # (round-off at the block's end) the last row of positive weight
            local -= 1
        row = int(blocks.starts[nonempty[j]]) + local
    candidates = _c(np.asarray(blocks.X[row:row + 1].compute(), dtype=dtype))
    for r in range(1, rounds + 1):
        shared = _shared(candidates)
        cost = sum(_compute([dask.delayed(_cost_block, pure=True)(blocks.x[b], blocks.wb[b], shared, n_threads)
                             for b in nonempty]))
        if not cost > 0:
            break  # every row sits on a candidate
        new = [dask.delayed(_sample_block, pure=True)(blocks.x[b], blocks.wb[b], shared, n_threads, ell, cost,
                                                      _stream_key(seed, restart, r), int(blocks.starts[b]))
               for b in nonempty]
        added = _compute(_tree(new, _concat, split))
        candidates = _c(np.concatenate([candidates, added.astype(dtype, copy=False)]))
    if len(candidates) < n_clusters:  # fewer distinct rows than clusters: top up with rows drawn uniformly
        extra = np.sort(np.random.default_rng((seed, restart, rounds + 1)).integers(
            int(blocks.sizes.sum()), size=n_clusters - len(candidates)))
        candidates = _c(np.concatenate([candidates, np.asarray(blocks.X[extra].compute(), dtype=dtype)]))
    shared = _shared(candidates)
    stats = _compute(_tree([dask.delayed(_kmeans_stats_block, pure=True)(blocks.x[b], blocks.wb[b], shared,
                                                                         n_threads) for b in nonempty],
                           _merge_kmeans, split))
    weight = np.asarray(stats["weight"], dtype=np.float64)
    keep = weight > 0
    if keep.sum() < n_clusters:  # (duplicates) keep the weightless candidates too, with a tiny weight
        weight = np.where(keep, weight, weight[keep].min() * 1e-12 if keep.any() else 1.0)
        keep = np.ones_like(keep)
    recluster = _KMeans(n_clusters, init="k-means++", n_init=1, random_state=(seed + 1 + restart) % 2**64,
                        n_threads=n_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        recluster.fit(candidates[keep], sample_weight=weight[keep].astype(dtype))
    return _c(recluster.cluster_centers_.astype(dtype)), int(len(candidates))


# ---- Estimators ------------------------------------------------------------------------------------

def _is_dask(X):
    return isinstance(X, da.Array) or (hasattr(X, "to_dask_array") and hasattr(X, "dtypes"))


class _DaskMixin:
    """Fitted-model methods on Dask input: the one-machine estimator's method, block by block."""

    _base = None

    def _one_machine(self):
        """The one-machine estimator holding this fit (what the blocks' tasks receive)."""
        check_is_fitted(self)
        base = self._base(**{k: getattr(self, k) for k in self._base._get_param_names() if k in self._param_checks})
        # Without feature_names_in_: the blocks are arrays, whose names _blockwise checked as a whole.
        base.__dict__.update({k: v for k, v in self.__dict__.items()
                              if k.endswith("_") and not k.startswith("__") and not _is_dask(v)
                              and k != "feature_names_in_"})
        if hasattr(self, "_exact"):  # a float32 GaussianMixture's float64 model
            base._exact = self._exact
        return base

    def _fitted_rows(self, X, who):
        """Dask X for a fitted model's method: names and feature count checked as scikit-learn does."""
        check_is_fitted(self)
        _check_feature_names(self, X)
        X = _rows(X, who)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input.")
        return X

    def _blockwise(self, X, name, who, out_columns=None, dtype=None):
        if not _is_dask(X):
            return getattr(self._base, name)(self, X)
        X = self._fitted_rows(X, who)
        est = _shared(self._one_machine())
        dtype = X.dtype if dtype is None else dtype
        if out_columns is None:
            return X.map_blocks(_method_block, est, name, drop_axis=1, dtype=dtype, meta=np.empty((0,), dtype))
        return X.map_blocks(_method_block, est, name, chunks=(X.chunks[0], (out_columns,)), dtype=dtype,
                            meta=np.empty((0, 0), dtype))

    def _to_sections(self, prefix="", side=None):
        """The one-machine estimator's sections: the Dask-only parameters travel beside the file when
        pickled and are left out of a saved file (which mixtura.load reads as the one-machine kind); a
        lazy labels_ stays out (writing it would run a pass over the data)."""
        labels = self.__dict__.pop("labels_", None)
        try:
            if labels is not None and not _is_dask(labels):
                self.labels_ = labels
            s = super()._to_sections(prefix, side)
        finally:
            if labels is not None:
                self.labels_ = labels
        params = json.loads(s[prefix + "params"])
        for name in _DASK_CHECKS:
            value = params.pop(name, None)
            if side is not None:
                side[prefix + name] = value
        if params.get("init") == "k-means||":  # k-means++ is what a one-machine refit would run
            params["init"] = "k-means++"
            if side is not None:
                side[prefix + "init"] = "k-means||"
        s[prefix + "params"] = json.dumps(params, allow_nan=False)
        return s


_DASK_CHECKS = {
    "oversampling_factor": _params.Real(0, math.inf, "neither"),
    "init_max_iter": _params.Int(1, 1000, what="an integer in [1, 1000]"),
    "split_every": _SPLIT,
}


class KMeans(_DaskMixin, _KMeans):
    """K-means on a Dask array (or a Dask DataFrame of numeric columns), by Lloyd's algorithm.

    Each iteration computes :meth:`mixtura.KMeans.statistics` of every block where the block lives,
    merges them in a fixed tree over block order (``split_every`` children per node), and updates the
    centres on the client: no N-sized array reaches the client. The parameters, attributes and traces
    are those of :class:`mixtura.KMeans`, with these differences:

    - ``init="k-means||"`` (the default): Bahmani et al.'s scalable k-means++ (2012), ``init_max_iter``
      rounds sampling about ``oversampling_factor * n_clusters`` rows each, the candidates weighted by
      the rows nearest to them and reduced by a weighted k-means++ and Lloyd on the client. Each
      row's draw is hashed from (random_state, restart, round, its row index): the result does not
      depend on the chunking or on which worker runs which block. ``"random"`` draws n_clusters rows
      uniformly; an array gives the centres. (``"k-means++"``, inherently sequential, is
      ``"k-means||"`` here.)
    - ``labels_`` is a lazy Dask array (computed when asked, block by block).
    - ``predict``, ``transform`` and ``score`` of Dask input run block by block (``predict`` and
      ``transform`` return Dask arrays); NumPy input is scored on the client as by mixtura.KMeans.
    - ``n_threads`` (default 1) is each block's C++ threads: Dask already runs blocks in parallel.
    - no ``copy_x`` or ``algorithm`` (scikit-learn's names that mixtura.KMeans accepts), and ``init``
      is not a callable.

    Results are bit-identical for any number of workers and threads and any scheduler; with blocks
    cut where the one-machine pass cuts its reduction groups (256-row blocks, at most 64 groups;
    docs/streams.md) and the same initial centres, they equal ``mixtura.KMeans``'s bit for bit, and to
    rounding for any chunking. Saved files are KMeans files (``mixtura.load`` gives a mixtura.KMeans).
    """

    _base = _KMeans
    _param_checks = {**{k: v for k, v in _KMeans._param_checks.items() if k not in ("device", "copy_x", "algorithm")},
                     "init": _params.Any(),
                     **_DASK_CHECKS}
    device = "cpu"  # the blocks' passes run on the workers' CPUs

    def __init__(self, n_clusters=8, *, init="k-means||", n_init="auto", max_iter=300, tol=1e-4, verbose=0,
                 random_state=None, n_threads=1, oversampling_factor=2.0, init_max_iter=5,
                 split_every=_SPLIT_EVERY):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.n_threads = n_threads
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter
        self.split_every = split_every

    def _check_params(self):
        who = type(self).__name__
        if isinstance(self.init, str) and self.init not in ("k-means||", "k-means++", "random"):
            raise ValueError(f"{who}: init must be 'k-means||', 'k-means++', 'random' or an array of initial "
                             f"centres, got {self.init!r}")
        p = super()._check_params()
        if isinstance(p["init"], str) and p["init"] == "k-means++":
            p["init"] = "k-means||"
        return p

    @_with_feature_names
    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering of a Dask array (or Dask DataFrame; NumPy input is one block)."""
        who = "KMeans.fit"
        p = self._check_params()
        X = _rows(X, who)
        w = _weights(sample_weight, X, who)
        self._check_n_samples(X.shape[0], p)
        blocks = _Blocks(X, w)
        return self._fit_blocks(blocks, blocks.moments(who, p["split_every"]), p, who)

    def _fit_blocks(self, blocks, moments, p, who):
        """fit on checked blocks whose first pass (moments: checks, means, deviations) is done."""
        X = blocks.X
        n_threads = p["n_threads"]
        split = p["split_every"]
        n, _, _, m2 = moments
        tol_abs = 0.0 if p["tol"] == 0 else p["tol"] * float(np.mean(m2 / n))
        seed = _params.seed(p["random_state"])
        given = not isinstance(p["init"], str)
        if given:
            _, init_centres = _init_of(self, X.shape[1], X.dtype)
        runs = []
        for restart in range(p["n_init"]):
            if given:
                centres = init_centres.copy()
            elif p["init"] == "random":
                rows = np.sort(np.random.default_rng((seed, restart, 0)).choice(
                    int(n), size=p["n_clusters"], replace=False))
                centres = _c(np.asarray(X[rows].compute(), dtype=X.dtype))
            else:
                ell = p["oversampling_factor"] * p["n_clusters"]
                centres, _ = _kmeans_parallel(blocks, p["n_clusters"], seed, restart, ell, p["init_max_iter"],
                                              n_threads, X.dtype, split)
            runs.append(self._lloyd(blocks, centres, p, tol_abs, restart, split))
        best = min(range(len(runs)), key=lambda r: runs[r][1])
        self._set_runs(runs, best)
        self.labels_ = self._blockwise(X, "predict", who, dtype=np.int32)
        if not self.converged_:
            warnings.warn(f"KMeans did not converge in max_iter={self.max_iter} iterations; increase max_iter or "
                          "tol.", ConvergenceWarning)
        return self

    def _lloyd(self, blocks, centres, p, tol_abs, restart, split):
        """One restart: (estimator state, inertia, converged)."""
        state = _KMeans(p["n_clusters"], n_threads=p["n_threads"])
        state.cluster_centers_ = centres
        state.distortion_traces_ = [np.empty((0, 2))] * restart + [np.empty((0, 2))]
        state.distortion_trace_ = state.distortion_traces_[restart]
        state.n_iter_, state.events_, state.inertia_ = 0, [], math.nan
        state.n_features_in_ = centres.shape[1]
        nonempty = blocks.nonempty()
        shift, stats = math.inf, None
        for it in range(p["max_iter"]):
            c = _shared(_c(state.cluster_centers_))
            # As fit: the re-seeding candidates are sought (a second pass) only when a cluster is empty.
            for keep in (0, -1):
                stats = _compute(_tree([dask.delayed(_kmeans_stats_block, pure=True)(
                    blocks.x[b], blocks.wb[b], c, p["n_threads"], keep) for b in nonempty], _merge_kmeans, split))
                if (np.asarray(stats["weight"]) > 0).all():
                    break
            r = state._update(KMeansStatistics(stats))
            shift = r["center_shift"]
            if p["verbose"]:
                print(f"restart {restart} iteration {it}: J {r['distortion_assign']:.6g} -> "
                      f"{r['distortion_update']:.6g}, centre shift {shift:.3g}")
            if shift <= tol_abs:
                break
        converged = shift <= tol_abs
        if shift == 0.0:  # the labels did not move: the last assignment's distortion is the inertia
            inertia = float(stats["distortion"])
        else:
            inertia = _inertia(blocks, _c(state.cluster_centers_), p["n_threads"], split)
        state.inertia_ = inertia
        return state, inertia, converged

    def _set_runs(self, runs, best):
        state = runs[best][0]
        self.cluster_centers_ = state.cluster_centers_
        self.inertia_ = runs[best][1]
        self.n_iter_ = state.n_iter_
        self.distortion_traces_ = [s.distortion_trace_ for s, _, _ in runs]
        self.distortion_trace_ = self.distortion_traces_[best]
        self.events_ = [e for s, _, _ in runs for e in s.events_]
        self.converged_ = bool(runs[best][2])
        self.n_features_in_ = state.cluster_centers_.shape[1]

    def _one_machine(self):
        base = super()._one_machine()
        if isinstance(base.init, str):
            base.init = "k-means++"  # (what a one-machine refit would use; the fit's centres are kept)
        return base

    def predict(self, X):
        """Index of the nearest centre of each row (a Dask array for Dask input)."""
        return self._blockwise(X, "predict", "KMeans.predict", dtype=np.int32)

    def transform(self, X):
        """Distance of each row to each centre (a Dask array for Dask input)."""
        return self._blockwise(X, "transform", "KMeans.transform", out_columns=self.n_clusters)

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).labels_

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the weighted distortion of X (computed block by block for Dask input)."""
        if not _is_dask(X):
            return _KMeans.score(self, X, sample_weight=sample_weight)
        X = self._fitted_rows(X, "KMeans.score")
        blocks = _Blocks(X, _scoring_weights(sample_weight, X, "KMeans.score"))
        return -_inertia(blocks, _c(self.cluster_centers_.astype(X.dtype)), _params.n_threads(self),
                         _params.validate(self, ["split_every"])["split_every"])

    def statistics(self, X, sample_weight=None):
        if _is_dask(X):
            raise ValueError("KMeans.statistics: X must be a NumPy array (one chunk); fit takes the Dask array")
        return _KMeans.statistics(self, X, sample_weight)


_GMM_ONE_MACHINE_ONLY = ("warm_start", "on_degenerate", "learning_offset", "learning_decay", "half_life", "device")


class GaussianMixture(_DaskMixin, _GaussianMixture):
    """A Gaussian mixture fitted by EM on a Dask array (or a Dask DataFrame of numeric columns).

    Each iteration computes :meth:`mixtura.GaussianMixture.statistics` of every block where it lives
    (the C++ E-step, GIL released), merges them in a fixed tree over block order and makes the M-step
    on the client (:meth:`mixtura.GaussianMixture.update`, so ``elbo_trace_``, ``converged_`` and the
    events are those of the one-machine fit). Parameters and attributes are mixtura.GaussianMixture's,
    except:

    - ``init_params="kmeans"`` (default) runs :class:`mixtura.dask.KMeans` (k-means||, then Lloyd) and
      makes the first M-step from its labels; ``"random"`` from random responsibilities, each row's
      hashed from (random_state, restart, its row index). ``"k-means++"`` and ``"random_from_data"`` are not
      offered here. Given ``weights_init``, ``means_init`` and ``precisions_init`` (all three) start EM
      from them; some of them replace those parts of the starting model.
    - ``n_threads`` (default 1) is each block's C++ threads; no ``device``, ``warm_start``,
      ``on_degenerate`` (degenerate components are always recovered, as ``events_`` records) or
      online EM.
    - ``predict``, ``predict_proba``, ``score_samples`` of Dask input return Dask arrays, block by block.

    With the same starting model and blocks cut at the one-machine pass's reduction groups, the fit
    equals mixtura.GaussianMixture's bit for bit; otherwise to rounding. Bit-identical for any number
    of workers and threads and any scheduler.
    """

    _base = _GaussianMixture
    _param_checks = {**{k: v for k, v in _GaussianMixture._param_checks.items() if k not in _GMM_ONE_MACHINE_ONLY},
                     "init_params": _params.Options("kmeans", "random"), **_DASK_CHECKS}
    # The one-machine parameters this fit does not take, at their defaults (the inherited methods read some).
    warm_start, on_degenerate, learning_offset, learning_decay, half_life, device = \
        False, "recover", 10.0, 0.7, None, "cpu"

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, means_init=None, precisions_init=None, random_state=None,
                 verbose=0, n_threads=1, oversampling_factor=2.0, init_max_iter=5, split_every=_SPLIT_EVERY):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.verbose = verbose
        self.n_threads = n_threads
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter
        self.split_every = split_every

    @_with_feature_names
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM over a Dask array (or Dask DataFrame)."""
        who = "GaussianMixture.fit"
        p = _params.validate(self)
        X = _rows(X, who)
        w = _weights(sample_weight, X, who)
        if X.shape[0] < 2:
            raise ValueError(f"{who}: Found array with {X.shape[0]} sample(s) (shape={X.shape}) while a minimum "
                             "of 2 is required.")
        self._check_n_samples(X.shape[0], p)
        blocks = _Blocks(X, w)
        moments = blocks.moments(who, p["split_every"])
        # float32 weights_init within their own rounding of 1 are taken as the one-machine fit takes them.
        init = [_GaussianMixture._weights_f64(p["weights_init"])] + [
            None if a is None else np.asarray(a, dtype=np.float64) for a in (p["means_init"], p["precisions_init"])]
        seed = _params.seed(p["random_state"])
        runs = []
        for restart in range(p["n_init"]):
            start = self._start(blocks, p, init, seed, restart, moments)
            runs.append(self._em(blocks, start, p))
        best = max(range(len(runs)), key=lambda r: runs[r].lower_bound_)
        self._set_runs(runs, best)
        self._set_model({n: getattr(self, n + "_") for n in self._PARAMETERS}, X.dtype)  # X's dtype, as fit's
        if not self.converged_:
            warnings.warn("Best performing initialization did not converge. Try different init parameters, or "
                          "increase max_iter, tol, or check for degenerate data.", ConvergenceWarning)
        return self

    def _state(self, p):
        return _GaussianMixture(p["n_components"], covariance_type=p["covariance_type"], tol=p["tol"],
                                reg_covar=p["reg_covar"], max_iter=p["max_iter"], n_threads=p["n_threads"])

    def _start(self, blocks, p, init, seed, restart, moments):
        """(weights, means, precisions_cholesky) where EM starts; moments: the first pass's."""
        mean = moments[2]
        K, D = p["n_components"], mean.shape[0]
        weights_init, means_init, precisions_init = init
        cov = p["covariance_type"]
        _check_initial_shapes(weights_init, means_init, precisions_init, K, D, cov)
        if all(a is not None for a in init):
            model = {"weights": weights_init, "means": means_init}
        else:
            nonempty = blocks.nonempty()
            if p["init_params"] == "kmeans":
                km = KMeans(K, n_init=1, random_state=(seed + restart) % 2**64, n_threads=p["n_threads"],
                            oversampling_factor=p["oversampling_factor"], init_max_iter=p["init_max_iter"],
                            split_every=p["split_every"])
                with warnings.catch_warnings():  # (the first pass's checks and moments are the fit's own)
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    km._fit_blocks(blocks, moments, km._check_params(), "GaussianMixture.fit")
                centres = km.cluster_centers_.astype(np.float64)
            else:
                centres = np.repeat(mean[None, :], K, axis=0)
            shared = _shared(centres)
            parts = [dask.delayed(_soft_stats_block, pure=True)(blocks.x[b], blocks.wb[b], shared, cov,
                                                                p["n_threads"], p["init_params"],
                                                                _stream_key(seed, restart), int(blocks.starts[b]))
                     for b in nonempty]
            stats = _compute(_tree(parts, _sum_in_order, p["split_every"]))
            r = _core.gmm_update(stats, cov, K, p["reg_covar"], p["tol"], None, None, None, None, 0)
            model = {"weights": r["weights"], "means": r["means"], "precisions_cholesky": r["precisions_cholesky"]}
            if weights_init is not None:
                model["weights"] = weights_init
            if means_init is not None:
                model["means"] = means_init
        if precisions_init is not None:
            model["precisions_cholesky"] = _core.gmm_precision_factors(cov, _c(precisions_init))
        return model

    def _em(self, blocks, model, p):
        state = self._state(p)
        state.weights_ = _c(model["weights"])
        state.means_ = _c(model["means"])
        state.precisions_cholesky_ = _c(model["precisions_cholesky"])
        state.n_features_in_ = state.means_.shape[1]
        state.elbo_trace_ = np.empty((0, 2))
        state.elbo_traces_ = [state.elbo_trace_]
        state.n_iter_, state.events_, state.lower_bound_, state.converged_ = 0, [], -math.inf, False
        nonempty = blocks.nonempty()
        for it in range(p["max_iter"]):
            m = _shared(state._model_args())
            parts = [dask.delayed(_gmm_stats_block, pure=True)(blocks.x[b], blocks.wb[b], m, int(blocks.starts[b]),
                                                               p["n_threads"]) for b in nonempty]
            state.update(_compute(_tree(parts, _sum_in_order, p["split_every"])))
            if p["verbose"]:
                print(f"iteration {it}: lower bound {state.lower_bound_:.10g}")
            if state.converged_:
                break
        return state

    def _set_runs(self, runs, best):
        state = runs[best]
        for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "converged_",
                     "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"):
            setattr(self, name, getattr(state, name))
        self.elbo_traces_ = [s.elbo_trace_ for s in runs]
        self.elbo_trace_ = self.elbo_traces_[best]
        self.events_ = [dict(e, restart=r) for r, s in enumerate(runs) for e in s.events_]
        self.n_steps_, self.stream_statistics_, self._stream_starved = 0, None, None

    def score_samples(self, X):
        """Log-density of each row (a Dask array for Dask input)."""
        return self._blockwise(X, "score_samples", "GaussianMixture.score_samples", dtype=self._output_dtype(X))

    def predict(self, X):
        """Most probable component of each row (a Dask array for Dask input)."""
        return self._blockwise(X, "predict", "GaussianMixture.predict", dtype=np.int64)

    def predict_proba(self, X):
        """Posterior probability of each component (a Dask array for Dask input)."""
        return self._blockwise(X, "predict_proba", "GaussianMixture.predict_proba", out_columns=self.n_components,
                               dtype=self._output_dtype(X))

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean log-density (computed block by block for Dask input)."""
        if not _is_dask(X):
            return _GaussianMixture.score(self, X, sample_weight=sample_weight)
        s = self._blockwise(X, "_score_samples64", "GaussianMixture.score", dtype=np.float64)
        if sample_weight is None:
            return float(s.mean().compute())
        who = "GaussianMixture.score"
        w = _scoring_weights(sample_weight, _rows(X, who), who).astype(np.float64)
        return float(((s * w).sum() / w.sum()).compute())

    def fit_predict(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def partial_fit(self, X, y=None, sample_weight=None):
        raise ValueError("GaussianMixture.partial_fit: mixtura.dask.GaussianMixture fits whole Dask arrays; "
                         "for streams use mixtura.GaussianMixture.partial_fit")

    def statistics(self, X, sample_weight=None, first_row=0):
        if _is_dask(X):
            raise ValueError("GaussianMixture.statistics: X must be a NumPy array (one chunk); fit takes the Dask "
                             "array")
        return _GaussianMixture.statistics(self, X, sample_weight, first_row)


# ---- The density anomaly detector ------------------------------------------------------------------

def _scale_block(x, center, scale):
    """(x - center) / scale in double, stored in x's dtype (the one-machine detector's scaled rows)."""
    return ((np.asarray(x, dtype=np.float64) - center) / scale).astype(x.dtype)


def _held_mask(first_row, n, seed):
    """A uniform in [0, 1) per row from a hash of (seed, row in the whole array): a row is held out for
    calibration below the fraction, the same rows for any chunking."""
    return _row_uniforms(_stream_key(seed, 0x63616C6962), first_row, n)  # "calib"


def _held_count_block(first_row, n, seed, fraction):
    return int((_held_mask(first_row, n, seed) < fraction).sum())


def _split_block(z, first_row, seed, fraction, held):
    m = _held_mask(first_row, len(z), seed) < fraction
    return z[m if held else ~m]


def _hard_scores(z, weights, means, variances):
    """max_k log(w_k N(z | mean_k, var_k I)) per row: method "kmeans"'s score of scaled rows."""
    z = np.asarray(z, dtype=np.float64)
    D = z.shape[1]
    d2 = (z ** 2).sum(1)[:, None] - 2 * z @ means.T + (means ** 2).sum(1)[None, :]
    d2 = np.maximum(d2, 0.0)
    lp = np.log(weights)[None, :] - 0.5 * D * np.log(2 * np.pi * variances)[None, :] - d2 / (2 * variances[None, :])
    return lp.max(axis=1)


def _score_block(z, density, shift):
    """Log-density of scaled rows in the original units (one column): density is a fitted one-machine
    GaussianMixture, or (weights, means, variances) of method "kmeans"'s spherical components."""
    z = _c(z)
    s = _hard_scores(z, *density) if isinstance(density, tuple) else density.score_samples(z)
    return (s - shift)[:, None]


def _cluster_spread_block(z, centres, n_threads):
    """Per cluster of the nearest centre: [rows, summed squared distances] (method "kmeans")."""
    labels, d2 = _nearest(z, centres, n_threads)
    K = centres.shape[0]
    return np.stack([np.bincount(labels, minlength=K).astype(np.float64), np.bincount(labels, weights=d2, minlength=K)])


def _hard_score_sum_block(z, weights, means, variances):
    return float(_hard_scores(z, weights, means, variances).sum()) if len(z) else 0.0


class DensityAnomalyDetector(_DaskMixin, _DensityAnomalyDetector):
    """The density anomaly detector fitted on a Dask array (or a Dask DataFrame of numeric columns).

    The one-machine detector's fit (docs/anomaly-detection.md) with every step over the blocks:

    - the scaling: exact per-feature medians and quartiles (order statistics found by counting passes
      over the blocks: the one-machine values bit for bit) or means and deviations;
    - the calibration split: a row is held out when a hash of (random_state, its row index) falls
      below ``calibration_fraction`` (the same rows for any chunking; about that fraction of them,
      where the one-machine detector holds out exactly round(fraction * n));
    - the density: :class:`mixtura.dask.GaussianMixture` (k-means|| start) for each count tried by
      BIC, each BIC from one more pass;
    - the threshold: the exact quantile of the held-out (or all training) rows' scores; model-tail
      draws from the fitted density on the client.

    ``score_samples``, ``decision_function`` and ``predict`` of Dask input return Dask arrays, block by
    block; NumPy input is scored as by mixtura.DensityAnomalyDetector. Method "kmeans" runs
    :class:`mixtura.dask.KMeans` for each count and puts spherical components at its centres, as on
    one machine. No partial_fit (streams: mixtura.DensityAnomalyDetector.partial_fit) and no trimmed fit
    (``trim``: fit the one-machine detector on a sample). ``n_threads`` (default 1) is
    each block's C++ threads. Saved files are DensityAnomalyDetector files.
    """

    _base = _DensityAnomalyDetector
    _param_checks = {**{k: v for k, v in _DensityAnomalyDetector._param_checks.items()
                        if k not in ("half_life", "device", "trim")}, **_DASK_CHECKS}
    half_life, device, trim = None, "cpu", 0.0  # one-machine parameters this fit does not take (inherited methods read them)

    def __init__(self, method="gmm", *, n_components="bic", max_components=8, covariance_type="full",
                 reg_covar=1e-3, scaling="robust", contamination="auto", threshold="calibrate",
                 false_alarm_rate=0.01, calibration_fraction=0.2, n_init=1, max_iter=100, tol=1e-3,
                 random_state=None, n_threads=1, oversampling_factor=2.0, init_max_iter=5,
                 split_every=_SPLIT_EVERY):
        self.method = method
        self.n_components = n_components
        self.max_components = max_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.scaling = scaling
        self.contamination = contamination
        self.threshold = threshold
        self.false_alarm_rate = false_alarm_rate
        self.calibration_fraction = calibration_fraction
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_threads = n_threads
        self.oversampling_factor = oversampling_factor
        self.init_max_iter = init_max_iter
        self.split_every = split_every

    @_with_feature_names
    def fit(self, X, y=None):
        """Fit the scaling, the density and the threshold on a Dask array (or Dask DataFrame)."""
        who = "DensityAnomalyDetector.fit"
        p = self._checked_params()
        split = p["split_every"]
        X = _rows(X, who)
        if X.shape[0] < 2:
            raise ValueError(f"{who}: need n_samples >= 2, got n_samples = {X.shape[0]}")
        blocks = _Blocks(X, None)
        n, _, mean, m2 = blocks.moments(who, split)
        D = X.shape[1]
        center, scale = self._scaling(blocks, p, n, mean, m2, split)
        Z = X.map_blocks(_scale_block, center, scale, dtype=X.dtype, meta=np.empty((0, 0), X.dtype))
        seed = _params.seed(p["random_state"])
        calibrate = p["contamination"] == 0 and p["threshold"] == "calibrate"
        F = Z
        if calibrate:
            F, held = self._split(Z, blocks, seed, p["calibration_fraction"], who)
            if held.shape[0] * p["false_alarm_rate"] < 1:
                warnings.warn(f"DensityAnomalyDetector: only {held.shape[0]} training rows are held out for "
                              f"calibration, so the false_alarm_rate={self.false_alarm_rate} quantile rests on less "
                              "than one row and the threshold is about the lowest held-out score; fit on more rows "
                              "or raise calibration_fraction for the false-alarm rate to hold.", UserWarning)
        fitted = self._density(F, p, seed) if p["method"] == "gmm" else self._clusters(F, p, seed)
        model, selection, arrays = fitted
        log_jacobian = float(np.log(scale).sum())
        q = p["contamination"] if p["contamination"] > 0 else p["false_alarm_rate"]
        density = model if p["method"] == "gmm" else (arrays[0], arrays[1], 1.0 / arrays[2] ** 2)
        if p["threshold"] == "model-tail" and p["contamination"] == 0:
            total = max(100_000, math.ceil(100 / q))
            drawn = self._draw(model, density, total, seed)
            scored = [dask.delayed(_score_block(drawn, density, log_jacobian))]
            rows = total
        else:
            S = held if calibrate else Z
            shared = _shared(density)
            scored = [dask.delayed(_score_block, pure=True)(b, shared, log_jacobian) for b in S.to_delayed().ravel()]
            rows = int(S.shape[0])
        offset, median = _quantiles(scored, rows, 1, [q, 0.5], split)[0]
        self.center_, self.scale_ = center, scale
        self.offset_, self.score_median_ = float(offset), float(median)
        self.n_steps_, self.stream_recent_scores_ = 0, np.empty(0)
        self.n_components_ = int(arrays[0].shape[0])
        self.bic_ = np.array(selection, dtype=np.float64).reshape(-1, 2)
        self.n_trimmed_ = 0  # (no trimmed fit here)
        self.density_weights_, self.density_means_, self.density_precisions_cholesky_ = arrays
        self.density_covariance_type_ = model.covariance_type if p["method"] == "gmm" else "spherical"
        self.model_ = model
        self.n_iter_ = model.n_iter_
        self.n_features_in_ = D
        return self

    def _scaling(self, blocks, p, n, mean, m2, split):
        D = mean.shape[0]
        if p["scaling"] == "none":
            return np.zeros(D), np.ones(D)
        center, scale = mean.copy(), np.sqrt(m2 / n)
        if p["scaling"] == "robust":
            q = _quantiles([blocks.x[b] for b in blocks.nonempty()], int(n), D, [0.5, 0.75, 0.25], split)
            for j, (median, q3, q1) in enumerate(q):
                center[j] = median
                if q3 - q1 > 0:
                    scale[j] = (q3 - q1) / 1.3489795003921634  # the IQR of N(0, 1)
        usable = (scale > 1e-12 * np.maximum(1.0, np.abs(center))) & np.isfinite(scale)
        return center, np.where(usable, scale, 1.0)

    @staticmethod
    def _split(Z, blocks, seed, fraction, who):
        """(rows to fit, held-out rows) as Dask arrays with known chunks; the held-out count checked."""
        starts = [int(s) for s in blocks.starts]
        held_counts = _compute([dask.delayed(_held_count_block, pure=True)(s, int(m), seed, fraction)
                                for s, m in zip(starts, blocks.sizes)])
        m, n = int(sum(held_counts)), int(Z.shape[0])
        if m < 1 or n - m < 2:
            raise ValueError(f"{who}: calibration needs at least 1 held-out and 2 fitting rows; calibration_fraction "
                             f"{fraction:g} of n_samples = {n} holds out {m} (use more rows, another fraction, "
                             "contamination, or threshold model-tail)")
        D = Z.shape[1]
        meta = np.empty((0, 0), Z.dtype)
        parts = {}
        for held, counts in ((False, [int(s) - h for s, h in zip(blocks.sizes, held_counts)]), (True, held_counts)):
            pieces = [da.from_delayed(dask.delayed(_split_block, pure=True)(z, s, seed, fraction, held),
                                      shape=(c, D), dtype=Z.dtype, meta=meta)
                      for z, s, c in zip(Z.to_delayed().ravel(), starts, counts) if c > 0]
            parts[held] = da.concatenate(pieces)
        return parts[False], parts[True]

    @staticmethod
    def _counts(p, n, D, covariance_type):
        """The component counts tried: the given one, else 1..max_components while the density has
        fewer free parameters than rows to fit (as the one-machine detector)."""
        if p["n_components"] > 0:
            counts = [p["n_components"]]
        else:
            counts = [1]
            for k in range(2, min(p["max_components"], n) + 1):
                if _core.gmm_n_parameters(covariance_type, k, D) >= n:
                    break
                counts.append(k)
        if counts[-1] > n:
            raise ValueError(f"DensityAnomalyDetector.fit: n_components ({counts[-1]}) > rows to fit ({n})")
        return counts

    def _density(self, F, p, seed):
        """Method "gmm": (the one-machine GaussianMixture of the kept fit, (count, BIC) of every count
        tried, (weights, means, precisions_cholesky))."""
        n, D = int(F.shape[0]), int(F.shape[1])
        counts = self._counts(p, n, D, p["covariance_type"])
        best, best_bic, selection = None, math.inf, []
        for k in counts:
            gm = GaussianMixture(k, covariance_type=p["covariance_type"], tol=p["tol"], reg_covar=p["reg_covar"],
                                 max_iter=p["max_iter"], n_init=p["n_init"], random_state=seed,
                                 n_threads=p["n_threads"], oversampling_factor=p["oversampling_factor"],
                                 init_max_iter=p["init_max_iter"], split_every=p["split_every"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gm.fit(F)
            if len(counts) == 1:
                best = gm
                break
            bic = -2 * gm.score(F) * n + gm._n_parameters() * math.log(n)
            selection.append((k, bic))
            if bic < best_bic:
                best, best_bic = gm, bic
        model = best._one_machine()
        return model, selection, (model.weights_, model.means_, model.precisions_cholesky_)

    def _clusters(self, F, p, seed):
        """Method "kmeans": for each count, mixtura.dask.KMeans and spherical components at its centres
        (variance: the mean squared distance per feature of the cluster's rows + reg_covar; weight: its
        share of the rows), BIC from the hard scores. (the one-machine KMeans of the kept fit, (count,
        BIC) of every count tried, (weights, means, precisions_cholesky))."""
        n, D = int(F.shape[0]), int(F.shape[1])
        counts = self._counts(p, n, D, "spherical")
        parts = F.to_delayed().ravel()
        best, best_bic, selection = None, math.inf, []
        for k in counts:
            km = KMeans(k, n_init=p["n_init"], max_iter=max(p["max_iter"], 300), random_state=seed,
                        n_threads=p["n_threads"], oversampling_factor=p["oversampling_factor"],
                        init_max_iter=p["init_max_iter"], split_every=p["split_every"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                km.fit(F)
            centres = _shared(_c(km.cluster_centers_))
            count, ss = _compute(_tree([dask.delayed(_cluster_spread_block, pure=True)(b, centres, p["n_threads"])
                                        for b in parts], _sum_in_order, p["split_every"]))
            variances = np.where(count > 0, ss / np.maximum(count, 1) / D, 0.0) + p["reg_covar"]
            if not (variances > 0).all():
                j = int(np.argmin(variances > 0))
                raise ValueError(f"DensityAnomalyDetector.fit: cluster {j} of {k} has zero spread and reg_covar = "
                                 f"{p['reg_covar']:g}: its variance is {variances[j]:g}; set reg_covar > 0")
            weights, means = count / n, km.cluster_centers_.astype(np.float64)
            arrays = (weights, means, 1.0 / np.sqrt(variances))
            if len(counts) > 1:
                total = sum(_compute([dask.delayed(_hard_score_sum_block, pure=True)(b, weights, means, variances)
                                      for b in parts]))
                bic = -2 * total + _core.gmm_n_parameters("spherical", k, D) * math.log(n)
                selection.append((k, bic))
                if not bic < best_bic:
                    continue
                best_bic = bic
            best = (km, arrays)
        km, arrays = best
        return km._one_machine(), selection, arrays

    @staticmethod
    def _draw(model, density, total, seed):
        """Rows drawn from the fitted density (model-tail): the mixture's own sampler, or the spherical
        components of method "kmeans"."""
        if not isinstance(density, tuple):
            return model.sample(total)[0]  # (model_'s random_state is the fit's integer seed)
        weights, means, variances = density
        rng = np.random.default_rng(_stream_key(seed, 0x7461696C))  # "tail"
        comp = rng.choice(len(weights), size=total, p=weights / weights.sum())
        return means[comp] + rng.standard_normal((total, means.shape[1])) * np.sqrt(variances)[comp, None]

    def score_samples(self, X):
        """Log-density of each row in the original units (a Dask array for Dask input)."""
        return self._blockwise(X, "score_samples", "DensityAnomalyDetector.score_samples", dtype=np.float64)

    def decision_function(self, X):
        """score_samples - ``offset_`` (a Dask array for Dask input)."""
        return self._blockwise(X, "decision_function", "DensityAnomalyDetector.decision_function",
                               dtype=np.float64)

    def predict(self, X):
        """+1 normal, -1 anomaly (a Dask array for Dask input)."""
        return self._blockwise(X, "predict", "DensityAnomalyDetector.predict", dtype=np.int64)

    def fit_predict(self, X, y=None):
        return self.fit(X).predict(X)
