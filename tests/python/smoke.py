"""Smoke test of an installed mixtura wheel (cibuildwheel's test-command; runs standalone too).

Imports the package, fits KMeans and GaussianMixture, checks that 1 and 2 threads give the same
bits, and that a save/load round trip predicts and scores exactly like the fitted models.
"""
import os
import sys
import tempfile

import numpy as np

import mixtura


def blobs(n=3000, d=4, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=5.0, size=(3, d))
    return centres[rng.integers(0, 3, size=n)] + rng.normal(size=(n, d))


def check_round_trip(model, X, folder):
    path = os.path.join(folder, type(model).__name__ + ".mixtura")
    model.save(path)
    loaded = mixtura.load(path)
    assert type(loaded) is type(model)
    assert np.array_equal(loaded.predict(X), model.predict(X))
    assert loaded.score(X) == model.score(X)


def main():
    X = blobs()
    fits = {}
    for threads in (1, 2):
        km = mixtura.KMeans(n_clusters=3, n_init=2, random_state=0, n_threads=threads).fit(X)
        gm = mixtura.GaussianMixture(n_components=3, random_state=0, n_threads=threads).fit(X)
        fits[threads] = (km, gm)
    (km1, gm1), (km2, gm2) = fits[1], fits[2]
    assert np.array_equal(km1.cluster_centers_, km2.cluster_centers_) and km1.inertia_ == km2.inertia_
    assert np.array_equal(gm1.means_, gm2.means_) and gm1.lower_bound_ == gm2.lower_bound_
    assert len(np.unique(km1.labels_)) == 3 and gm1.converged_
    with tempfile.TemporaryDirectory() as folder:
        check_round_trip(km1, X, folder)
        check_round_trip(gm1, X, folder)
    print(f"mixtura {mixtura.__version__} smoke test passed (Python {sys.version.split()[0]}): "
          f"K-means inertia {km1.inertia_:.6g}, GMM lower bound {gm1.lower_bound_:.6g}")


if __name__ == "__main__":
    main()
