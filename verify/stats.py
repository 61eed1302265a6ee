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
import scipy.optimize
import scipy.special
import scipy.stats

from theory.estimators.estimate import Interval, normal_quantile, proportion_difference_interval, wilson_interval

__all__ = ["INTERVAL_KINDS", "LEVEL", "Interval", "Fit", "loglog_fit", "CensoredFit", "censored_normal_fit",
           "censored_loglog_fit", "censored_log_mean", "log_bounds", "normal_interval", "seed_mean",
           "crossing", "edge_bracket", "log_interval_se",
           "seed_interval", "seed_t_interval", "bootstrap_sd_interval", "difference_interval", "wilson_interval",
           "proportion_difference_interval", "bootstrap_counts",
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
    "tobit_profile": "95% profile-likelihood interval of a coefficient of a censored normal linear model "
                     "(Tobit; on logs): exact values, bounds (censored above or below) and intervals enter the "
                     "likelihood with their normal density or probability; the interval is where twice the "
                     "log-likelihood drop stays below m log(1 + q^2 / (m - p)) (m observations, p coefficients, "
                     "q the t_{m-p} quantile), which without censoring is exactly the least-squares t-interval",
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


# --------------------------------------------------------------------------------------------- censored fits
class CensoredFit(NamedTuple):
    """A censored normal linear model z = X beta + e, e ~ N(0, scale^2), fitted by maximum likelihood, with
    the profile-likelihood interval of one coefficient (``tobit_profile``).

    ``estimate``, ``lo``, ``hi``: the profiled coefficient and its interval (a side is infinite where the
    data do not bound it, e.g. only lower bounds above the last exact value); ``coef``: all coefficients;
    counts of exact, right-censored (z > bound), left-censored (z < bound) and interval observations."""

    estimate: float
    lo: float
    hi: float
    coef: tuple
    scale: float
    loglik: float
    n_points: int
    n_exact: int
    n_right: int
    n_left: int
    n_interval: int
    method: str = "tobit_profile"

    @property
    def interval(self) -> Interval:
        return Interval(self.estimate, self.lo, self.hi, LEVEL, self.method)

    @property
    def n_censored(self) -> int:
        return self.n_right + self.n_left + self.n_interval


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_phi(u):
    return -0.5 * u * u - _LOG_SQRT_2PI


def _log_prob_between(a, b):
    """log(Phi(b) - Phi(a)) for a < b (either may be infinite), accurate in both tails."""
    upper = a > 0                                   # both in the upper tail: use the mirrored form
    hi = np.where(upper, -a, b)
    lo = np.where(upper, -b, a)
    lh, ll = scipy.special.log_ndtr(hi), scipy.special.log_ndtr(lo)
    with np.errstate(divide="ignore"):
        return lh + np.log1p(-np.exp(np.minimum(ll - lh, 0.0)))


class _CensoredLikelihood:
    """Log-likelihood of the censored normal model in Olsen's parameters (gamma = beta / s, tau = 1 / s),
    in which it is concave (exact values: log tau - (tau z - x gamma)^2 / 2; bounds: log(Phi(tau U - x
    gamma) - Phi(tau L - x gamma)), concave in its two affine arguments), with gradient and Hessian.
    ``offset`` (one value per row) is subtracted from every value and bound (a coefficient held fixed)."""

    def __init__(self, X, lower, upper, exact, offset=None):
        off = np.zeros(X.shape[0]) if offset is None else offset
        self.p = X.shape[1]
        self.Xe, self.ze = X[exact], lower[exact] - off[exact]
        self.me = int(exact.sum())
        cens = ~exact
        self.Xc = X[cens]
        L, U = lower[cens] - off[cens], upper[cens] - off[cens]
        self.fa, self.fb = np.isfinite(L), np.isfinite(U)
        self.La, self.Ub = np.where(self.fa, L, 0.0), np.where(self.fb, U, 0.0)
        self.any_c = bool(cens.any())
        self.XeXe, self.Xeze, self.zeze = self.Xe.T @ self.Xe, self.Xe.T @ self.ze, float(self.ze @ self.ze)

    def __call__(self, gamma, tau, derivatives=True):
        p = self.p
        u = tau * self.ze - self.Xe @ gamma
        ll = self.me * (math.log(tau) - _LOG_SQRT_2PI) - 0.5 * float(u @ u)
        if derivatives:
            grad = np.empty(p + 1)
            hess = np.empty((p + 1, p + 1))
            grad[:p] = self.Xe.T @ u
            grad[p] = self.me / tau - float(u @ self.ze)
            hess[:p, :p] = -self.XeXe
            hess[:p, p] = self.Xeze
            hess[p, p] = -self.me / tau ** 2 - self.zeze
        if self.any_c:
            eta = self.Xc @ gamma
            a = np.where(self.fa, tau * self.La - eta, -np.inf)
            b = np.where(self.fb, tau * self.Ub - eta, np.inf)
            logp = _log_prob_between(a, b)
            ll += float(logp.sum())
            if derivatives:
                aa, bb = np.where(self.fa, a, 0.0), np.where(self.fb, b, 0.0)
                ra = np.where(self.fa, np.exp(_log_phi(aa) - logp), 0.0)        # phi(a) / P
                rb = np.where(self.fb, np.exp(_log_phi(bb) - logp), 0.0)        # phi(b) / P
                gsum = rb - ra
                gaa, gbb, gab = aa * ra - ra * ra, -bb * rb - rb * rb, ra * rb
                La, Ub = self.La, self.Ub
                grad[:p] -= self.Xc.T @ gsum
                grad[p] += float(Ub @ rb - La @ ra)
                hess[:p, :p] += (self.Xc * (gaa + 2 * gab + gbb)[:, None]).T @ self.Xc
                hess[:p, p] -= self.Xc.T @ (La * gaa + (La + Ub) * gab + Ub * gbb)
                hess[p, p] += float(np.sum(La * La * gaa + 2 * La * Ub * gab + Ub * Ub * gbb))
        if not derivatives:
            return ll
        hess[p, :p] = hess[:p, p]
        return ll, grad, hess

    def maximise(self, gamma, tau, iterations: int = 100):
        """Newton's method with step halving (the log-likelihood is concave), stopped when the Newton
        decrement grad . step / 2 falls below 1e-10; returns (gamma, tau, ll)."""
        ll, grad, hess = self(gamma, tau)
        for _ in range(iterations):
            try:
                step = -np.linalg.solve(hess, grad)
            except np.linalg.LinAlgError:
                step = 1e-3 * grad
            decrement = float(grad @ step)
            if not np.all(np.isfinite(step)) or decrement < 2e-10:
                break
            scale = 1.0
            while scale > 1e-10:
                g_new, t_new = gamma + scale * step[:-1], tau + scale * step[-1]
                if t_new > 0:
                    out = self(g_new, t_new)
                    if np.isfinite(out[0]) and out[0] >= ll - 1e-12:
                        break
                scale *= 0.5
            else:
                break
            gamma, tau = g_new, t_new
            ll, grad, hess = out
        return gamma, tau, ll


def censored_normal_fit(X, lower, upper, coef: int = 1, level: float = LEVEL) -> CensoredFit:
    """Maximum-likelihood fit of z = X beta + e, e ~ N(0, s^2), to observations known to lie in
    [lower_i, upper_i]: lower == upper is an exact value (density term), upper = +inf a lower bound
    (censored above: log(1 - Phi((lower - mu)/s))), lower = -inf an upper bound, both finite an interval
    (log(Phi((upper - mu)/s) - Phi((lower - mu)/s)))); rows with lower > upper or both infinite are dropped.

    Interval of coefficient ``coef``: the profile likelihood l_p(v) = max over the other coefficients and s
    with beta_coef = v; the interval is {v : 2 (l_max - l_p(v)) <= m log(1 + q^2/(m - p))} with m the
    number of observations, p the number of coefficients and q the t_{m-p} quantile at ``level``: without
    censoring 2 (l_max - l_p) = m log(1 + T^2/(m - p)) with T the least-squares t-statistic, so the interval
    is then exactly the t-interval; with censoring it is the usual likelihood-ratio interval with that
    small-sample cut-off (its coverage is checked by simulation in the tests). The fit needs at least p + 1
    exact values identifying every coefficient (otherwise the likelihood is unbounded as s -> 0 or as the
    coefficient runs off): where the exact values identify only the other coefficients (e.g. exact values at
    one x, bounds at the others) the estimate is +-inf with a one-sided interval (``_one_sided_fit``);
    otherwise, or with fewer than p + 1 rows, the estimate is NaN and the interval unbounded."""
    X = np.atleast_2d(np.asarray(X, float))
    lower, upper = np.asarray(lower, float).reshape(-1), np.asarray(upper, float).reshape(-1)
    if X.shape[0] != lower.size or lower.size != upper.size:
        raise ValueError("X, lower and upper must have one row per observation")
    lower = np.where(np.isnan(lower), -np.inf, lower)
    upper = np.where(np.isnan(upper), np.inf, upper)
    keep = (lower <= upper) & ~(np.isinf(lower) & np.isinf(upper)) & np.isfinite(X).all(axis=1)
    X, lower, upper = X[keep], lower[keep], upper[keep]
    exact = lower == upper
    m, p = X.shape
    right = ~exact & np.isinf(upper)
    left = ~exact & np.isinf(lower)
    counts = (m, int(exact.sum()), int(right.sum()), int(left.sum()), int((~exact & ~right & ~left).sum()))
    nan = CensoredFit(math.nan, -math.inf, math.inf, (math.nan,) * p, math.nan, math.nan, *counts)
    if m < p + 1 or counts[1] < p:
        return nan
    if np.linalg.matrix_rank(X[exact]) < p:
        return _one_sided_fit(X, lower, upper, exact, coef, level, counts) or nan
    if counts[1] < p + 1:
        return nan
    z = np.where(exact, lower, 0.0)
    pseudo = np.where(exact, lower, np.where(right, lower, np.where(left, upper, 0.5 * (lower + upper))))
    b0, *_ = np.linalg.lstsq(X, pseudo, rcond=None)
    resid = pseudo[exact] - X[exact] @ b0
    s0 = max(float(np.sqrt(np.mean(resid ** 2))), 1e-3)
    gamma, tau, ll_max = _CensoredLikelihood(X, lower, upper, exact).maximise(b0 / s0, 1.0 / s0)
    if not np.isfinite(ll_max):
        return nan
    beta = gamma / tau
    est = float(beta[coef])
    q = float(scipy.stats.t.ppf(0.5 + level / 2, m - p))
    cut = m * math.log1p(q * q / (m - p))
    others = [j for j in range(p) if j != coef]
    Xo, xc = X[:, others], X[:, coef]
    warm = {"start": (gamma[others], tau)}

    def deviance(v):
        """2 (l_max - l_p(v)): beta_coef = v is the linear constraint gamma_coef = v tau, i.e. the model with
        the offset x_coef v subtracted from every value and bound (warm-started from the last solution)."""
        g, t, ll = _CensoredLikelihood(Xo, lower, upper, exact, xc * v).maximise(*warm["start"])
        warm["start"] = (g, t)
        return 2.0 * (ll_max - ll)

    # the Wald half-width (observed information, delta method for beta = gamma / tau) starts the search
    _, _, hess = _CensoredLikelihood(X, lower, upper, exact)(gamma, tau)
    try:
        cov = np.linalg.inv(-hess)
        jac = np.zeros(p + 1)
        jac[coef], jac[p] = 1.0 / tau, -gamma[coef] / tau ** 2
        wald = q * math.sqrt(max(float(jac @ cov @ jac), 0.0))
    except np.linalg.LinAlgError:
        wald = 0.0
    wald = wald if math.isfinite(wald) and wald > 0 else 1e-3 * max(1.0, abs(est))
    bounds = []
    for sign in (-1.0, 1.0):
        warm["start"] = (gamma[others], tau)
        inner, h, found = est, wald, None
        while h < 1e4 * wald + 1e3:
            v = est + sign * h
            if deviance(v) > cut:
                found = v
                break
            inner, h = v, h * 2.0
        if found is None:
            bounds.append(sign * math.inf)
            continue
        bounds.append(float(scipy.optimize.brentq(lambda v: deviance(v) - cut, min(inner, found), max(inner, found),
                                                  xtol=1e-4 * wald)))
    return CensoredFit(est, bounds[0], bounds[1], tuple(float(v) for v in beta), float(1.0 / tau), ll_max, *counts)


def _one_sided_fit(X, lower, upper, exact, coef: int, level: float, counts: tuple) -> CensoredFit | None:
    """The fit when the exact values cannot identify coefficient ``coef`` but do identify the others (e.g.
    exact values at one x only, bounds elsewhere): the likelihood then rises towards beta_coef = +inf or
    -inf, the estimate is that infinity and the interval is one-sided, {v : 2 (l_sup - l_p(v)) <= cut}
    with l_sup the profile's limit (taken at |v| = 1e3) and the cut-off of ``censored_normal_fit``. None
    where the other coefficients are not identified either."""
    m, p = X.shape
    others = [j for j in range(p) if j != coef]
    Xo, xc = X[:, others], X[:, coef]
    if int(exact.sum()) < p or (others and np.linalg.matrix_rank(X[exact][:, others]) < p - 1):
        return None
    if np.ptp(xc) == 0:
        return None
    zo = np.where(exact, lower, np.where(np.isfinite(lower), lower, upper))
    start = (np.linalg.lstsq(Xo[exact], zo[exact], rcond=None)[0] if others else np.zeros(0), 1.0)

    def profile(v):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            g, t, ll = _CensoredLikelihood(Xo, lower, upper, exact, xc * v).maximise(*start)
        return ll, g, t

    big = 1e3
    lls = {sign: profile(sign * big) for sign in (-1.0, 1.0)}
    sign = max(lls, key=lambda k: lls[k][0])
    ll_sup, g, t = lls[sign]
    if not np.isfinite(ll_sup):
        return None
    q = float(scipy.stats.t.ppf(0.5 + level / 2, m - p))
    cut = m * math.log1p(q * q / (m - p))
    inner, bound = sign * big, None
    for v in sign * big - sign * 0.01 * 2.0 ** np.arange(0, 19):        # walk back towards and past 0
        if 2.0 * (ll_sup - profile(float(v))[0]) > cut:
            bound = float(v)
            break
        inner = float(v)
    if bound is None:
        edge = -sign * math.inf
    else:
        edge = float(scipy.optimize.brentq(lambda v: 2.0 * (ll_sup - profile(v)[0]) - cut, min(inner, bound),
                                           max(inner, bound), xtol=1e-4))
    lo, hi = (edge, math.inf) if sign > 0 else (-math.inf, edge)
    coefs = [math.nan] * p
    for j, value in zip(others, g / t):
        coefs[j] = float(value)
    coefs[coef] = sign * math.inf
    return CensoredFit(sign * math.inf, lo, hi, tuple(coefs), float(1.0 / t), float(ll_sup), *counts)


def log_bounds(y_lo, y_hi):
    """Log-scale bounds of positive quantities known to lie in [y_lo, y_hi] (y_lo <= 0 or NaN: no lower
    bound; y_hi = inf or NaN: no upper bound)."""
    y_lo, y_hi = np.asarray(y_lo, float).reshape(-1), np.asarray(y_hi, float).reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(np.isfinite(y_lo) & (y_lo > 0), np.log(np.where(y_lo > 0, y_lo, 1.0)), -np.inf)
        hi = np.where(np.isfinite(y_hi) & (y_hi > 0), np.log(np.where(y_hi > 0, y_hi, 1.0)), np.inf)
    return lo, hi


def censored_loglog_fit(x, y_lo, y_hi, level: float = LEVEL) -> CensoredFit:
    """The slope b of log y = a + b log x (``censored_normal_fit``, coefficient 1) from values known to lie
    in [y_lo, y_hi]: y_lo == y_hi exact, y_hi = inf a lower bound (e.g. a width search that never reached
    its target: y > the largest width), y_lo = 0 an upper bound (reached at the smallest width)."""
    x = np.asarray(x, float).reshape(-1)
    lo, hi = log_bounds(y_lo, y_hi)
    ok = np.isfinite(x) & (x > 0)
    lx = np.log(np.where(ok, x, 1.0))
    X = np.stack([np.ones_like(lx), lx], axis=1)
    return censored_normal_fit(X[ok], lo[ok], hi[ok], coef=1, level=level)


def censored_log_mean(y_lo, y_hi, level: float = LEVEL) -> CensoredFit:
    """The mean of log y (intercept-only ``censored_normal_fit``) from values known to lie in [y_lo, y_hi];
    exp of the estimate and of its interval is a geometric mean with its interval."""
    lo, hi = log_bounds(y_lo, y_hi)
    return censored_normal_fit(np.ones((lo.size, 1)), lo, hi, coef=0, level=level)


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
