"""scikit-learn compatible K-means on mixtura's C++ core."""
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core, _cuda_array, _device, _io, _params
from ._validation import check_sample_weight
from ._kmeans_stats import KMeansStatistics



def _refuse_gaps(X, who):
    """X, if it has no NaN: K-means needs complete rows. The error names the first missing value and where
    missing values are taken (validate_data with ensure_all_finite="allow-nan" has refused +-inf)."""
    if sp.issparse(X):  # CSR: the stored values
        stored = np.flatnonzero(np.isnan(X.data))
        where = [(int(np.searchsorted(X.indptr, stored[0], side="right")) - 1, int(X.indices[stored[0]]))] \
            if len(stored) else []
    elif np.isnan(np.add.reduce(X, axis=None)):  # one pass; a NaN sum may also come from overflow, hence the search
        where = np.argwhere(np.isnan(X))
    else:
        where = []
    if len(where):
        row, col = where[0]
        raise ValueError(f"{who}: X contains NaN (a missing value) at row {row}, column {col}; K-means needs "
                         "complete rows: GaussianMixture and DensityAnomalyDetector take missing values "
                         "(docs/missing-values.md), or impute or drop the rows with gaps")
    return X


def _csr_args(X, who):
    """The arrays of a SciPy CSR matrix as the C++ passes take them: (data, indices as int32, indptr as
    int32 or int64, n_samples, n_features). A matrix that stores a column twice in a row (SciPy sums
    such duplicates) is summed on a copy; X itself is never modified."""
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    if X.shape[1] > np.iinfo(np.int32).max:
        raise ValueError(f"{who}: a sparse X may have at most {np.iinfo(np.int32).max} features, got {X.shape[1]}")
    indices = X.indices if X.indices.dtype == np.int32 else X.indices.astype(np.int32)
    indptr = X.indptr if X.indptr.dtype in (np.int32, np.int64) else X.indptr.astype(np.int64)
    return (np.ascontiguousarray(X.data), np.ascontiguousarray(indices), np.ascontiguousarray(indptr),
            X.shape[0], X.shape[1])


def _rows(X, who):
    """Rows as the C++ fits take them: a dense array as it is, a CSR matrix as _csr_args' tuple."""
    return _csr_args(X, who) if sp.issparse(X) else X


def _centre_pass(est, name, X, args):
    """predict/transform/score/statistics of a host X (dense or CSR) under a fitted K-means estimator's
    centres: the _core function kmeans_<name>[_csr]_<dtype> on X, args(X) (a tuple) and the centres in
    X's dtype (est._checked validates X)."""
    X, c = est._checked(X)
    if sp.issparse(X):
        return _core.typed(f"kmeans_{name}_csr", X.dtype)(*_csr_args(X, f"{type(est).__name__}.{name}"), *args(X), c,
                                                           _params.n_threads(est))
    return _core.typed(f"kmeans_{name}", X.dtype)(X, *args(X), c, _params.n_threads(est))


def _sparse_device(device, who):
    """Sparse input runs on the CPU: device="cuda" is a ValueError, "auto" and "cpu" take the CPU."""
    if device == "cuda":
        raise ValueError(f"{who}: sparse (CSR) input runs on the CPU; device='cuda' takes dense arrays "
                         "(X.toarray(), if it fits in memory)")
    return "cpu"


def _refuse_device_weights(sample_weight, who):
    """ValueError for sample weights in CUDA device memory beside a host X (weights are read in place only
    beside device data; nothing is copied silently)."""
    if sample_weight is not None and _cuda_array.is_device_array(sample_weight):
        raise ValueError(f"{who}: sample_weight is in CUDA device memory ({_cuda_array.protocol(sample_weight)}) but "
                         "X is a host array; pass X on the device too (weights on the device are read in place "
                         "beside it), or copy the weights to the host (e.g. cupy.asnumpy(w), w.cpu().numpy()).")


class _Init:
    """KMeans' init: "k-means++", "random", the initial centres (an array the fit checks) or a callable
    returning them."""

    def __call__(self, who, name, value):
        if isinstance(value, str) and value not in ("k-means++", "random"):
            raise ValueError(f"{who}: init must be 'k-means++', 'random', an array of initial centres or a callable, "
                             f"got {value!r}")
        return value


class _Algorithm:
    """KMeans' algorithm: "auto", "lloyd", "elkan" (scikit-learn's name for the search that skips rows
    by the triangle inequality; mixtura's is Hamerly's, also accepted as "hamerly") or "yinyang"
    (Yinyang's group bounds). The results are the same bit for bit."""

    def __call__(self, who, name, value):
        if isinstance(value, str) and value in ("auto", "lloyd", "elkan", "hamerly", "yinyang"):
            return value
        raise ValueError(f"{who}: algorithm must be 'auto', 'lloyd', 'elkan', 'hamerly' or 'yinyang', got {value!r}")


def _init_of(est, n_features, dtype, X=None, random_state=None):
    """(init name, initial centres or None) of a K-means estimator's ``init``, for the C++ fit. A
    callable is called as scikit-learn calls it, ``init(X, n_clusters, random_state=RandomState)``."""
    init = est.init
    if isinstance(init, str):
        return init, None
    if callable(init):
        if X is None:
            raise ValueError(f"{type(est).__name__}: a callable init is not supported here; pass the initial centres")
        init = init(X, est.n_clusters, random_state=check_random_state(random_state))
    _cuda_array.host_only(init, type(est).__name__, "init")
    init_centers = np.ascontiguousarray(np.asarray(init, dtype=dtype))
    # scikit-learn's two messages (its tests and users match them)
    if init_centers.ndim != 2 or init_centers.shape[0] != est.n_clusters:
        raise ValueError(f"The shape of the initial centers {init_centers.shape} does not match the number of "
                         f"clusters {est.n_clusters}.")
    if init_centers.shape[1] != n_features:
        raise ValueError(f"The shape of the initial centers {init_centers.shape} does not match the number of "
                         f"features of the data {n_features}.")
    return "k-means++", init_centers


def _given_init_text(init):
    """How the RuntimeWarning for n_init > 1 with given centres names them (scikit-learn's words for an array)."""
    return "A callable init is called once per fit" if callable(init) else "Explicit initial center position passed"


def _warn_fewer_clusters(labels, n_clusters):
    """scikit-learn's ConvergenceWarning when fewer clusters than n_clusters hold a row (duplicate rows)."""
    if labels is None:
        return
    distinct = len(np.unique(labels))
    if distinct < n_clusters:
        warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({n_clusters}). "
                      "Possibly due to duplicate points in X.", ConvergenceWarning, stacklevel=3)


def _centres_from_sections(cls, sections, prefix, side):
    """(estimator, fitted) of a K-means kind's model-file sections: the parameters, and when the sections
    hold a fitted model, its n_features_in_ (feature_names_in_) and cluster_centers_, all checked as the
    C++ loader checks them (the sections first: a file of another kind is named as such), the parameters
    as a fit does (a file's n_threads reaches the core as a fit's would) and n_clusters against the centres."""
    est = cls(**_io.params_from_sections(cls, sections, prefix, side))
    if prefix + "cluster_centers_" not in sections:
        return est, False  # unfitted (a pickle's); _io.loads refuses it for a model file, naming what is missing
    _core.model_file_check(cls._model_kind, cls._model_kind, sections, prefix, f"{cls.__name__} model")
    _params.validate(est)
    _io.check_params_match(est, sections, prefix, n_clusters=sections[prefix + "cluster_centers_"].shape[0])
    _io.features_from_sections(est, sections, prefix)
    est.cluster_centers_ = sections[prefix + "cluster_centers_"]
    return est, True


class KMeans(_io.ModelFileMixin, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """K-means clustering by Lloyd's algorithm, recorded as coordinate descent on the distortion.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of centres K.
    init : {"k-means++", "random"}, array of shape (n_clusters, n_features) or callable, default="k-means++"
        Greedy k-means++, weighted random rows, or the initial centres themselves. A callable is
        called once per fit as ``init(X, n_clusters, random_state=RandomState)`` (scikit-learn's
        signature) and its centres used as given ones (one restart; scikit-learn calls it per restart).
    n_init : int or "auto", default="auto"
        Restarts; the one with the lowest inertia is kept. "auto": 1 (as scikit-learn for k-means++
        and given centres), 10 for "random".
    max_iter : int, default=300
        Lloyd iterations per restart.
    tol : float, default=1e-4
        Stop when the squared centre shift is at most tol times the mean feature variance.
    verbose : int, default=0
        Print each iteration's distortions, centre shift, rows searched and time.
    random_state : int in [0, 2**64 - 1], RandomState instance or None, default=None
        Seed of the counter-based random numbers (an integer gives reproducible fits).
    copy_x : bool, default=True
        Accepted for scikit-learn compatibility; X is never modified (nor centred), whatever its value.
    algorithm : {"auto", "lloyd", "elkan", "hamerly", "yinyang"}, default="auto"
        How each iteration finds every row's nearest centre; the results are the same bit for bit
        (labels, centres, trace, ``n_iter_``, ``inertia_``). "lloyd" searches every row against every
        centre. "elkan" (scikit-learn's name) and "hamerly" both run Hamerly's bounds (2010): a row
        whose bounds show its centre cannot change, with a margin wider than the search's rounding
        error, is not searched. "yinyang" (Ding et al. 2015) splits the centres into groups of about
        32 (at most n_features groups) and keeps a bound per group: a row searches only the groups that could hold a nearer
        centre (dense data; on sparse data it runs Hamerly's bounds). "auto" takes what measured
        fastest: Lloyd's search below n_clusters * n_features = 2048, Yinyang's from n_clusters = 512
        and n_features = 32 on, else Hamerly's. Host data on the CPU; on a GPU every row is searched.
    n_threads : int in [0, 1024], default=0
        OpenMP threads of the C++ passes; 0 uses OpenMP's default. Results do not depend on it.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the data passes of the fit run (prediction and transform of host arrays run on the
        CPU). "auto" takes the GPU when the build has the CUDA backend (``mixtura._core.HAS_CUDA``;
        ``pip install .`` builds without it, ``pip install . -C cmake.define.MIXTURA_WITH_CUDA=ON`` with
        it) and a device is present, else the CPU. "cuda" without either is a ValueError. Same loop
        and traces on both (see docs/cuda.md). X may also be an array in CUDA device memory (CuPy,
        PyTorch, anything with ``__cuda_array_interface__`` or a CUDA ``__dlpack__``, float32/float64,
        rows contiguous): with "cuda" or "auto" fit, predict, transform and score read it in place on
        device 0, without a copy through the host; "cpu" with such an array is a ValueError, as is a
        build without CUDA. Sample weights beside such an X may be on the device too (1-d, X's
        dtype, ``__cuda_array_interface__``: read in place); initial centres stay host arrays.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
    inertia_ : float
        Weighted sum of squared distances to the nearest centre, computed without cancellation.
    n_iter_ : int
    distortion_trace_ : ndarray of shape (``n_iter_``, 2)
        J after the assignment half-step and after the update half-step, per iteration of the kept
        restart (both never increase).
    distortion_traces_ : list of ndarray
        The same for every restart.
    events_ : list of dict
        Empty clusters re-seeded (restart, iteration, cluster, row).
    converged_ : bool
        Whether the kept restart converged (if not, a ConvergenceWarning; another one, as
        scikit-learn's, when fewer than n_clusters clusters hold a row).
    n_features_in_ : int

    Notes
    -----
    ``save(path)`` writes a portable model file that ``mixtura.load`` and the C++ API
    (``mixtura::load_kmeans``) read; pickling goes through the same bytes (docs/model-format.md).

    Data that arrive in chunks, or that do not fit in memory: fit on a first chunk, then repeat
    ``km.update(functools.reduce(KMeansStatistics.merge, (km.statistics(c) for c in chunks)))``, one
    Lloyd iteration per pass over the chunks (:meth:`statistics`, :meth:`update`, docs/streams.md).
    """

    _model_kind = "KMeans"
    _param_checks = {
        "n_clusters": _params.Int(1),  # Python compares it with n_samples
        "init": _Init(),
        "n_init": _params.Int(1, also=("auto",)),  # and warns for given centres
        "max_iter": _params.Int(),
        "tol": _params.Real(),
        "verbose": _params.VERBOSE,
        "random_state": _params.RandomState(),
        "copy_x": _params.Bool(),
        "algorithm": _Algorithm(),
        "n_threads": _params.THREADS,
        "device": _params.DEVICE,
    }
    _event_kinds = ["empty_cluster_reseeded", "empty_cluster_kept"]
    # Sections the C++ fit records and Python keeps only to write them back.
    _extra_sections = ["restart_inertia_", "restart_converged_", "restart_seconds_", "trace_center_shift_",
                       "trace_n_changed_", "trace_n_searched_", "trace_seconds_"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # SciPy sparse rows (CSR; docs/kmeans.md, "Sparse input")
        return tags

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4, verbose=0,
                 random_state=None, copy_x=True, algorithm="auto", n_threads=0, device="cpu"):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.n_threads = n_threads
        self.device = device

    def _check_params(self):
        """The checked parameters (``_param_checks``), n_init resolved; before any data pass."""
        p = _params.validate(self)
        given = not isinstance(p["init"], str)
        if p["n_init"] == "auto":
            p["n_init"] = 10 if isinstance(p["init"], str) and p["init"] == "random" else 1
        if given and p["n_init"] != 1:
            warnings.warn(f"{_given_init_text(p['init'])}: performing only one init in KMeans instead of "
                          f"n_init={p['n_init']}.", RuntimeWarning)
            p["n_init"] = 1
        return p

    @staticmethod
    def _check_n_samples(n_samples, p):
        if n_samples < p["n_clusters"]:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={p['n_clusters']}.")

    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            float32 and float64 C-contiguous arrays are used without a copy; anything else is
            converted once to float64. A float32/float64 array in CUDA device memory
            (``__cuda_array_interface__`` or DLPack) is used in place with device="cuda" or "auto".
            A SciPy sparse matrix or array (CSR used without a copy, other formats converted) runs on
            the CPU (device="auto" takes the CPU, "cuda" is a ValueError): each pass costs its stored
            values times n_clusters; the labels are the nearest centres by exact distance and the
            centres those of the same rows dense, bit for bit, where the labels agree
            (docs/kmeans.md, "Sparse input").
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            A host array; or, when X is on the device, a 1-d contiguous device array of X's dtype
            (``__cuda_array_interface__`` or DLPack), read in place. Device weights with a host X are a
            ValueError.

        Returns
        -------
        self
        """
        p = self._check_params()
        if _cuda_array.is_device_array(X):
            return self._fit_device(X, sample_weight, p)
        _refuse_device_weights(sample_weight, "KMeans.fit")
        X = _cuda_array.host_array(X, "KMeans.fit")
        X = _refuse_gaps(validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], order="C",
                                       ensure_all_finite="allow-nan"), "KMeans.fit")
        sparse = sp.issparse(X)
        device = _sparse_device(p["device"], "KMeans.fit") if sparse else _device.resolve(p["device"], "KMeans")
        self._check_n_samples(X.shape[0], p)
        w = check_sample_weight(sample_weight, X, "KMeans.fit")
        init, init_centers = _init_of(self, X.shape[1], X.dtype, X, p["random_state"])
        algorithm = {"elkan": "hamerly"}.get(p["algorithm"], p["algorithm"])
        rest = (w, init_centers, p["n_clusters"], init, p["n_init"], p["max_iter"], p["tol"],
                _params.seed(p["random_state"]), p["n_threads"], p["verbose"])
        if sparse:
            r = _core.typed("kmeans_fit_csr", X.dtype)(*_csr_args(X, "KMeans.fit"), *rest, algorithm)
        else:
            r = _core.typed("kmeans_fit", X.dtype)(X, *rest, device, algorithm)
        return self._finish_fit(r)

    def _finish_fit(self, r):
        self._set_fitted(r)
        if not r["converged"]:
            warnings.warn(f"KMeans did not converge in max_iter={self.max_iter} iterations; increase max_iter or "
                          "tol.", ConvergenceWarning)
        _warn_fewer_clusters(self.labels_, self.cluster_centers_.shape[0])
        return self

    @property
    def _n_features_out(self):
        """Columns of transform (get_feature_names_out: kmeans0, kmeans1, ...)."""
        return self.cluster_centers_.shape[0]

    def _fit_device(self, X, sample_weight, p):
        """fit() on an array in CUDA device memory: the C++ fit reads it in place (docs/cuda.md)."""
        dev = _cuda_array.parse(X, "KMeans.fit")
        w, w_dev = _cuda_array.device_data_weights(sample_weight, dev, "KMeans.fit")  # bad arrays before the backend
        _device.resolve(p["device"], "KMeans.fit", device_data="X")
        self._check_n_samples(dev.shape[0], p)
        init, init_centers = _init_of(self, dev.shape[1], dev.dtype, X, p["random_state"])
        _cuda_array.synchronize(dev)
        if w_dev is not None:
            _cuda_array.synchronize(w_dev)
        fit = _core.typed("kmeans_fit_device", dev.dtype)
        r = fit(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, w, init_centers, p["n_clusters"], init,
                p["n_init"], p["max_iter"], p["tol"], _params.seed(p["random_state"]), p["n_threads"], p["verbose"],
                sample_weight_ptr=0 if w_dev is None else w_dev.ptr)
        if hasattr(self, "feature_names_in_"):  # as validate_data(reset=True) does for unnamed input
            del self.feature_names_in_
        return self._finish_fit(r)

    def _set_fitted(self, r):
        """Stores the fitted attributes from the C++ fit's result."""
        self.cluster_centers_ = r["cluster_centers"]
        self.labels_ = r["labels"]
        self.inertia_ = r["inertia"]
        self.n_iter_ = r["n_iter"]
        self.distortion_traces_ = r["traces"]
        self.distortion_trace_ = r["traces"][r["best_restart"]]
        self.events_ = r["events"]
        self.converged_ = r["converged"]
        self.n_features_in_ = self.cluster_centers_.shape[1]
        return self

    def _checked(self, X):
        check_is_fitted(self)
        X = validate_data(self, _cuda_array.host_array(X, "KMeans"), accept_sparse="csr",
                          dtype=[np.float64, np.float32], order="C", ensure_all_finite="allow-nan", reset=False)
        return _refuse_gaps(X, "KMeans"), np.ascontiguousarray(self.cluster_centers_.astype(X.dtype, copy=False))

    def _device_pass(self, name, X):
        """predict/transform/score of an array in CUDA device memory, on device 0: the parsed array,
        the _core function (kmeans_<name>_device_<dtype>) and the centres in X's dtype."""
        who = f"KMeans.{name}"
        check_is_fitted(self)
        dev = _cuda_array.parse(X, who)
        _device.resolve(self.device, who, device_data="X")
        if dev.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {dev.shape[1]} features, but KMeans is expecting {self.n_features_in_} features "
                             "as input.")
        _cuda_array.synchronize(dev)
        c = np.ascontiguousarray(self.cluster_centers_.astype(dev.dtype, copy=False))
        f = _core.typed(f"kmeans_{name}_device", dev.dtype)
        return dev, f, c

    def predict(self, X):
        """Index of the nearest centre of each row."""
        if _cuda_array.is_device_array(X):
            dev, f, c = self._device_pass("predict", X)
            return f(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, c, _params.n_threads(self))
        return _centre_pass(self, "predict", X, lambda X: ())

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the training labels."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance of each row to each centre, shape (n_samples, n_clusters)."""
        if _cuda_array.is_device_array(X):
            dev, f, c = self._device_pass("transform", X)
            return f(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, c, _params.n_threads(self))
        return _centre_pass(self, "transform", X, lambda X: ())

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) distortion of X under the fitted centres. sample_weight: as in fit()
        (finite, >= 0, not all zero; a ValueError names the first bad weight)."""
        if _cuda_array.is_device_array(X):
            dev, f, c = self._device_pass("score", X)
            w, w_dev = _cuda_array.device_data_weights(sample_weight, dev, "KMeans.score")
            if w_dev is not None:
                _cuda_array.synchronize(w_dev)
            return f(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, w, c, _params.n_threads(self),
                      sample_weight_ptr=0 if w_dev is None else w_dev.ptr)
        _refuse_device_weights(sample_weight, "KMeans.score")
        # kmeans_score checks no weight
        return _centre_pass(self, "score", X, lambda X: (check_sample_weight(sample_weight, X, "KMeans.score",
                                                                          check_values=True),))

    def statistics(self, X, sample_weight=None):
        """The sufficient statistics of rows X under the fitted centres (one assignment pass).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            A chunk of rows (host memory); float32 and float64 are used as they are; SciPy sparse
            rows give the statistics of the same rows dense.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights >= 0 (a chunk may weigh nothing in all).

        Returns
        -------
        KMeansStatistics
            Per centre: weight, row count and weighted sum of its rows; the exact distortion; the
            rows farthest from their centre (to re-seed empty clusters). O(n_clusters * n_features),
            whatever n_samples. Merge the statistics of several chunks with
            :meth:`KMeansStatistics.merge`, then :meth:`update`.
        """
        _refuse_device_weights(sample_weight, "KMeans.statistics")
        return KMeansStatistics(_centre_pass(self, "statistics", X, lambda X: (
            check_sample_weight(sample_weight, X, "KMeans.statistics", allow_all_zero=True),)))

    def update(self, stats):
        """One Lloyd update from statistics: each centre moves to the mean of its rows.

        The statistics must have been computed under the current ``cluster_centers_`` (by
        :meth:`statistics`, merged over the chunks of a pass). An empty cluster is re-seeded from the
        statistics' farthest row, as in :meth:`fit`. From the statistics of all the rows of a fit,
        this is the fit's next iteration: the same centres to rounding, and bit for bit when the
        chunks are the fit's reduction groups (docs/streams.md).

        Parameters
        ----------
        stats : KMeansStatistics

        Returns
        -------
        self
            ``cluster_centers_`` replaced (same dtype); ``n_iter_`` + 1; a row [J before, J after the
            update] appended to ``distortion_trace_``; ``inertia_`` = J after the update (the
            statistics' rows under the new centres and their labels: an upper bound of their inertia);
            re-seeding ``events_`` appended (rows counted from the first row of the merged chunks);
            ``labels_`` removed (they belonged to the old centres).
        """
        self._update(stats)
        return self

    def _update(self, stats):
        """update's work; returns the core's record of the iteration (center_shift, n_changed, ...)."""
        check_is_fitted(self)
        if not isinstance(stats, KMeansStatistics):
            raise ValueError(f"KMeans.update: stats must be KMeansStatistics (from KMeans.statistics), got "
                             f"{type(stats).__name__}")
        c = self.cluster_centers_
        if (stats.n_clusters, stats.n_features) != c.shape:
            raise ValueError(f"KMeans.update: statistics of shape ({stats.n_clusters}, {stats.n_features}) but "
                             f"cluster_centers_ of shape {c.shape}")
        best = next(i for i, t in enumerate(self.distortion_traces_) if t is self.distortion_trace_)
        r = _core.typed("kmeans_update", c.dtype)(stats.to_dict(), np.ascontiguousarray(c), best, self.n_iter_)
        self.cluster_centers_ = r["cluster_centers"]
        trace = np.vstack([self.distortion_trace_, [[r["distortion_assign"], r["distortion_update"]]]])
        self.distortion_traces_ = [trace if i == best else t for i, t in enumerate(self.distortion_traces_)]
        self.distortion_trace_ = trace
        self.n_iter_ += 1
        self.inertia_ = r["distortion_update"]
        self.events_ = list(self.events_) + r["events"]
        if hasattr(self, "labels_"):
            del self.labels_
        return r

    def _to_sections(self, prefix="", side=None):
        """Model-file sections (scikit-learn attribute names; docs/model-format.md)."""
        s = _io.params_to_sections(self, prefix, side)
        if not hasattr(self, "cluster_centers_"):
            return s
        s.update(_io.features_to_sections(self, prefix))
        s[prefix + "cluster_centers_"] = np.ascontiguousarray(self.cluster_centers_)
        if getattr(self, "labels_", None) is not None:
            s[prefix + "labels_"] = np.ascontiguousarray(self.labels_, dtype=np.int32)
        s[prefix + "inertia_"] = _io.scalar(self.inertia_, np.float64)
        s[prefix + "n_iter_"] = _io.scalar(self.n_iter_, np.int64)
        s[prefix + "converged_"] = _io.scalar(getattr(self, "converged_", self.n_iter_ < self.max_iter), np.int32)
        traces = _io.traces_to_sections(self.distortion_traces_, self.distortion_trace_, "distortion_traces_", prefix)
        s[prefix + "best_restart_"] = traces.pop(prefix + "best_restart_")
        s.update(traces)
        s.update(_io.events_to_sections(self.events_, self._event_kinds, "cluster", prefix))
        s.update(_io.extras_to_sections(self, prefix, self.cluster_centers_))
        return s

    @classmethod
    def _from_sections(cls, sections, prefix="", side=None):
        """The estimator held by model-file sections, checked as the C++ loader checks them."""
        est, fitted = _centres_from_sections(cls, sections, prefix, side)
        if not fitted:
            return est
        if prefix + "labels_" in sections:
            est.labels_ = sections[prefix + "labels_"]
        est.inertia_ = float(sections[prefix + "inertia_"])
        est.n_iter_ = int(sections[prefix + "n_iter_"])
        est.converged_ = bool(sections[prefix + "converged_"])
        est.distortion_traces_, best = _io.traces_from_sections(sections, "distortion_traces_", prefix)
        est.distortion_trace_ = est.distortion_traces_[best]
        est.events_ = _io.events_from_sections(sections, cls._event_kinds, "cluster", prefix)
        _io.keep_extras(est, sections, prefix, cls._extra_sections, est.cluster_centers_)
        return est
