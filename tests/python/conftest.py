import numpy as np
import pytest


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -2.0], [-4.0, 5.0, 2.0]])
    X = np.vstack([c + rng.standard_normal((300, 3)) for c in centres])
    return X[rng.permutation(len(X))]
