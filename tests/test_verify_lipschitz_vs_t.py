"""verify lipschitz_vs_t at the smoke preset: documented columns, the bound holds, the Gaussian's
measured Lipschitz constant equals its closed form, and the empirical one blows up at small t."""

import numpy as np
import pytest

from verify import lipschitz_vs_t as module
from verify.runner import run_module

COLUMNS = ["law", "t", "d", "n", "K", "alpha_t", "sigma2_t", "min_pair_distance", "lip_empirical", "lip_true",
           "lip_true_analytic", "bound_empirical", "bound_empirical_small_t", "bound_holds", "n_cloud",
           "seed", "preset", "device", "runtime_s", "point"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    out = tmp_path_factory.mktemp("lipschitz_vs_t")
    result = run_module(module, "smoke", out=out, quiet=True)
    assert (out / f"{module.NAME}.png").stat().st_size > 0
    return result


def test_columns_and_grid(table):
    assert set(COLUMNS) <= set(table.columns)
    assert "error" not in table.columns
    cfg = module.PRESETS["smoke"]
    assert len(table) == len(module.grid(cfg)) == 2 * len(cfg.seeds) * cfg.n_times
    np.testing.assert_allclose(table["alpha_t"] ** 2 + table["sigma2_t"], 1.0, rtol=1e-12)


def test_empirical_lipschitz_exceeds_the_bound(table):
    assert table["bound_holds"].all()
    assert (table["lip_empirical"] >= table["bound_empirical"]).all()


def test_gaussian_lipschitz_equals_closed_form(table):
    gauss = table[table["law"] == "gaussian"]
    assert len(gauss) > 0
    rel = (gauss["lip_true"] / gauss["lip_true_analytic"] - 1).abs()
    assert rel.max() < 1e-8


def test_empirical_blows_up_at_small_t(table):
    for law, sub in table.groupby("law"):
        first = sub[sub["t"] == sub["t"].min()]
        assert (first["lip_empirical"] > 1e5 * first["lip_true"]).all(), law
        last = sub[sub["t"] == sub["t"].max()]      # at large t both are near 1 (the N(0, I) score)
        assert (last["lip_empirical"] < 10 * last["lip_true"]).all(), law
