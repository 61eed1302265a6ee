"""The thin I/O layer the verify modules share: every file, path and environment variable of memsep.

* ``atomic_write``: the one way a file is written (temporary file in the same folder, then rename);
* ``Checkpoint``: the one checkpoint helper: a resumable training state (or a cached value) stored
  atomically under ``$MEMSEP_CHECKPOINTS`` (default ``checkpoints/`` in the repository, git-ignored);
* the data folder: the ``data_dir`` argument, else ``$MEMSEP_DATA``, else ``../shared/data`` relative to the
  repository root; CIFAR-10 loaders (the offline ``.npz`` files of the shared data folder and the standard
  ``cifar-10-batches-py`` pickles, as uint8 NHWC tensors, plus the map to the model's range) and the FID
  Inception network. Nothing here downloads anything.

CIFAR-10 formats
* npz (``cifar10_train_5k.npz``, ``cifar10_test_exact.npz``...): keys ``x`` uint8 (N, 32, 32, 3) RGB, ``y``.
* JPEG npz (``cifar10_train_jpeg.npz``): ``jpeg`` bytes, ``offsets`` (N + 1,), ``y``; image i is
  ``jpeg[offsets[i]:offsets[i + 1]]`` (lossy; for reference statistics only).
* ``cifar-10-batches-py``: pickles ``data_batch_1..5`` / ``test_batch``, each a dict with ``b"data"`` uint8
  (N, 3072) channel-planar (1024 R, 1024 G, 1024 B values, row-major) and ``b"labels"``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_5K = "cifar10_train_5k.npz"
TEST_EXACT = "cifar10_test_exact.npz"
TRAIN_JPEG = "cifar10_train_jpeg.npz"
TEST_JPEG = "cifar10_test_jpeg.npz"
INCEPTION = "fid_inception_2015-12-05_pool3.pt"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (atomic on POSIX): a reader
    never sees a half-written file, and a killed writer leaves the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def checkpoint_root() -> Path:
    """``$MEMSEP_CHECKPOINTS``, default ``<repo>/checkpoints``."""
    return Path(os.environ.get("MEMSEP_CHECKPOINTS") or (REPO_ROOT / "checkpoints"))


def key_tag(key, length: int = 16) -> str:
    """A short stable hash of a JSON-able ``key`` (a configuration, a grid point)."""
    return hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:length]


def fingerprint(*values, length: int = 16) -> str:
    """A content hash of data a result was computed from: tensors and arrays by dtype, shape and bytes
    (so a different training set never matches), anything else by its JSON form. Put it in every
    checkpoint and cache key that depends on data."""
    h = hashlib.sha256()
    for v in values:
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().contiguous().numpy()
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
        else:
            h.update(json.dumps(v, sort_keys=True, default=str).encode())
    return h.hexdigest()[:length]


class Checkpoint:
    """A file holding one torch-serialised state: a training run's resumable state (the ``resume`` /
    ``on_checkpoint`` pair of theory's trainers) or a cached intermediate value."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_run(cls, kind: str, key) -> "Checkpoint":
        """``$MEMSEP_CHECKPOINTS``/kind/<hash of key>.pt, where ``key`` identifies the run."""
        return cls(checkpoint_root() / kind / f"{key_tag(key)}.pt")

    def load(self, map_location=None):
        """The stored state, or None if there is none yet."""
        if not self.path.exists():
            return None
        return torch.load(self.path, map_location=map_location, weights_only=False)

    def save(self, state) -> None:
        """Store ``state`` atomically (serialised at once, so the caller may go on mutating it)."""
        atomic_write(self.path, lambda tmp: torch.save(state, tmp))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def cached(self, compute: Callable[[], object], map_location=None):
        """The stored value if there is one, else ``compute()``, stored."""
        value = self.load(map_location)
        if value is None:
            value = compute()
            self.save(value)
        return value


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path`` if given (and non-empty), else ``$MEMSEP_DATA``, else ``<repo>/../shared/data``."""
    if path:
        return Path(path)
    env = os.environ.get("MEMSEP_DATA")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data")


def _limit(n: int, limit: int | None, name: str = "limit") -> int:
    if limit is None:
        return n
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"{name} must be a positive integer or None, got {limit!r}")
    if limit > n:
        raise ValueError(f"{name} = {limit} exceeds the {n} images available")
    return limit


def _check_images(x: np.ndarray, source) -> np.ndarray:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"{source}: expected uint8 images (N, H, W, 3), got {x.dtype} {x.shape}")
    return x


def load_npz(path: str | os.PathLike, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 32, 32, 3) uint8 and labels (N,) int64 from a pixel npz (keys ``x``, ``y``); the first
    ``limit`` images if given."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {path} is not a file (set MEMSEP_DATA or the config's data_dir)")
    with np.load(path) as f:
        if "x" not in f or "y" not in f:
            raise ValueError(f"path {path} lacks the keys 'x' and 'y' (has {sorted(f.keys())})")
        x = _check_images(f["x"], path)
        m = _limit(x.shape[0], limit)
        return torch.from_numpy(np.ascontiguousarray(x[:m])), torch.from_numpy(f["y"][:m].astype(np.int64))


def load_jpeg_npz(path: str | os.PathLike, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the JPEG npz (keys ``jpeg``, ``offsets``, ``y``) with Pillow: (N, 32, 32, 3) uint8, labels."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path {path} is not a file")
    with np.load(path) as f:
        blob, offsets, y = f["jpeg"], f["offsets"], f["y"]
    m = _limit(len(offsets) - 1, limit)
    raw = blob.tobytes()
    out = np.stack([np.asarray(Image.open(io.BytesIO(raw[offsets[i]:offsets[i + 1]])).convert("RGB"))
                    for i in range(m)])
    return torch.from_numpy(_check_images(out, path)), torch.from_numpy(y[:m].astype(np.int64))


def load_batches_py(folder: str | os.PathLike, batches: tuple[str, ...] = TRAIN_BATCHES,
                    limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 32, 32, 3) uint8 and labels from the standard ``cifar-10-batches-py`` pickles, in the
    order of ``batches`` (default ``data_batch_1..5``); channel-planar rows are reshaped to HWC."""
    folder = Path(folder)
    xs, ys = [], []
    for name in batches:
        path = folder / name
        if not path.is_file():
            raise ValueError(f"folder {folder} has no batch file {name!r}")
        with open(path, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = batch.get(b"labels", batch.get(b"fine_labels"))
        if data.ndim != 2 or data.shape[1] != 3072 or labels is None or len(labels) != data.shape[0]:
            raise ValueError(f"{path}: expected b'data' (N, 3072) and N b'labels', got {data.shape}")
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        ys.append(np.asarray(labels, dtype=np.int64))
    x, y = np.concatenate(xs), np.concatenate(ys)
    m = _limit(x.shape[0], limit)
    return torch.from_numpy(np.ascontiguousarray(x[:m])), torch.from_numpy(y[:m])


def load_training_images(n: int | None = None, *, data_dir_path=None) -> torch.Tensor:
    """The first ``n`` of the 5,000 pixel-exact training images (``cifar10_train_5k.npz``), uint8 NHWC."""
    return load_npz(data_dir(data_dir_path) / TRAIN_5K, n)[0]


def load_test_images(n: int | None = None, *, data_dir_path=None) -> torch.Tensor:
    """The first ``n`` of the 1,017 pixel-exact CIFAR-10 test images (``cifar10_test_exact.npz``), uint8 NHWC."""
    return load_npz(data_dir(data_dir_path) / TEST_EXACT, n)[0]


def area_downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 NHWC (N, S, S, 3) -> (N, size, size, 3) uint8 by averaging each (S/size) x (S/size) block of
    pixels and rounding to the nearest integer (halves to even), so a down-scaled data set is again exact
    uint8 pixels; ``size == S`` returns the images unchanged."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    S = images.shape[1]
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or S % size or images.shape[2] != S:
        raise ValueError(f"size must be a positive divisor of the square image size {S}, got {size!r}")
    if size == S:
        return images
    f = S // size
    x = images.double().reshape(images.shape[0], size, f, size, f, 3).mean((2, 4))
    return x.round().clamp(0, 255).to(torch.uint8).contiguous()


def to_model_range(images: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """uint8 NHWC in {0..255} -> float NCHW in [-1, 1]:  x = u / 127.5 - 1."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float NCHW in [-1, 1] -> uint8 NHWC (clamped, rounded): the inverse of ``to_model_range`` on the grid."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"x must have shape (N, 3, H, W), got {tuple(x.shape)}")
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def load_inception(path: str | os.PathLike | None = None, device="cpu") -> torch.jit.ScriptModule:
    """The FID Inception pool3 network (TorchScript, input (N, 3, 299, 299) in (-1, 1), output (N, 2048)),
    from ``path`` (default: ``INCEPTION`` in the data folder)."""
    path = Path(path) if path is not None else data_dir() / INCEPTION
    if not path.is_file():
        raise ValueError(f"path {path} is not a file (the FID Inception network)")
    with warnings.catch_warnings():          # torch.jit.load is deprecated in favour of torch.export
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            network = torch.jit.load(str(path), map_location=device)
        except (RuntimeError, ValueError) as err:   # not a TorchScript archive, truncated, or another format
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"path {path} is not a loadable TorchScript file (the FID Inception network): "
                             f"{reason.split('. ')[0]}") from None
    return network.eval()
