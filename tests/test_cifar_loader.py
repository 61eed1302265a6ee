"""CIFAR-10 loaders: npz, JPEG npz and a synthetic cifar-10-batches-py folder in the standard format."""

import io
import pickle

import numpy as np
import pytest
import torch

from verify import _io as cifar


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)


def test_npz_roundtrip_and_limit(tmp_path):
    x, y = _images(7), np.arange(7) % 10
    np.savez(tmp_path / "d.npz", x=x, y=y, label_names=np.array(["a"] * 10))
    xs, ys = cifar.load_npz(tmp_path / "d.npz")
    assert xs.dtype == torch.uint8 and tuple(xs.shape) == (7, 32, 32, 3)
    assert np.array_equal(xs.numpy(), x) and np.array_equal(ys.numpy(), y)
    x3, _ = cifar.load_npz(tmp_path / "d.npz", limit=3)
    assert np.array_equal(x3.numpy(), x[:3])
    with pytest.raises(ValueError, match="limit"):
        cifar.load_npz(tmp_path / "d.npz", limit=8)
    with pytest.raises(ValueError, match="path"):
        cifar.load_npz(tmp_path / "missing.npz")


def test_batches_py_channel_planar_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    x = [_images(4, seed=b) for b in range(2)]
    for b, imgs in enumerate(x, start=1):
        planar = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), 3072)     # R plane, G plane, B plane
        with open(folder / f"data_batch_{b}", "wb") as fh:
            pickle.dump({b"data": planar, b"labels": [b] * len(imgs), b"batch_label": b"x"}, fh, protocol=2)
    xs, ys = cifar.load_batches_py(folder, batches=("data_batch_1", "data_batch_2"))
    assert np.array_equal(xs.numpy(), np.concatenate(x)) and ys.tolist() == [1] * 4 + [2] * 4
    # pixel (row 0, col 1) of image 0 is byte 1 of the R plane, byte 1025 of G, byte 2049 of B
    with open(folder / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")[b"data"][0]
    assert xs[0, 0, 1].tolist() == [raw[1], raw[1025], raw[2049]]
    with pytest.raises(ValueError, match="data_batch_3"):
        cifar.load_batches_py(folder, batches=("data_batch_3",))


def test_jpeg_npz_decodes(tmp_path):
    from PIL import Image

    x = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    x[0], x[1] = (200, 30, 90), (10, 240, 120)
    blobs = []
    for img in x:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=95)
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])])
    np.savez(tmp_path / "j.npz", jpeg=np.concatenate(blobs), offsets=offsets, y=np.array([3, 4]))
    xs, ys = cifar.load_jpeg_npz(tmp_path / "j.npz")
    assert tuple(xs.shape) == (2, 32, 32, 3) and ys.tolist() == [3, 4]
    assert np.abs(xs.numpy().astype(int) - x.astype(int)).max() <= 4         # lossy, flat colours


def test_model_range_roundtrip():
    u8 = torch.from_numpy(_images(3))
    x = cifar.to_model_range(u8)
    assert tuple(x.shape) == (3, 3, 32, 32) and float(x.min()) >= -1 and float(x.max()) <= 1
    assert torch.equal(cifar.to_uint8(x), u8)
    with pytest.raises(ValueError, match="images"):
        cifar.to_model_range(x)


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MEMSEP_DATA", str(tmp_path))
    assert cifar.data_dir() == tmp_path
    assert cifar.data_dir("/somewhere") == cifar.Path("/somewhere")
    monkeypatch.delenv("MEMSEP_DATA")
    assert cifar.data_dir() == cifar.REPO_ROOT.parent / "shared" / "data"


def _batches_folder(root, per_batch=3):
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    images = []
    for b in range(1, 6):
        imgs = _images(per_batch, seed=10 + b)
        images.append(imgs)
        planar = imgs.transpose(0, 3, 1, 2).reshape(len(imgs), 3072)
        with open(folder / f"data_batch_{b}", "wb") as fh:
            pickle.dump({b"data": planar, b"labels": [b] * len(imgs)}, fh, protocol=2)
    return folder, np.concatenate(images)


def test_training_images_from_a_batches_folder(tmp_path, monkeypatch):
    """Without cifar10_train_5k.npz the loader reads a standard cifar-10-batches-py folder (in the data folder
    or as the data folder): the first 1,000 images of each batch, batch after batch, like the npz."""
    folder, expected = _batches_folder(tmp_path)
    monkeypatch.setenv("MEMSEP_DATA", str(tmp_path))
    assert np.array_equal(cifar.load_training_images().numpy(), expected)
    assert np.array_equal(cifar.load_training_images(4).numpy(), expected[:4])
    assert np.array_equal(cifar.load_training_images(data_dir_path=folder).numpy(), expected)
    cifar.require_training_images(15)
    with pytest.raises(cifar.MissingDataError, match="holds 15 training images; this run needs 16"):
        cifar.require_training_images(16)
    # the npz, where there is one, comes first
    np.savez(tmp_path / cifar.TRAIN_5K, x=_images(2, seed=99), y=np.zeros(2))
    assert np.array_equal(cifar.load_training_images().numpy(), _images(2, seed=99))


def test_missing_training_images_say_where_and_which_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSEP_DATA", str(tmp_path))
    with pytest.raises(cifar.MissingDataError) as err:
        cifar.load_training_images(3)
    text = str(err.value)
    assert str(tmp_path) in text and "MEMSEP_DATA" in text and cifar.TRAIN_5K in text and "cifar-10-batches-py" in text
    with pytest.raises(cifar.MissingDataError, match="fid_inception_2015-12-05_pool3.pt"):
        cifar.load_inception()
