"""verify cifar_pruning at its smoke preset, end to end, on a tiny synthetic data folder: every arm and
ablation runs, the seeds train independent originals, the held-out null is computed, the quality rows carry
intervals and the real-vs-real value, caches are keyed by the data, and a rerun resumes."""

import numpy as np
import pandas as pd
import pytest
import torch

from verify import cifar_pruning
from verify import runner
from verify.runner import run_module

pytestmark = pytest.mark.usefixtures("one_thread")


def _blocky(rng, n):
    """n blocky 32x32 images (4x4 random colours, 8x8 pixels each), so nearest neighbours are well defined."""
    return np.repeat(np.repeat(rng.integers(0, 256, size=(n, 4, 4, 3), dtype=np.uint8), 8, 1), 8, 2)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The smoke preset on 48 synthetic training and 20 synthetic test images; (folder, table)."""
    tmp = tmp_path_factory.mktemp("cifar")
    rng = np.random.default_rng(0)
    data = tmp / "data"
    data.mkdir()
    np.savez(data / "cifar10_train_5k.npz", x=_blocky(rng, 48), y=np.zeros(48, dtype=np.int64))
    np.savez(data / "cifar10_test_exact.npz", x=_blocky(rng, 20), y=np.zeros(20, dtype=np.int64))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEMSEP_DATA", str(data))
        mp.setenv("MEMSEP_CHECKPOINTS", str(tmp / "ck"))
        threads = torch.get_num_threads()
        table = run_module(cifar_pruning, "smoke", out=tmp / "out", quiet=True)
        assert torch.get_num_threads() == threads
        yield tmp, table, mp


def test_every_arm_and_ablation_runs_with_the_documented_columns(smoke_run):
    tmp, table, _ = smoke_run
    cfg = cifar_pruning.PRESETS["smoke"]
    assert set(cifar_pruning.COLUMNS) - {"error"} <= set(table.columns) | {"example_samples"}
    seeds = cifar_pruning.seed_rows(table)
    arms = cifar_pruning.arms(cfg)
    assert {a.group for a in arms} == {"main", "finetune", "ranking", "ratio", "time_law"}
    heads = cfg.model.depth * cfg.model.heads
    for arm in arms:
        rows = seeds[seeds["arm"] == arm.name]
        assert sorted(rows["seed"].unique()) == list(cfg.seeds), arm.name
        assert len(rows) == arm.masks * len(cfg.seeds), arm.name
        assert (rows["heads_pruned"] == (0 if arm.which == "none" else round(arm.ratio * heads))).all(), arm.name
        assert (rows["n_generated"] == arm.n_samples).all() and (rows["finetune_steps"] == arm.finetune_steps).all()
        assert rows["memorization"].between(0, 1).all() and rows["mem_diff"].between(-1, 1).all()
    assert (seeds[seeds["arm"] == "original"]["mem_diff"] == 0).all()
    assert seeds[seeds["variant"].isin(["least", "most"])]["importance_gap_se"].notna().all()
    # the most important heads are never the least important ones
    by = seeds[seeds["mask"] == 0].set_index(["seed", "arm"])["pruned_heads"]
    for s in cfg.seeds:
        assert not set(by[(s, "most")].split()) & set(by[(s, "alg1")].split())
    assert (tmp / "out" / "cifar_pruning.png").stat().st_size > 10_000


def test_seeds_train_independent_originals(smoke_run):
    _, table, _ = smoke_run
    orig = cifar_pruning.seed_rows(table).query("arm == 'original'")
    assert orig["original_fingerprint"].nunique() == len(cifar_pruning.PRESETS["smoke"].seeds)
    assert orig["data_fingerprint"].nunique() == 1
    assert cifar_pruning.CLAIMS[0].evaluate(table).confounds.count("seeds share an original model") == 0


def test_null_on_held_out_images_and_quality_with_its_floor(smoke_run):
    _, table, _ = smoke_run
    cfg = cifar_pruning.PRESETS["smoke"]
    q = cifar_pruning.quality_rows(table)
    null = q[q["arm"] == cifar_pruning.NULL_ARM].iloc[0]
    assert null["n_null"] == 20 and 0 <= null["null_count"] <= 20
    assert null["null_lo"] <= null["null_rate"] <= null["null_hi"]
    for group, per_seed in (("main", cfg.evaluation.fid_per_seed), ("ablation", cfg.evaluation.fid_per_seed_ablation)):
        g = q[q["fid_group"] == group]
        assert {"real", "memorizer", "original"} <= set(g["arm"])
        assert (g["n_fid"] == per_seed * len(cfg.seeds)).all()
        assert (g["fid_lo"] <= g["fid"]).all() and (g["fid"] <= g["fid_hi"]).all()
        assert g["fid_real"].nunique() == 1 and np.isclose(g["fid_real"].iloc[0], g[g["arm"] == "real"]["fid"].iloc[0])
        for m in ("precision", "recall"):
            assert (g[f"{m}_lo"] >= 0).all() and (g[f"{m}_hi"] <= 1).all()
        models = g[~g["arm"].isin(["real", "memorizer", "original"])]
        assert models["fid_diff"].notna().all() and (models["fid_diff_lo"] <= models["fid_diff_hi"]).all()
    ablation = q[q["fid_group"] == "ablation"]
    assert set(a.name for a in cifar_pruning.arms(cfg)) <= set(ablation["arm"])      # every arm has FID
    mem = q[q["arm"] == "alg1"].iloc[0]
    assert mem["memorization_lo"] <= mem["memorization"] <= mem["memorization_hi"]


def test_examples_round_trip_through_the_table(smoke_run):
    _, table, _ = smoke_run
    cfg = cifar_pruning.PRESETS["smoke"]
    ex = table[table["example_samples"].notna()]
    assert sorted(ex["arm"]) == sorted(cifar_pruning.MAIN) and (ex["seed"] == cfg.seeds[0]).all()
    train = cifar_pruning.training_images(cfg).numpy()
    for _, row in ex.iterrows():
        samples = cifar_pruning.unhex(row["example_samples"], cfg.image_size)
        neighbours = cifar_pruning.unhex(row["example_neighbours"], cfg.image_size)
        assert samples.shape == neighbours.shape == (cfg.evaluation.n_figure, cfg.image_size, cfg.image_size, 3)
        ratios = np.array(row["example_ratios"].split(), float)
        assert len(ratios) == cfg.evaluation.n_figure and ((ratios >= 0) & (ratios <= 1)).all()
        assert all(bool((train == img).all((1, 2, 3)).any()) for img in neighbours)   # true training images


def test_caches_are_keyed_by_data_and_seed_and_a_rerun_resumes(smoke_run, monkeypatch):
    tmp, table, mp = smoke_run
    monkeypatch.setattr(runner, "_draw", lambda *a, **k: None)        # the figure is checked once, above
    cfg = cifar_pruning.PRESETS["smoke"]
    train = cifar_pruning.training_images(cfg)
    fp = cifar_pruning._io.fingerprint(train)
    other = train.clone()
    other[0, 0, 0, 0] ^= 1
    dirs = {cifar_pruning._seed_dir(cfg, fp, 0), cifar_pruning._seed_dir(cfg, fp, 1),
            cifar_pruning._seed_dir(cfg, cifar_pruning._io.fingerprint(other), 0)}
    assert len(dirs) == 3
    assert cifar_pruning._seed_dir(cfg, fp, 0).joinpath("original.pt").exists()
    again = run_module(cifar_pruning, "smoke", out=tmp / "out", quiet=True)     # every point finished: skipped
    cols = ["stage", "arm", "seed", "mask", "memorization", "fid", "pruned_heads"]
    pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), table[cols].reset_index(drop=True),
                                  check_dtype=False)
    recomputed = run_module(cifar_pruning, "smoke", out=tmp / "again", quiet=True)   # from the caches
    pd.testing.assert_frame_equal(recomputed[cols].reset_index(drop=True), table[cols].reset_index(drop=True),
                                  check_dtype=False)
    assert (cifar_pruning.seed_rows(recomputed)["train_s"].fillna(0) < 1.0).all()    # nothing retrained


def test_verdicts_are_computed_from_the_smoke_table(smoke_run):
    _, table, _ = smoke_run
    for claim in cifar_pruning.CLAIMS:
        f = claim.evaluate(table)
        assert f.statistic and f.text, claim.key
