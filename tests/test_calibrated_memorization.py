"""Calibrated memorization (theory.memorization) and the sweep row-builder (verify._memorization): the null
rate of uniform points against its 3^-d expectation, the anchor of the exact empirical-score sampler, excess
and normalized index on hand-made sets, sample quality."""

from __future__ import annotations

import math

import pytest
import torch

import theory
from theory.estimators.estimate import proportion_difference_interval, wilson_interval
from theory.evaluation.memorization import calibrated_memorization, normalized_index_interval, sample_quality
from verify import _memorization

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("d", [2, 3])
def test_null_rate_of_uniform_points_is_three_to_the_minus_d(d):
    """For uniform training points, a query away from the boundary sees (d1/d2)^d ~ Uniform(0, 1) (given d2,
    the nearest point is uniform in the ball of radius d2), so P(d1/d2 < 1/3) = 3^-d. The rate given one
    training set varies with the set, so it is averaged over independent sets."""
    g = torch.Generator().manual_seed(d)
    rates = []
    for _ in range(8):
        train = torch.rand(3000, d, generator=g, dtype=torch.float64)
        queries = 0.3 + 0.4 * torch.rand(1500, d, generator=g, dtype=torch.float64)
        rates.append(calibrated_memorization(queries, train).fraction.estimate)
    rates = torch.tensor(rates)
    mean, se = float(rates.mean()), float(rates.std() / math.sqrt(len(rates)))
    assert abs(mean - 3.0 ** -d) < 4 * se and se < 0.15 * 3.0 ** -d
    # and the test can tell: 2^-d (a threshold of 1/2) is far outside
    assert abs(mean - 2.0 ** -d) > 10 * se


def _anchor(d: int, n: int, seed: int, samples: int = 200, steps: int = 20):
    truth = theory.paper_mixture(8, d, separation=2.0, trace=d / 4, seed=0)
    g = torch.Generator().manual_seed(seed)
    train = truth.sample(n, 0.0, g)
    x_T = theory.prior_sample((samples, d), generator=g)
    sampler = _memorization.tweedie_ode_sampler(x_T, T=10.0, t0=1e-3, steps=steps)
    return truth, train, _memorization.anchor_samples(sampler, train), g


@pytest.mark.parametrize("d, n", [(2, 32), (8, 128)])
def test_exact_empirical_score_sampler_memorizes_fully_at_small_t0(d, n):
    truth, train, anchor, g = _anchor(d, n, seed=1)
    cal = calibrated_memorization(anchor, train, null=truth.sample(200, 1e-3, g), anchor=anchor)
    assert cal.fraction.lo > 0.9
    assert cal.null.estimate < 0.25
    assert cal.normalized.estimate == pytest.approx(1.0) and cal.normalized.lo > 0.85
    # the anchor's samples are (near) copies of training points: nearest distance << sigma_{t0} = 0.03
    d1, _, _ = theory.neighbour_distances(anchor, train)
    assert float(d1.median()) < 0.01


def test_excess_and_normalized_index_on_hand_made_sets():
    """Training points on a grid (spacing 1); a sample at a training point is memorized (d1 = 0), one at a
    cell centre is not (d1 = d2). Counts, excess and index are then known exactly."""
    grid = torch.stack(torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij"), -1).reshape(-1, 2)
    grid = grid.double()
    at, centre = grid[:30], grid[:25] + 0.5
    generated = torch.cat([at[:12], centre[:18]])          # 12 of 30 memorized
    null = torch.cat([at[:3], centre[:22]])                # 3 of 25
    anchor = torch.cat([at[:27], centre[:3]])              # 27 of 30
    cal = calibrated_memorization(generated, grid, null=null, anchor=anchor)
    assert (cal.count, cal.n, cal.null_count, cal.n_null, cal.anchor_count, cal.n_anchor) == (12, 30, 3, 25, 27, 30)
    assert cal.fraction == wilson_interval(12, 30)
    assert cal.excess == proportion_difference_interval(12, 30, 3, 25)
    assert cal.excess.estimate == pytest.approx(12 / 30 - 3 / 25)
    assert cal.normalized.estimate == pytest.approx((12 / 30 - 3 / 25) / (27 / 30 - 3 / 25))
    assert cal.normalized.lo < cal.normalized.estimate < cal.normalized.hi
    # without baselines only the fraction is given
    bare = calibrated_memorization(generated, grid)
    assert bare.null is None and bare.excess is None and bare.normalized is None


def test_normalized_interval_is_the_extreme_over_the_bonferroni_box():
    iv = normalized_index_interval(40, 100, 10, 100, 90, 100)
    per = 1 - 0.05 / 3
    m, q, a = wilson_interval(40, 100, per), wilson_interval(10, 100, per), wilson_interval(90, 100, per)
    assert iv.lo == pytest.approx((m.lo - q.hi) / (a.hi - q.hi))     # the least corner
    assert iv.hi == pytest.approx((m.hi - q.lo) / (a.lo - q.lo))     # the largest corner
    # an anchor that cannot be told from the null leaves the index unbounded
    flat = normalized_index_interval(10, 100, 10, 100, 12, 100)
    assert flat.lo == -math.inf and flat.hi == math.inf


def test_sample_quality_is_zero_for_true_draws_and_negative_for_a_broad_sampler():
    truth = theory.paper_mixture(8, 8, separation=2.0, trace=2.0, seed=0)
    g = torch.Generator().manual_seed(0)
    ref = truth.sample(2000, 0.0, g)
    same = sample_quality(truth.sample(2000, 0.0, g), truth, ref)
    assert abs(same.gap.mean) < 4 * same.gap.stderr
    assert same.gap.stderr == pytest.approx(math.hypot(same.generated.stderr, same.reference.stderr))
    broad = sample_quality(3 * torch.randn(2000, 8, generator=g, dtype=torch.float64), truth, ref)
    assert broad.gap.mean < -8 * 0.5 and broad.gap.mean + 4 * broad.gap.stderr < 0


def test_row_builder_returns_exactly_the_documented_columns():
    truth, train, anchor, g = _anchor(2, 32, seed=2, samples=100)
    held = truth.sample(50, 0.0, g)
    row = _memorization.memorization_row(truth.sample(100, 1e-3, g), train, anchor=anchor, truth=truth, t0=1e-3,
                                         held_out=held, held_out_loglik=truth.log_prob(held, 1e-3), generator=g)
    assert tuple(row) == _memorization.MEMORIZATION_COLUMNS
    assert row["null_kind"] == "true_law" and row["n_null"] == 100 and row["n_test"] == 50
    assert row["mem_excess"] == pytest.approx(row["mem_fraction"] - row["mem_null"])
    assert row["test_loglik"] == pytest.approx(row["test_loglik_true"])      # the true law as the "model"
    assert row["test_loglik_empirical"] < row["test_loglik_true"] - 10       # the empirical law overfits
    # no true law: the held-out data are the null, quality is not available
    bare = _memorization.memorization_row(anchor, train, anchor=anchor, held_out=held, t0=1e-3)
    assert bare["null_kind"] == "held_out" and math.isnan(bare["quality_gap"])
    with pytest.raises(ValueError):
        _memorization.memorization_row(anchor, train, anchor=anchor, t0=1e-3)


def test_row_builder_survives_exploded_samples_and_a_collapsed_loglik():
    """One non-finite sample (an exploded trajectory) and a held-out log-likelihood with non-finite and very
    low values: the row counts them, the mean quality is -inf (the fit check fails), the medians stay
    informative, the memorized count is that of the finite samples, and the collapse flag is set."""
    truth, train, anchor, g = _anchor(2, 32, seed=4, samples=100)
    held = truth.sample(40, 0.0, g)
    good = anchor.clone()
    bad = good.clone()
    bad[0] = math.inf
    rows = {}
    for name, samples, ll in (("good", good, truth.log_prob(held, 1e-3)),
                              ("bad", bad, torch.cat([torch.full((30,), -1e9), torch.full((10,), math.nan)]))):
        rows[name] = _memorization.memorization_row(samples, train, anchor=anchor, truth=truth, t0=1e-3,
                                                    held_out=held, held_out_loglik=ll,
                                                    generator=torch.Generator().manual_seed(5))
    good, bad = rows["good"], rows["bad"]
    assert (good["n_nonfinite"], bad["n_nonfinite"]) == (0, 1)
    assert bad["mem_count"] == good["mem_count"] - 1 and bad["n_generated"] == good["n_generated"]
    assert bad["quality_gap"] == -math.inf and math.isfinite(bad["quality_gap_median"])
    assert abs(bad["quality_gap_median"] - good["quality_gap_median"]) < 0.5
    assert not good["test_loglik_collapsed"] and bad["test_loglik_collapsed"]
    assert bad["test_loglik_nonfinite"] == 10 and bad["test_loglik"] == pytest.approx(-1e9)
    assert good["test_loglik_median"] == pytest.approx(good["test_loglik_true_median"])


def test_counts_do_not_depend_on_the_tile_size():
    truth, train, anchor, g = _anchor(2, 32, seed=3, samples=120)
    null = truth.sample(150, 1e-3, g)
    a = calibrated_memorization(anchor, train, null=null, anchor=anchor)
    b = calibrated_memorization(anchor, train, null=null, anchor=anchor, tile_size=64)
    assert a == b


def test_training_set_is_made_distinct_once_and_counts_equal_the_per_set_test(monkeypatch):
    """calibrated_memorization merges the training set's duplicates once for its three sets (it was once per
    set: three torch.unique calls on n = 1e5 points per member), and its counts equal ``memorized`` on each
    set, duplicates merged there (a training set with duplicates: they must count once)."""
    g = torch.Generator().manual_seed(7)
    base = torch.randn(300, 3, generator=g, dtype=torch.float64)
    train = torch.cat([base, base[:100], base[:10]])                  # 110 duplicated points
    sets = [base[:200] + 0.01 * torch.randn(200, 3, generator=g, dtype=torch.float64),
            torch.randn(150, 3, generator=g, dtype=torch.float64), base[50:150].clone()]
    expected = [int(theory.memorized(s, train).sum()) for s in sets]
    calls = []
    unique = torch.unique
    monkeypatch.setattr(torch, "unique", lambda *a, **k: calls.append(1) or unique(*a, **k))
    cal = calibrated_memorization(sets[0], train, null=sets[1], anchor=sets[2])
    assert len(calls) == 1
    assert (cal.count, cal.null_count, cal.anchor_count) == tuple(expected)
    assert expected[2] == 100 and 0 < expected[0] < 200              # the test is not trivial on these sets
