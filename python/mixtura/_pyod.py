"""DensityAnomalyDetector under PyOD's conventions, for benchmarks run with PyOD's tooling (without
depending on PyOD): outlier scores higher = more abnormal, labels 0 inlier / 1 outlier, a threshold at
the training scores' (1 - contamination) percentile, and PyOD's two probability conversions."""
import inspect
import math

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted

from . import _params
from ._anomaly import DensityAnomalyDetector

# The keywords passed on to DensityAnomalyDetector: its parameters but contamination, which is PyOD's here.
_DETECTOR_PARAMS = tuple(n for n in inspect.signature(DensityAnomalyDetector).parameters if n != "contamination")

_erf = np.vectorize(math.erf, otypes=[np.float64])


class PyODDetector(BaseEstimator):
    """A density-based outlier detector with PyOD's ``BaseDetector`` interface.

    Fits a :class:`DensityAnomalyDetector` and reads its log-densities the way PyOD's detectors report
    scores, so that PyOD's benchmark and combination tools take it beside their own detectors.
    Unlike scikit-learn's outlier detectors, higher scores are more abnormal and ``predict`` gives 0
    (inlier) / 1 (outlier).

    Parameters
    ----------
    contamination : float in (0, 0.5], default=0.1
        PyOD's meaning (and default): the share of outliers in the training data; ``threshold_`` is the
        (1 - contamination) percentile of ``decision_scores_``. Passed on to the density detector too,
        which then fits on all the rows (not on a calibration split).
    detector : estimator or None, default=None
        Instead of ``**detector_params``: an unfitted estimator with ``fit`` and ``score_samples``
        (higher = more normal), e.g. a ``DensityAnomalyDetector`` with its own contamination and
        threshold, or a ``GaussianMixture``; it is cloned at each fit and used as given.
    **detector_params
        Parameters of the DensityAnomalyDetector that is fitted when ``detector`` is None
        (``n_components``, ``covariance_type``, ``random_state``, ...); part of ``get_params``.

    Attributes
    ----------
    detector_ : DensityAnomalyDetector (or a clone of ``detector``)
        The fitted density.
    decision_scores_ : ndarray of shape (n_samples,)
        Outlier scores of the training rows: minus their log-density (higher = more abnormal).
    threshold_ : float
        The (1 - contamination) percentile of ``decision_scores_`` (numpy's linear interpolation).
    labels_ : ndarray of shape (n_samples,)
        1 for the training rows whose score is above ``threshold_``, else 0.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        When fitted on a DataFrame with string column names.
    """

    _param_checks = {"contamination": _params.Real(0, 0.5, "right", what="a float in (0, 0.5]")}

    def __init__(self, contamination=0.1, *, detector=None, **detector_params):
        unknown = sorted(set(detector_params) - set(_DETECTOR_PARAMS))
        if unknown:
            raise TypeError(f"PyODDetector: unknown parameter(s) {', '.join(unknown)}; the detector's parameters are "
                            f"{', '.join(_DETECTOR_PARAMS)}")
        self.contamination = contamination
        self.detector = detector
        for name, value in detector_params.items():
            setattr(self, name, value)

    def _detector_params(self):
        """The DensityAnomalyDetector parameters given to __init__ or set_params, by name."""
        return {name: getattr(self, name) for name in _DETECTOR_PARAMS if name in vars(self)}

    def get_params(self, deep=True):
        """contamination, detector (and with deep=True its parameters as detector__name) and the
        detector parameters given."""
        return {**super().get_params(deep), **self._detector_params()}

    def set_params(self, **params):
        """As scikit-learn's; a DensityAnomalyDetector parameter may be set even if __init__ did not have it."""
        for name in [n for n in params if n in _DETECTOR_PARAMS]:
            setattr(self, name, params.pop(name))
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "outlier_detector"  # as PyOD's BaseDetector says
        if self.detector is not None:
            tags.input_tags.allow_nan = get_tags(self.detector).input_tags.allow_nan
        else:
            tags.input_tags.allow_nan = self._detector_params().get("method", "gmm") == "gmm"
        return tags

    def fit(self, X, y=None):
        """Fit the density on X and set ``decision_scores_``, ``threshold_`` and ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        contamination = _params.validate(self, ["contamination"])["contamination"]
        params = self._detector_params()
        if self.detector is not None:
            if params:
                raise ValueError(f"PyODDetector: give either detector or detector parameters, got detector and "
                                 f"{', '.join(sorted(params))}")
            detector = clone(self.detector)
        else:
            detector = DensityAnomalyDetector(contamination=contamination, **params)
        self.detector_ = detector.fit(X)
        self.decision_scores_ = -np.asarray(detector.score_samples(X), dtype=np.float64)
        self.threshold_ = float(np.percentile(self.decision_scores_, 100 * (1 - contamination)))
        self.labels_ = (self.decision_scores_ > self.threshold_).astype(int)
        self.n_features_in_ = detector.n_features_in_
        if hasattr(detector, "feature_names_in_"):
            self.feature_names_in_ = detector.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def decision_function(self, X):
        """Outlier score of each row: minus its log-density (higher = more abnormal), shape (n_samples,)."""
        check_is_fitted(self)
        return -np.asarray(self.detector_.score_samples(X), dtype=np.float64)

    def predict(self, X):
        """1 for the rows scoring above ``threshold_`` (outliers), else 0."""
        return (self.decision_function(X) > self.threshold_).astype(int)

    def fit_predict(self, X, y=None):
        """Fit on X and return ``labels_``."""
        return self.fit(X).labels_

    def predict_proba(self, X, method="linear"):
        """Probability of being an inlier and an outlier, shape (n_samples, 2), by PyOD's conversions.

        method="linear": the score min-max scaled by the training scores (their minimum 0, maximum 1),
        clipped to [0, 1]. method="unify" (Kriegel et al. 2011): erf((s - mean) / (std sqrt(2))) of the
        training scores' mean and standard deviation, clipped to [0, 1], so that every row scoring at
        most the mean gets 0. Column 0 is 1 minus column 1. (A range below 10 eps, as scikit-learn's
        MinMaxScaler, or a standard deviation of 0 is taken as 1 instead of dividing by it.)
        """
        check_is_fitted(self)
        if method not in ("linear", "unify"):
            raise ValueError(f"PyODDetector.predict_proba: method must be 'linear' or 'unify', got {method!r}")
        scores, train = self.decision_function(X), self.decision_scores_
        if method == "linear":
            low, span = train.min(), np.ptp(train)
            outlier = (scores - low) / (span if span >= 10 * np.finfo(np.float64).eps else 1.0)  # as MinMaxScaler
        else:
            std = train.std()
            outlier = _erf((scores - train.mean()) / ((std if std > 0 else 1.0) * math.sqrt(2)))
        outlier = np.clip(outlier, 0, 1)
        return np.column_stack([1 - outlier, outlier])
