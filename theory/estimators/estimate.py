"""Monte-Carlo estimates with their standard errors.

Estimators return ``Estimate(mean, stderr, n)``. ``RunningMoments`` accumulates sums and sums of squares
in float64 (never a per-sample array), so an estimator can stream over as many batches as it likes.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch


class Estimate(NamedTuple):
    """A Monte-Carlo mean, its standard error (sample std / sqrt(n)) and the number of samples."""

    mean: float
    stderr: float
    n: int

    def __sub__(self, other: "Estimate") -> "Estimate":  # independent estimates
        return Estimate(self.mean - other.mean, math.hypot(self.stderr, other.stderr), min(self.n, other.n))

    def __repr__(self) -> str:
        return f"Estimate({self.mean:.6g} ± {self.stderr:.2g}, n={self.n})"


class RunningMoments:
    """Streaming mean and standard error of scalar samples, accumulated in float64.

    Sums are shifted by the first batch's mean (a fixed pivot) so that sum-of-squares does not cancel
    catastrophically when the mean is large compared with the spread.
    """

    def __init__(self) -> None:
        self.n = 0
        self._pivot: float | None = None
        self._s1 = 0.0
        self._s2 = 0.0

    def update(self, values: torch.Tensor) -> "RunningMoments":
        v = values.detach().reshape(-1).to(torch.float64)
        if v.numel() == 0:
            return self
        if not bool(torch.isfinite(v).all()):
            raise ValueError("RunningMoments.update got NaN or infinite samples")
        if self._pivot is None:
            self._pivot = float(v.mean())
        c = v - self._pivot
        self.n += v.numel()
        self._s1 += float(c.sum())
        self._s2 += float(c.pow(2).sum())
        return self

    def estimate(self) -> Estimate:
        if self.n == 0:
            raise ValueError("RunningMoments has no samples")
        m = self._s1 / self.n
        var = max(self._s2 / self.n - m * m, 0.0) * self.n / max(self.n - 1, 1)
        return Estimate(self._pivot + m, math.sqrt(var / self.n), self.n)


def binomial_estimate(successes: int, trials: int) -> Estimate:
    """Fraction of successes with its binomial standard error sqrt(p (1 - p) / N)."""
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    p = successes / trials
    return Estimate(p, math.sqrt(p * (1.0 - p) / trials), trials)
