"""width_vs_n and duplication at their smoke presets, W* with its censoring, and the width search."""

import dataclasses
import math

import numpy as np
import pytest

from verify import duplication, runner, width_vs_n

COMMON = {"width", "depth", "params", "net_seed", "rel_error", "rel_error_se", "final_loss", "error_curve",
          "curve_steps", "train_steps", "target_error", "width_star", "width_star_lo", "width_star_hi",
          "params_star", "t", "n", "spacing", "noise_ratio", "seed", "preset", "device", "runtime_s"}


def test_width_star_interpolation_and_censoring():
    assert width_vs_n.width_star([4, 8, 16], [0.5, 0.2, 0.05], 0.1) == pytest.approx(8 * 2 ** 0.5)
    assert width_vs_n.width_star([4, 8], [0.05, 0.01], 0.1) == 4
    assert math.isnan(width_vs_n.width_star([4, 8], [0.5, 0.3], 0.1))
    assert width_vs_n.star_bounds([8, 4], [0.01, 0.05], 0.1) == (4.0, 0.0, 4.0)          # below the grid floor
    w, lo, hi = width_vs_n.star_bounds([4, 8], [0.5, 0.3], 0.1)                          # above the grid
    assert math.isnan(w) and (lo, hi) == (8.0, math.inf)
    assert all(map(math.isnan, width_vs_n.star_bounds([4, 8], [0.5, 0.3], 0.1, grid_max=16)))   # stopped early


def test_t_from_the_spacing_inverts():
    for ratio, spacing in [(0.25, 0.01), (0.5, 0.3), (1.0, 2.0)]:
        t = width_vs_n.time_for_ratio(ratio, spacing)
        assert width_vs_n.noise_ratio(t, spacing) == pytest.approx(ratio, rel=1e-12)


def _prefix_of_grid(table, keys, widths):
    for _, g in table.groupby(keys):
        trained = sorted(set(g["width"]))
        assert trained == sorted(widths)[:len(trained)] and len(trained) >= 1


def test_width_vs_n_smoke(tmp_path):
    table = runner.run_module(width_vs_n, "smoke", out=tmp_path, quiet=True)
    cfg = width_vs_n.PRESETS["smoke"]
    assert COMMON | {"law", "regime", "protocol", "sigma_t", "construction_width"} <= set(table.columns)
    assert set(table["law"]) == {"empirical", "true"} and set(table["regime"]) == {"small", "control"}
    assert set(table["protocol"]) == {"main"} | {width_vs_n.protocol_name(f, x) for f, x in cfg.variants}
    # stopping at the target trains a prefix of the width grid per set
    _prefix_of_grid(table, width_vs_n.GROUP, cfg.widths)
    assert len(table) <= len(width_vs_n.grid(cfg)) * len(cfg.ns) * len(cfg.widths) * len(cfg.net_seeds)
    assert (table["rel_error"] > 0).all() and (table["rel_error_se"] > 0).all()
    small = table[(table["regime"] == "small") & (table["protocol"] == "main")]
    assert np.allclose(small["noise_ratio"], cfg.spacing_ratio)
    assert np.allclose(table[table["regime"] == "control"]["t"], cfg.control_t)
    curves = table["error_curve"].str.split(";").map(len)
    assert (curves == -(-table["train_steps"] // table["curve_steps"])).all()
    emp = small[small["law"] == "empirical"]
    assert (emp["construction_width"] >= 2 * emp["n"]).all()
    assert (tmp_path / "width_vs_n.png").exists()


def test_duplication_smoke(tmp_path):
    table = runner.run_module(duplication, "smoke", out=tmp_path, quiet=True)
    assert COMMON | {"kind", "pool", "m", "n_distinct"} <= set(table.columns)
    assert set(table["kind"]) == {"distinct", "duplicated"}
    dup = table[table["kind"] == "duplicated"]
    assert (dup["n_distinct"] == dup["pool"]).all() and (dup["n"] == dup["pool"] + dup["m"]).all()
    dist = table[table["kind"] == "distinct"]
    assert (dist["n_distinct"] == dist["n"]).all()
    # every set of a pool is fitted at the pool's t
    assert (table.groupby(["pool", "seed"])["t"].nunique() == 1).all()
    _prefix_of_grid(table, duplication.KEYS, duplication.PRESETS["smoke"].widths)
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
    cfg = dataclasses.replace(width_vs_n.PRESETS["smoke"], widths=(4, 8, 64, 128), targets=(0.5,),
                              target_error=0.5, steps=60)
    truth = width_vs_n.true_mixture(cfg, "cpu")
    groups = [{"law": truth, "t": 1.0, "stream": 3}]
    full = width_vs_n.fit_width_groups(groups, dataclasses.replace(cfg, stop_at_target=False), "cpu")[0]
    short = width_vs_n.fit_width_groups(groups, cfg, "cpu")[0]
    for rows in (full, short):
        width_vs_n.add_star(rows, cfg, cfg.target_error)
    assert full[0]["width_star"] == pytest.approx(short[0]["width_star"], rel=1e-6) and short[0]["width_star"] <= 64
    assert 128 not in {r["width"] for r in short} and 128 in {r["width"] for r in full}
    same = {(r["width"], r["net_seed"]): r["rel_error"] for r in full}
    assert all(same[(r["width"], r["net_seed"])] == pytest.approx(r["rel_error"], rel=1e-5) for r in short)


def test_a_bucket_split_to_bound_memory_gives_the_same_fits(monkeypatch):
    """A width bucket whose training state exceeds ENSEMBLE_STATE trains as several ensembles, and the
    evaluation's chunk shrinks under EVAL_ACTIVATIONS: every member's fit equals the one-ensemble fit to
    float32 round-off (1e-4 relative on errors ~0.1-1 after 60 Adam steps), in the same order."""
    from theory.training import regression

    cfg = dataclasses.replace(width_vs_n.PRESETS["smoke"], widths=(4, 64), net_seeds=(0, 1), targets=(0.01,),
                              target_error=0.01, steps=60, stop_at_target=False)
    truth = width_vs_n.true_mixture(cfg, "cpu")
    groups = [{"law": truth, "t": 1.0, "stream": 3}, {"law": truth, "t": 0.5, "stream": 4}]
    whole = width_vs_n.fit_width_groups(groups, cfg, "cpu")
    per_member = 4 * width_vs_n.relu_mlp_parameter_count(cfg.dim, 64, cfg.depth, cfg.dim)
    monkeypatch.setattr(width_vs_n, "ENSEMBLE_STATE", per_member)           # one member per ensemble at 64
    monkeypatch.setattr(regression, "EVAL_ACTIVATIONS", 64 * 50)            # 25 points per chunk at 2 members
    assert len(width_vs_n.ensemble_parts(list(range(4)), 64, cfg)) == 4
    split = width_vs_n.fit_width_groups(groups, cfg, "cpu")
    for a, b in zip(whole, split):
        assert [(r["width"], r["net_seed"]) for r in a] == [(r["width"], r["net_seed"]) for r in b]
        for ra, rb in zip(a, b):
            assert rb["rel_error"] == pytest.approx(ra["rel_error"], rel=1e-4)
            assert rb["rel_error_se"] == pytest.approx(ra["rel_error_se"], rel=1e-3)


@pytest.mark.parametrize("module", [width_vs_n, duplication])
def test_paper_preset_runs_at_smoke_size_and_the_cost_model_bounds_the_work(module):
    paper = module.PRESETS["paper"]
    for name in ("cpu", "paper"):
        cfg = module.PRESETS[name]
        assert cfg.target_error in cfg.targets and len(cfg.data_seeds) >= 3 and len(cfg.net_seeds) >= 2
    if module is width_vs_n:
        assert all(math.log10(max(c.ns) / min(c.ns)) >= 1.5 for c in (module.PRESETS["cpu"], paper))
        small = dataclasses.replace(paper, ns=paper.ns[:2], widths=paper.widths[:2], net_seeds=paper.net_seeds[:1],
                                    steps=4, batch_size=16, eval_points=32)
    else:
        small = dataclasses.replace(paper, n_distinct=paper.n_distinct[:1], copies_factor=paper.copies_factor[:1],
                                    widths=paper.widths[:2], net_seeds=paper.net_seeds[:1], steps=4, batch_size=16,
                                    eval_points=32)
    point = module.grid(small)[0]
    rows = module.run_point(point, small, "cpu")
    assert set(module.COLUMNS) - set(runner.RUNNER_COLUMNS) <= set().union(*rows) | set(point)
    import pandas as pd

    done = width_vs_n.table_macs(pd.DataFrame(rows), small)
    bound = (width_vs_n.fit_macs(small.ns, small, small.steps, point["law"] == "empirical") if module is width_vs_n
             else module.estimated_seconds(small) / width_vs_n.SECONDS_PER_MAC["cpu"] / len(small.data_seeds))
    assert 0 < done <= bound
    assert module.ESTIMATED_RUNTIME["paper"] == round(module.estimated_seconds(paper, "cuda"))
