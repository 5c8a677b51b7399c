"""mixtura: K-means and Gaussian mixtures with exact objectives and recorded traces.

The estimators follow scikit-learn's conventions (parameters in ``__init__``, ``fit`` returns
``self``, fitted attributes end in ``_``) and run mixtura's C++ core.
"""
from ._core import __version__
from ._gmm import GaussianMixture
from ._kmeans import KMeans

__all__ = ["GaussianMixture", "KMeans", "__version__"]
