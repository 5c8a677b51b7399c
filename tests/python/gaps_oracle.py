"""Reference EM for Gaussian mixtures on data with missing values (NaN), in plain NumPy/SciPy.

Written from the maths of Ghahramani & Jordan (1994) to check mixtura against something that is not
mixtura: each component is marginalised over a row's missing features for the E-step, and the M-step
is scikit-learn's on the expected statistics (conditional means and covariances of the missing block).
Parameters follow scikit-learn's conventions and shapes. Clarity over speed: for tests only.
"""
import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def check_data(X):
    """X as float64; NaN marks a missing value. A row with no observed value and +-inf are errors."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-d, got shape {X.shape}")
    bad = np.argwhere(np.isinf(X))
    if len(bad):
        raise ValueError(f"X[{bad[0][0]}, {bad[0][1]}] is infinite")
    empty = np.flatnonzero(np.isnan(X).all(axis=1))
    if len(empty):
        raise ValueError(f"row {empty[0]} of X has no observed value")
    return X


def full_covariances(covariances, covariance_type, n_components, n_features):
    """The (K, D, D) covariance matrices for scikit-learn's covariances of any covariance_type."""
    c = np.asarray(covariances, dtype=np.float64)
    K, D = n_components, n_features
    if covariance_type == "full":
        return c.reshape(K, D, D).copy()
    if covariance_type == "tied":
        return np.repeat(c.reshape(1, D, D), K, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(v) for v in c.reshape(K, D)])
    if covariance_type == "spherical":
        return np.stack([v * np.eye(D) for v in c.reshape(K)])
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def precisions_to_covariances(precisions, covariance_type):
    """scikit-learn's precisions_init (inverse covariances, same shapes) as covariances."""
    p = np.asarray(precisions, dtype=np.float64)
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(p)
    return 1.0 / p


def missingness_patterns(X):
    """(observed mask, row indices) of each distinct pattern of observed features in X."""
    observed = ~np.isnan(X)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [(o, np.flatnonzero(inverse == j)) for j, o in enumerate(patterns)]


def component_log_density(X, means, covariances, covariance_type):
    """log N(x_o; mu_k,o, Sigma_k,oo) of each row's observed features, shape (n, K).

    The density of the observed subset is scipy's multivariate normal (allow_singular=False)."""
    X = check_data(X)
    means = np.asarray(means, dtype=np.float64)
    K, D = means.shape
    S = full_covariances(covariances, covariance_type, K, D)
    out = np.empty((X.shape[0], K))
    for o, rows in missingness_patterns(X):
        x_o = X[np.ix_(rows, o)]
        for k in range(K):
            dist = multivariate_normal(mean=means[k, o], cov=S[k][np.ix_(o, o)], allow_singular=False)
            out[rows, k] = np.reshape(dist.logpdf(x_o), len(rows))
    return out


def marginal_log_prob(X, weights, means, covariances, covariance_type):
    """log pi_k + log N(x_o; mu_k,o, Sigma_k,oo), shape (n, K)."""
    log_w = np.log(np.asarray(weights, dtype=np.float64))
    return component_log_density(X, means, covariances, covariance_type) + log_w


def score_samples(X, weights, means, covariances, covariance_type):
    """log p(x_o) of each row: the mixture density of its observed features, shape (n,)."""
    return logsumexp(marginal_log_prob(X, weights, means, covariances, covariance_type), axis=1)


def predict_proba(X, weights, means, covariances, covariance_type):
    """Responsibilities r_ik given the observed features, shape (n, K)."""
    lp = marginal_log_prob(X, weights, means, covariances, covariance_type)
    return np.exp(lp - logsumexp(lp, axis=1, keepdims=True))


def conditional_statistics(X, means, covariances, covariance_type):
    """E-step statistics of the missing features under each component.

    Returns x_hat of shape (n, K, D) (observed values, and conditional means
    mu_m + Sigma_mo Sigma_oo^-1 (x_o - mu_o) where missing) and cond_cov of shape (n, K, D, D)
    (Sigma_mm - Sigma_mo Sigma_oo^-1 Sigma_om on the missing block, zero elsewhere)."""
    X = check_data(X)
    means = np.asarray(means, dtype=np.float64)
    K, D = means.shape
    S = full_covariances(covariances, covariance_type, K, D)
    n = X.shape[0]
    x_hat = np.zeros((n, K, D))
    cond_cov = np.zeros((n, K, D, D))
    for o, rows in missingness_patterns(X):
        m = ~o
        x_o = X[np.ix_(rows, o)]
        for k in range(K):
            filled = np.empty((len(rows), D))
            filled[:, o] = x_o
            C = np.zeros((D, D))
            if m.any():
                S_oo = S[k][np.ix_(o, o)]
                S_mo = S[k][np.ix_(m, o)]
                gain = np.linalg.solve(S_oo, S_mo.T).T  # Sigma_mo Sigma_oo^-1 (Sigma_oo is symmetric)
                filled[:, m] = means[k, m] + (x_o - means[k, o]) @ gain.T
                C[np.ix_(m, m)] = S[k][np.ix_(m, m)] - gain @ S_mo.T
            x_hat[rows, k] = filled
            cond_cov[rows, k] = C
    return x_hat, cond_cov


def m_step(resp, sample_weight, x_hat, cond_cov, covariance_type, reg_covar):
    """scikit-learn's M-step on the expected statistics; returns (weights, means, covariances)."""
    K, D = x_hat.shape[1:]
    wr = sample_weight[:, None] * resp
    nk = wr.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = np.einsum("nk,nkd->kd", wr, x_hat) / nk[:, None]
    diff = x_hat - means[None]
    # Sum_i w_i r_ik [(x_hat - mu_k)(x_hat - mu_k)^T + C_ik], per component, without division by N_k.
    scatter = np.einsum("nk,nkd,nke->kde", wr, diff, diff) + np.einsum("nk,nkde->kde", wr, cond_cov)
    per_component = scatter / nk[:, None, None]
    if covariance_type == "full":
        covariances = per_component + reg_covar * np.eye(D)
    elif covariance_type == "tied":
        covariances = scatter.sum(axis=0) / nk.sum() + reg_covar * np.eye(D)
    elif covariance_type == "diag":
        covariances = np.diagonal(per_component, axis1=1, axis2=2) + reg_covar
    elif covariance_type == "spherical":
        covariances = np.diagonal(per_component, axis1=1, axis2=2).mean(axis=1) + reg_covar
    else:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    return nk / nk.sum(), means, covariances


def em(X, weights, means, covariances, covariance_type, reg_covar=1e-6, n_iter=10, sample_weight=None):
    """n_iter EM iterations from (weights, means, covariances).

    Returns a dict: lower_bounds (per iteration, the weighted mean log p(x_o) before that iteration's
    M-step, as scikit-learn's lower_bounds_) and the weights, means and covariances after the last
    M-step."""
    X = check_data(X)
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).reshape(n)
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    covariances = np.asarray(covariances, dtype=np.float64)
    lower_bounds = []
    for _ in range(n_iter):
        log_prob = marginal_log_prob(X, weights, means, covariances, covariance_type)
        log_norm = logsumexp(log_prob, axis=1)
        lower_bounds.append(float(np.sum(w * log_norm) / np.sum(w)))
        resp = np.exp(log_prob - log_norm[:, None])
        x_hat, cond_cov = conditional_statistics(X, means, covariances, covariance_type)
        weights, means, covariances = m_step(resp, w, x_hat, cond_cov, covariance_type, reg_covar)
    return {"lower_bounds": lower_bounds, "weights": weights, "means": means, "covariances": covariances}


# Test data shared by the oracle's self-tests and the tests of mixtura.

def sample_mixture(rng, n, weights, means, covariances):
    """n rows from the full-covariance mixture (weights, means, covariances (K, D, D))."""
    labels = rng.choice(len(weights), size=n, p=weights)
    X = np.empty((n, means.shape[1]))
    for k in range(len(weights)):
        rows = np.flatnonzero(labels == k)
        X[rows] = rng.multivariate_normal(means[k], covariances[k], size=len(rows))
    return X


def well_separated_mixture(rng, n_components, n_features, separation=8.0):
    """(weights, means, covariances (K, D, D)) of a mixture whose means lie well apart."""
    weights = rng.uniform(0.5, 1.0, n_components)
    weights /= weights.sum()
    while True:  # means in a box, redrawn until every pair lies at least `separation` apart
        means = rng.uniform(-separation, separation, (n_components, n_features))
        gaps = np.linalg.norm(means[:, None] - means[None], axis=2) + np.diag(np.full(n_components, np.inf))
        if gaps.min() >= separation:
            break
    covariances = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        A = rng.standard_normal((n_features, n_features)) / np.sqrt(n_features)
        covariances[k] = 0.5 * np.eye(n_features) + A @ A.T
    return weights, means, covariances


def remove_values(rng, X, fraction):
    """A copy of X with a random fraction of its values set to NaN, keeping an observed value in each row
    that has one."""
    X = X.copy()
    observed = ~np.isnan(X)
    gone = (rng.random(X.shape) < fraction) & observed
    for i in np.flatnonzero(observed.any(axis=1) & ~(observed & ~gone).any(axis=1)):
        gone[i, rng.choice(np.flatnonzero(observed[i]))] = False
    X[gone] = np.nan
    return X


def covariances_of_type(covariances, covariance_type):
    """Full (K, D, D) matrices reduced to covariance_type's parameters (tied: their mean)."""
    diag = np.stack([np.diag(c) for c in covariances])
    return {"full": covariances, "tied": covariances.mean(axis=0), "diag": diag,
            "spherical": diag.mean(axis=1)}[covariance_type]


def scikit_learn_start(rng, means, covariances, covariance_type, weights=None):
    """weights_init, means_init, precisions_init (scikit-learn's meanings) away from (means, covariances),
    so that EM has work to do."""
    K = means.shape[0]
    cov = 1.7 * covariances_of_type(covariances, covariance_type)
    prec = np.linalg.inv(cov) if covariance_type in ("full", "tied") else 1.0 / cov
    weights = np.full(K, 1.0 / K) if weights is None else np.asarray(weights, dtype=np.float64)
    return dict(weights_init=weights, means_init=means + 0.6 * rng.standard_normal(means.shape), precisions_init=prec)
