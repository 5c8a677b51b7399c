"""Self-tests of the missing-value EM reference (gaps_oracle): scikit-learn's EM on complete data,
monotone lower bounds and a stationary fixed point with gaps, marginals against numerical integrals."""
import inspect
import warnings

import numpy as np
import pytest
import sklearn.mixture
from scipy.integrate import quad
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

import gaps_oracle as go

TYPES = go.COVARIANCE_TYPES
K, D = 3, 4


def rel_diff(a, b):
    """Largest |a - b| / |b| (entries of b that are exactly 0 compare absolutely)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.where(b == 0, 1.0, np.abs(b))
    return float(np.max(np.abs(a - b) / scale))


@pytest.fixture(scope="module")
def truth():
    return go.well_separated_mixture(np.random.default_rng(10), K, D, separation=4.0)


@pytest.fixture(scope="module")
def X(truth):
    return go.sample_mixture(np.random.default_rng(11), 600, *truth)


def start(truth, covariance_type):
    _, means, covariances = truth
    return go.scikit_learn_start(np.random.default_rng(12), means, covariances, covariance_type,
                                 weights=[0.2, 0.5, 0.3])


def oracle_em(X, init, covariance_type, **kw):
    cov = go.precisions_to_covariances(init["precisions_init"], covariance_type)
    return go.em(X, init["weights_init"], init["means_init"], cov, covariance_type, **kw)


def sklearn_fit(X, init, covariance_type, n_iter):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: runs all n_iter iterations
        return sklearn.mixture.GaussianMixture(K, covariance_type=covariance_type, max_iter=n_iter, tol=0,
                                               reg_covar=1e-6, **init).fit(X)


def assert_same_fit(ours, theirs, n_iter):
    assert len(ours["lower_bounds"]) == len(theirs.lower_bounds_) == n_iter
    np.testing.assert_allclose(ours["lower_bounds"], theirs.lower_bounds_, rtol=1e-10, atol=0)
    for name in ["weights", "means", "covariances"]:
        np.testing.assert_allclose(ours[name], getattr(theirs, name + "_"), rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_complete_data_matches_scikit_learn(truth, X, covariance_type):
    init = start(truth, covariance_type)
    ours = oracle_em(X, init, covariance_type, n_iter=12)
    theirs = sklearn_fit(X, init, covariance_type, 12)
    assert ours["lower_bounds"][-1] > ours["lower_bounds"][0] + 0.1  # EM moved: the comparison means something
    assert_same_fit(ours, theirs, 12)
    params = (theirs.weights_, theirs.means_, theirs.covariances_, covariance_type)
    np.testing.assert_allclose(go.score_samples(X, *params), theirs.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(go.predict_proba(X, *params), theirs.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_integer_weights_are_repeated_rows_for_scikit_learn(truth, X, covariance_type):
    # scikit-learn's GaussianMixture.fit has no sample_weight (1.9): a weight of w is w copies of the row.
    sw = np.random.default_rng(13).integers(1, 4, len(X))
    init = start(truth, covariance_type)
    ours = oracle_em(X, init, covariance_type, n_iter=8, sample_weight=sw)
    assert_same_fit(ours, sklearn_fit(np.repeat(X, sw, axis=0), init, covariance_type, 8), 8)


@pytest.mark.skipif("sample_weight" not in inspect.signature(sklearn.mixture.GaussianMixture.fit).parameters,
                    reason="this scikit-learn's GaussianMixture.fit takes no sample_weight")
@pytest.mark.parametrize("covariance_type", TYPES)
def test_weights_match_scikit_learn_sample_weight(truth, X, covariance_type):
    sw = np.random.default_rng(14).uniform(0.2, 3.0, len(X))
    init = start(truth, covariance_type)
    ours = oracle_em(X, init, covariance_type, n_iter=8, sample_weight=sw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = sklearn.mixture.GaussianMixture(K, covariance_type=covariance_type, max_iter=8, tol=0,
                                                 **init).fit(X, sample_weight=sw)
    assert_same_fit(ours, theirs, 8)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_integer_weights_are_repeated_rows_with_gaps(truth, X, covariance_type):
    rng = np.random.default_rng(15)
    Xg = go.remove_values(rng, X[:300], 0.25)
    sw = rng.integers(1, 4, len(Xg))
    init = start(truth, covariance_type)
    weighted = oracle_em(Xg, init, covariance_type, n_iter=5, sample_weight=sw)
    repeated = oracle_em(np.repeat(Xg, sw, axis=0), init, covariance_type, n_iter=5)
    np.testing.assert_allclose(weighted["lower_bounds"], repeated["lower_bounds"], rtol=1e-12)
    for name in ["weights", "means", "covariances"]:
        np.testing.assert_allclose(weighted[name], repeated[name], rtol=1e-10, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_lower_bounds_never_decrease_with_gaps(truth, X, covariance_type):
    Xg = go.remove_values(np.random.default_rng(16), X, 0.2)
    assert 0.17 < np.isnan(Xg).mean() < 0.23
    lb = np.array(oracle_em(Xg, start(truth, covariance_type), covariance_type, n_iter=25)["lower_bounds"])
    assert lb[-1] > lb[0] + 0.1
    assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[:-1])), np.diff(lb)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_fixed_point_is_stationary_for_the_observed_likelihood(truth, covariance_type):
    """Where EM stops moving (reg_covar=0), the gradient of sum_i log p(x_i,o) vanishes: this checks
    the conditional means and covariances of the E-step against the marginal densities alone."""
    rng = np.random.default_rng(17)
    w, means, covariances = go.well_separated_mixture(rng, 2, 3, separation=4.0)
    Xg = go.remove_values(rng, go.sample_mixture(rng, 300, w, means, covariances), 0.3)
    fit = go.em(Xg, w, means + 0.3, go.covariances_of_type(covariances, covariance_type), covariance_type,
                reg_covar=0.0, n_iter=80)
    wts, mu, cov = fit["weights"], fit["means"], fit["covariances"]

    def loglik(m, c):
        return go.score_samples(Xg, wts, m, c, covariance_type).sum()

    h = 1e-5
    grads = []
    for idx in np.ndindex(mu.shape):
        e = np.zeros_like(mu)
        e[idx] = h
        grads.append((loglik(mu + e, cov) - loglik(mu - e, cov)) / (2 * h))
    for idx in np.ndindex(cov.shape):
        e = np.zeros_like(cov)
        e[idx] = h
        if covariance_type in ("full", "tied"):
            if idx[-1] < idx[-2]:
                continue
            e = e + np.swapaxes(e, -1, -2) if idx[-1] != idx[-2] else e  # stay symmetric
        grads.append((loglik(mu, cov + e) - loglik(mu, cov - e)) / (2 * h))
    assert np.max(np.abs(grads)) < 1e-5 * len(Xg), grads
    # Not vacuous: a little off the fixed point the gradient is far above the tolerance.
    off = mu + 0.05
    assert abs(loglik(off + h, cov) - loglik(off - h, cov)) / (2 * h) > 1e-3 * len(Xg)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_marginal_is_the_integral_over_the_missing_feature(truth, X, covariance_type):
    w, means, covariances = truth
    cov = go.covariances_of_type(covariances, covariance_type)
    full = go.full_covariances(cov, covariance_type, K, D)
    comps = [multivariate_normal(means[k], full[k]) for k in range(K)]
    for row, j in [(0, 0), (1, 2), (2, 3), (3, 1)]:
        x = X[row].copy()
        x[1] += 2.0 * (row == 3)  # one row away from the data
        gap = x.copy()
        gap[j] = np.nan
        ours = go.component_log_density(gap[None], means, cov, covariance_type)[0]
        integrals = []
        for k in range(K):
            sd = np.sqrt(full[k][j, j])
            lo, hi = means[k, j] - 40 * sd, means[k, j] + 40 * sd

            def density(s, k=k):
                y = x.copy()
                y[j] = s
                return comps[k].pdf(y)

            value, _ = quad(density, lo, hi, points=np.linspace(lo, hi, 41)[1:-1], epsabs=0, epsrel=1e-12,
                            limit=500)
            integrals.append(value)
        np.testing.assert_allclose(ours, np.log(integrals), rtol=0, atol=1e-8)
        mixture = go.score_samples(gap[None], w, means, cov, covariance_type)[0]
        np.testing.assert_allclose(mixture, np.log(np.dot(w, integrals)), rtol=0, atol=1e-8)
        np.testing.assert_allclose(go.marginal_log_prob(gap[None], w, means, cov, covariance_type)[0],
                                   np.log(w) + np.log(integrals), rtol=0, atol=1e-8)


def test_conditional_statistics_of_one_gap_by_hand():
    """x_hat and C of a 2-d Gaussian with x_1 missing: mu_1 + s01/s00 (x_0 - mu_0), s11 - s01^2/s00."""
    mu = np.array([[1.0, -2.0]])
    S = np.array([[[2.0, 0.6], [0.6, 1.5]]])
    x_hat, C = go.conditional_statistics(np.array([[3.0, np.nan], [0.5, 4.0]]), mu, S, "full")
    np.testing.assert_allclose(x_hat[0, 0], [3.0, -2.0 + 0.3 * 2.0])
    np.testing.assert_allclose(C[0, 0], [[0.0, 0.0], [0.0, 1.5 - 0.36 / 2.0]])
    np.testing.assert_array_equal(x_hat[1, 0], [0.5, 4.0])
    np.testing.assert_array_equal(C[1, 0], np.zeros((2, 2)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_missing_row_and_infinities_raise(truth, X, bad):
    w, means, covariances = truth
    Xb = X[:20].copy()
    if np.isnan(bad):
        Xb[7] = np.nan
        match = "row 7"
    else:
        Xb[7, 2] = bad
        match = "infinite"
    with pytest.raises(ValueError, match=match):
        go.score_samples(Xb, w, means, covariances, "full")
    with pytest.raises(ValueError, match=match):
        go.em(Xb, w, means, covariances, "full", n_iter=1)
