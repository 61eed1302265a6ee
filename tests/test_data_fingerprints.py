"""Changing the data never reuses old work (issue 18 item 3): cifar_pruning's data fingerprint (the hash
``verify.store`` puts on every row and compares before reusing one) changes when MEMSEP_DATA points at other
images, at other held-out (null) images, or when the Inception network is used; rows with another data hash
are recomputed even with --reuse-stale (``tests/test_store.py`` checks that rule on a smoke module)."""

import numpy as np

from verify import cifar_pruning, store


def _write(folder, seed, n=48):
    rng = np.random.default_rng(seed)
    folder.mkdir()
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    np.savez(folder / "cifar10_train_5k.npz", x=x, y=np.zeros(n, dtype=np.int64))
    np.savez(folder / "cifar10_test_exact.npz", x=x[:20], y=np.zeros(20, dtype=np.int64))
    return x


def test_the_data_fingerprint_follows_the_files(tmp_path, monkeypatch):
    cfg = cifar_pruning.PRESETS["smoke"]
    a, b = tmp_path / "a", tmp_path / "b"
    x = _write(a, 0)
    _write(b, 0)
    monkeypatch.setenv("MEMSEP_DATA", str(a))
    first = store.data_fingerprint(cifar_pruning, cfg)
    monkeypatch.setenv("MEMSEP_DATA", str(b))
    assert store.data_fingerprint(cifar_pruning, cfg) == first          # same bytes elsewhere: same data
    x = x.copy()
    x[0] = 255 - x[0]                                                    # one training image changed
    np.savez(b / "cifar10_train_5k.npz", x=x, y=np.zeros(len(x), dtype=np.int64))
    changed = store.data_fingerprint(cifar_pruning, cfg)
    assert changed != first
    np.savez(b / "cifar10_test_exact.npz", x=x[1:21], y=np.zeros(20, dtype=np.int64))   # other null images
    assert store.data_fingerprint(cifar_pruning, cfg) not in (first, changed)
