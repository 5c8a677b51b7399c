"""Density-based anomaly detection on mixtura's C++ core (scikit-learn's outlier conventions)."""
import math
import sys
import warnings
from collections import namedtuple

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _core, _cuda_array, _device, _io, _params
from ._gmm import GaussianMixture
from ._kmeans import KMeans

Explanation = namedtuple("Explanation", ["contributions", "component"])
Explanation.__doc__ = """Why rows scored as they did.

contributions : ndarray or pandas.DataFrame of shape (n_samples, n_features)
    Under the responsible component k with precision P, (P (x - mu_k))_j / sqrt(P_jj): the
    standardised residual of feature j given all the other features. Large ``|value|`` = feature j
    is off. The same whatever the units of the features. A DataFrame with X's index and columns
    when X is a pandas DataFrame.
component : ndarray of shape (n_samples,)
    The responsible component (cluster) of each row (an ndarray, as predict's).
"""


class DensityAnomalyDetector(_io.ModelFileMixin, OutlierMixin, BaseEstimator):
    """Fit a density on (mostly) normal rows; score new rows by their log-density.

    The default works on raw sensor channels without tuning: features are scaled robustly (constant
    channels keep unit scale), a full-covariance Gaussian mixture is fitted with the number of
    components chosen by BIC among 1..max_components and a covariance floor ``reg_covar`` in
    standardised units, and the threshold is calibrated on held-out training rows to the target
    ``false_alarm_rate``. docs/anomaly-detection.md says why each default is what it is.

    Parameters
    ----------
    method : {"gmm", "kmeans"}, default="gmm"
        "gmm": log p(x) under a Gaussian mixture. "kmeans": K-means centres, each with the mean
        squared distance of its rows as a spherical variance; a row scores
        max_k log(pi_k N(x | c_k, s_k I)) -- its distance to the nearest centre scaled per cluster.
    n_components : int or "bic", default="bic"
        Components (clusters); "bic" picks the count with the lowest BIC among 1..max_components
        (a count whose density has at least as many free parameters as there are rows to fit is
        not tried).
    max_components : int, default=8
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Of the Gaussian mixture (method "gmm").
    reg_covar : float, default=1e-3
        Added to every variance, in scaled units: a floor for channels that barely move.
    scaling : {"robust", "standard"} or None, default="robust"
        "robust": (x - median) / (IQR / 1.349), falling back to the standard deviation where the
        IQR is 0 (and to 1 for a constant channel), so that outliers among the training rows do not
        inflate the scale; "standard": (x - mean) / std; None: raw features.
    contamination : "auto" or float in (0, 0.5], default="auto"
        A float flags that fraction of the training rows (scikit-learn's meaning). "auto" puts the
        threshold where ``threshold`` says.
    threshold : {"calibrate", "model-tail"}, default="calibrate"
        With contamination="auto": "calibrate" holds out ``calibration_fraction`` of the training
        rows (chosen by random_state), fits on the rest and sets ``offset_`` at the
        ``false_alarm_rate`` quantile of the held-out scores; "model-tail" fits on all rows and takes
        the same quantile of the scores of rows drawn from the fitted density itself (for one
        component, the chi-square tail of the squared Mahalanobis distance).
    false_alarm_rate : float in (0, 1), default=0.01
        Target fraction of normal rows flagged.
    calibration_fraction : float in (0, 1), default=0.2
    trim : "auto" or float in [0, 0.5), default=0.0
        For training rows that are not clean. 0: one plain fit. Otherwise a first fit scores the
        rows the density is fitted on, the least likely are set aside and the density is fitted again
        on the rest (count by BIC, components and all), so that a minority of anomalous training rows
        can neither keep a component of its own nor stretch one over itself. A float sets aside that
        share of the rows, ranked under the first fit's components that hold more than that share
        (a component so small that the rows to trim could fill it does not vouch for its rows);
        "auto" sets aside the rows below Q1 - 3 IQR of those scores (Tukey's far-out fence),
        components of at most 2 % of the weight not vouching (the contamination share instead when
        contamination is a float). The calibration rows are trimmed by the same rule under the
        final fit before the threshold's quantile is taken. ``n_trimmed_`` counts the fitting rows
        set aside; docs/anomaly-detection.md says when to use it.
    n_init : int, default=1
    max_iter : int, default=100
    tol : float, default=1e-3
        EM tolerance.
    random_state : int in [0, 2**64 - 1], RandomState instance or None, default=None
    half_life : float > 0 or None, default=None
        partial_fit: rows after which a row's influence on the density halves (the Gaussian mixture's
        online EM) and how many recent scores place the threshold; None: the density averages the
        whole stream (decaying steps) and the last 10 000 scores place the threshold.
    n_threads : int in [0, 1024], default=0
        OpenMP threads of the C++ passes; 0 uses OpenMP's default (results do not depend on it).
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where the data passes of fit, score_samples, decision_function and predict run: the density's
        fits (K-means and EM of every BIC candidate, and their BIC), the threshold's scores and the
        scores. "cuda": on GPU 0; "auto": on the GPU when this build has the CUDA backend and a device
        is visible, else on the CPU; "cuda" without either is a ValueError saying which. The scaling,
        the calibration split, the model-tail draws and ``explain`` run on the host. Scores agree with
        the CPU's within 1e-5 relative (float32) / 1e-10 (float64), not bit for bit. X must be a host
        array in every method (the rows are scaled on the host): an array in CUDA device memory (CuPy,
        PyTorch; ``__cuda_array_interface__`` or DLPack) is a ValueError that says how to copy it to
        the host.

    Attributes
    ----------
    offset_ : float
        decision_function = score_samples - ``offset_``.
    score_median_ : float
        The median of the scores ``offset_`` is a quantile of (held-out, training or model-drawn rows; after
        partial_fit, of the recent scores of rows not flagged); NaN for a detector loaded from an older file.
    n_steps_ : int
        Chunks partial_fit has followed (0 after fit).
    stream_recent_scores_ : ndarray
        The recent scores of rows not flagged behind a streaming threshold.
    center_, scale_ : ndarray of shape (n_features,)
        The scaling z = (x - ``center_``) / ``scale_``.
    n_components_ : int
    n_trimmed_ : int
        Training rows the trimmed fit set aside (0 without ``trim``).
    bic_ : ndarray of shape (n_tried, 2)
        (count, BIC) of every count tried (empty when n_components was given).
    model_ : GaussianMixture or KMeans
        The fitted estimator, in scaled units (its traces: ``model_.elbo_trace_`` or
        ``model_.distortion_trace_``).
    density_weights_, density_means_, density_precisions_cholesky_ : ndarray
        The density that scores (scaled units; for "kmeans" spherical components at the centres).
    density_covariance_type_ : str
    n_iter_ : int
        Iterations of the kept fit (EM, or Lloyd for "kmeans").
    n_features_in_ : int
    """

    _model_kind = "DensityAnomalyDetector"
    _param_checks = {
        "method": _params.Options("gmm", "kmeans"),
        "n_components": _params.Int(1, also=("bic",)),  # "bic" -> 0 for the core
        "max_components": _params.Int(),
        "covariance_type": _params.Options("full", "tied", "diag", "spherical"),
        "reg_covar": _params.Real(),
        "scaling": _params.Options("robust", "standard", None),
        "contamination": _params.Real(0, 0.5, "right", also=("auto",), what="a float in (0, 0.5]"),  # "auto": 0
        "threshold": _params.Options("calibrate", "model-tail"),
        "false_alarm_rate": _params.Real(0, 1, "neither", what="in (0, 1)"),  # both in fit's warning
        "calibration_fraction": _params.Real(0, 1, "neither", what="in (0, 1)"),
        "trim": _params.Real(0, 0.5, "left", also=("auto",), what="a float in [0, 0.5)"),  # "auto": -1
        "n_init": _params.Int(),
        "max_iter": _params.Int(),
        "tol": _params.Real(),
        "random_state": _params.RandomState(),
        "half_life": _params.Optional(_params.Real(0, math.inf, "neither")),
        "n_threads": _params.THREADS,
        "device": _params.DEVICE,
    }
    _score_block = _core.SCORE_BLOCK  # a row scores the same wherever its index has this remainder
    _window_default = 10_000  # rows of recent scores behind a streaming threshold without half_life
    _window_min = 200
    _median_min = 50  # recent scores before the threshold moves

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.method == "gmm"  # NaN = a missing value (docs/missing-values.md)
        return tags

    def __init__(self, method="gmm", *, n_components="bic", max_components=8, covariance_type="full",
                 reg_covar=1e-3, scaling="robust", contamination="auto", threshold="calibrate",
                 false_alarm_rate=0.01, calibration_fraction=0.2, trim=0.0, n_init=1, max_iter=100, tol=1e-3,
                 random_state=None, half_life=None, n_threads=0, device="cpu"):
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
        self.trim = trim
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.half_life = half_life
        self.n_threads = n_threads
        self.device = device

    def _checked_params(self):
        """The checked parameters (``_param_checks``) as the C++ fit takes them ("bic" -> 0
        components, contamination "auto" -> 0, scaling None -> "none", trim "auto" -> -1)."""
        p = _params.validate(self)
        p["n_components"] = 0 if p["n_components"] == "bic" else p["n_components"]
        p["contamination"] = 0.0 if p["contamination"] == "auto" else p["contamination"]
        p["scaling"] = "none" if p["scaling"] is None else p["scaling"]
        if "trim" in p:  # (mixtura.dask's detector has no trimmed fit)
            p["trim"] = -1.0 if p["trim"] == "auto" else float(p["trim"])
        return p

    def fit(self, X, y=None):
        """Fit the density and the threshold on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows, (mostly) normal. float32 and float64 C-contiguous arrays are used
            without a copy. NaN marks a missing value (method "gmm", on the CPU): the scaling ignores
            it and a row scores by the density of its observed values (docs/missing-values.md).
        y : ignored

        Returns
        -------
        self
        """
        p = self._checked_params()
        X = validate_data(self, self._host(X, "fit"), dtype=[np.float64, np.float32], order="C",
                          ensure_all_finite="allow-nan", ensure_min_samples=2)
        device = _device.resolve(p["device"], "DensityAnomalyDetector")
        held_out = round(p["calibration_fraction"] * X.shape[0])
        if p["contamination"] == 0 and p["threshold"] == "calibrate" and held_out * p["false_alarm_rate"] < 1:
            warnings.warn(f"DensityAnomalyDetector: only {held_out} training rows are held out for calibration, so "
                          f"the false_alarm_rate={self.false_alarm_rate} quantile rests on less than one row and the "
                          "threshold is about the lowest held-out score; fit on more rows or raise "
                          "calibration_fraction for the false-alarm rate to hold.", UserWarning)
        fit = _core.typed("detector_fit", X.dtype)
        r = fit(X, p["method"], p["n_components"], p["max_components"], p["covariance_type"], p["reg_covar"],
                p["scaling"], p["contamination"], p["threshold"], p["false_alarm_rate"], p["calibration_fraction"],
                p["n_init"], p["max_iter"], p["tol"], _params.seed(p["random_state"]), p["n_threads"], p["trim"],
                device)
        self.center_ = r["center"]
        self.scale_ = r["scale"]
        self.offset_ = float(r["offset"])
        self.score_median_ = float(r["score_median"])
        self.n_steps_ = 0
        self.stream_recent_scores_ = np.empty(0)
        self.n_components_ = int(r["n_components"])
        self.n_trimmed_ = int(r["n_trimmed"])
        self.bic_ = np.array(r["selection"], dtype=np.float64).reshape(-1, 2)
        self.density_weights_ = r["weights"]
        self.density_means_ = r["means"]
        self.density_precisions_cholesky_ = r["precisions_cholesky"]
        self.density_covariance_type_ = r["covariance_type"]
        if self.method == "gmm":
            self.model_ = GaussianMixture(self.n_components_, covariance_type=self.covariance_type,
                                          tol=self.tol, reg_covar=self.reg_covar, max_iter=self.max_iter,
                                          n_init=self.n_init, random_state=self.random_state,
                                          n_threads=self.n_threads)._set_fitted(r["model"])
        else:
            self.model_ = KMeans(self.n_components_, n_init=self.n_init, max_iter=max(self.max_iter, 300),
                                 random_state=self.random_state, n_threads=self.n_threads)._set_fitted(r["model"])
        self.n_iter_ = self.model_.n_iter_
        return self

    def _adapts(self):
        """partial_fit exists for method "gmm" only (scikit-learn's available_if)."""
        if self.method != "gmm":
            raise AttributeError("DensityAnomalyDetector.partial_fit: method='kmeans' is fitted in one batch; "
                                 "partial_fit adapts method='gmm' (its Gaussian mixture's online EM)")
        return True

    @available_if(_adapts)
    def partial_fit(self, X, y=None):
        """Follow a stream: score the chunk X, then let its rows that were not flagged teach the density
        and move the threshold (an anomaly does not teach the detector that it is normal).

        The first call on an unfitted detector fits the chunk (as fit). Each later call, with the
        detector's scores of X before the step: the rows scoring at least ``offset_`` go to the
        Gaussian mixture's online EM (``model_.partial_fit`` on the scaled rows, with this
        detector's ``half_life``; the scaling stays the fit's). Every row's score joins the recent
        scores (the last ``half_life`` rows, at least 200, or 10 000 without a half-life), a flagged
        row's as the threshold itself: its value teaches nothing, but the median sees it fell below.
        Once 50 are there, the threshold follows their median: ``score_median_`` becomes that median and
        ``offset_`` moves with it, keeping the fit's calibrated distance ``score_median_ - offset_`` while the
        level of the scores drifts. Method "gmm" only. Returns self.
        """
        self._checked_params()  # bad parameters are refused before X is read
        if not hasattr(self, "offset_"):
            self.fit(X)
            self.n_steps_ = 1
            return self
        X = validate_data(self, self._host(X, "partial_fit"), dtype=[np.float64, np.float32], order="C",
                          ensure_all_finite="allow-nan", reset=False)
        # X is validated: a second validate_data would repeat its feature-name warning
        return self._partial_fit_scored(X, self._eval(X, "score_samples", validated=True))

    def _partial_fit_scored(self, X, scores):
        """partial_fit's step on a fitted detector, given X as partial_fit validates it and its scores
        ``score_samples(X)`` from the detector as it is now (StreamScorer has them already). Returns self."""
        p = self._checked_params()
        keep = scores >= self.offset_
        if keep.any():
            Z = ((X[keep] - self.center_) / self.scale_).astype(X.dtype)
            self.model_.set_params(half_life=p["half_life"], n_threads=p["n_threads"])
            self.model_.partial_fit(Z)
            self.density_weights_ = self.model_.weights_
            self.density_means_ = self.model_.means_
            self.density_precisions_cholesky_ = self.model_.precisions_cholesky_
            self.n_iter_ = self.model_.n_iter_
        window = max(self._window_min, math.ceil(p["half_life"])) if p["half_life"] else self._window_default
        # A flagged row counts as lying at the threshold: its value teaches nothing, but the median still
        # sees how many rows fell below (so the threshold can come down when most rows are flagged).
        censored = np.maximum(scores, self.offset_)
        recent = np.concatenate([getattr(self, "stream_recent_scores_", np.empty(0)), censored])[-window:]
        if not math.isfinite(getattr(self, "score_median_", math.nan)):  # an older file's detector lacks it
            if keep.any():
                self.score_median_ = float(np.median(scores[keep]))
        elif len(recent) >= self._median_min:
            gap = self.score_median_ - self.offset_  # the fit's, carried from step to step
            self.score_median_ = float(np.median(recent))
            self.offset_ = self.score_median_ - gap
        self.stream_recent_scores_ = recent
        self.n_steps_ = getattr(self, "n_steps_", 0) + 1
        return self

    @staticmethod
    def _host(X, method):
        """X for NumPy's conversion; a ValueError naming the method for an array in CUDA device memory."""
        who = f"DensityAnomalyDetector.{method}"
        _cuda_array.refuse_device_array(X, who, "the detector reads host arrays only (it scales them on the host)")
        return _cuda_array.host_array(X, who)

    def _eval(self, X, what, validated=False):
        """what: "score_samples" (on the fit's device) or "explain" (on the CPU); validated: X is a
        float32/float64 C-contiguous array that validate_data has checked."""
        check_is_fitted(self)
        if not validated:
            X = validate_data(self, X, dtype=[np.float64, np.float32], order="C", ensure_all_finite="allow-nan",
                              reset=False)
        device = _device.resolve(self.device, "DensityAnomalyDetector") if what == "score_samples" else "cpu"
        evaluate = _core.typed("detector_eval", X.dtype)
        return evaluate(X, self.method, self.center_, self.scale_, self.density_covariance_type_, self.density_weights_,
                        self.density_means_, self.density_precisions_cholesky_, self.offset_, what,
                        _params.n_threads(self), device)

    def score_samples(self, X):
        """Log-density of each row in the original units (higher = more normal).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return self._eval(self._host(X, "score_samples"), "score_samples")

    def decision_function(self, X):
        """score_samples(X) - ``offset_``: negative for rows flagged as anomalous, shape (n_samples,)."""
        return self.score_samples(self._host(X, "decision_function")) - self.offset_

    def predict(self, X):
        """+1 for normal rows, -1 for anomalies, shape (n_samples,)."""
        return np.where(self.decision_function(self._host(X, "predict")) < 0, -1, 1)

    def explain(self, X):
        """Per-feature contributions and the responsible component of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        Explanation
            ``contributions`` (n_samples, n_features) and ``component`` (n_samples,); see
            :class:`mixtura.Explanation`. A row with gaps is explained under its observed features'
            marginal: a missing value's contribution is NaN (docs/missing-values.md). When X is a
            pandas DataFrame, ``contributions`` is a DataFrame with X's index and columns (the
            names checked against ``feature_names_in_`` as in predict); otherwise, and ``component``
            always, an ndarray.
        """
        contributions, component = self._eval(self._host(X, "explain"), "explain")
        pd = sys.modules.get("pandas")  # X can only be a DataFrame if pandas is imported
        if pd is not None and isinstance(X, pd.DataFrame):
            contributions = pd.DataFrame(contributions, index=X.index, columns=X.columns, copy=False)
        return Explanation(contributions, component)

    def _to_sections(self, prefix="", side=None):
        """Model-file sections: the scaling and threshold, and model_ under "model." (docs/model-format.md)."""
        s = _io.params_to_sections(self, prefix, side)
        if not hasattr(self, "offset_"):
            return s
        s.update(_io.features_to_sections(self, prefix))
        s[prefix + "method"] = str(self.method)
        s[prefix + "center_"] = np.ascontiguousarray(self.center_, dtype=np.float64)
        s[prefix + "scale_"] = np.ascontiguousarray(self.scale_, dtype=np.float64)
        s[prefix + "offset_"] = _io.scalar(self.offset_, np.float64)
        if math.isfinite(getattr(self, "score_median_", math.nan)):
            s[prefix + "score_median_"] = _io.scalar(self.score_median_, np.float64)
        if getattr(self, "n_steps_", 0):  # a streaming detector's state (partial_fit)
            s[prefix + "stream_n_steps_"] = _io.scalar(self.n_steps_, np.int64)
            s[prefix + "stream_recent_scores_"] = np.ascontiguousarray(self.stream_recent_scores_, dtype=np.float64)
        s[prefix + "bic_"] = np.ascontiguousarray(self.bic_, dtype=np.float64).reshape(-1, 2)
        if getattr(self, "n_trimmed_", 0):
            s[prefix + "n_trimmed_"] = _io.scalar(self.n_trimmed_, np.int64)
        if self.method == "kmeans":  # the spherical density that scores; a gmm's is model_ itself
            s[prefix + "density_weights_"] = np.ascontiguousarray(self.density_weights_, dtype=np.float64)
            s[prefix + "density_means_"] = np.ascontiguousarray(self.density_means_, dtype=np.float64)
            s[prefix + "density_precisions_cholesky_"] = np.ascontiguousarray(self.density_precisions_cholesky_,
                                                                              dtype=np.float64)
        s.update(self.model_._to_sections(prefix + "model.", side))
        return s

    @classmethod
    def _from_sections(cls, sections, prefix="", side=None):
        """The detector held by model-file sections, checked as the C++ loader checks them."""
        est = cls(**_io.params_from_sections(cls, sections, prefix, side))
        if prefix + "offset_" not in sections:
            return est  # unfitted (a pickle's); _io.loads refuses it for a model file, naming what is missing
        # The sections first (a file of another kind is named as such), then the parameters: a file's
        # n_threads reaches the core as a fit's would.
        _core.model_file_check(cls._model_kind, cls._model_kind, sections, prefix, f"{cls.__name__} model")
        _params.validate(est)
        if sections[prefix + "method"] != est.method:
            raise ValueError(f"section {prefix + 'method'!r} is {sections[prefix + 'method']!r} but the parameters "
                             f"say method={est.method!r}")
        _io.features_from_sections(est, sections, prefix)
        est.center_ = sections[prefix + "center_"]
        est.scale_ = sections[prefix + "scale_"]
        est.offset_ = float(sections[prefix + "offset_"])
        est.score_median_ = float(sections.get(prefix + "score_median_", math.nan))
        est.n_steps_ = int(sections.get(prefix + "stream_n_steps_", 0))
        est.stream_recent_scores_ = np.asarray(sections.get(prefix + "stream_recent_scores_", np.empty(0)),
                                               dtype=np.float64)
        est.bic_ = sections[prefix + "bic_"]
        est.n_trimmed_ = int(sections.get(prefix + "n_trimmed_", 0))
        if est.method == "gmm":
            est.model_ = GaussianMixture._from_sections(sections, prefix + "model.", side)
            est.n_components_ = int(est.model_.means_.shape[0])
            est.density_weights_ = est.model_.weights_
            est.density_means_ = est.model_.means_
            est.density_precisions_cholesky_ = est.model_.precisions_cholesky_
            est.density_covariance_type_ = est.model_.covariance_type
        else:
            est.model_ = KMeans._from_sections(sections, prefix + "model.", side)
            est.n_components_ = int(est.model_.cluster_centers_.shape[0])
            est.density_weights_ = sections[prefix + "density_weights_"]
            est.density_means_ = sections[prefix + "density_means_"]
            est.density_precisions_cholesky_ = sections[prefix + "density_precisions_cholesky_"]
            est.density_covariance_type_ = "spherical"
        est.n_iter_ = est.model_.n_iter_
        return est
