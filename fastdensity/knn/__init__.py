"""k-nearest-neighbour density estimation and exact kNN search (brute force and k-d tree)."""

from ._knn import KNNDensity

__all__ = ["KNNDensity"]
