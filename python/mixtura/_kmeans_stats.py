"""The sufficient statistics of a K-means assignment pass over a chunk of rows (docs/streams.md)."""
import numpy as np

from . import _core

# The arrays of a statistics object, in the order of its repr.
_FIELDS = ("weight", "count", "sums", "farthest_distance", "farthest_weight", "farthest_row", "farthest_cluster",
           "farthest_values")


class KMeansStatistics:
    """What one K-means iteration needs from a chunk of rows, under given centres; O(K * D) in size.

    Made by :meth:`mixtura.KMeans.statistics`, added up with :meth:`merge`, turned into new centres
    by :meth:`mixtura.KMeans.update`. A plain object of numpy arrays and numbers: it pickles, and
    :meth:`to_dict` / :meth:`from_dict` give it as a dict (e.g. to send between processes).

    Attributes
    ----------
    n_clusters, n_features : int
    weight : ndarray of shape (n_clusters,), float64
        Total sample weight of the rows assigned to each centre.
    count : ndarray of shape (n_clusters,), int64
        Rows assigned to each centre (rows of zero weight included).
    sums : ndarray of shape (n_clusters, n_features), float64
        Weighted sum of the rows assigned to each centre.
    distortion : float
        Sum of w_i ||x_i - mu_{c_i}||^2 over the rows, computed without cancellation.
    n_changed : int
        Rows whose label changed (for statistics of a chunk seen for the first time: all of them).
    keep_farthest : int
        How many re-seeding candidates are kept (n_clusters - 1).
    farthest_distance, farthest_weight, farthest_row, farthest_cluster, farthest_values : ndarray
        The rows of positive weight farthest from their centre (farthest first, then lowest row), with
        their squared distance, weight, index (counted from the first row of the merged chunks),
        cluster and values: the rows that re-seed empty clusters in :meth:`mixtura.KMeans.update`.
    """

    def __init__(self, d):
        self.n_clusters = int(d["n_clusters"])
        self.n_features = int(d["n_features"])
        self.distortion = float(d["distortion"])
        self.n_changed = int(d["n_changed"])
        self.keep_farthest = int(d["keep_farthest"])
        for name in _FIELDS:
            setattr(self, name, np.asarray(d[name]))

    def to_dict(self):
        """The statistics as a dict of numbers and arrays (what :meth:`from_dict` takes)."""
        d = {name: getattr(self, name) for name in _FIELDS}
        d.update(n_clusters=self.n_clusters, n_features=self.n_features, distortion=self.distortion,
                 n_changed=self.n_changed, keep_farthest=self.keep_farthest)
        return d

    @classmethod
    def from_dict(cls, d):
        """Statistics from :meth:`to_dict`'s dict (checked when merged or used)."""
        return cls(d)

    @property
    def n_rows(self):
        """Rows folded into these statistics."""
        return int(self.count.sum())

    def merge(self, other):
        """The statistics of these rows followed by ``other``'s, as a new object (``other``'s candidate
        rows are numbered after these rows). Associative; the same merges in the same order give the
        same bits, and chunks merged in order give what one pass over their rows gives (to rounding;
        bit for bit when the chunks are the pass's reduction groups, docs/streams.md)."""
        if not isinstance(other, KMeansStatistics):
            raise ValueError(f"KMeansStatistics.merge: other must be KMeansStatistics, got {type(other).__name__}")
        if (other.n_clusters, other.n_features) != (self.n_clusters, self.n_features):
            raise ValueError(f"KMeansStatistics.merge: shapes differ, ({self.n_clusters}, {self.n_features}) and "
                             f"({other.n_clusters}, {other.n_features})")
        return KMeansStatistics(_core.kmeans_statistics_merge(self.to_dict(), other.to_dict()))

    def __add__(self, other):
        """``a + b`` is ``a.merge(b)`` (so ``sum(parts[1:], parts[0])`` merges a list in order)."""
        return self.merge(other)

    def __repr__(self):
        return (f"KMeansStatistics(n_clusters={self.n_clusters}, n_features={self.n_features}, n_rows={self.n_rows}, "
                f"distortion={self.distortion:.6g})")
