"""scikit-learn compatible Gaussian mixture on mixtura's C++ core."""
import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core, _cuda_array, _device, _io, _params
from ._validation import check_sample_weight
from ._kmeans import _refuse_device_weights


# Host X as the passes take it: float32/float64 rows, NaN a missing value (the C++ core refuses +-inf).
_HOST_X = dict(dtype=[np.float64, np.float32], order="C", ensure_all_finite="allow-nan")


def _statistics_from_state(state):
    """Unpickles a GaussianMixtureStatistics (its __reduce__ names this function)."""
    return _core.gmm_statistics_from_state(state)


def _check_initial_shapes(weights, means, precisions, n_components, n_features, covariance_type):
    """A ValueError, in scikit-learn's words, for a starting parameter of another shape than
    scikit-learn's (the C++ fit sees flat arrays, and checks the values)."""
    K, D = n_components, n_features
    expected = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[covariance_type]
    for given, name, what, shape in ((weights, "weights_init", "weights", (K,)), (means, "means_init", "means", (K, D)),
                                     (precisions, "precisions_init", f"{covariance_type} precision", expected)):
        if given is not None and np.shape(given) != shape:
            raise ValueError(f"GaussianMixture.fit: {name}: The parameter '{what}' should have the shape of {shape}, "
                             f"but got {np.shape(given)}")


class GaussianMixture(_io.ModelFileMixin, DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by EM, with the ELBO staircase recorded.

    Parameters and attributes follow scikit-learn's ``GaussianMixture``; from the same initial
    parameters the per-iteration lower bounds agree with scikit-learn's to round-off.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    tol : float, default=1e-3
        Stop when the per-sample lower bound changes by less than tol.
    reg_covar : float, default=1e-6
        Added to the diagonal of the covariances.
    max_iter : int >= 0, default=100
        EM iterations per restart. 0 keeps the initial parameters (one restart, no ConvergenceWarning;
        ``lower_bound_`` is -inf), as scikit-learn does to let a start be inspected.
    n_init : int, default=1
        Restarts; the one with the highest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
    weights_init, means_init, precisions_init : array-like, default=None
        Starting parameters, with scikit-learn's shapes and meanings. weights_init must sum to 1
        within 1e-8, or within 1e-6 when given in float32 (as scikit-learn; then divided by its sum).
    random_state : int in [0, 2**64 - 1], RandomState instance or None, default=None
    warm_start : bool, default=False
        Start from the fitted parameters (one restart); convergence is judged against the previous
        fit's ``lower_bound_``, so repeated ``fit`` calls with ``max_iter=1`` stop as one fit would.
    on_degenerate : {"recover", "raise"}, default="recover"
        What fit does when a component degenerates. "recover": a component left without weight is
        re-seeded on a worst-explained row and a covariance that is not positive definite gets
        diagonal jitter, each recorded in ``events_``. "raise": scikit-learn's ValueError ("Fitting
        the mixture model failed because some components have ill-defined empirical covariance
        ...") where its fit would fail: a covariance that is not positive definite (after
        ``reg_covar``). partial_fit and update always recover.
    verbose : int, default=0
        Print each iteration's lower bound, ELBO after the M-step and time.
    n_threads : int in [0, 1024], default=0
        OpenMP threads of the C++ passes; 0 uses OpenMP's default (results do not depend on it).
    learning_offset : float >= 0, default=10.0
    learning_decay : float in (0.5, 1], default=0.7
        partial_fit (online EM) blends chunk t >= 2 into its running statistics with step
        ``(learning_offset + t) ** -learning_decay`` (the names of scikit-learn's
        LatentDirichletAllocation): on a stationary stream the model approaches the batch fit.
    half_life : float > 0 or None, default=None
        partial_fit on a drifting stream: the constant step ``1 - 0.5 ** (rows / half_life)`` for a
        chunk of ``rows`` rows (its total sample weight), so that a row's influence halves every
        ``half_life`` rows and the model follows the stream.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        As for KMeans: where the data passes of the fit run (the E-step and the initialisation
        passes on the GPU, the M-step on the host); scoring of host arrays runs on the CPU. X may
        also be an array in CUDA device memory (``__cuda_array_interface__`` or DLPack: CuPy,
        PyTorch, ...; float32/float64, rows contiguous): with "cuda" or "auto", fit, score_samples,
        score, predict, predict_proba, component_log_density, bic and aic read it in place on
        device 0, without a copy through the host, and return NumPy arrays; "cpu" with such an array
        is a ValueError, as is a build without CUDA. Sample weights beside such an X may be on the
        device too (1-d, X's dtype, ``__cuda_array_interface__``: read in place by fit); starting
        parameters stay host arrays.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : ndarray, shape as in scikit-learn
        The parameters are in X's dtype, as scikit-learn's. A float32 fit still accumulates and
        solves in float64: its float64 parameters are kept, and scoring, statistics, update,
        partial_fit, warm starts and model files use them (so float32 streams keep the batch fit's
        bits); the float32 attributes are those values rounded. An attribute set or changed by hand
        is used as given.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
        L(theta_t) per iteration of the kept restart (the mean log-likelihood before each M-step).
    elbo_trace_ : ndarray of shape (``n_iter_``, 2)
        L(theta_t) and ELBO(q_t, theta_{t+1}) per iteration (column 0 equals ``lower_bounds_``).
    elbo_traces_ : list of ndarray
        The same for every restart.
    events_ : list of dict
        What the fit did on degenerate data (component re-seeded, covariance floored; in online EM,
        component_starved: its share fell to ``value`` and is held at a floor of 1e-6), and
        roundoff_decrease: at EM's fixed point the bound fell by ``value`` (at most 1e-12 times
        ``max(1, abs(lower_bound_))``: round-off, as EM never lowers it); that step was not applied or
        recorded and the fit ended as converged, so ``lower_bounds_`` never decreases.
    n_features_in_ : int
    n_steps_ : int
        Chunks that online EM has blended in (the model partial_fit started from counts as one);
        0 after fit and update.
    stream_statistics_ : GaussianMixtureStatistics or None
        Online EM's running statistics (per unit weight), of which the model is the M-step.

    Notes
    -----
    Streams and scale-out: ``statistics(X)`` gives the sufficient statistics of rows under the fitted
    model (mergeable with ``+``, picklable, O(K D^2) in size); ``update(stats)`` makes the M-step of
    them. A fit is that loop: statistics of chunks merged in the fit's own block order give its bits.
    ``partial_fit(X)`` runs online (stepwise) EM, one chunk at a time (docs/streams.md).

    ``save(path)`` writes a portable model file that ``mixtura.load`` and the C++ API
    (``mixtura::load_gaussian_mixture``) read; pickling goes through the same bytes
    (docs/model-format.md).
    """

    _model_kind = "GaussianMixture"
    _param_checks = {
        "n_components": _params.Int(1),  # Python compares it with n_samples
        "covariance_type": _params.Options("full", "tied", "diag", "spherical"),
        "tol": _params.Real(),
        "reg_covar": _params.Real(),
        "max_iter": _params.Int(),
        "n_init": _params.Int(),
        "init_params": _params.Options("kmeans", "k-means++", "random", "random_from_data"),
        "weights_init": _params.Any(),  # arrays: the C++ fit checks them with their shapes
        "means_init": _params.Any(),
        "precisions_init": _params.Any(),
        "random_state": _params.RandomState(),
        "warm_start": _params.Bool(),
        "on_degenerate": _params.Options("recover", "raise"),
        "verbose": _params.VERBOSE,
        "learning_offset": _params.Real(0, math.inf, "left"),
        "learning_decay": _params.Real(0.5, 1, "right"),
        "half_life": _params.Optional(_params.Real(0, math.inf, "neither")),
        "n_threads": _params.THREADS,
        "device": _params.DEVICE,
    }
    _score_block = _core.SCORE_BLOCK  # a row scores the same wherever its index has this remainder
    _event_kinds = ["component_reseeded", "covariance_floored", "component_starved", "roundoff_decrease"]
    # Sections the C++ fit records and Python keeps only to write them back.
    _extra_sections = ["restart_lower_bound_", "restart_converged_", "restart_seconds_", "trace_entropy_",
                       "trace_seconds_"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # NaN = a missing value (docs/missing-values.md)
        return tags

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6, max_iter=100, n_init=1,
                 init_params="kmeans", weights_init=None, means_init=None, precisions_init=None, random_state=None,
                 warm_start=False, on_degenerate="recover", verbose=0, learning_offset=10.0, learning_decay=0.7,
                 half_life=None, n_threads=0, device="cpu"):
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
        self.warm_start = warm_start
        self.on_degenerate = on_degenerate
        self.verbose = verbose
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay
        self.half_life = half_life
        self.n_threads = n_threads
        self.device = device

    @staticmethod
    def _f64(a):
        return None if a is None else np.ascontiguousarray(a, dtype=np.float64)

    @staticmethod
    def _weights_f64(a):
        """weights_init for the C++ fit, which wants them to sum to 1 within 1e-8. float32 weights are
        accepted within 1e-6, as by scikit-learn (their own rounding), and then divided by their sum;
        any others go as given (the C++ check refuses them)."""
        w = GaussianMixture._f64(a)
        if w is not None and np.asarray(a).dtype == np.float32 and w.ndim == 1:
            total = w.sum()
            if 1e-8 < abs(total - 1.0) <= 1e-6:
                w = w / total
        return w

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            float32 and float64 C-contiguous arrays are used without a copy. A float32/float64 array in
            CUDA device memory (``__cuda_array_interface__`` or DLPack) is used in place with
            device="cuda" or "auto". NaN marks a missing value (host arrays, device="cpu"): EM for
            incomplete data, docs/missing-values.md; a row with no observed value and +-inf are errors.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            A host array; or, when X is on the device, a 1-d contiguous device array of X's dtype
            (``__cuda_array_interface__`` or DLPack), read in place. Device weights with a host X are a
            ValueError.

        Returns
        -------
        self
        """
        p = _params.validate(self)
        if _cuda_array.is_device_array(X):
            return self._fit_device(X, sample_weight, p)
        _refuse_device_weights(sample_weight, "GaussianMixture.fit")
        X = _cuda_array.host_array(X, "GaussianMixture.fit")
        X = validate_data(self, X, **_HOST_X, ensure_min_samples=2)
        device = _device.resolve(p["device"], "GaussianMixture")
        self._check_n_samples(X.shape[0], p)
        w = check_sample_weight(sample_weight, X, "GaussianMixture.fit")
        r = _core.typed("gmm_fit", X.dtype)(X, w, *self._fit_args(p, X.shape[1]), device)
        return self._finish_fit(r, X.dtype)

    @staticmethod
    def _check_n_samples(n_samples, p):
        if n_samples < p["n_components"]:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {p['n_components']}, "
                             f"n_samples = {n_samples}")

    def _fit_args(self, p, n_features):
        """The C++ fit's arguments after X and the sample weights, from the checked parameters p (host
        arrays for the starting parameters, their shapes checked for n_features)."""
        weights_init, means_init, precisions_init = p["weights_init"], p["means_init"], p["precisions_init"]
        warm = None
        if p["warm_start"] and hasattr(self, "means_"):  # EM goes on from the fitted model and its bound
            warm = (*self._exact_model(), float(self.lower_bound_))
            weights_init = means_init = precisions_init = None
        for name, a in (("weights_init", weights_init), ("means_init", means_init),
                        ("precisions_init", precisions_init)):
            _cuda_array.host_only(a, "GaussianMixture", name)
        _check_initial_shapes(weights_init, means_init, precisions_init, p["n_components"], n_features,
                              p["covariance_type"])
        return (p["n_components"], p["covariance_type"], p["tol"], p["reg_covar"], p["max_iter"], p["n_init"],
                p["init_params"], _params.seed(p["random_state"]), p["n_threads"], p["verbose"],
                self._weights_f64(weights_init), self._f64(means_init), self._f64(precisions_init),
                p["on_degenerate"], warm)

    def _fit_device(self, X, sample_weight, p):
        """fit() on an array in CUDA device memory: the C++ fit reads it in place (docs/cuda.md)."""
        who = "GaussianMixture.fit"
        dev = _cuda_array.parse(X, who)
        w, w_dev = _cuda_array.device_data_weights(sample_weight, dev, who)  # bad arrays before the backend
        _device.resolve(p["device"], who, device_data="X")
        if dev.shape[0] < 2:
            raise ValueError(f"{who}: Found array with {dev.shape[0]} sample(s) (shape={dev.shape}) while a minimum "
                             "of 2 is required.")
        self._check_n_samples(dev.shape[0], p)
        args = self._fit_args(p, dev.shape[1])
        _cuda_array.synchronize(dev)
        if w_dev is not None:
            _cuda_array.synchronize(w_dev)
        fit = _core.typed("gmm_fit_device", dev.dtype)
        r = fit(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, w, *args,
                sample_weight_ptr=0 if w_dev is None else w_dev.ptr)
        if hasattr(self, "feature_names_in_"):  # as validate_data(reset=True) does for unnamed input
            del self.feature_names_in_
        return self._finish_fit(r, dev.dtype)

    def _finish_fit(self, r, dtype):
        self._set_fitted(r, dtype)
        if not self.converged_ and self.max_iter > 0:  # max_iter=0 asks for the start only
            warnings.warn("Best performing initialization did not converge. Try different init parameters, or "
                          "increase max_iter, tol, or check for degenerate data.", ConvergenceWarning)
        return self

    def _set_fitted(self, r, dtype=np.float64):
        """Stores the fitted attributes from the C++ fit's result, the parameters in dtype."""
        self._set_model(r, dtype)
        self.converged_ = r["converged"]
        self.n_iter_ = r["n_iter"]
        self.lower_bound_ = r["lower_bound"]
        self.elbo_traces_ = r["traces"]
        self.elbo_trace_ = r["traces"][r["best_restart"]]
        self.lower_bounds_ = list(self.elbo_trace_[:, 0])
        self.events_ = r["events"]
        self.n_features_in_ = self.means_.shape[1]
        self.n_steps_ = 0
        self.stream_statistics_ = None
        self._stream_starved = None
        return self

    _PARAMETERS = ("weights", "means", "covariances", "precisions", "precisions_cholesky")
    _MODEL = ("weights_", "means_", "precisions_cholesky_")  # what the core takes; the rest derive from it

    def _set_model(self, r, dtype=None):
        """The parameters from the core's float64 arrays r, as attributes in dtype (default: the current
        model's); below float64 the float64 model is kept for the computations (_exact_model)."""
        if dtype is None:
            dtype = self.means_.dtype if hasattr(self, "means_") else np.float64
        dtype = np.dtype(dtype)
        for name in self._PARAMETERS:
            setattr(self, name + "_", r[name] if dtype == np.float64 else r[name].astype(dtype))
        self._exact = None if dtype == np.float64 else {n: np.asarray(r[n[:-1]], dtype=np.float64) for n in self._MODEL}

    def _exact_model(self):
        """(weights, means, precisions_cholesky) in float64 as the core takes them: the kept float64 model
        while the attributes are its rounding, else the attributes themselves (set or changed by hand)."""
        exact = getattr(self, "_exact", None)
        shown = [getattr(self, n) for n in self._MODEL]
        if exact is not None and all(isinstance(a, np.ndarray) and a.dtype != np.float64 and
                                     np.array_equal(a, exact[n].astype(a.dtype)) for n, a in zip(self._MODEL, shown)):
            return tuple(exact[n] for n in self._MODEL)
        return tuple(self._f64(a) for a in shown)

    def _model_args(self):
        return (self.covariance_type, *self._exact_model())

    def _output_dtype(self, X):
        """The dtype scikit-learn gives scores and probabilities: X's and the parameters' common one
        (float32 only when both are)."""
        check_is_fitted(self)
        return np.result_type(getattr(X, "dtype", np.float64), self.means_.dtype)

    def _output(self, values, X):
        """Scores or probabilities (float64 from the core) in _output_dtype."""
        dtype = self._output_dtype(X)
        return values if dtype == np.float64 or values.dtype != np.float64 else values.astype(dtype)

    def _append_step(self, r, converged):
        """Stores an update's or a partial_fit step's model, trace record, events and stream state. An
        update whose bound fell within round-off (record None) adds no record: as fit, the fit ends."""
        self._set_model(r)
        best = next((i for i, t in enumerate(getattr(self, "elbo_traces_", [])) if t is self.elbo_trace_), None)
        if r["record"] is not None:
            lower_bound, elbo = r["record"][0], r["record"][1]
            trace = np.vstack([self.elbo_trace_, [[lower_bound, elbo]]]) if hasattr(self, "elbo_trace_") else \
                np.array([[lower_bound, elbo]], dtype=np.float64)
            if best is None:
                self.elbo_traces_ = [trace]
            else:
                self.elbo_traces_ = list(self.elbo_traces_)
                self.elbo_traces_[best] = trace
            self.elbo_trace_ = trace
            self.lower_bounds_ = list(trace[:, 0])
            self.lower_bound_ = float(lower_bound)
            self.n_iter_ = int(trace.shape[0])
        self.converged_ = bool(converged)
        kept = 0 if best is None else best  # the step's records belong to the kept restart's trace
        self.events_ = list(getattr(self, "events_", [])) + [dict(e, restart=kept) for e in r["events"]]
        self.n_features_in_ = self.means_.shape[1]
        if r["stream"] is None:
            self.n_steps_, self.stream_statistics_, self._stream_starved = 0, None, None
        else:
            self.stream_statistics_, self.n_steps_, self._stream_starved = r["stream"]
            self.n_steps_ = int(self.n_steps_)
        return self

    def statistics(self, X, sample_weight=None, first_row=0):
        """Sufficient statistics of X under the fitted model (one E-step; see GaussianMixtureStatistics).

        Merged over the chunks of a data set (``a + b``) and handed to :meth:`update`, they give one EM
        iteration on the whole set: bit for bit the fit's when the chunks are cut where the fit's pass
        cuts its reduction groups, else to round-off. first_row: X's first row's index in the whole set
        (it orders ties among the worst-explained rows and names rows in events).
        """
        check_is_fitted(self)
        who = "GaussianMixture.statistics"
        _refuse_device_weights(sample_weight, who)
        X = validate_data(self, _cuda_array.host_array(X, who), **_HOST_X, reset=False)
        w = check_sample_weight(sample_weight, X, who)
        first_row = _params.Int(0, 2**63 - 1, what="an integer >= 0")(who, "first_row", first_row)
        return _core.typed("gmm_statistics", X.dtype)(X, w, *self._model_args(), first_row, _params.n_threads(self))

    def update(self, statistics):
        """One M-step from statistics (GaussianMixture.statistics, merged over any chunks), with reg_covar
        and the degenerate-component policy; appends its record to the trace (``converged_`` when the lower
        bound moved by less than tol). As in fit, statistics whose bound fell within round-off of the last
        record's are not applied: no record, event ``roundoff_decrease``, ``converged_``. Works unfitted
        too (the statistics carry the sizes). Returns self."""
        p = _params.validate(self)
        if not isinstance(statistics, _core.GaussianMixtureStatistics):
            raise ValueError(f"GaussianMixture.update: statistics must be a GaussianMixtureStatistics, got "
                             f"{type(statistics).__name__}")
        fitted = hasattr(self, "means_")
        if fitted and statistics.n_features != self.n_features_in_:
            raise ValueError(f"GaussianMixture.update: statistics of {statistics.n_features} features, but "
                             f"GaussianMixture is expecting {self.n_features_in_} features as input.")
        model = self._exact_model() if fitted else (None, None, None)
        previous = np.array([self.lower_bound_]) if fitted and getattr(self, "n_iter_", 0) else None
        r = _core.gmm_update(statistics, p["covariance_type"], self.means_.shape[0] if fitted else p["n_components"],
                             p["reg_covar"], p["tol"], *model, previous, self.n_iter_ if fitted else 0)
        if not fitted and hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self._append_step(r, r["converged"])

    def partial_fit(self, X, y=None, sample_weight=None):
        """Online (stepwise) EM on one chunk of a stream.

        The first call on an unfitted estimator fits the chunk (as fit); on a fitted one (fit, update,
        a loaded file) it goes on from that model. Each later chunk's E-step statistics are blended into
        the running statistics with the step of learning_offset, learning_decay (or half_life), and the
        model becomes their M-step. A component whose share falls below 1e-6 is held there (event
        component_starved). One trace record per chunk: its mean log-likelihood before the step and its
        ELBO after (``elbo_trace_``). Host arrays only.
        """
        p = _params.validate(self)
        who = "GaussianMixture.partial_fit"
        if not hasattr(self, "means_"):
            self.fit(X, sample_weight=sample_weight)
            self.n_steps_ = 1
            return self
        if _cuda_array.is_device_array(X):
            raise ValueError(f"{who}: X must be a host array (partial_fit does not read CUDA device memory)")
        _refuse_device_weights(sample_weight, who)
        X = validate_data(self, X, **_HOST_X, reset=False)
        w = check_sample_weight(sample_weight, X, who)
        half_life = 0.0 if p["half_life"] is None else p["half_life"]
        r = _core.typed("gmm_partial_fit", X.dtype)(
            X, w, *self._model_args(), p["reg_covar"], p["learning_offset"], p["learning_decay"], half_life,
            p["n_threads"], getattr(self, "stream_statistics_", None), getattr(self, "n_steps_", 0),
            getattr(self, "_stream_starved", None), self.n_iter_)
        return self._append_step(r, False)

    def _device_input(self, X, who):
        """The parsed device array X of a fitted model, on a resolved device, its stream waited for."""
        dev = _cuda_array.parse(X, who)
        _device.resolve(self.device, who, device_data="X")
        if dev.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {dev.shape[1]} features, but GaussianMixture is expecting "
                             f"{self.n_features_in_} features as input.")
        _cuda_array.synchronize(dev)
        return dev

    def _eval(self, X, what, exact=False):
        """what (a core evaluation) of X; in _output's dtype unless exact (float64, for score)."""
        check_is_fitted(self)
        if _cuda_array.is_device_array(X):  # read in place on device 0; the results come back as NumPy arrays
            dev = self._device_input(X, f"GaussianMixture.{what}")
            f = _core.typed("gmm_eval_device", dev.dtype)
            values = f(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, *self._model_args(), what,
                       _params.n_threads(self))
            return values if exact else self._output(values, dev)
        X = _cuda_array.host_array(X, "GaussianMixture")
        X = validate_data(self, X, **_HOST_X, reset=False)
        evaluate = _core.typed("gmm_eval", X.dtype)
        values = evaluate(X, *self._model_args(), what, _params.n_threads(self))
        return values if exact else self._output(values, X)

    @staticmethod
    def _n_rows(X):
        """Rows of X without converting a device array to the host."""
        if _cuda_array.is_device_array(X):
            return _cuda_array.parse(X, "GaussianMixture").shape[0]
        return np.asarray(_cuda_array.host_array(X, "GaussianMixture")).shape[0]

    def score_samples(self, X):
        """Log-density log p(x) of each row (higher = more typical), shape (n_samples,)."""
        return self._eval(X, "score_samples")

    def _score_samples64(self, X):
        """score_samples in float64 whatever the dtypes (the weighted mean of score sums these)."""
        return self._eval(X, "score_samples", exact=True)

    def score(self, X, y=None, sample_weight=None):
        """Mean log-density of the rows of X, weighted by sample_weight.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
            As in scikit-learn's ``score(X, y=None)``, which has no sample_weight.
        sample_weight : array-like of shape (n_samples,) or float, default=None
            Finite weights >= 0, not all zero (a ValueError names the first bad one, as fit does): a
            host array, or beside a device X a device array (as in fit), copied once for the weighted
            mean.

        Returns
        -------
        float
        """
        if sample_weight is not None and _cuda_array.is_device_array(sample_weight):
            who = "GaussianMixture.score"
            if not _cuda_array.is_device_array(X):
                _refuse_device_weights(sample_weight, who)
            check_is_fitted(self)
            dev = _cuda_array.parse(X, who)
            _, w = _cuda_array.device_data_weights(sample_weight, dev, who)  # bad weights before the backend
            dev = self._device_input(X, who)
            _cuda_array.synchronize(w)
            f = _core.typed("gmm_score_device", dev.dtype)
            return float(f(dev.ptr, dev.shape[0], dev.shape[1], dev.row_stride, *self._model_args(), w.ptr,
                           _params.n_threads(self)))
        if sample_weight is not None:  # checked before the pass; np.average would take NaN or negative weights
            check_is_fitted(self)
            rows = np.empty((self._n_rows(X), 0))  # float64, like the scores
            sample_weight = check_sample_weight(sample_weight, rows, "GaussianMixture.score", check_values=True)
        return float(np.average(self._score_samples64(X), weights=sample_weight))

    def predict_proba(self, X):
        """Posterior probability of each component, shape (n_samples, n_components)."""
        return self._eval(X, "predict_proba")

    def predict(self, X):
        """Most probable component of each row (the first on a tie), shape (n_samples,): the argmax of the
        weighted log-densities, as scikit-learn's; from a device array, one label a row comes back."""
        return self._eval(X, "predict")

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then label the training rows."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def component_log_density(self, X):
        """log N(x | mean_k, covariance_k) of each row under each component, shape (n_samples, n_components)."""
        return self._eval(X, "component_log_density")

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture (reproducible for an integer random_state); returns (X, y)."""
        check_is_fitted(self)
        if isinstance(n_samples, numbers.Integral) and not isinstance(n_samples, bool) and n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}. The sampling requires at least one sample.")
        n_samples = _params.Int(1, 2**63 - 1, what="an integer >= 1")(  # the C++ long long
            "GaussianMixture.sample", "n_samples", n_samples)
        random_state = _params.validate(self, ["random_state"])["random_state"]
        return _core.gmm_sample(*self._model_args(), n_samples, _params.seed(random_state))  # float64, as scikit-learn

    def _n_parameters(self):
        k, d = self.means_.shape
        return int(_core.gmm_n_parameters(self.covariance_type, k, d))

    def bic(self, X):
        """Bayesian information criterion on X (lower is better)."""
        n = self._n_rows(X)
        return -2 * self.score(X) * n + self._n_parameters() * np.log(n)

    def aic(self, X):
        """Akaike information criterion on X (lower is better)."""
        return -2 * self.score(X) * self._n_rows(X) + 2 * self._n_parameters()

    def _to_sections(self, prefix="", side=None):
        """Model-file sections (scikit-learn attribute names; docs/model-format.md)."""
        s = _io.params_to_sections(self, prefix, side)
        if not hasattr(self, "means_"):
            return s
        s.update(_io.features_to_sections(self, prefix))
        s[prefix + "covariance_type"] = str(self.covariance_type)
        for name, a in zip(self._MODEL, self._exact_model()):  # float64 in the file, as the C++ loaders read
            s[prefix + name] = np.ascontiguousarray(a)
        if self.means_.dtype != np.float64:  # the attributes' dtype, which only Python keeps
            s[prefix + "python.dtype"] = str(self.means_.dtype)
        s[prefix + "lower_bound_"] = _io.scalar(self.lower_bound_, np.float64)
        s[prefix + "n_iter_"] = _io.scalar(self.n_iter_, np.int64)
        s[prefix + "converged_"] = _io.scalar(self.converged_, np.int32)
        traces = _io.traces_to_sections(self.elbo_traces_, self.elbo_trace_, "elbo_traces_", prefix)
        s[prefix + "best_restart_"] = traces.pop(prefix + "best_restart_")
        s.update(traces)
        s.update(_io.events_to_sections(self.events_, self._event_kinds, "component", prefix, with_value=True))
        s.update(_io.extras_to_sections(self, prefix, self.means_))
        stats = getattr(self, "stream_statistics_", None)
        if stats is not None and getattr(self, "n_steps_", 0):  # online EM's state, to resume where it stopped
            s[prefix + "stream_n_steps_"] = _io.scalar(self.n_steps_, np.int64)
            s[prefix + "stream_starved_"] = np.asarray(self._stream_starved, dtype=np.int32)
            for name in ("nk", "s1", "s2", "shift"):
                s[prefix + f"stream_{name}_"] = np.ascontiguousarray(getattr(stats, name), dtype=np.float64)
            s[prefix + "stream_totals_"] = np.array([stats.log_likelihood, stats.entropy, stats.weight])
        return s

    @classmethod
    def _from_sections(cls, sections, prefix="", side=None):
        """The estimator held by model-file sections, checked as the C++ loader checks them."""
        est = cls(**_io.params_from_sections(cls, sections, prefix, side))
        if prefix + "means_" not in sections:
            return est  # unfitted (a pickle's); _io.loads refuses it for a model file, naming what is missing
        # The sections first (a file of another kind is named as such), then the parameters: a file's
        # n_threads reaches the core as a fit's would.
        derived = _core.model_file_check(cls._model_kind, cls._model_kind, sections, prefix, f"{cls.__name__} model")
        _params.validate(est)
        _io.check_params_match(est, sections, prefix, covariance_type=sections[prefix + "covariance_type"],
                               n_components=sections[prefix + "means_"].shape[0])
        _io.features_from_sections(est, sections, prefix)
        est.weights_ = sections[prefix + "weights_"]
        est.means_ = sections[prefix + "means_"]
        est.precisions_cholesky_ = sections[prefix + "precisions_cholesky_"]
        est.covariances_ = derived["covariances_"]
        est.precisions_ = derived["precisions_"]
        dtype = sections.get(prefix + "python.dtype", "float64")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"{cls.__name__} model: section '{prefix}python.dtype' must be 'float32' or 'float64', "
                             f"got {dtype!r}")
        est._set_model({"weights": est.weights_, "means": est.means_, "precisions_cholesky": est.precisions_cholesky_,
                        "covariances": est.covariances_, "precisions": est.precisions_}, dtype)
        est.converged_ = bool(sections[prefix + "converged_"])
        est.n_iter_ = int(sections[prefix + "n_iter_"])
        est.lower_bound_ = float(sections[prefix + "lower_bound_"])
        est.elbo_traces_, best = _io.traces_from_sections(sections, "elbo_traces_", prefix)
        est.elbo_trace_ = est.elbo_traces_[best]
        est.lower_bounds_ = list(est.elbo_trace_[:, 0])
        est.events_ = _io.events_from_sections(sections, cls._event_kinds, "component", prefix, with_value=True)
        _io.keep_extras(est, sections, prefix, cls._extra_sections, est.means_)
        est.n_steps_, est.stream_statistics_, est._stream_starved = 0, None, None
        if prefix + "stream_n_steps_" in sections:  # checked by model_file_check with the rest
            k, d = est.means_.shape
            totals = sections[prefix + "stream_totals_"]
            none = np.zeros(0)
            est.stream_statistics_ = _core.gmm_statistics_from_state((
                str(est.covariance_type), k, d, sections[prefix + "stream_nk_"], sections[prefix + "stream_s1_"],
                sections[prefix + "stream_shift_"], sections[prefix + "stream_s2_"], float(totals[0]),
                float(totals[1]), float(totals[2]), k, none, none.astype(np.int64), none))
            est.n_steps_ = int(sections[prefix + "stream_n_steps_"])
            est._stream_starved = sections[prefix + "stream_starved_"].astype(bool)
        return est
