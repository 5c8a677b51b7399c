from typing import Any, Callable, Literal, NamedTuple, Sequence

import os
from typing import IO

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import datasets as datasets

__version__: str

class KMeans:
    n_clusters: int
    init: Literal["k-means++", "random"] | ArrayLike | Callable[..., ArrayLike]
    n_init: int | Literal["auto"]
    max_iter: int
    tol: float
    verbose: int
    random_state: Any
    copy_x: bool
    algorithm: Literal["lloyd"]
    n_threads: int
    device: Literal["cpu", "cuda", "auto"]
    cluster_centers_: NDArray[np.floating]
    labels_: NDArray[np.int32]
    inertia_: float
    n_iter_: int
    distortion_trace_: NDArray[np.float64]
    distortion_traces_: list[NDArray[np.float64]]
    events_: list[dict[str, Any]]
    converged_: bool
    n_features_in_: int
    def __init__(self, n_clusters: int = ..., *,
                 init: Literal["k-means++", "random"] | ArrayLike | Callable[..., ArrayLike] = ...,
                 n_init: int | Literal["auto"] = ..., max_iter: int = ..., tol: float = ..., verbose: int = ...,
                 random_state: Any = ..., copy_x: bool = ..., algorithm: Literal["lloyd"] = ..., n_threads: int = ...,
                 device: Literal["cpu", "cuda", "auto"] = ...) -> None: ...
    def fit(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> "KMeans": ...
    def predict(self, X: ArrayLike) -> NDArray[np.int32]: ...
    def fit_predict(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> NDArray[np.int32]: ...
    def transform(self, X: ArrayLike) -> NDArray[np.floating]: ...
    def fit_transform(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> NDArray[np.floating]: ...
    def score(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> float: ...
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "KMeans": ...
    def get_feature_names_out(self, input_features: ArrayLike | None = ...) -> NDArray[np.object_]: ...
    def save(self, path: str | os.PathLike[str] | IO[bytes]) -> None: ...
    def statistics(self, X: ArrayLike, sample_weight: ArrayLike | None = ...) -> "KMeansStatistics": ...
    def update(self, stats: "KMeansStatistics") -> "KMeans": ...

class KMeansStatistics:
    n_clusters: int
    n_features: int
    weight: NDArray[np.float64]
    count: NDArray[np.int64]
    sums: NDArray[np.float64]
    distortion: float
    n_changed: int
    keep_farthest: int
    farthest_distance: NDArray[np.float64]
    farthest_weight: NDArray[np.float64]
    farthest_row: NDArray[np.int64]
    farthest_cluster: NDArray[np.int32]
    farthest_values: NDArray[np.float64]
    def __init__(self, d: dict[str, Any]) -> None: ...
    @property
    def n_rows(self) -> int: ...
    def merge(self, other: "KMeansStatistics") -> "KMeansStatistics": ...
    def __add__(self, other: "KMeansStatistics") -> "KMeansStatistics": ...
    def to_dict(self) -> dict[str, Any]: ...
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "KMeansStatistics": ...

class GaussianMixtureStatistics:
    covariance_type: str
    n_components: int
    n_features: int
    nk: NDArray[np.float64]
    s1: NDArray[np.float64]
    s2: NDArray[np.float64]
    shift: NDArray[np.float64]
    weight: float
    log_likelihood: float
    entropy: float
    worst_log_likelihood: NDArray[np.float64]
    worst_rows: NDArray[np.int64]
    worst_values: NDArray[np.float64]
    def merge(self, other: GaussianMixtureStatistics) -> GaussianMixtureStatistics: ...
    def __add__(self, other: GaussianMixtureStatistics) -> GaussianMixtureStatistics: ...

class MiniBatchKMeans:
    n_clusters: int
    init: Literal["k-means++", "random"] | ArrayLike | Callable[..., ArrayLike]
    max_iter: int
    batch_size: int
    verbose: int
    compute_labels: bool
    random_state: Any
    tol: float
    max_no_improvement: int | None
    init_size: int | None
    n_init: int | Literal["auto"]
    reassignment_ratio: float
    n_threads: int
    cluster_centers_: NDArray[np.floating]
    labels_: NDArray[np.int32]
    inertia_: float
    counts_: NDArray[np.float64]
    n_steps_: int
    n_iter_: int
    distortion_trace_: NDArray[np.float64]
    events_: list[dict[str, Any]]
    n_features_in_: int
    def __init__(self, n_clusters: int = ..., *,
                 init: Literal["k-means++", "random"] | ArrayLike | Callable[..., ArrayLike] = ...,
                 max_iter: int = ..., batch_size: int = ..., verbose: int = ..., compute_labels: bool = ...,
                 random_state: Any = ..., tol: float = ..., max_no_improvement: int | None = ...,
                 init_size: int | None = ..., n_init: int | Literal["auto"] = ..., reassignment_ratio: float = ...,
                 n_threads: int = ...) -> None: ...
    def fit(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> "MiniBatchKMeans": ...
    def partial_fit(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> "MiniBatchKMeans": ...
    def predict(self, X: ArrayLike) -> NDArray[np.int32]: ...
    def fit_predict(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> NDArray[np.int32]: ...
    def transform(self, X: ArrayLike) -> NDArray[np.floating]: ...
    def fit_transform(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> NDArray[np.floating]: ...
    def score(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> float: ...
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "MiniBatchKMeans": ...
    def get_feature_names_out(self, input_features: ArrayLike | None = ...) -> NDArray[np.object_]: ...
    def save(self, path: str | os.PathLike[str] | IO[bytes]) -> None: ...

class GaussianMixture:
    n_components: int
    covariance_type: Literal["full", "tied", "diag", "spherical"]
    tol: float
    reg_covar: float
    max_iter: int
    n_init: int
    init_params: Literal["kmeans", "k-means++", "random", "random_from_data"]
    weights_init: ArrayLike | None
    means_init: ArrayLike | None
    precisions_init: ArrayLike | None
    random_state: Any
    warm_start: bool
    verbose: int
    learning_offset: float
    learning_decay: float
    half_life: float | None
    n_threads: int
    device: Literal["cpu", "cuda", "auto"]
    n_steps_: int
    stream_statistics_: GaussianMixtureStatistics | None
    weights_: NDArray[np.float64]
    means_: NDArray[np.float64]
    covariances_: NDArray[np.float64]
    precisions_: NDArray[np.float64]
    precisions_cholesky_: NDArray[np.float64]
    converged_: bool
    n_iter_: int
    lower_bound_: float
    lower_bounds_: list[float]
    elbo_trace_: NDArray[np.float64]
    elbo_traces_: list[NDArray[np.float64]]
    events_: list[dict[str, Any]]
    n_features_in_: int
    def __init__(self, n_components: int = ..., *, covariance_type: Literal["full", "tied", "diag", "spherical"] = ...,
                 tol: float = ..., reg_covar: float = ..., max_iter: int = ..., n_init: int = ...,
                 init_params: Literal["kmeans", "k-means++", "random", "random_from_data"] = ...,
                 weights_init: ArrayLike | None = ..., means_init: ArrayLike | None = ...,
                 precisions_init: ArrayLike | None = ..., random_state: Any = ..., warm_start: bool = ...,
                 verbose: int = ..., learning_offset: float = ..., learning_decay: float = ...,
                 half_life: float | None = ..., n_threads: int = ...,
                 device: Literal["cpu", "cuda", "auto"] = ...) -> None: ...
    def fit(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> "GaussianMixture": ...
    def statistics(self, X: ArrayLike, sample_weight: ArrayLike | None = ...,
                   first_row: int = ...) -> GaussianMixtureStatistics: ...
    def update(self, statistics: GaussianMixtureStatistics) -> "GaussianMixture": ...
    def partial_fit(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> "GaussianMixture": ...
    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]: ...
    def score(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> float: ...
    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]: ...
    def predict(self, X: ArrayLike) -> NDArray[np.intp]: ...
    def fit_predict(self, X: ArrayLike, y: Any = ..., sample_weight: ArrayLike | None = ...) -> NDArray[np.intp]: ...
    def component_log_density(self, X: ArrayLike) -> NDArray[np.float64]: ...
    def sample(self, n_samples: int = ...) -> tuple[NDArray[np.float64], NDArray[np.int32]]: ...
    def bic(self, X: ArrayLike) -> float: ...
    def aic(self, X: ArrayLike) -> float: ...
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "GaussianMixture": ...
    def save(self, path: str | os.PathLike[str] | IO[bytes]) -> None: ...

class Explanation(NamedTuple):
    contributions: NDArray[np.float64] | Any  # a pandas.DataFrame when explain's X is one
    component: NDArray[np.int32]

class DensityAnomalyDetector:
    method: Literal["gmm", "kmeans"]
    n_components: int | Literal["bic"]
    max_components: int
    covariance_type: Literal["full", "tied", "diag", "spherical"]
    reg_covar: float
    scaling: Literal["robust", "standard"] | None
    contamination: float | Literal["auto"]
    threshold: Literal["calibrate", "model-tail"]
    false_alarm_rate: float
    calibration_fraction: float
    trim: float | Literal["auto"]
    n_init: int
    max_iter: int
    tol: float
    random_state: Any
    half_life: float | None
    n_threads: int
    device: Literal["cpu", "cuda", "auto"]
    offset_: float
    score_median_: float
    n_steps_: int
    stream_recent_scores_: NDArray[np.float64]
    center_: NDArray[np.float64]
    scale_: NDArray[np.float64]
    n_components_: int
    n_trimmed_: int
    bic_: NDArray[np.float64]
    model_: GaussianMixture | KMeans
    density_weights_: NDArray[np.float64]
    density_means_: NDArray[np.float64]
    density_precisions_cholesky_: NDArray[np.float64]
    density_covariance_type_: str
    n_iter_: int
    n_features_in_: int
    def __init__(self, method: Literal["gmm", "kmeans"] = ..., *, n_components: int | Literal["bic"] = ...,
                 max_components: int = ..., covariance_type: Literal["full", "tied", "diag", "spherical"] = ...,
                 reg_covar: float = ..., scaling: Literal["robust", "standard"] | None = ...,
                 contamination: float | Literal["auto"] = ..., threshold: Literal["calibrate", "model-tail"] = ...,
                 false_alarm_rate: float = ..., calibration_fraction: float = ...,
                 trim: float | Literal["auto"] = ..., n_init: int = ...,
                 max_iter: int = ..., tol: float = ..., random_state: Any = ..., half_life: float | None = ...,
                 n_threads: int = ..., device: Literal["cpu", "cuda", "auto"] = ...) -> None: ...
    def fit(self, X: ArrayLike, y: Any = ...) -> "DensityAnomalyDetector": ...
    def partial_fit(self, X: ArrayLike, y: Any = ...) -> "DensityAnomalyDetector": ...
    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]: ...
    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]: ...
    def predict(self, X: ArrayLike) -> NDArray[np.int_]: ...
    def fit_predict(self, X: ArrayLike, y: Any = ...) -> NDArray[np.int_]: ...
    def explain(self, X: ArrayLike) -> Explanation: ...
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "DensityAnomalyDetector": ...
    def save(self, path: str | os.PathLike[str] | IO[bytes]) -> None: ...

class PyODDetector:
    contamination: float
    detector: Any
    detector_: Any
    decision_scores_: NDArray[np.float64]
    threshold_: float
    labels_: NDArray[np.int_]
    n_features_in_: int
    def __init__(self, contamination: float = ..., *, detector: Any = ..., **detector_params: Any) -> None: ...
    def fit(self, X: ArrayLike, y: Any = ...) -> "PyODDetector": ...
    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]: ...
    def predict(self, X: ArrayLike) -> NDArray[np.int_]: ...
    def fit_predict(self, X: ArrayLike, y: Any = ...) -> NDArray[np.int_]: ...
    def predict_proba(self, X: ArrayLike, method: Literal["linear", "unify"] = ...) -> NDArray[np.float64]: ...
    def get_params(self, deep: bool = ...) -> dict[str, Any]: ...
    def set_params(self, **params: Any) -> "PyODDetector": ...

def build_info() -> dict[str, Any]: ...
def load(path: str | os.PathLike[str] | IO[bytes]) -> Any: ...
def loads(data: bytes, *, where: str = ..., cls: type | None = ..., side: dict[str, Any] | None = ...) -> Any: ...

def sliding_windows(X: ArrayLike, width: int, step: int = ..., differences: bool = ...) -> NDArray[np.floating]: ...
def level_dynamics(X: ArrayLike, width: int, step: int = ...) -> NDArray[np.floating]: ...
def window_end_index(n_times: int, width: int, step: int = ...) -> NDArray[np.intp]: ...

class StreamScorer:
    estimator: Any
    width: int
    step: int
    differences: bool
    adapt: bool
    features: str
    n_seen_: int
    n_windows_: int
    def __init__(self, estimator: Any, width: int, step: int = ..., differences: bool = ...,
                 adapt: bool = ..., features: Literal["windows", "level-dynamics"] = ...) -> None: ...
    def score_chunk(self, chunk: ArrayLike) -> NDArray[np.float64]: ...
    def reset(self) -> "StreamScorer": ...

class Event(NamedTuple):
    start: int
    end: int
    peak: int
    peak_score: float
    n_flagged: int

class EventScore(NamedTuple):
    raw: float
    normalized: float
    windows_detected: int
    windows_missed: int
    false_events: int
    mean_earliness: float

def group_events(flagged: ArrayLike, scores: ArrayLike | None = ..., *, min_length: int = ...,
                 merge_gap: int = ...) -> list[Event]: ...
def score_events(detections: Sequence[int | Event], label_windows: Sequence[tuple[int, int]], *,
                 n: int | None = ...,
                 profile: Literal["standard", "reward_low_FP", "reward_low_FN"] = ...) -> EventScore: ...
