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
    """Fraction of successes with its binomial standard error sqrt(p (1 - p) / N)."""
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
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
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _check_counts(successes: int, trials: int, name: str = "") -> tuple[int, int]:
    k, n = int(successes), int(trials)
    if k != successes or n != trials or n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need integer counts 0 <= successes <= trials, trials > 0; got {successes}, {trials}"
                         + (f" ({name})" if name else ""))
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
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half), level, "wilson")


def proportion_difference_interval(k1: int, n1: int, k2: int, n2: int, level: float = 0.95) -> Interval:
    """Interval for p1 - p2 of two independent binomial proportions: Newcombe's hybrid score interval
    (Newcombe 1998, method 10), built from the two Wilson intervals [l_i, u_i]:

        lo = (p1^ - p2^) - sqrt((p1^ - l1)^2 + (u2 - p2^)^2),
        hi = (p1^ - p2^) + sqrt((u1 - p1^)^2 + (p2^ - l2)^2)."""
    a, b = wilson_interval(k1, n1, level), wilson_interval(k2, n2, level)
    d = a.estimate - b.estimate
    lo = d - math.hypot(a.estimate - a.lo, b.hi - b.estimate)
    hi = d + math.hypot(a.hi - a.estimate, b.estimate - b.lo)
    return Interval(d, max(-1.0, lo), min(1.0, hi), level, "newcombe")
