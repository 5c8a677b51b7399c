"""mixtura: K-means and Gaussian mixtures with exact objectives and recorded traces.

The estimators follow scikit-learn's conventions (parameters in ``__init__``, ``fit`` returns
``self``, fitted attributes end in ``_``) and run mixtura's C++ core.
"""
from ._anomaly import DensityAnomalyDetector, Explanation
from ._build import build_info
from ._core import GaussianMixtureStatistics, __version__
from ._events import Event, EventScore, group_events, score_events
from ._gmm import GaussianMixture
from ._io import load, loads
from ._kmeans import KMeans
from ._kmeans_stats import KMeansStatistics
from ._minibatch import MiniBatchKMeans
from ._pyod import PyODDetector
from ._stream import StreamScorer, level_dynamics, sliding_windows, window_end_index
from . import datasets

__all__ = ["DensityAnomalyDetector", "Explanation", "GaussianMixture", "GaussianMixtureStatistics", "KMeans", "StreamScorer", "__version__",
           "build_info", "datasets", "load", "loads", "sliding_windows", "window_end_index"]
__all__ += ["KMeansStatistics", "MiniBatchKMeans", "PyODDetector", "level_dynamics"]
__all__ += ["Event", "EventScore", "group_events", "score_events"]
