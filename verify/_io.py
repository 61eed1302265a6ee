"""The thin I/O layer the verify modules share: every file, path and environment variable of memsep.

* ``atomic_write``: the one way a file is written (temporary file in the same folder, then rename);
* ``Checkpoint``: the one checkpoint helper: a resumable training state (or a cached value) stored
  atomically under ``$MEMSEP_CHECKPOINTS`` (default ``checkpoints/`` in the repository, git-ignored);
* the data folder: the ``data_dir`` argument, else ``$MEMSEP_DATA``, else ``../shared/data`` relative to the
  repository root; CIFAR-10 loaders (the offline ``.npz`` files of the shared data folder and the standard
  ``cifar-10-batches-py`` pickles, as uint8 NHWC tensors, plus the map to the model's range) and the FID
  Inception network; a missing file raises ``MissingDataError`` saying where to put it and which variable
  to set (``require_training_images``, ``require_inception`` check before a run starts). Nothing here
  downloads anything;
* ``save_figure``: the one way a figure is written: a PNG whose bytes depend only on the figure (no
  software version or date in it) and that carries a ``stamp`` (``figure_stamp`` reads it back), so a
  runner can tell whether a figure is current without redrawing it.

CIFAR-10 formats
* npz (``cifar10_train_5k.npz``, ``cifar10_test_exact.npz``...): keys ``x`` uint8 (N, 32, 32, 3) RGB, ``y``.
* JPEG npz (``cifar10_train_jpeg.npz``): ``jpeg`` bytes, ``offsets`` (N + 1,), ``y``; image i is
  ``jpeg[offsets[i]:offsets[i + 1]]`` (lossy; for reference statistics only).
* ``cifar-10-batches-py``: pickles ``data_batch_1..5`` / ``test_batch``, each a dict with ``b"data"`` uint8
  (N, 3072) channel-planar (1024 R, 1024 G, 1024 B values, row-major) and ``b"labels"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import io
import json
import os
import pickle
import re
import socket
import sys
import tempfile
import time
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
BATCHES_FOLDER = "cifar-10-batches-py"
SUBSET_PER_BATCH = 1000      # cifar10_train_5k.npz = the first 1,000 images of each of data_batch_1..5


class MissingDataError(ValueError):
    """A data or network file a computation needs is not where memsep looks; the message says where to put
    it and which variable to set."""


class OutputError(OSError):
    """A file memsep had to write could not be written (read-only folder, full disk, ...); the message names
    the file. The previous version of the file, if any, is intact (``atomic_write``)."""


def _umask() -> int:
    """The process umask (read from /proc where possible: ``os.umask`` has to set it to read it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _writer_tag() -> str:
    """``host-pid`` of this process, embedded in temporary file names so a later run can tell the temporaries
    of a dead writer from those of a live one (``remove_temporaries``)."""
    return f"{socket.gethostname().split('.')[0] or 'host'}-{os.getpid()}"


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (atomic on POSIX): a reader
    never sees a half-written file, and a killed writer leaves the old one. The file gets the permissions
    the umask gives a new file (not mkstemp's 0600). Any OSError becomes an ``OutputError`` naming ``path``;
    the temporary file is removed (a killed writer's is removed by the next run: ``remove_temporaries``)."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        if isinstance(exc, OutputError):
            raise
        reason = exc.strerror or str(exc)
        raise OutputError(exc.errno, f"could not write {path}: {reason}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


_TMP = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<host>[^.]+)-(?P<pid>\d+)\.)?[^.]+\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_temporaries(folder: str | os.PathLike, names=None, *, recursive: bool = False,
                       unknown_age_s: float | None = 86400.0) -> list[Path]:
    """Remove the temporary files ``atomic_write`` left in ``folder`` when its writer was killed: those of a
    dead process on this host; those without a live writer to ask (another host's, or the old unnamed
    kind) only when older than ``unknown_age_s`` (None: at once, for a folder whose writers are known to be
    gone, e.g. under the runner's lock). ``names``: only temporaries of these file names. Returns what was
    removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    host, removed, now = _writer_tag().rsplit("-", 1)[0], [], time.time()
    for f in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        m = _TMP.match(f.name)
        if m is None or (names is not None and m["name"] not in names):
            continue
        if m["pid"] is not None and m["host"] == host:
            dead = int(m["pid"]) != os.getpid() and not _alive(int(m["pid"]))
        else:
            try:
                dead = unknown_age_s is None or now - f.stat().st_mtime > unknown_age_s
            except OSError:
                continue
        if dead:
            try:
                f.unlink()
                removed.append(f)
            except OSError:
                pass
    return removed


def notice(message: str) -> None:
    """One line for the person running memsep (stderr)."""
    print(f"[verify] {message}", file=sys.stderr, flush=True)


def move_aside(path: str | os.PathLike, reason: str) -> Path:
    """Move a damaged or superseded file out of the way, never deleting it: to ``<folder>/.memsep-aside/
    <name>.<reason>-<UTC time>`` beside it. Returns the new path."""
    path = Path(path)
    aside = path.parent / ".memsep-aside"
    aside.mkdir(exist_ok=True)
    base = aside / f"{path.name}.{reason}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    target, k = base, 1
    while target.exists():
        target, k = base.with_name(f"{base.name}~{k}"), k + 1
    os.replace(path, target)
    return target


def checkpoint_root() -> Path:
    """``$MEMSEP_CHECKPOINTS``, default ``<repo>/checkpoints``. On a cluster, point it at a folder every
    worker sees, so that a point retried on another worker resumes from its checkpoint."""
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


_FILE_HASHES: dict = {}


def file_fingerprint(path: str | os.PathLike, length: int = 16) -> str:
    """sha256 of a file's bytes (cached per process by path, size and modification time); ``missing:<name>``
    for a file that does not exist (so that a missing file never matches a present one)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return f"missing:{path.name}"
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
        except OSError as exc:
            raise ValueError(f"could not read {path}: {exc.strerror or exc}") from exc
        _FILE_HASHES[key] = h.hexdigest()
    return _FILE_HASHES[key][:length]


@dataclasses.dataclass(frozen=True)
class CheckpointPolicy:
    """How ``Checkpoint`` treats the files it finds, set by the runner around each grid point
    (``checkpoint_policy``): ``code`` is the fingerprint of the code computing the point (stored in every
    checkpoint; one made by other code is not resumed unless ``reuse_stale``); ``not_before``: files written
    before this time (seconds since the epoch) are ignored (``--fresh``). Outside the runner (None code)
    every readable checkpoint is used."""

    code: str | None = None
    reuse_stale: bool = False
    not_before: float | None = None


_POLICY: contextvars.ContextVar = contextvars.ContextVar("memsep_checkpoint_policy", default=CheckpointPolicy())


def current_policy() -> CheckpointPolicy:
    return _POLICY.get()


@contextlib.contextmanager
def checkpoint_policy(policy: CheckpointPolicy):
    token = _POLICY.set(policy)
    try:
        yield policy
    finally:
        _POLICY.reset(token)


_FORMAT = "memsep-checkpoint-1"


class Checkpoint:
    """A file holding one torch-serialised state: a training run's resumable state (the ``resume`` /
    ``on_checkpoint`` pair of theory's trainers) or a cached intermediate value. The file also records the
    fingerprint of the code that wrote it (``CheckpointPolicy``); a file that cannot be read is moved aside
    (``move_aside``) with a one-line notice and recomputed."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def for_run(cls, kind: str, key) -> "Checkpoint":
        """``$MEMSEP_CHECKPOINTS``/kind/<hash of key>.pt, where ``key`` identifies the run (include a
        ``fingerprint`` of any data it does not determine itself)."""
        return cls(checkpoint_root() / kind / f"{key_tag(key)}.pt")

    def load(self, map_location=None):
        """The stored state, or None if there is none yet (or none this run may use: ``CheckpointPolicy``)."""
        policy = current_policy()
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ValueError(f"could not read checkpoint {self.path}: {exc.strerror or exc}") from exc
        if policy.not_before is not None and st.st_mtime < policy.not_before:
            return None                      # --fresh: computed before this run
        try:
            stored = torch.load(self.path, map_location=map_location, weights_only=False)
        except Exception as exc:             # truncated, garbage, or from an incompatible version
            moved = move_aside(self.path, "unreadable")
            notice(f"checkpoint {self.path} is unreadable ({type(exc).__name__}: {str(exc)[:120]}): moved to "
                   f"{moved}; recomputing")
            return None
        if isinstance(stored, dict) and stored.get("format") == _FORMAT:
            code, state = stored.get("code"), stored.get("state")
        else:
            code, state = None, stored       # written before checkpoints recorded their code
        if policy.code is not None and code != policy.code:
            if not policy.reuse_stale:
                notice(f"checkpoint {self.path} was made by other code ({code or 'unrecorded'}, now "
                       f"{policy.code}): not resumed")
                return None
            notice(f"reusing checkpoint {self.path} made by other code ({code or 'unrecorded'}, now "
                   f"{policy.code}) because of --reuse-stale")
        return state

    def save(self, state) -> None:
        """Store ``state`` atomically (serialised at once, so the caller may go on mutating it)."""
        wrapped = {"format": _FORMAT, "code": current_policy().code, "state": state}
        atomic_write(self.path, lambda tmp: torch.save(wrapped, tmp))

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


@contextlib.contextmanager
def _reading(path: Path, what: str = ""):
    """Turn a failure to read or decode ``path`` (truncated, not the expected format) into a ValueError
    naming the file; errors that already name it pass through."""
    try:
        yield
    except Exception as exc:
        if str(path) in str(exc):
            raise
        raise ValueError(f"could not read {path}{' as ' + what if what else ''}: {type(exc).__name__}: "
                         f"{str(exc)[:200]}") from exc


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
    with _reading(path):
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
    with _reading(path), np.load(path) as f:
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
        with _reading(path), open(path, "rb") as fh:
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


def _where(folder: Path, explicit: bool = False) -> str:
    """The data folder and why it is that one (for messages)."""
    source = ("the data_dir setting" if explicit else
              "from $MEMSEP_DATA" if os.environ.get("MEMSEP_DATA") else "the default, ../shared/data")
    return f"{folder} ({source})"


def _training_source(data_dir_path=None) -> tuple[str, Path]:
    """('npz', path) or ('batches', folder) for the exact training images of the data folder."""
    folder = data_dir(data_dir_path)
    if (folder / TRAIN_5K).is_file():
        return "npz", folder / TRAIN_5K
    for batches in (folder / BATCHES_FOLDER, folder):
        if (batches / TRAIN_BATCHES[0]).is_file():
            return "batches", batches
    raise MissingDataError(
        f"the CIFAR-10 training images are not in {_where(folder, bool(data_dir_path))}: put {TRAIN_5K} or the standard "
        f"{BATCHES_FOLDER}/ folder there, or set MEMSEP_DATA to the folder that has them (a run's data_dir "
        "setting overrides both)")


def _npz_rows(path: Path, key: str = "x") -> int:
    """The number of rows of array ``key`` of an npz, read from its header only."""
    import zipfile

    with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as fh:
        version = np.lib.format.read_magic(fh)
        shape = (np.lib.format.read_array_header_1_0(fh) if version == (1, 0)
                 else np.lib.format.read_array_header_2_0(fh))[0]
    return int(shape[0])


def require_training_images(n: int, data_dir_path=None) -> None:
    """Raise MissingDataError unless the data folder holds at least ``n`` exact training images."""
    kind, path = _training_source(data_dir_path)
    if kind == "npz":
        try:
            have = _npz_rows(path)
        except (KeyError, OSError, ValueError) as exc:
            raise MissingDataError(f"{path} is not a readable CIFAR-10 npz (keys x, y): {exc}") from None
    else:
        have = 0
        for b in TRAIN_BATCHES:
            if (path / b).is_file():
                try:
                    with open(path / b, "rb") as fh:
                        have += min(SUBSET_PER_BATCH, len(pickle.load(fh, encoding="bytes")[b"data"]))
                except Exception as exc:
                    raise MissingDataError(f"{path / b} is not a readable CIFAR-10 batch: {exc}") from None
    if have < n:
        raise MissingDataError(f"{path} holds {have} training images; this run needs {n}")


def load_training_images(n: int | None = None, *, data_dir_path=None) -> torch.Tensor:
    """The first ``n`` of the 5,000 pixel-exact training images, uint8 NHWC: from ``cifar10_train_5k.npz``,
    or else from a standard ``cifar-10-batches-py`` folder (in the data folder, or the data folder itself),
    where they are the first 1,000 images of each of data_batch_1..5 (the same images in the same order).
    A folder with neither raises MissingDataError."""
    kind, path = _training_source(data_dir_path)
    if kind == "npz":
        return load_npz(path, n)[0]
    parts = [load_batches_py(path, (b,))[0][:SUBSET_PER_BATCH] for b in TRAIN_BATCHES if (path / b).is_file()]
    x = torch.cat(parts)
    return x[:_limit(x.shape[0], n)].contiguous()


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
    require_inception(path)
    with warnings.catch_warnings(), _reading(path, "the FID Inception network (TorchScript)"):
        warnings.simplefilter("ignore", DeprecationWarning)   # torch.jit.load is deprecated for torch.export
        try:
            network = torch.jit.load(str(path), map_location=device)
        except (RuntimeError, ValueError) as err:   # not a TorchScript archive, truncated, or another format
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ValueError(f"path {path} is not a loadable TorchScript file (the FID Inception network): "
                             f"{reason.split('. ')[0]}") from None
    return network.eval()


def require_inception(path: str | os.PathLike | None = None) -> None:
    """Raise MissingDataError unless the FID Inception network is at ``path`` (default: in the data folder)."""
    path = Path(path) if path is not None else data_dir() / INCEPTION
    if not path.is_file():
        raise MissingDataError(
            f"the FID Inception network {path.name} is not in {_where(path.parent)}: put the TorchScript file "
            f"(TF 2015-12-05 Inception-v3 up to pool3) there, or set MEMSEP_DATA to the folder that has it")


# --------------------------------------------------------------------------------------------- figures
FIGURE_DPI = 130
_STAMP_KEY = "memsep-stamp"


def save_figure(fig, path: str | os.PathLike, *, stamp: str | None = None, dpi: int = FIGURE_DPI) -> None:
    """Write ``fig`` as a PNG, atomically, with bytes that depend only on the figure: matplotlib's
    ``Software`` entry (its version) is left out, and ``stamp`` (e.g. a hash of the table it was drawn
    from) is stored as a text entry for ``figure_stamp``."""
    metadata = {"Software": None}
    if stamp is not None:
        metadata[_STAMP_KEY] = str(stamp)
    atomic_write(path, lambda p: fig.savefig(p, dpi=dpi, bbox_inches="tight", format="png", metadata=metadata))


def figure_stamp(path: str | os.PathLike) -> str | None:
    """The stamp ``save_figure`` stored in a PNG, or None (no file, not a PNG, no stamp)."""
    import struct
    import zlib

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind in (b"tEXt", b"zTXt", b"iTXt"):
            key, _, value = body.partition(b"\0")
            if key == _STAMP_KEY.encode():
                if kind == b"zTXt":
                    value = zlib.decompress(value[1:])
                elif kind == b"iTXt":
                    value = value[2:].split(b"\0", 2)[-1]
                return value.decode("latin-1")
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return None
