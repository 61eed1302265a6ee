"""The statistics every verdict rule uses, in one place: intervals of named kinds, the log-log fit with its
interval, seed aggregation, and the bootstrap over seeds and samples.

Every interval a rule reports is one of ``INTERVAL_KINDS`` (key -> what it is); figures/REPORT.md prints the
definitions of the kinds it uses. Binomial intervals (Wilson, Newcombe's difference) live in
``theory.estimate`` because ``theory.memorization`` needs them; they are re-exported here.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd
import scipy.stats

from theory.estimators.estimate import Interval, normal_quantile, proportion_difference_interval, wilson_interval

__all__ = ["INTERVAL_KINDS", "LEVEL", "Interval", "Fit", "loglog_fit", "normal_interval", "seed_mean",
           "seed_interval", "seed_t_interval", "bootstrap_sd_interval", "difference_interval", "wilson_interval", "proportion_difference_interval", "bootstrap_counts",
           "bonferroni_level", "fmt", "fmt_interval"]

LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 20_251_103   # fixed: the report must not change when nothing else does

INTERVAL_KINDS = {
    "wilson": "95% Wilson score interval of a binomial proportion (one count of k in N samples)",
    "newcombe": "95% Newcombe hybrid-score interval of a difference of two independent binomial proportions",
    "bonferroni_wilson_box": "interval of (m - q)/(a - q) over the box of three Wilson intervals, each at "
                             "1 - 0.05/3 (Bonferroni): coverage >= 95%",
    "bootstrap": f"95% percentile bootstrap over seeds and samples ({BOOTSTRAP_RESAMPLES} resamples: seeds "
                 "drawn with replacement within each group, then each seed's samples redrawn, i.e. its count "
                 "redrawn from a binomial at its observed fraction; seeds of one experiment resampled jointly "
                 "where the groups are paired by seed)",
    "ols_t": "95% t-interval of a least-squares slope on logs (residual variance, n - 2 degrees of freedom; "
             "unbounded with 2 points)",
    "wls": "95% interval of a weighted least-squares slope on logs (weights 1/var(log y) from the standard "
           "errors; covariance scaled by the Birge ratio chi^2/(n - 2) when it exceeds 1, then a t-quantile)",
    "mover": "95% interval of a difference of two independent estimates from their two 95% intervals, by "
             "adding the half-widths in quadrature on each side (MOVER, Zou & Donner 2008)",
    "normal": "95% normal interval from analytic standard errors (estimate -+ 1.96 se)",
    "seed_t": "95% Student-t interval of a mean over k seeds from their spread (mean -+ t_{k-1} sd / sqrt(k)): "
              "the seed (an independently trained model with its own draws) is the unit of replication",
    "bootstrap_sd": "95% normal interval from a bootstrap's spread: estimate -+ 1.96 sd of the bootstrap draws "
                    "(samples redrawn within seeds, reference images redrawn; paired across variants for a "
                    "difference). Not the percentile interval: repeated rows shift FID up",
    "seed_normal": "95% normal interval with se = max(propagated per-row se, seed-to-seed sd / sqrt(k)) "
                   "(the larger of the analytic and the empirical error of a mean over k seeds)",
    "bonferroni_normal": "normal interval at level 1 - 0.05/m for each of m cells judged together (Bonferroni): "
                         "all m hold together with probability >= 95%",
    "chi2_scale": "95% chi-square interval of the scale kappa of z-scores (z_i ~ N(0, kappa^2), "
                  "sum z_i^2 / kappa^2 ~ chi^2_m): kappa = 1 when the errors are honest and the identity exact",
    "grid_bracket": "the bracket of grid values either side of a threshold crossing (the grid's resolution; "
                    "no sampling interval: one training run per point)",
    "exact": "none: an exact computation (float64 round-off)",
    "none": "no interval: the rule could not compute its statistic",
}


# --------------------------------------------------------------------------------------------- formatting
def fmt(x: float, digits: int = 3) -> str:
    """A number in ``digits`` significant digits ('nan' for missing, 'inf' kept)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def fmt_interval(est: float, lo: float, hi: float, digits: int = 3) -> str:
    """'est [lo, hi]'."""
    return f"{fmt(est, digits)} [{fmt(lo, digits)}, {fmt(hi, digits)}]"


# --------------------------------------------------------------------------------------------- intervals
def normal_interval(estimate: float, se: float, level: float = LEVEL, method: str = "normal") -> Interval:
    """estimate -+ z se (z the normal quantile of ``level``); unbounded where se is NaN or infinite."""
    if not math.isfinite(se):
        return Interval(estimate, -math.inf, math.inf, level, method)
    z = normal_quantile(level)
    return Interval(estimate, estimate - z * se, estimate + z * se, level, method)


def bonferroni_level(m: int, level: float = LEVEL) -> float:
    """Per-comparison level such that m intervals hold together with probability >= level."""
    return 1.0 - (1.0 - level) / max(int(m), 1)


def difference_interval(a: Interval, b: Interval) -> Interval:
    """a - b for independent estimates with intervals a, b (``mover``): lo = (a - b) - sqrt((a - a.lo)^2 +
    (b.hi - b)^2), hi = (a - b) + sqrt((a.hi - a)^2 + (b - b.lo)^2)."""
    d = a.estimate - b.estimate
    lo = d - math.hypot(a.estimate - a.lo, b.hi - b.estimate)
    hi = d + math.hypot(a.hi - a.estimate, b.estimate - b.lo)
    return Interval(d, lo, hi, min(a.level, b.level), "mover")


# --------------------------------------------------------------------------------------------- log-log fit
class Fit(NamedTuple):
    """A least-squares fit of log y = intercept + slope log x, with the slope's interval."""

    slope: float
    slope_se: float
    lo: float
    hi: float
    intercept: float
    n_points: int
    dof: int
    method: str          # "ols_t" or "wls" (INTERVAL_KINDS)

    @property
    def interval(self) -> Interval:
        return Interval(self.slope, self.lo, self.hi, LEVEL, self.method)


def loglog_fit(x, y, y_se=None, level: float = LEVEL) -> Fit:
    """Fit log y = a + b log x over the points with finite, positive x and y (others are dropped).

    Without ``y_se``: ordinary least squares; se(b)^2 = s^2 / sum (log x - mean)^2 with s^2 the residual
    variance (n - 2 degrees of freedom), interval b -+ t_{n-2} se(b); with 2 points, se and the interval are
    unbounded.
    With ``y_se`` (standard errors of y): weighted least squares with weights 1 / var(log y) = (y / se)^2
    (delta method); Cov(a, b) = (X^T W X)^-1 times the Birge ratio max(1, chi^2 / (n - 2)) (the data's own
    scatter when it exceeds the errors), interval b -+ q se(b) with q the t_{n-2} quantile when the ratio
    was applied, else the normal one."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if y_se is not None:
        se = np.asarray(y_se, float)
        keep &= np.isfinite(se) & (se >= 0)
    n = int(keep.sum())
    method = "ols_t" if y_se is None else "wls"
    nan = Fit(math.nan, math.nan, -math.inf, math.inf, math.nan, n, max(n - 2, 0), method)
    if n < 2:
        return nan
    lx, ly = np.log(x[keep]), np.log(y[keep])
    if np.ptp(lx) == 0:
        return nan
    X = np.stack([np.ones_like(lx), lx], axis=1)
    dof = n - 2
    if y_se is None:
        coef, *_ = np.linalg.lstsq(X, ly, rcond=None)
        if dof == 0:
            return Fit(float(coef[1]), math.inf, -math.inf, math.inf, float(coef[0]), n, 0, method)
        resid = ly - X @ coef
        s2 = float(resid @ resid) / dof
        se_b = math.sqrt(s2 / float(((lx - lx.mean()) ** 2).sum()))
        q = float(scipy.stats.t.ppf(0.5 + level / 2, dof))
        return Fit(float(coef[1]), se_b, coef[1] - q * se_b, coef[1] + q * se_b, float(coef[0]), n, dof, method)
    rel = se[keep] / y[keep]
    w = 1.0 / np.maximum(rel, 1e-12) ** 2
    cov = np.linalg.inv(X.T @ (X * w[:, None]))
    coef = cov @ (X.T @ (w * ly))
    q = normal_quantile(level)
    if dof > 0:
        chi2 = float((w * (ly - X @ coef) ** 2).sum())
        birge = chi2 / dof
        if birge > 1:
            cov = cov * birge
            q = float(scipy.stats.t.ppf(0.5 + level / 2, dof))
    se_b = math.sqrt(float(cov[1, 1]))
    return Fit(float(coef[1]), se_b, coef[1] - q * se_b, coef[1] + q * se_b, float(coef[0]), n, dof, method)


# --------------------------------------------------------------------------------------------- seeds
def seed_mean(table: pd.DataFrame, by, value: str, se: str | None = None) -> pd.DataFrame:
    """Per group of ``by``: the mean of ``value`` over its rows (seeds), k = the number of rows, and its
    standard error: the larger of the propagated per-row errors sqrt(sum se_i^2) / k (if ``se`` is given)
    and the seed-to-seed spread sd / sqrt(k) (0 for a single row). Columns: by..., mean, se, k."""
    g = table.groupby(by)
    out = g[value].mean().rename("mean").to_frame()
    k = g.size()
    spread = (g[value].std(ddof=1) / np.sqrt(k)).fillna(0.0)
    if se is not None:
        propagated = np.sqrt(g[se].apply(lambda v: float((np.asarray(v, float) ** 2).sum()))) / k
        out["se"] = np.maximum(propagated, spread)
    else:
        out["se"] = spread.where(k > 1, np.nan)
    out["k"] = k
    return out.reset_index()


def seed_t_interval(values, level: float = LEVEL) -> Interval:
    """The ``seed_t`` interval of the mean of per-seed values (NaNs dropped): mean -+ t_{k-1} sd / sqrt(k);
    unbounded for fewer than two values, a point when all values agree."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(math.nan, -math.inf, math.inf, level, "seed_t")
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, -math.inf, math.inf, level, "seed_t")
    half = float(scipy.stats.t.ppf(0.5 + level / 2, v.size - 1)) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return Interval(mean, mean - half, mean + half, level, "seed_t")


def bootstrap_sd_interval(estimate: float, draws, level: float = LEVEL) -> Interval:
    """The ``bootstrap_sd`` interval: estimate -+ z sd(draws) (finite draws; unbounded if fewer than two)."""
    d = np.asarray(draws, float)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return Interval(estimate, -math.inf, math.inf, level, "bootstrap_sd")
    return normal_interval(estimate, float(d.std(ddof=1)), level, method="bootstrap_sd")


def seed_interval(mean: float, se: float, level: float = LEVEL) -> Interval:
    """The ``seed_normal`` interval of a ``seed_mean`` row."""
    return normal_interval(mean, se, level, method="seed_normal")


# --------------------------------------------------------------------------------------------- bootstrap
def bootstrap_counts(groups: dict, statistic: Callable[[dict], np.ndarray], *, level: float = LEVEL,
                     resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Interval:
    """Percentile bootstrap over seeds and samples of a statistic of binomial counts.

    ``groups`` maps a key to a pair (counts, trials) of integer arrays of shape (k, P): k seeds (rows), P
    proportions measured on each seed (e.g. memorization and its null). One resample draws k seeds with
    replacement within each group (the P proportions of a seed stay together: paired) and then, for each
    drawn seed, every count from Binomial(trials, count / trials) (the seed's samples redrawn).
    ``statistic`` receives {key: fractions of shape (B, k, P)} and returns (B,); it is also evaluated on
    the observed fractions (B = 1) for the estimate. Interval: the (1 -+ level)/2 quantiles of the
    finite resampled values (a statistic that is NaN in more than 5% of resamples gives (-inf, inf))."""
    rng = np.random.default_rng(seed)
    observed, drawn = {}, {}
    for key, (counts, trials) in groups.items():
        c = np.atleast_2d(np.asarray(counts, float))
        n = np.atleast_2d(np.asarray(trials, float))
        if c.shape != n.shape or (n <= 0).any() or (c < 0).any() or (c > n).any():
            raise ValueError(f"group {key!r}: counts and trials must have one shape and 0 <= counts <= trials")
        p = c / n
        observed[key] = p[None]
        idx = rng.integers(0, p.shape[0], size=(resamples, p.shape[0]))
        drawn[key] = rng.binomial(n[idx].astype(np.int64), p[idx]) / n[idx]
    est = float(np.asarray(statistic(observed)).reshape(-1)[0])
    values = np.asarray(statistic(drawn), float).reshape(-1)
    finite = values[np.isfinite(values)]
    if finite.size < 0.95 * values.size:
        return Interval(est, -math.inf, math.inf, level, "bootstrap")
    lo, hi = np.quantile(finite, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(est, float(lo), float(hi), level, "bootstrap")
