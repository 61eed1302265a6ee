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
           "crossing", "edge_bracket", "log_interval_se",
           "seed_interval", "difference_interval", "wilson_interval", "proportion_difference_interval", "bootstrap_counts",
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
    "seed_normal": "95% normal interval with se = max(propagated per-row se, seed-to-seed sd / sqrt(k)) "
                   "(the larger of the analytic and the empirical error of a mean over k seeds)",
    "bonferroni_normal": "normal interval at level 1 - 0.05/m for each of m cells judged together (Bonferroni): "
                         "all m hold together with probability >= 95%",
    "chi2_scale": "95% chi-square interval of the scale kappa of z-scores (z_i ~ N(0, kappa^2), "
                  "sum z_i^2 / kappa^2 ~ chi^2_m): kappa = 1 when the errors are honest and the identity exact",
    "grid_bracket": "the bracket of grid values either side of a threshold crossing (the grid's resolution; "
                    "no sampling interval: one training run per point)",
    "edge_bracket": "the bracket of grid values either side of an edge found from the data: the last value up to "
                    "which every cell's lower confidence limit (Bonferroni over the cells) stays above the "
                    "threshold, and the first value at which one does not (the grid's resolution)",
    "crossing": "95% interval of where a decreasing curve crosses a level: the crossings of the lower and the "
                "upper ends of its pointwise 95% normal intervals (linear interpolation in log x between grid "
                "points); unbounded on a side the grid does not reach",
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


def log_interval_se(lo: float, hi: float, level: float = LEVEL) -> float:
    """The standard error of log y implied by a two-sided interval [lo, hi] of y > 0 at ``level``
    ((log hi - log lo) / (2 z)); inf when the interval is unbounded or reaches 0. For ``loglog_fit``'s
    ``y_se`` pass y * log_interval_se(lo, hi)."""
    if not (lo > 0 and math.isfinite(hi) and hi >= lo):
        return math.inf
    return (math.log(hi) - math.log(lo)) / (2 * normal_quantile(level))


# --------------------------------------------------------------------------------------------- crossings, edges
def _first_crossing(x: np.ndarray, y: np.ndarray, level: float, log_x: bool) -> float:
    """Where y first falls below ``level`` (x ascending), by linear interpolation between the two grid points
    either side (in log x if ``log_x``); -inf if it starts below, +inf if it never falls below."""
    below = np.flatnonzero(y < level)
    if below.size == 0:
        return math.inf
    k = int(below[0])
    if k == 0:
        return -math.inf
    x0, x1 = (np.log(x[k - 1]), np.log(x[k])) if log_x else (x[k - 1], x[k])
    frac = (y[k - 1] - level) / (y[k - 1] - y[k])
    v = x0 + frac * (x1 - x0)
    return float(np.exp(v)) if log_x else float(v)


def crossing(x, y, y_lo, y_hi, level: float, *, log_x: bool = True, interval_level: float = LEVEL) -> Interval:
    """Where a decreasing curve y(x) crosses ``level``, with an interval (``crossing``): the estimate is the
    first crossing of y, lo that of the lower ends y_lo (which cross first), hi that of the upper ends y_hi;
    each by linear interpolation between the grid points either side (in log x by default; x > 0). Censored
    sides: a curve that is below the level from the first point gives -inf (0 for log x) and one that never
    falls below it gives +inf; the estimate is then NaN. Points with NaN are dropped."""
    x, y, lo, hi = (np.asarray(v, float) for v in (x, y, y_lo, y_hi))
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi) & ((x > 0) if log_x else True)
    order = np.argsort(x[keep])
    x, y, lo, hi = (v[keep][order] for v in (x, y, lo, hi))
    if x.size == 0:
        return Interval(math.nan, -math.inf, math.inf, interval_level, "crossing")
    est = _first_crossing(x, y, level, log_x)
    a, b = _first_crossing(x, lo, level, log_x), _first_crossing(x, hi, level, log_x)
    floor = 0.0 if log_x else -math.inf
    a = floor if a == -math.inf else a
    b = floor if b == -math.inf else b
    return Interval(est if math.isfinite(est) else math.nan, min(a, b), max(a, b), interval_level, "crossing")


def edge_bracket(x, passes) -> Interval:
    """The edge of a region that starts at small x (``edge_bracket``): sorting the cells by x, the estimate and
    lo are the largest x up to which every cell passes, hi the x of the first cell that does not (+inf if all
    pass); NaN estimate and lo = -inf if the first cell already fails. Ties in x count as failing if any fails."""
    x, ok = np.asarray(x, float), np.asarray(passes, bool)
    keep = np.isfinite(x)
    x, ok = x[keep], ok[keep]
    order = np.argsort(x, kind="stable")
    x, ok = x[order], ok[order]
    values = np.unique(x)
    good = np.array([ok[x == v].all() for v in values])
    if good.all():
        return Interval(float(values[-1]) if values.size else math.nan, float(values[-1]) if values.size else -math.inf,
                        math.inf, LEVEL, "edge_bracket")
    k = int(np.argmin(good))
    if k == 0:
        return Interval(math.nan, -math.inf, float(values[0]), LEVEL, "edge_bracket")
    return Interval(float(values[k - 1]), float(values[k - 1]), float(values[k]), LEVEL, "edge_bracket")


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
