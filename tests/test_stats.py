"""verify.stats: the log-log fit and its interval, seed aggregation, the bootstrap over seeds and samples,
and the binomial intervals of theory.estimate (against scipy and a published example)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from theory.estimators.estimate import normal_quantile, proportion_difference_interval, wilson_interval
from verify import stats


def test_ols_fit_matches_scipy_linregress_and_its_t_interval():
    rng = np.random.default_rng(0)
    x = np.geomspace(1, 1000, 12)
    y = 3 * x ** -0.7 * np.exp(0.1 * rng.standard_normal(12))
    fit = stats.loglog_fit(x, y)
    ref = scipy.stats.linregress(np.log(x), np.log(y))
    q = scipy.stats.t.ppf(0.975, 10)
    assert fit.slope == pytest.approx(ref.slope, rel=1e-12)
    assert fit.slope_se == pytest.approx(ref.stderr, rel=1e-10)
    assert (fit.lo, fit.hi) == pytest.approx((ref.slope - q * ref.stderr, ref.slope + q * ref.stderr), rel=1e-10)
    assert fit.dof == 10 and fit.method == "ols_t"


def test_ols_fit_covers_the_true_slope_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    x = np.geomspace(1, 100, 5)
    fits = [stats.loglog_fit(x, x ** 1.3 * np.exp(0.2 * rng.standard_normal(5))) for _ in range(1000)]
    cover = np.mean([f.lo <= 1.3 <= f.hi for f in fits])
    normal_cover = np.mean([abs(f.slope - 1.3) <= 1.96 * f.slope_se for f in fits])
    assert 0.93 < cover < 0.97 and normal_cover < 0.92     # 3 degrees of freedom: the t-quantile is needed


def test_two_points_give_an_unbounded_ols_interval_and_nonpositive_points_are_dropped():
    fit = stats.loglog_fit([1, 2, 4, 8], [3.0, 6.0, np.nan, -1.0])
    assert fit.n_points == 2 and fit.slope == pytest.approx(1.0)
    assert fit.lo == -math.inf and fit.hi == math.inf
    assert math.isnan(stats.loglog_fit([1.0], [2.0]).slope)


def test_weighted_fit_uses_the_errors_and_inflates_them_by_the_birge_ratio():
    x = np.geomspace(10, 1e5, 6)
    y = 50 * x ** -0.5
    exact = stats.loglog_fit(x, y, 0.01 * y)
    assert exact.slope == pytest.approx(-0.5, abs=1e-12) and exact.method == "wls"
    # consistent scatter: interval from the errors alone (normal quantile), se = propagated
    X = np.log(x)
    se_prop = 0.01 / math.sqrt(((X - X.mean()) ** 2).sum())
    assert exact.slope_se == pytest.approx(se_prop, rel=1e-6)
    assert exact.hi - exact.slope == pytest.approx(normal_quantile(0.95) * se_prop, rel=1e-6)
    # scatter 10x larger than the stated errors: the Birge ratio widens the interval accordingly
    wiggle = y * np.exp(0.1 * np.array([1, -1, 1, -1, 1, -1]))
    loose = stats.loglog_fit(x, wiggle, 0.01 * wiggle)
    assert loose.slope_se > 5 * se_prop


def test_seed_mean_takes_the_larger_of_propagated_and_spread_errors():
    t = pd.DataFrame({"g": [0, 0], "v": [0.0, 1.0], "se": [0.01, 0.01]})
    out = stats.seed_mean(t, "g", "v", "se").iloc[0]
    assert out["mean"] == pytest.approx(0.5) and out["k"] == 2
    assert out["se"] == pytest.approx(np.std([0.0, 1.0], ddof=1) / math.sqrt(2))
    t["v"] = [0.5, 0.5]
    assert stats.seed_mean(t, "g", "v", "se").iloc[0]["se"] == pytest.approx(math.sqrt(2) * 0.01 / 2)


def test_wilson_interval_matches_scipy():
    for k, n in [(0, 20), (3, 20), (17, 128), (300, 300), (50, 1000)]:
        ci = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        iv = wilson_interval(k, n)
        assert (iv.lo, iv.hi) == pytest.approx((ci.low, ci.high), abs=1e-12)
        assert iv.estimate == k / n
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_newcombe_difference_reproduces_the_published_example():
    # Newcombe (1998), Stat. Med. 17:873, Table II, example (a): 56/70 - 48/80, method 10: 0.0524 to 0.3339
    iv = proportion_difference_interval(56, 70, 48, 80)
    assert iv.estimate == pytest.approx(0.2)
    assert (iv.lo, iv.hi) == pytest.approx((0.0524, 0.3339), abs=1e-4)


def test_difference_interval_of_symmetric_normal_intervals_adds_half_widths_in_quadrature():
    a = stats.normal_interval(1.0, 0.3)
    b = stats.normal_interval(0.2, 0.4)
    d = stats.difference_interval(a, b)
    assert d.estimate == pytest.approx(0.8)
    assert d.hi - d.estimate == pytest.approx(normal_quantile(0.95) * 0.5)


def test_bootstrap_of_one_proportion_is_close_to_wilson_and_keeps_paired_columns_together():
    iv = stats.bootstrap_counts({"a": ([[300]], [[1000]])}, lambda p: p["a"][..., 0].mean(-1))
    ref = wilson_interval(300, 1000)
    assert iv.estimate == 0.3 and abs(iv.lo - ref.lo) < 0.006 and abs(iv.hi - ref.hi) < 0.006
    # seeds resampled jointly: a statistic comparing a seed's two identical columns never moves
    same = stats.bootstrap_counts({"a": ([[10, 10], [40, 40]], [[50, 50], [50, 50]])},
                                  lambda p: p["a"][..., 0].mean(-1) - p["a"][..., 0].mean(-1))
    assert same.lo == same.hi == 0.0
    # the seed spread enters: two very different seeds give a much wider interval than their pooled count
    spread = stats.bootstrap_counts({"a": ([[5], [45]], [[50], [50]])}, lambda p: p["a"][..., 0].mean(-1))
    pooled = wilson_interval(50, 100)
    assert spread.hi - spread.lo > 1.5 * (pooled.hi - pooled.lo)
    # deterministic: the report must not change between runs
    assert stats.bootstrap_counts({"a": ([[5], [45]], [[50], [50]])}, lambda p: p["a"][..., 0].mean(-1)) == spread


def test_every_interval_kind_is_defined():
    assert all(isinstance(v, str) and len(v) > 20 for v in stats.INTERVAL_KINDS.values())


def test_seed_t_interval_is_the_student_t_interval_of_the_seed_values():
    v = np.array([-0.05, -0.01, 0.02, -0.08, -0.03, 0.0])
    iv = stats.seed_t_interval(v)
    lo, hi = scipy.stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=scipy.stats.sem(v))
    assert iv.method == "seed_t" and iv.estimate == pytest.approx(v.mean())
    assert (iv.lo, iv.hi) == (pytest.approx(lo), pytest.approx(hi))
    one = stats.seed_t_interval([0.3, math.nan])
    assert one.estimate == 0.3 and one.lo == -math.inf and one.hi == math.inf
    assert stats.seed_t_interval([0.0, 0.0, 0.0])[1:3] == (0.0, 0.0)


def test_bootstrap_sd_interval_is_the_estimate_plus_minus_z_sd_of_the_draws():
    draws = np.random.default_rng(0).normal(10.0, 2.0, 4000)
    iv = stats.bootstrap_sd_interval(3.0, draws)
    assert iv.method == "bootstrap_sd" and iv.estimate == 3.0          # centred on the estimate, not the draws
    assert iv.hi - 3.0 == pytest.approx(1.96 * draws.std(ddof=1), rel=1e-3)
    assert stats.bootstrap_sd_interval(1.0, [2.0]).lo == -math.inf


# --------------------------------------------------------------------------------------------- censored fits
def _censor(y, above=math.inf, below=0.0):
    """Bounds of y observed with everything above ``above`` known only to exceed it, below ``below`` only
    to be under it."""
    lo, hi = y.copy(), y.copy()
    hi[y > above], lo[y > above] = math.inf, above
    lo[y < below], hi[y < below] = 0.0, below
    return lo, hi


def test_censored_fit_without_censoring_is_the_least_squares_t_interval():
    rng = np.random.default_rng(3)
    x = np.repeat(2.0 ** np.arange(3, 10), 3)
    y = np.exp(0.5 + 0.8 * np.log(x) + 0.3 * rng.standard_normal(x.size))
    fit, ols = stats.censored_loglog_fit(x, y, y), stats.loglog_fit(x, y)
    assert (fit.estimate, fit.lo, fit.hi) == pytest.approx((ols.slope, ols.lo, ols.hi), rel=1e-6)
    assert fit.n_censored == 0 and fit.n_exact == x.size and fit.method == "tobit_profile"
    assert fit.interval.method == "tobit_profile" and "tobit_profile" in stats.INTERVAL_KINDS
    # the intercept-only model: the t-interval of the mean of the logs
    m = stats.censored_log_mean(y[:5], y[:5])
    ref = scipy.stats.t.interval(0.95, 4, loc=np.log(y[:5]).mean(), scale=scipy.stats.sem(np.log(y[:5])))
    assert (m.lo, m.hi) == pytest.approx(ref, rel=1e-6)


def test_censored_fit_recovers_a_known_slope_where_dropping_censored_points_does_not():
    """Widths above a cap are only known to exceed it: the Tobit fit stays unbiased; the fit of the
    uncensored points alone (what the old rule did) is biased low, and treating the cap as the value too."""
    rng = np.random.default_rng(4)
    x = np.repeat(2.0 ** np.arange(3, 10), 3)
    tobit, dropped, capped = [], [], []
    for _ in range(40):
        y = np.exp(1.0 + 0.9 * np.log(x) + 0.4 * rng.standard_normal(x.size))
        lo, hi = _censor(y, above=120.0)
        tobit.append(stats.censored_loglog_fit(x, lo, hi).estimate)
        keep = np.isfinite(hi)
        dropped.append(stats.loglog_fit(x[keep], y[keep]).slope)
        capped.append(stats.loglog_fit(x, np.minimum(y, 120.0)).slope)
    assert abs(np.mean(tobit) - 0.9) < 0.04
    assert np.mean(dropped) < 0.8 and np.mean(capped) < 0.8


def test_censored_fit_interval_covers_the_true_slope_about_95_percent_of_the_time():
    """Censored above and below (about 40% of the values), 150 synthetic draws (binomial sd 0.018)."""
    rng = np.random.default_rng(5)
    x = np.repeat(2.0 ** np.arange(3, 10), 3)
    cover, censored = [], []
    for _ in range(150):
        y = np.exp(1.0 + 0.8 * np.log(x) + 0.4 * rng.standard_normal(x.size))
        lo, hi = _censor(y, above=100.0, below=8.0)
        fit = stats.censored_loglog_fit(x, lo, hi)
        cover.append(fit.lo <= 0.8 <= fit.hi)
        censored.append(fit.n_censored / fit.n_points)
    assert 0.3 < np.mean(censored) < 0.5
    assert 0.89 <= np.mean(cover) <= 0.99


def test_censored_fit_mirrors_and_refuses_what_the_data_cannot_identify():
    rng = np.random.default_rng(6)
    x = np.repeat(2.0 ** np.arange(3, 9), 3)
    y = np.exp(0.7 * np.log(x) + 0.3 * rng.standard_normal(x.size))
    lo, hi = _censor(y, above=20.0)
    up = stats.censored_loglog_fit(x, lo, hi)
    # 1/y censored below at 1/20 is the same data: the slope changes sign, the interval mirrors
    down = stats.censored_loglog_fit(x, 1 / hi, 1 / lo)
    assert (down.estimate, down.lo, down.hi) == pytest.approx((-up.estimate, -up.hi, -up.lo), rel=1e-5)
    assert down.n_left == up.n_right > 0
    # every value of the largest x censored: the slope is bounded below only if the exact values bound it
    only_bounds = stats.censored_loglog_fit([1, 2, 4, 8], [1.0, 2.0, 50.0, 50.0], [1.0, 2.0, math.inf, math.inf])
    assert math.isnan(only_bounds.estimate) and only_bounds.lo == -math.inf   # 2 exact values < p + 1
    lone = stats.censored_loglog_fit([1, 2, 4, 8, 16], [1, 2.1, 3.9, 100, 100], [1, 2.1, 3.9, math.inf, math.inf])
    exact_only = stats.loglog_fit([1, 2, 4], [1, 2.1, 3.9])
    assert lone.estimate > exact_only.slope + 0.5 and lone.lo < lone.estimate < lone.hi   # bounds push the slope up


def test_censored_fit_is_one_sided_where_only_bounds_follow_the_exact_values():
    """Exact widths at the smallest n only, every larger n censored above the grid (what a width search
    gives when the step budget runs out): the slope runs off to +inf and only its lower bound is finite,
    where the profile likelihood has dropped by the cut-off below its limit; mirrored data mirror it."""
    x = [8, 8, 16, 16, 32, 32]
    lo, hi = [17.4, 22.6, 128, 128, 128, 128], [17.4, 22.6, math.inf, math.inf, math.inf, math.inf]
    up = stats.censored_loglog_fit(x, lo, hi)
    assert up.estimate == math.inf and up.hi == math.inf and up.n_exact == 2 and up.n_right == 4
    assert 0.5 < up.lo < math.log(128 / 22.6) / math.log(2)      # below the slope the bounds alone demand
    down = stats.censored_loglog_fit(x, 1 / np.array(hi), 1 / np.array(lo))
    assert down.estimate == -math.inf and down.hi == pytest.approx(-up.lo, rel=1e-3)
    rng = np.random.default_rng(7)
    xs = np.repeat([8.0, 16.0, 32.0, 64.0], 3)
    cover, one_sided = [], 0
    for _ in range(40):
        y = np.exp(1.0 + np.log(xs) + 0.3 * rng.standard_normal(xs.size))
        fit = stats.censored_loglog_fit(xs, *_censor(y, above=30.0))
        one_sided += math.isinf(fit.estimate)
        cover.append(fit.lo <= 1.0 <= fit.hi)
    assert one_sided >= 10 and np.mean(cover) >= 0.85
