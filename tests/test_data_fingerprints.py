"""Changing the data never reuses old work (issue 18 item 3): cifar_pruning with MEMSEP_DATA pointing at
other images recomputes its rows (even with --reuse-stale) and trains new checkpoints."""

import numpy as np

from test_verify_cifar import tiny_data  # noqa: F401  (the fixture: 48 synthetic images in MEMSEP_DATA)
from verify import cifar_pruning, store
from verify.runner import run_module


def test_other_images_reuse_neither_rows_nor_checkpoints(tiny_data, monkeypatch, capsys):  # noqa: F811
    out = tiny_data / "out"
    cfg = cifar_pruning.PRESETS["smoke"]
    first = run_module(cifar_pruning, "smoke", out=out, quiet=True)
    assert set(first["data_hash"]) == {store.data_fingerprint(cifar_pruning, cfg)}
    old_dir = cifar_pruning.checkpoint_dir(cfg)
    other = tiny_data / "other"
    other.mkdir()
    x = np.load(tiny_data / "data" / "cifar10_train_5k.npz")["x"].copy()
    x[0] = 255 - x[0]                                           # one image changed
    np.savez(other / "cifar10_train_5k.npz", x=x, y=np.zeros(len(x), dtype=np.int64))
    monkeypatch.setenv("MEMSEP_DATA", str(other))
    assert cifar_pruning.checkpoint_dir(cfg) != old_dir         # the checkpoint key includes the data
    capsys.readouterr()
    again = run_module(cifar_pruning, "smoke", out=out, quiet=True, reuse_stale=True)
    assert "other data" in capsys.readouterr().err
    assert set(again["data_hash"]) == {store.data_fingerprint(cifar_pruning, cfg)} != set(first["data_hash"])
    assert (cifar_pruning.checkpoint_dir(cfg) / "original.pt").exists() and (old_dir / "original.pt").exists()
    assert list(again["final_loss"]) != list(first["final_loss"])   # trained anew, on the other images
