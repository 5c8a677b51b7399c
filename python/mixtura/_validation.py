"""Checks of array arguments that the C++ core cannot make itself (their Python type, shape and dtype),
written here rather than imported from scikit-learn's private helpers, which may change in any release."""
import numpy as np


def check_sample_weight(sample_weight, X, who, *, allow_all_zero=False, check_values=False):
    """Host sample weights as the C++ passes take them: None stays None, a real scalar is broadcast to
    every row, anything else (list, pandas Series, array) must hold one real number per row of X. The
    result is a new or the given C-contiguous 1-d array of X's dtype (X: a NumPy array or a parsed
    device array, anything with ``shape`` and ``dtype``). All-zero weights are a ValueError unless
    ``allow_all_zero`` (a chunk that weighs nothing). Entries that are not finite or are negative are
    left to the C++ core, which names the first of them (``KMeans.fit: sample_weight[4] = -1 is
    negative``), so that each condition is checked once; ``check_values`` makes that check (and the
    finite sum's) here, in the core's words, for the passes that do not (the host scores)."""
    if sample_weight is None:
        return None
    n_samples = X.shape[0]
    w = np.asarray(sample_weight)
    if w.dtype == object:  # e.g. a pandas Series of a nullable dtype: numbers unless it holds NA
        try:
            w = w.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{who}: sample_weight must hold real numbers ({e})") from None
    if w.dtype.kind not in "biuf":
        raise ValueError(f"{who}: sample_weight must hold real numbers, got dtype {w.dtype}")
    if w.ndim == 0:
        w = np.full(n_samples, w, dtype=X.dtype)
    if w.shape != (n_samples,):
        raise ValueError(f"{who}: sample_weight.shape == {w.shape}, expected {(n_samples,)}!")
    w = np.ascontiguousarray(w, dtype=X.dtype)
    if check_values:
        bad = ~np.isfinite(w) | (w < 0)
        if bad.any():
            i = int(np.argmax(bad))
            what = "is not finite" if not np.isfinite(w[i]) else "is negative"
            raise ValueError(f"{who}: sample_weight[{i}] = {w[i]:g} {what}")
    if not allow_all_zero and n_samples and not w.any():
        raise ValueError(f"{who}: sample_weight is all zero ({n_samples} rows); at least one weight must be > 0")
    if check_values:
        with np.errstate(over="ignore"):  # finite entries may still sum to inf
            total = np.sum(w, dtype=np.float64)
        if not np.isfinite(total):
            raise ValueError(f"{who}: sample_weight sums to {total:g}; need a positive finite sum")
    return w
