"""The three Loss-Gap verify modules at their smoke presets: documented columns and the properties the
tables must have."""

import math

import numpy as np
import pytest

from verify import lossgap_bound, lossgap_identity, lossgap_rate
from verify.runner import run_module

IDENTITY_COLUMNS = {"law", "d", "n", "K", "t", "sigma2_t", "loss_gap", "loss_gap_se", "fisher", "fisher_se",
                    "difference", "difference_se", "z_score", "quadrature", "n_draws", "estimator",
                    "seed", "preset", "device", "runtime_s", "point"}
BOUND_COLUMNS = {"d", "n", "trace_scale", "separation", "K", "trace", "t", "sigma2_t", "loss_gap", "loss_gap_se",
                 "bound_rhs", "ratio", "ratio_se", "log_n_over_d", "nn_distance_median", "sigma_over_nn",
                 "in_regime", "n_draws", "estimator", "seed", "preset", "device", "runtime_s", "point"}
RATE_COLUMNS = {"d", "n", "t", "sigma2_t", "loss_gap", "loss_gap_se", "memorization_level", "nn_distance_median",
                "nn_over_sigma", "n_draws", "estimator", "seed", "preset", "device", "runtime_s", "point"}


def test_identity_smoke(tmp_path):
    table = run_module(lossgap_identity, "smoke", out=tmp_path, quiet=True)
    assert IDENTITY_COLUMNS <= set(table.columns)
    assert (tmp_path / "lossgap_identity.png").stat().st_size > 0
    cfg = lossgap_identity.PRESETS["smoke"]
    assert len(table) == len(lossgap_identity.grid(cfg)) * cfg.n_times
    # Prop. 4.1: the two independent estimates agree (|z| < 4) and both match quadrature where it exists
    assert (table["z_score"].abs() < 4).all()
    quad = table.dropna(subset=["quadrature"])
    assert len(quad) > 0
    assert ((quad["fisher"] - quad["quadrature"]).abs() < 4 * quad["fisher_se"]).all()


def test_bound_smoke(tmp_path):
    table = run_module(lossgap_bound, "smoke", out=tmp_path, quiet=True)
    assert BOUND_COLUMNS <= set(table.columns)
    assert (tmp_path / "lossgap_bound.png").stat().st_size > 0
    np.testing.assert_allclose(table["ratio"], table["loss_gap"] / table["bound_rhs"], rtol=1e-12)
    np.testing.assert_allclose(table["bound_rhs"], table["d"] / table["sigma2_t"] + table["trace"], rtol=1e-12)
    assert table["in_regime"].any() and not table["in_regime"].all()
    summary = lossgap_bound.regime_minimum(table, lossgap_bound.PRESETS["smoke"])
    assert math.isfinite(summary["min_ratio"]) and summary["min_ratio"] > 0


def test_rate_smoke(tmp_path):
    table = run_module(lossgap_rate, "smoke", out=tmp_path, quiet=True)
    assert RATE_COLUMNS <= set(table.columns)
    assert (tmp_path / "lossgap_rate.png").stat().st_size > 0
    cfg = lossgap_rate.PRESETS["smoke"]
    fits = lossgap_rate.fit_rates(table, cfg)
    assert set(fits.columns) >= {"d", "t", "slope", "slope_se", "minus_one_over_d", "n_fit_points"}
    assert len(fits) == len(cfg.dims) * len(cfg.times)
    # in d = 1 the gap decays with n (the spacing falls below sigma_t within the smoke range)
    d1 = table[table["d"] == 1].sort_values("n")
    assert d1["loss_gap"].iloc[-1] < d1["loss_gap"].iloc[0]
