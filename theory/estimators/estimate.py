"""Monte-Carlo estimates with their standard errors.

Estimators return ``Estimate(mean, stderr, n)``. ``RunningMoments`` accumulates sums and sums of squares
in float64 (never a per-sample array), so an estimator can stream over as many batches as it likes.

A standard error needs at least two draws: ``RunningMoments.estimate`` and ``binomial_estimate`` refuse
fewer with a one-line ValueError (a sample of one has no spread to estimate, and reporting 0 would claim
an exact answer); ``RunningMoments.mean`` gives the mean alone from one draw on.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np
import torch

from .._validate import as_tensor, check_number


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

    def update(self, values) -> "RunningMoments":
        """Add the samples ``values`` (a tensor, array, list or number, any shape; finite)."""
        v = as_tensor(values, "values").detach().reshape(-1).to(torch.float64)
        if v.numel() == 0:
            return self
        if not bool(torch.isfinite(v).all()):
            raise ValueError("values contains NaN or infinite samples (RunningMoments.update)")
        if self._pivot is None:
            self._pivot = float(v.mean())
        c = v - self._pivot
        self.n += v.numel()
        self._s1 += float(c.sum())
        self._s2 += float(c.pow(2).sum())
        return self

    @property
    def mean(self) -> float:
        """The mean of the samples so far (at least one)."""
        if self.n == 0:
            raise ValueError("RunningMoments has no samples: n = 0")
        return self._pivot + self._s1 / self.n

    def estimate(self) -> Estimate:
        """Mean and standard error (sample std / sqrt(n)); needs n >= 2 samples."""
        if self.n < 2:
            raise ValueError(f"RunningMoments has n = {self.n} sample{'s' if self.n != 1 else ''}: a standard "
                             f"error needs at least 2 (use .mean for the mean alone)")
        m = self._s1 / self.n
        var = max(self._s2 / self.n - m * m, 0.0) * self.n / (self.n - 1)
        return Estimate(self._pivot + m, math.sqrt(var / self.n), self.n)


class RunningCovariance:
    """Streaming means and covariance of k-vector samples (rows of (N, k) batches), accumulated in float64
    about a fixed pivot (the first batch's mean), never keeping the samples.

    ``estimate(weights)`` is the mean of the linear combination weights . v with its standard error from
    the same draws (so correlated columns are handled exactly); ``combined(i, j)`` is the minimum-variance
    combination v_i + beta (v_j - v_i) of two columns with the same expectation (a control variate:
    beta = -Cov(v_i, v_j - v_i) / Var(v_j - v_i), estimated from the same draws, which biases the standard
    error by O(1/N) only)."""

    def __init__(self, k: int) -> None:
        if not (isinstance(k, int) and k > 0):
            raise ValueError(f"k must be a positive integer, got {k!r}")
        self.k, self.n = k, 0
        self._pivot: torch.Tensor | None = None
        self._s1 = torch.zeros(k, dtype=torch.float64)
        self._s2 = torch.zeros(k, k, dtype=torch.float64)

    def update(self, values: torch.Tensor) -> "RunningCovariance":
        v = values.detach().to(torch.float64).cpu().reshape(-1, self.k)
        if v.shape[0] == 0:
            return self
        if not bool(torch.isfinite(v).all()):
            raise ValueError("RunningCovariance.update got NaN or infinite samples")
        if self._pivot is None:
            self._pivot = v.mean(0)
        c = v - self._pivot
        self.n += v.shape[0]
        self._s1 += c.sum(0)
        self._s2 += c.T @ c
        return self

    def _moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.n == 0:
            raise ValueError("RunningCovariance has no samples")
        m = self._s1 / self.n
        cov = (self._s2 / self.n - torch.outer(m, m)) * self.n / max(self.n - 1, 1)
        return self._pivot + m, cov

    def estimate(self, weights) -> Estimate:
        w = torch.as_tensor(weights, dtype=torch.float64).reshape(self.k)
        mean, cov = self._moments()
        var = max(float(w @ cov @ w), 0.0)
        return Estimate(float(w @ mean), math.sqrt(var / self.n), self.n)

    def column(self, i: int) -> Estimate:
        return self.estimate(torch.eye(self.k, dtype=torch.float64)[i])

    def combined(self, i: int, j: int) -> Estimate:
        mean, cov = self._moments()
        var_d = float(cov[j, j] - 2 * cov[i, j] + cov[i, i])
        beta = 0.0 if var_d <= 0 else -float(cov[i, j] - cov[i, i]) / var_d
        w = torch.zeros(self.k, dtype=torch.float64)
        w[i], w[j] = 1.0 - beta, beta
        return self.estimate(w)


def binomial_estimate(successes: int, trials: int) -> Estimate:
    """Fraction of successes with its binomial standard error sqrt(p (1 - p) / N); integer counts
    0 <= successes <= trials, trials >= 2 (one trial has no standard error)."""
    successes, trials = _check_counts(successes, trials)
    if trials < 2:
        raise ValueError(f"trials must be >= 2 for a standard error, got {trials}")
    p = successes / trials
    return Estimate(p, math.sqrt(p * (1.0 - p) / trials), trials)


class Interval(NamedTuple):
    """A point estimate with a two-sided confidence interval [lo, hi] at ``level``, and the name of the
    method that produced the interval."""

    estimate: float
    lo: float
    hi: float
    level: float
    method: str

    def __repr__(self) -> str:
        return f"Interval({self.estimate:.6g} [{self.lo:.4g}, {self.hi:.4g}], {self.level:g} {self.method})"


def normal_quantile(level: float) -> float:
    """z with P(|Z| <= z) = level for Z ~ N(0, 1) (1.95996... at level 0.95)."""
    level = check_number(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _count(value, name: str) -> int:
    """An integer count: a Python/numpy integer, an integral float or a 1-element integral tensor."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer count, got {value!r}")
    if not (math.isfinite(float(value)) and float(value) == int(value)):
        raise ValueError(f"{name} must be an integer count, got {value!r}")
    return int(value)


def _check_counts(successes, trials, names: tuple[str, str] = ("successes", "trials")) -> tuple[int, int]:
    k, n = _count(successes, names[0]), _count(trials, names[1])
    if n <= 0:
        raise ValueError(f"{names[1]} must be positive, got {n}")
    if not 0 <= k <= n:
        raise ValueError(f"{names[0]} must lie in [0, {names[1]}] = [0, {n}], got {k}")
    return k, n


def wilson_interval(successes: int, trials: int, level: float = 0.95) -> Interval:
    """The Wilson score interval for a binomial proportion p from k successes in N trials:

        centre = (p^ + z^2 / 2N) / (1 + z^2 / N),
        half   = z / (1 + z^2 / N) * sqrt(p^ (1 - p^) / N + z^2 / 4N^2),      p^ = k / N,

    the set of p whose score test |p^ - p| / sqrt(p (1 - p) / N) <= z does not reject (Wilson 1927).
    Unlike p^ +- z se it stays inside [0, 1] and is not empty at k = 0 or k = N. ``estimate`` is p^."""
    k, n = _check_counts(successes, trials)
    z = normal_quantile(level)
    p = k / n
    scale = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / scale
    half = z / scale * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if k == 0 else max(0.0, centre - half)       # exact ends at k = 0 and k = N (no round-off)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, lo, hi, level, "wilson")


def proportion_difference_interval(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> Interval:
    """Interval for p1 - p2 of two independent binomial proportions: Newcombe's hybrid score interval
    (Newcombe 1998, method 10), built from the two Wilson intervals [l_i, u_i]:

        lo = (p1^ - p2^) - sqrt((p1^ - l1)^2 + (u2 - p2^)^2),
        hi = (p1^ - p2^) + sqrt((u1 - p1^)^2 + (p2^ - l2)^2)."""
    _check_counts(k1, n1, ("k1", "n1")), _check_counts(k2, n2, ("k2", "n2"))
    a, b = wilson_interval(k1, n1, level), wilson_interval(k2, n2, level)
    d = a.estimate - b.estimate
    lo = d - math.hypot(a.estimate - a.lo, b.hi - b.estimate)
    hi = d + math.hypot(a.hi - a.estimate, b.estimate - b.lo)
    return Interval(d, max(-1.0, lo), min(1.0, hi), level, "newcombe")
