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
