"""Memorization of generated samples by the nearest-neighbour ratio test (Sec. 6 of the paper).

A generated sample x is *memorized* when its nearest training point is much closer than the second
nearest:

    d_1(x) / d_2(x) < 1/3,

with d_1, d_2 the Euclidean distances to the nearest and second-nearest *distinct* training points
(exact duplicates in the training set count once). The paper writes the rule on squared distances,
d_1^2 / d_2^2 <= 1/9: the same rule (up to the boundary case of equality). Distances are exact
(``theory.neighbours``); images are compared as flattened pixel vectors.
"""

from __future__ import annotations

import torch

from ..estimators.estimate import Estimate, binomial_estimate
from .neighbours import DEFAULT_TILE, nearest_neighbours

DEFAULT_THRESHOLD = 1.0 / 3.0


def _flat(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (N, ...) with at least 2 dims, got {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1)


def neighbour_distances(samples: torch.Tensor, train: torch.Tensor, *, distinct: bool = True,
                        tile_size: int = DEFAULT_TILE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d_1, d_2, index of the nearest training point) for each sample, each (B,). With ``distinct``,
    exact duplicates in ``train`` are merged first and the index points into the original ``train``."""
    s, tr = _flat(samples, "samples"), _flat(train, "train").to(samples.dtype)
    if distinct:
        atoms, inverse = torch.unique(tr, dim=0, return_inverse=True)
        first = torch.full((atoms.shape[0],), tr.shape[0], dtype=torch.long, device=tr.device)
        first.scatter_reduce_(0, inverse, torch.arange(tr.shape[0], device=tr.device), reduce="amin")
    else:
        atoms, first = tr, torch.arange(tr.shape[0], device=tr.device)
    if atoms.shape[0] < 2:
        raise ValueError("train must contain at least two distinct points")
    dist, idx = nearest_neighbours(s, atoms, k=2, tile_size=tile_size)
    return dist[:, 0], dist[:, 1], first[idx[:, 0]]


def memorized(samples: torch.Tensor, train: torch.Tensor, *, threshold: float = DEFAULT_THRESHOLD,
              tile_size: int = DEFAULT_TILE) -> torch.Tensor:
    """Boolean (B,): d_1 / d_2 < threshold (written as d_1 < threshold * d_2, so d_2 = 0 never divides)."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    d1, d2, _ = neighbour_distances(samples, train, tile_size=tile_size)
    return d1 < threshold * d2


def memorization_fraction(samples: torch.Tensor, train: torch.Tensor, *, threshold: float = DEFAULT_THRESHOLD,
                          tile_size: int = DEFAULT_TILE) -> Estimate:
    """Fraction of memorized samples with its binomial standard error sqrt(p (1 - p) / B)."""
    flags = memorized(samples, train, threshold=threshold, tile_size=tile_size)
    return binomial_estimate(int(flags.sum()), flags.numel())
