"""width_vs_n and duplication at their smoke presets, and the W* interpolation."""

import math

import pytest

from verify import duplication, runner, width_vs_n

COMMON = {"width", "depth", "params", "net_seed", "rel_error", "rel_error_se", "final_loss",
          "target_error", "width_star", "params_star", "t", "n", "seed", "preset", "device", "runtime_s"}


def test_width_star_interpolation():
    assert width_vs_n.width_star([4, 8, 16], [0.5, 0.2, 0.05], 0.1) == pytest.approx(8 * 2 ** 0.5)
    assert width_vs_n.width_star([4, 8], [0.05, 0.01], 0.1) == 4
    assert math.isnan(width_vs_n.width_star([4, 8], [0.5, 0.3], 0.1))


def test_width_vs_n_smoke(tmp_path):
    table = runner.run_module(width_vs_n, "smoke", out=tmp_path, quiet=True)
    assert COMMON | {"law", "min_pair_distance", "sigma_t"} <= set(table.columns)
    cfg = width_vs_n.PRESETS["smoke"]
    assert len(table) == len(width_vs_n.grid(cfg)) * len(cfg.widths) * len(cfg.net_seeds)
    assert set(table["law"]) == {"empirical", "true"}
    assert (table["rel_error"] > 0).all() and (table["rel_error_se"] > 0).all()
    assert (tmp_path / "width_vs_n.png").exists()


def test_duplication_smoke(tmp_path):
    table = runner.run_module(duplication, "smoke", out=tmp_path, quiet=True)
    assert COMMON | {"kind", "m", "n_distinct"} <= set(table.columns)
    assert set(table["kind"]) == {"distinct", "duplicated", "memorization"}
    assert ((table["n"] - table["m"]) == table["n_distinct"]).all()
    mem = table[table["kind"] == "memorization"]
    assert {"data", "mem_fraction", "mem_fraction_se"} <= set(mem.columns)
    assert len(mem) == len(duplication.data_sets(duplication.PRESETS["smoke"]))
    assert mem["mem_fraction"].between(0, 1).all()
    assert (tmp_path / "duplication.png").exists()


def test_duplicated_set_has_only_pool_points():
    import torch

    from verify._gmm import with_copies

    pool = torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    data = with_copies(pool, 7, 0)
    assert data.shape == (12, 2) and torch.unique(data, dim=0).shape[0] == 5


def test_stopping_at_the_target_gives_the_same_width_star():
    """Training widths narrowest-first and stopping once one reaches the target does not change W*, and
    skips the wider nets."""
    import dataclasses

    import theory

    cfg = dataclasses.replace(width_vs_n.PRESETS["smoke"], widths=(4, 8, 64, 128), target_error=0.5, steps=60)
    truth = width_vs_n.true_mixture(cfg, "cpu")
    full = width_vs_n.fit_widths(truth, 1.0, dataclasses.replace(cfg, stop_at_target=False), "cpu", key=3)
    short = width_vs_n.fit_widths(truth, 1.0, cfg, "cpu", key=3)
    assert full[0]["width_star"] == short[0]["width_star"] <= 64
    assert 128 not in {r["width"] for r in short} and 128 in {r["width"] for r in full}
