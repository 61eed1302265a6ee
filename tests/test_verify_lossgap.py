"""The three Loss-Gap verify modules at their smoke presets: documented columns and the properties the
tables must have."""

import math

import numpy as np
import pytest

from verify import lossgap_bound, lossgap_identity, lossgap_rate
from verify.runner import run_module

pytestmark = pytest.mark.usefixtures("one_thread")


def test_identity_smoke(tmp_path):
    table = run_module(lossgap_identity, "smoke", out=tmp_path, quiet=True)
    assert set(lossgap_identity.COLUMNS) <= set(table.columns)
    assert (tmp_path / "lossgap_identity.png").stat().st_size > 0
    cfg = lossgap_identity.PRESETS["smoke"]
    per = table[table["check"] == "per_dataset"]
    exp = table[table["check"] == "expected"]
    assert len(per) == len(cfg.laws) * len(cfg.dims) * len(cfg.ns) * len(cfg.seeds) * cfg.n_times
    assert len(exp) == len(cfg.laws) * len(cfg.expected_dims) * len(cfg.expected_ns) * len(cfg.expected_times)
    # Prop. 4.1: the three independent estimates agree (|z| < 4) and match quadrature where it exists
    assert (per["z_score"].abs() < 4).all() and (per["z_by_parts"].abs() < 4).all()
    quad = per.dropna(subset=["quadrature"])
    assert len(quad) > 0
    assert ((quad["fisher"] - quad["quadrature"]).abs() < 4 * quad["fisher_se"]).all()
    # the expected identity and, for n = 1, the closed form d/sigma_t^2 - J(P_t)
    assert (exp["identity_z"].abs() < 4).all()
    one = exp[exp["n"] == 1]
    np.testing.assert_allclose(one["closed_form"], one["memorization_level"] - one["fisher_true"], rtol=1e-12)


def test_bound_smoke(tmp_path):
    table = run_module(lossgap_bound, "smoke", out=tmp_path, quiet=True)
    assert set(lossgap_bound.COLUMNS) <= set(table.columns)
    assert (tmp_path / "lossgap_bound.png").stat().st_size > 0
    np.testing.assert_allclose(table["ratio_as_written"], table["loss_gap"] / table["bound_as_written"], rtol=1e-12)
    np.testing.assert_allclose(table["bound_as_written"], table["d"] / table["sigma2_t"] + table["trace"], rtol=1e-12)
    np.testing.assert_allclose(table["bound_consistent"], table["d"] / table["sigma2_t"] + table["trace_inverse"],
                               rtol=1e-12)
    np.testing.assert_allclose(table["trace_inverse"], table["d"] / table["trace_scale"], rtol=1e-10)
    # E_D[Loss-Gap_t] (the cell means over training sets) never exceeds d/sigma_t^2 - J(P_t) beyond its error
    # (one training set's gap may: for n = 1 it scatters around the plateau by O(J(P_t))); the spacing ratio
    # is 0 only for n = 1
    c = lossgap_bound.cells(table)
    assert (c["loss_gap"] <= c["plateau"] + 4 * c["loss_gap_se"] + 1e-9 * c["plateau"]).all()
    assert (c["loss_gap"] < c["memorization_level"]).all()
    assert ((table["sigma_over_spacing"] == 0) == (table["n"] == 1)).all()
    regime = lossgap_bound.find_regime(table, fraction=0.4, width_max=0.1)
    assert regime.cells["inside"].any() and not regime.cells["inside"].all()


def test_rate_smoke(tmp_path):
    table = run_module(lossgap_rate, "smoke", out=tmp_path, quiet=True)
    assert set(lossgap_rate.COLUMNS) <= set(table.columns)
    assert (tmp_path / "lossgap_rate.png").stat().st_size > 0
    cfg = lossgap_rate.PRESETS["smoke"]
    fits = lossgap_rate.fit_rates(table, cfg)
    assert set(fits.columns) >= {"d", "t", "slope", "slope_se", "minus_one_over_d", "n_fit_points"}
    assert len(fits) == sum(len(cfg.times(d)) for d in cfg.dims)
    cross = lossgap_rate.crossovers(table, cfg.crossover_fraction)
    # the plateau is left inside the smoke range at every (d, t), and the first-order pair prediction lies below
    # the measured crossover (collisions of three or more points slow the decay)
    assert not cross["censored"].any()
    assert (cross["first_order"] < cross["n_star_hi"]).all()
    # in d = 1 the crossover moves like sigma_t^-1: a factor 10 in sigma_t is a factor ~10 in n*
    d1 = cross[cross["d"] == 1].sort_values("t")
    ratio = math.log(d1["n_star"].iloc[0] / d1["n_star"].iloc[-1]) / math.log(d1["sigma_t"].iloc[-1] / d1["sigma_t"].iloc[0])
    assert 0.7 < ratio < 1.3
