"""scikit-learn compatible mini-batch K-means on mixtura's C++ core (include/mixtura/kmeans/minibatch.hpp)."""
import math
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core, _cuda_array, _io, _params
from ._kmeans import _Init, _centre_pass, _centres_from_sections, _given_init_text, _init_of, _refuse_gaps, _rows
from ._validation import check_sample_weight


class MiniBatchKMeans(_io.ModelFileMixin, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin,
                      BaseEstimator):
    """K-means on random mini-batches (Sculley 2010), with scikit-learn's parameters and semantics.

    Each step draws ``batch_size`` rows (with replacement, with probability proportional to the sample
    weight; when ``batch_size >= n_samples``, fit's steps take every row with its weight instead),
    assigns them to the nearest centres with the assignment pass of :class:`KMeans`, and
    moves each centre towards the mean of its batch rows with the learning rate
    W_batch / (``counts_`` + W_batch), ``counts_`` being the weight the centre has absorbed. Batches,
    initialisation and reassignments come from a counter-based generator keyed by the seed: results
    are reproducible and the same for any number of threads.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "random"}, array of shape (n_clusters, n_features) or callable, default="k-means++"
        Greedy k-means++ or weighted random rows, on ``init_size`` random rows; or the centres; or a
        callable ``init(X, n_clusters, random_state=RandomState)`` returning them, called once per fit
        on all of X (the first partial_fit's X).
    max_iter : int, default=100
        Passes over the data: fit takes at most ``max_iter * n_samples // batch_size`` steps.
    batch_size : int, default=1024
        Rows per mini-batch (at most n_samples); from n_samples on, each step of fit takes all rows
        with their weights (no draws), and the reassignment check runs every step.
    verbose : int, default=0
        Print each step's batch distortions, centre shift and reassignments.
    compute_labels : bool, default=True
        After fit (and each partial_fit), compute ``labels_`` and ``inertia_`` of all its rows;
        False removes those an earlier call left.
    random_state : int in [0, 2**64 - 1], RandomState instance or None, default=None
        Seed of the counter-based random numbers.
    tol : float, default=0.0
        Stop when a step moves the centres by at most tol times the mean feature variance (squared,
        summed over centres); 0 turns this off.
    max_no_improvement : int or None, default=10
        Stop after this many steps without a lower smoothed batch distortion; None turns this off.
    init_size : int or None, default=None
        Rows the initialisation sees (and rows of the validation sample that picks the best of
        ``n_init``); None: 3 * batch_size, at least 3 * n_clusters.
    n_init : int or "auto", default="auto"
        Initialisations; "auto": 1, or 3 for init="random".
    reassignment_ratio : float, default=0.01
        Centres whose count falls below this fraction of the largest count are moved to rows of the
        batch drawn by weight, never two to the same value (checked every 10 * n_clusters rows, and
        whenever a count is 0).
    n_threads : int in [0, 1024], default=0
        OpenMP threads of each batch's pass; 0 uses OpenMP's default. Results do not depend on it.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        In X's dtype (float32 or float64; anything else becomes float64).
    labels_ : ndarray of shape (n_samples,)
        Labels of fit's rows, or of the last partial_fit's; absent after a fit or partial_fit with
        compute_labels=False (scikit-learn keeps an earlier call's ``labels_`` after partial_fit).
    inertia_ : float
        Weighted sum of squared distances of those rows to their nearest centre (compute_labels=False
        after fit: the smoothed batch distortion times the total weight, as scikit-learn; absent after
        partial_fit with compute_labels=False).
    counts_ : ndarray of shape (n_clusters,), float64
        Weight absorbed by each centre (scikit-learn's private ``_counts``).
    n_steps_ : int
        Mini-batch steps taken (fit and the partial_fit calls since).
    n_iter_ : int
        Passes over the data that fit's steps amount to, rounded up.
    distortion_trace_ : ndarray of shape (``n_steps_``, 2), float64
        Per step: the batch's weighted distortion under the centres before the step, and under the
        centres after it (same labels; from the statistics, no extra pass).
    events_ : list of dict
        Centres moved to a row (kind "reassigned", step, cluster, row of the fit's or the
        partial_fit call's X).
    n_features_in_ : int

    Notes
    -----
    What differs from scikit-learn's MiniBatchKMeans (docs/streams.md): the random numbers (so the
    batches are other ones, and results match in quality, not bit for bit); centres and the
    update are computed in double whatever X's dtype; a reassignment picks rows with probability
    proportional to their weight (rows of zero weight never), in an order of their values, and never
    two equal rows; when ``batch_size >= n_samples`` fit steps on all rows with their weights, where
    scikit-learn draws n_samples rows with replacement, so that integer weights fit as repeated rows
    do, in any row order (scikit-learn's sample-weight equivalence checks pass; with ``tol > 0`` the
    tolerance scales the unweighted variance, as scikit-learn's); ``random_state`` is drawn once into
    a 64-bit seed. SciPy sparse input (CSR; other formats are converted) is drawn into CSR batches
    and stepped by the sparse passes: the same steps as for the rows dense, where the labels agree.

    ``save(path)``, ``mixtura.load`` and pickling keep everything ``partial_fit`` resumes from (the
    seed drawn at fit included): a loaded estimator's next steps are the saved one's, bit for bit
    (docs/model-format.md).
    """

    _model_kind = "MiniBatchKMeans"
    # Sections the C++ fit records and Python keeps only to write them back.
    _extra_sections = ["trace_center_shift_", "trace_seconds_"]

    _param_checks = {
        "n_clusters": _params.Int(1),  # Python compares it with n_samples
        "init": _Init(),
        "max_iter": _params.Int(),
        "batch_size": _params.Int(1),
        "verbose": _params.VERBOSE,
        "compute_labels": _params.Bool(),
        "random_state": _params.RandomState(),
        "tol": _params.Real(),
        "max_no_improvement": _params.Optional(_params.Int(0)),
        "init_size": _params.Optional(_params.Int(1)),
        "n_init": _params.Int(1, also=("auto",)),
        "reassignment_ratio": _params.Real(0, math.inf, closed="left"),
        "n_threads": _params.THREADS,
    }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # SciPy sparse rows (CSR; docs/kmeans.md, "Sparse input")
        return tags

    def __init__(self, n_clusters=8, *, init="k-means++", max_iter=100, batch_size=1024, verbose=0,
                 compute_labels=True, random_state=None, tol=0.0, max_no_improvement=10, init_size=None,
                 n_init="auto", reassignment_ratio=0.01, n_threads=0):
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.n_threads = n_threads

    def _check_params(self, n_samples, warn=True):
        """The checked parameters, n_init resolved, with scikit-learn's warnings (``warn``); before any pass."""
        p = _params.validate(self)
        if n_samples < p["n_clusters"]:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={p['n_clusters']}.")
        given = not isinstance(p["init"], str)
        if p["n_init"] == "auto":
            p["n_init"] = 3 if not given and p["init"] == "random" else 1
        if given and p["n_init"] != 1:
            if warn:
                warnings.warn(f"{_given_init_text(p['init'])}: performing only one init in MiniBatchKMeans "
                              f"instead of n_init={p['n_init']}.", RuntimeWarning)
            p["n_init"] = 1
        if p["init_size"] is not None and p["init_size"] < p["n_clusters"] and warn:  # the core makes it 3 K
            warnings.warn(f"init_size={p['init_size']} should be larger than n_clusters={p['n_clusters']}. Setting it "
                          "to min(3*n_clusters, n_samples)", RuntimeWarning)
        return p

    @staticmethod
    def _core_args(p, seed):
        """The C++ binding's parameters (None becomes -1 / 0, the C++ spellings of "off" / "default")."""
        init = p["init"] if isinstance(p["init"], str) else "k-means++"
        no_improvement = -1 if p["max_no_improvement"] is None else p["max_no_improvement"]
        init_size = 0 if p["init_size"] is None else p["init_size"]
        return (p["n_clusters"], init, p["max_iter"], p["batch_size"], p["tol"], no_improvement, init_size, p["n_init"],
                p["reassignment_ratio"], seed, p["compute_labels"], p["n_threads"], p["verbose"])

    @staticmethod
    def _weights(sample_weight, X, who, allow_all_zero=False, check_values=False):
        """Host sample weights in X's dtype; all zero only for a chunk after the first (it moves nothing);
        check_values: each finite and >= 0, for score (the C++ fit and steps check them themselves)."""
        if sample_weight is None:
            return None
        if _cuda_array.is_device_array(sample_weight):
            raise ValueError(f"{who}: sample_weight must be a host array (this estimator runs on the CPU)")
        return check_sample_weight(sample_weight, X, who, allow_all_zero=allow_all_zero, check_values=check_values)

    def fit(self, X, y=None, sample_weight=None):
        """Compute the centres on X by mini-batches.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            float32 and float64 C-contiguous arrays are used without a copy; anything else is
            converted once to float64. SciPy sparse matrices and arrays: CSR used without a copy,
            other formats converted.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Batches are drawn with probability proportional to it (and the initialisation uses it).

        Returns
        -------
        self
        """
        X = _refuse_gaps(validate_data(self, _cuda_array.host_array(X, "MiniBatchKMeans.fit"), accept_sparse="csr",
                                       dtype=[np.float64, np.float32], order="C",
                                       ensure_all_finite="allow-nan"), "MiniBatchKMeans.fit")
        p = self._check_params(X.shape[0])
        w = self._weights(sample_weight, X, "MiniBatchKMeans.fit")
        _, init_centers = _init_of(self, X.shape[1], X.dtype, X, p["random_state"])
        self._seed = _params.seed(p["random_state"])
        r = _core.typed("minibatch_fit", X.dtype)(_rows(X, "MiniBatchKMeans.fit"), w, init_centers,
                                                  *self._core_args(p, self._seed))
        self._set_state(r)
        self.distortion_trace_ = r["trace"]
        self.events_ = r["events"]
        self.n_iter_ = r["n_iter"]
        self.inertia_ = r["inertia"]
        if r["labels"] is not None:
            self.labels_ = r["labels"]
        elif hasattr(self, "labels_"):
            del self.labels_
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch step on X (all its rows); the first call on an unfitted estimator initialises
        the centres from X (or ``init``).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            After the first call, converted to the dtype of ``cluster_centers_``.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self
        """
        fitted = hasattr(self, "cluster_centers_")
        X = _refuse_gaps(validate_data(self, _cuda_array.host_array(X, "MiniBatchKMeans.partial_fit"),
                                       accept_sparse="csr", dtype=[np.float64, np.float32], order="C",
                                       ensure_all_finite="allow-nan", reset=not fitted), "MiniBatchKMeans.partial_fit")
        if fitted:
            X = X.astype(self.cluster_centers_.dtype, copy=False) if sp.issparse(X) else \
                np.ascontiguousarray(X, dtype=self.cluster_centers_.dtype)
            p = self._check_params(self.n_clusters, warn=False)  # n_samples and the warnings are the first call's
            state = {"cluster_centers": self.cluster_centers_, "counts": self.counts_, "n_steps": self.n_steps_,
                     "n_since_reassign": self._n_since_last_reassign}
            init_centers = None
        else:
            p = self._check_params(X.shape[0])
            self._seed = _params.seed(p["random_state"])
            state = None
            _, init_centers = _init_of(self, X.shape[1], X.dtype, X, p["random_state"])
        w = self._weights(sample_weight, X, "MiniBatchKMeans.partial_fit", allow_all_zero=fitted)
        r = _core.typed("minibatch_partial_fit", X.dtype)(_rows(X, "MiniBatchKMeans.partial_fit"), w, init_centers,
                                                          state, *self._core_args(p, self._seed))
        self._set_state(r)
        if fitted:
            self.distortion_trace_ = np.vstack([self.distortion_trace_, r["trace"]])
            self.events_ = list(self.events_) + r["events"]
        else:
            self.distortion_trace_ = r["trace"]
            self.events_ = r["events"]
        if p["compute_labels"]:
            self.labels_ = r["labels"]
            self.inertia_ = r["inertia"]
        else:  # an earlier call's would describe other rows under older centres (scikit-learn keeps them)
            for name in ("labels_", "inertia_"):
                if hasattr(self, name):
                    delattr(self, name)
        return self

    def _set_state(self, r):
        """What partial_fit goes on from, from the C++ result."""
        self.cluster_centers_ = r["cluster_centers"]
        self.counts_ = r["counts"]
        self.n_steps_ = r["n_steps"]
        self._n_since_last_reassign = r["n_since_reassign"]
        self.n_features_in_ = self.cluster_centers_.shape[1]
        self._n_features_out = self.cluster_centers_.shape[0]

    def _checked(self, X):
        check_is_fitted(self)
        X = validate_data(self, _cuda_array.host_array(X, "MiniBatchKMeans"), accept_sparse="csr",
                          dtype=[np.float64, np.float32], order="C", ensure_all_finite="allow-nan", reset=False)
        centers = np.ascontiguousarray(self.cluster_centers_.astype(X.dtype, copy=False))
        return _refuse_gaps(X, "MiniBatchKMeans"), centers

    def predict(self, X):
        """Index of the nearest centre of each row."""
        return _centre_pass(self, "predict", X, lambda X: ())

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the labels of the training rows."""
        self.fit(X, sample_weight=sample_weight)
        return self.labels_ if self.compute_labels else self.predict(X)

    def transform(self, X):
        """Euclidean distance of each row to each centre, shape (n_samples, n_clusters)."""
        return _centre_pass(self, "transform", X, lambda X: ())

    def fit_transform(self, X, y=None, sample_weight=None):
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) distortion of X under the centres (sample_weight: finite, >= 0, not
        all zero; a ValueError names the first bad weight)."""
        return _centre_pass(self, "score", X, lambda X: (self._weights(sample_weight, X, "MiniBatchKMeans.score",
                                                                    check_values=True),))

    def _to_sections(self, prefix="", side=None):
        """Model-file sections (docs/model-format.md): the centres, the state partial_fit resumes from
        (counts_, n_steps_, the reassignment counter, the seed) and the record."""
        s = _io.params_to_sections(self, prefix, side)
        if not hasattr(self, "cluster_centers_"):
            return s
        s.update(_io.features_to_sections(self, prefix))
        s[prefix + "cluster_centers_"] = np.ascontiguousarray(self.cluster_centers_)
        s[prefix + "counts_"] = np.ascontiguousarray(self.counts_, dtype=np.float64)
        s[prefix + "n_steps_"] = _io.scalar(self.n_steps_, np.int64)
        s[prefix + "n_since_reassign_"] = _io.scalar(self._n_since_last_reassign, np.int64)
        s[prefix + "seed_"] = _io.scalar(self._seed, np.uint64).view(np.int64)  # the u64 key's bits
        for name, dtype in (("n_iter_", np.int64), ("inertia_", np.float64)):  # partial_fit alone sets neither
            if hasattr(self, name):
                s[prefix + name] = _io.scalar(getattr(self, name), dtype)
        if getattr(self, "labels_", None) is not None:
            s[prefix + "labels_"] = np.ascontiguousarray(self.labels_, dtype=np.int32)
        s[prefix + "distortion_trace_"] = np.ascontiguousarray(self.distortion_trace_, dtype=np.float64).reshape(-1, 2)
        s[prefix + "events_"] = np.array([[e["step"], e["cluster"], e["row"]] for e in self.events_],
                                         dtype=np.int64).reshape(-1, 3)
        s.update(_io.extras_to_sections(self, prefix, self.cluster_centers_))
        return s

    @classmethod
    def _from_sections(cls, sections, prefix="", side=None):
        """The estimator held by model-file sections, checked as the C++ loader checks them."""
        est, fitted = _centres_from_sections(cls, sections, prefix, side)
        if not fitted:
            return est
        est.counts_ = sections[prefix + "counts_"]
        est.n_steps_ = int(sections[prefix + "n_steps_"])
        est._n_since_last_reassign = int(sections[prefix + "n_since_reassign_"])
        est._seed = int(sections[prefix + "seed_"].view(np.uint64))
        est._n_features_out = est.cluster_centers_.shape[0]
        if prefix + "n_iter_" in sections:
            est.n_iter_ = int(sections[prefix + "n_iter_"])
        if prefix + "inertia_" in sections:
            est.inertia_ = float(sections[prefix + "inertia_"])
        if prefix + "labels_" in sections:
            est.labels_ = sections[prefix + "labels_"]
        est.distortion_trace_ = sections[prefix + "distortion_trace_"]
        est.events_ = [{"kind": "reassigned", "step": step, "cluster": cluster, "row": row}
                       for step, cluster, row in sections[prefix + "events_"].tolist()]
        _io.keep_extras(est, sections, prefix, cls._extra_sections, est.cluster_centers_)
        return est
