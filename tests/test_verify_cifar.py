"""verify cifar_pruning at its smoke preset, end to end, on a tiny synthetic data folder."""

import numpy as np
import pandas as pd
import pytest
import torch

from verify import cifar_pruning
from verify.runner import run_module

COLUMNS = ["variant", "precision", "precision_se", "recall", "recall_se", "memorization", "memorization_se",
           "fid", "heads_total", "heads_pruned", "pruned_heads", "n_generated", "sampler", "sample_steps", "feature_network",
           "reference_set", "n_train", "params", "seed", "preset", "device", "runtime_s"]


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """48 blocky synthetic images (so that nearest neighbours are well defined) as cifar10_train_5k.npz."""
    rng = np.random.default_rng(0)
    x = np.repeat(np.repeat(rng.integers(0, 256, size=(48, 4, 4, 3), dtype=np.uint8), 8, 1), 8, 2)
    data = tmp_path / "data"
    data.mkdir()
    np.savez(data / "cifar10_train_5k.npz", x=x, y=np.zeros(48, dtype=np.int64))
    monkeypatch.setenv("MEMSEP_DATA", str(data))
    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path / "ck"))
    return tmp_path


def test_smoke_end_to_end(tiny_data):
    out = tiny_data / "out"
    threads = torch.get_num_threads()
    table = run_module(cifar_pruning, "smoke", out=out, quiet=True)
    assert torch.get_num_threads() == threads
    assert set(COLUMNS) <= set(table.columns)
    assert sorted(table["variant"]) == ["original", "pruned", "random"]
    cfg = cifar_pruning.PRESETS["smoke"]
    heads = cfg.model.depth * cfg.model.heads
    count = round(cfg.pruning.ratio * heads)
    by = table.set_index("variant")
    assert by.loc["original", "heads_pruned"] == 0
    assert by.loc["pruned", "heads_pruned"] == by.loc["random", "heads_pruned"] == count
    assert len(by.loc["pruned", "pruned_heads"].split()) == count
    for col in ("precision", "recall", "memorization"):
        assert table[col].between(0, 1).all()
    assert np.isfinite(table["fid"]).all() and (table["fid"] > -1e-6).all()
    # 16 held-out images (32..47) score the FID floor, the same value on every row
    assert np.isfinite(table["fid_real"]).all() and table["fid_real"].nunique() == 1
    assert (out / "cifar_pruning.csv").exists() and (out / "cifar_pruning.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [   # beside the runner's records,
        "cifar_pruning.config.json", "cifar_pruning.csv", "cifar_pruning.png", "cifar_pruning.run.json"]  # only the table
    n_fig = cfg.evaluation.n_figure
    for _, row in table.iterrows():                     # example images (first seed) round-trip through the table
        samples, neighbours = cifar_pruning._unhex(row["example_samples"]), cifar_pruning._unhex(row["example_neighbours"])
        assert samples.shape == neighbours.shape == (n_fig, 32, 32, 3) and samples.dtype == np.uint8
        ratios = np.array(row["example_ratios"].split(), float)
        assert len(ratios) == n_fig and ((ratios >= 0) & (ratios <= 1)).all()
    train = cifar_pruning._io.load_training_images(cfg.n_train)
    assert all(bool((train.numpy() == img).all((1, 2, 3)).any()) for img in neighbours)   # true training images
    assert list((tiny_data / "ck").rglob("original.pt"))                     # resumable checkpoint
    # a rerun resumes: no point left to compute, same table
    again = run_module(cifar_pruning, "smoke", out=out, quiet=True)
    cols = ["variant", "seed", "precision", "recall", "memorization", "fid", "pruned_heads"]
    pd.testing.assert_frame_equal(again[cols].reset_index(drop=True), table[cols].reset_index(drop=True),
                                  check_dtype=False)
    summ = cifar_pruning.variant_summary(table)
    assert list(summ.index) == ["original", "pruned", "random"] and "memorization_mean" in summ.columns
