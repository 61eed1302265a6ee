"""The plug-in memorization check: how much of your own model's output copies its training set.

    python -m verify memorization --train T --generated G [--heldout H] [--true-law LAW] [--out DIR] ...

Each of T, G, H is a ``.npy`` / ``.npz`` / ``.pt`` array (N, ...) or a folder of PNG/JPEG images (a
``cifar-10-batches-py`` folder works too); a file with several arrays takes ``x`` or the one named as
``FILE.npz:KEY``. uint8 arrays (N, H, W, 3) or (N, 3, H, W) and image folders are
images; any other array is N vectors (flattened). A generated sample is *memorized* when its nearest
training point is much nearer than the second nearest, d1/d2 < 1/3 (theory.evaluation.memorization; exact
Euclidean distances, duplicates in the training set counted once, images as pixel vectors). Reported, each
with its 95% interval:

* the memorization fraction of G (Wilson interval);
* the null rate: held-out points H (data the model never saw) put through the same test as if generated,
  and the excess G - H (Newcombe interval), i.e. memorization beyond what fresh data scores;
* with ``--true-law`` (vectors only: a Gaussian mixture file with ``weights``, ``means``, ``covariances``, or
  ``paper:K=8,d=16,separation=2,seed=0`` for ``theory.paper_mixture``): the null rate of exact draws of
  that law and its excess, and the sample quality, mean log p(G) - mean log p(draws);
* improved precision and recall (k = 3) of G against T: on the vectors, or for images on the features of
  ``--features`` (``inception``: the offline FID Inception pool3 network, the default; ``pixels``;
  ``none``), and for images the FID of G against T (and of H against T: the floor at that sample size).

The generated and held-out sets are streamed against the training set in chunks of ``--chunk`` samples, so
memory stays at the training set (in float64) plus one chunk: 50,000 x 50,000 CIFAR-sized images need about
2.5 GB for the test (features for FID and precision/recall: 0.8 GB per 50,000 images). The numbers are
printed and saved as memorization.json and memorization.csv in ``--out`` (default: a fresh temporary
folder, printed). ``check(...)`` does the same from Python and returns the result as a dict.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import re
import sys
from fractions import Fraction
from pathlib import Path

from .config import SetupError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DEFAULT_CHUNK = 2048
PR_K = 3


class InputError(SetupError):
    """An input file that is missing, unreadable or of the wrong shape (a one-line message)."""


@dataclasses.dataclass
class SampleSet:
    data: object            # torch.Tensor: uint8 (N, H, W, 3) images or float64 (N, D) vectors
    kind: str               # "images" or "vectors"
    source: str             # as given

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def shape(self) -> tuple:
        return tuple(self.data.shape[1:])


# --------------------------------------------------------------------------------------------- loading
def _split_key(spec: str) -> tuple[Path, str | None]:
    m = re.fullmatch(r"(.*\.(?:npz|pt|pth)):([A-Za-z_][\w.]*)", spec)
    return (Path(m.group(1)), m.group(2)) if m else (Path(spec), None)


def _pick(arrays: dict, key: str | None, path: Path):
    if key is not None:
        if key not in arrays:
            raise InputError(f"{path} has no array {key!r} (it has {', '.join(sorted(arrays))})")
        return arrays[key]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if "x" in arrays:                            # the CIFAR npz convention (x, y, ...)
        return arrays["x"]
    raise InputError(f"{path} holds several arrays ({', '.join(sorted(arrays))}): choose one as {path}:KEY")


def _image_folder(folder: Path):
    import numpy as np
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}) and no arrays")
    images, first = [], None
    for path in files:
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as exc:
            raise InputError(f"cannot read the image {path}: {exc}") from None
        if first is None:
            first = arr.shape
        elif arr.shape != first:
            raise InputError(f"{path} is {arr.shape[1]}x{arr.shape[0]}, but {files[0].name} is "
                             f"{first[1]}x{first[0]}: every image of a set must have the same size")
        images.append(arr)
    return np.stack(images)


def load_samples(spec, what: str = "set") -> SampleSet:
    """A sample set from ``spec`` (module docstring): images or vectors, with the shape checks of the check."""
    import numpy as np
    import torch

    spec = str(spec)
    path, key = _split_key(spec)
    if not path.exists():
        raise InputError(f"--{what} {spec}: no such file or folder")
    try:
        if path.is_dir():
            if (path / "data_batch_1").is_file() or (path / "test_batch").is_file():
                from ._io import load_batches_py

                names = tuple(n for n in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
                              if (path / n).is_file())
                array = load_batches_py(path, names)[0].numpy()
            else:
                array = _image_folder(path)
        elif path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                if key is None and "jpeg" in f and "offsets" in f:
                    from ._io import load_jpeg_npz

                    array = load_jpeg_npz(path)[0].numpy()
                else:
                    array = _pick({k: f[k] for k in f.files}, key, path)
        elif path.suffix in (".pt", ".pth"):
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                obj = _pick({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}, key, path)
            if not isinstance(obj, torch.Tensor):
                raise InputError(f"{path} holds a {type(obj).__name__}, not a tensor")
            array = obj.detach().cpu().numpy()
        else:
            raise InputError(f"--{what} {spec}: expected a .npy, .npz or .pt file or a folder of images")
    except InputError:
        raise
    except Exception as exc:  # a damaged or foreign file: name it
        raise InputError(f"cannot read --{what} {spec}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    return _as_set(np.asarray(array), spec, what)


def _as_set(array, spec: str, what: str) -> SampleSet:
    import numpy as np
    import torch

    if array.ndim < 2 or array.shape[0] == 0:
        raise InputError(f"--{what} {spec}: expected N samples as an array (N, ...), got shape {array.shape}")
    if array.dtype == np.uint8 and array.ndim == 4 and 3 in (array.shape[-1], array.shape[1]):
        if array.shape[-1] != 3:
            array = array.transpose(0, 2, 3, 1)
        return SampleSet(torch.from_numpy(np.ascontiguousarray(array)), "images", spec)
    if array.dtype.kind not in "biuf":
        raise InputError(f"--{what} {spec}: expected numbers, got dtype {array.dtype}")
    flat = torch.from_numpy(np.ascontiguousarray(array.reshape(array.shape[0], -1), dtype=np.float64))
    if not bool(torch.isfinite(flat).all()):
        raise InputError(f"--{what} {spec}: contains NaN or infinite values")
    return SampleSet(flat, "vectors", spec)


def load_true_law(spec: str, dim: int):
    """A theory.GaussianMixture from a file (weights, means, covariances) or ``paper:K=..,d=..,...``."""
    import numpy as np
    import torch

    import theory

    if spec.startswith("paper:"):
        args = {}
        for part in filter(None, spec[len("paper:"):].split(",")):
            k, eq, v = part.partition("=")
            if not eq:
                raise InputError(f"--true-law {spec}: expected paper:K=..,d=..,separation=..,seed=..")
            args[k.strip()] = v.strip()
        try:
            K, d = int(args.pop("K")), int(args.pop("d"))
            kwargs = {k: (int(v) if k == "seed" else float(v)) for k, v in args.items()}
            law = theory.paper_mixture(K, d, **kwargs)
        except (KeyError, ValueError, TypeError) as exc:
            raise InputError(f"--true-law {spec}: {exc} (expected paper:K=8,d=16,separation=2,seed=0; optional "
                             "trace, anisotropy)") from None
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError(f"--true-law {spec}: no such file (or give paper:K=..,d=..)")
        try:
            if path.suffix == ".json":
                data = json.loads(path.read_text())
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as f:
                    data = {k: f[k] for k in f.files}
            else:
                data = torch.load(path, map_location="cpu", weights_only=True)
            law = theory.GaussianMixture(torch.as_tensor(np.asarray(data["weights"], dtype=np.float64)),
                                         torch.as_tensor(np.asarray(data["means"], dtype=np.float64)),
                                         torch.as_tensor(np.asarray(data["covariances"], dtype=np.float64)))
        except KeyError as exc:
            raise InputError(f"--true-law {spec}: needs arrays weights (K,), means (K, d), covariances (K, d, d); "
                             f"missing {exc}") from None
        except Exception as exc:
            raise InputError(f"--true-law {spec}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None
    if law.dim != dim:
        raise InputError(f"--true-law {spec} lives in d = {law.dim}, the samples in d = {dim}")
    return law


# --------------------------------------------------------------------------------------------- computing
def _count_memorized(queries, atoms, threshold: float, chunk: int, device: str, bar) -> int:
    """Memorized samples among ``queries`` against the distinct training points ``atoms`` (float64 on
    ``device``), chunk by chunk."""
    import torch

    from theory.evaluation.memorization import memorized

    count = 0
    for i in range(0, queries.shape[0], chunk):
        q = queries[i:i + chunk].reshape(min(chunk, queries.shape[0] - i), -1).to(device=device, dtype=torch.float64)
        count += int(memorized(q, atoms, threshold=threshold, distinct=False).sum())
        bar.update(q.shape[0])
    return count


def _features(images, network, chunk: int, device: str, bar):
    import torch

    from theory.evaluation.image_metrics import extract_features

    out = []
    for i in range(0, images.shape[0], chunk):
        batch = images[i:i + chunk]
        if network == "pixels":      # the pixels themselves, in the feature convention (x - 128) / 128
            out.append(extract_features(batch, lambda x: x.flatten(1), size=None, batch_size=chunk, device=device))
        else:
            out.append(extract_features(batch, network, batch_size=100 if device.startswith("cuda") else 25,
                                        device=device))
        bar.update(batch.shape[0])
    return torch.cat(out)


def _interval(iv) -> dict:
    return {"value": iv.estimate, "lo": iv.lo, "hi": iv.hi}


def check(train, generated, heldout=None, *, true_law: str | None = None, threshold: float = 1 / 3,
          level: float = 0.95, features: str = "auto", inception=None, chunk: int = DEFAULT_CHUNK,
          device: str = "cpu", seed: int = 0, null_samples: int | None = None, quiet: bool = True) -> dict:
    """The plug-in check (module docstring) from Python: ``train``, ``generated``, ``heldout`` are paths (or
    SampleSets); returns the result as a flat dict (the row of memorization.csv)."""
    import torch

    from theory.estimators.estimate import wilson_interval
    from theory.evaluation.image_metrics import fid, precision_recall
    from theory.evaluation.memorization import calibrated_from_counts, sample_quality

    from .progress import reporter

    def loaded(spec, what):
        return spec if isinstance(spec, SampleSet) or spec is None else load_samples(spec, what)

    tr = loaded(train, "train")
    images = tr.kind == "images"
    if features == "auto":
        features = "inception" if images else "vectors"
    if features == "inception" and images:       # checked before the other sets are read
        from ._io import MissingDataError, require_inception

        try:
            require_inception(inception)
        except MissingDataError as exc:
            raise InputError(f"{exc} (or pass --inception FILE, or --features none to skip FID and precision/"
                             "recall)") from None
    gen, held = loaded(generated, "generated"), loaded(heldout, "heldout")
    for name, s in (("generated", gen), ("heldout", held)):
        if s is None:
            continue
        if s.kind != tr.kind or s.shape != tr.shape:
            raise InputError(f"--{name} {s.source} holds {s.kind} of shape {s.shape}, the training set {tr.kind} "
                             f"of shape {tr.shape}: they must match")
    if not 0 < threshold <= 1:
        raise InputError(f"--threshold must be in (0, 1], got {threshold}")
    if chunk <= 0:
        raise InputError(f"--chunk must be positive, got {chunk}")
    if not images and features not in ("vectors", "none"):
        raise InputError(f"--features {features} applies to images; these are vectors")
    if images and features not in ("inception", "pixels", "none"):
        raise InputError(f"--features must be inception, pixels or none for images, got {features!r}")
    if true_law is not None and images:
        raise InputError("--true-law applies to vectors (a Gaussian mixture); for images give --heldout")
    network = None
    if features == "inception":
        from ._io import load_inception

        network = load_inception(inception, device=device)
    law = load_true_law(true_law, tr.shape[0]) if true_law is not None else None

    flat = tr.data.reshape(tr.n, -1)
    atoms = torch.unique(flat, dim=0)
    if atoms.shape[0] < 2:
        raise InputError(f"--train {tr.source}: needs at least two distinct training points")
    atoms = atoms.to(device=device, dtype=torch.float64)
    result = {"kind": tr.kind, "shape": "x".join(map(str, tr.shape)), "train": tr.source, "generated": gen.source,
              "heldout": held.source if held else "", "true_law": true_law or "", "n_train": tr.n,
              "n_train_distinct": int(atoms.shape[0]), "n_generated": gen.n, "n_heldout": held.n if held else 0,
              "threshold": threshold, "level": level, "features": features}

    def bar(name, total, unit="samples"):
        return reporter(f"memorization: {name}", total, quiet=quiet, unit=unit)

    def counted(s: SampleSet, label: str) -> int:
        b = bar(label, s.n)
        try:
            return _count_memorized(s.data, atoms, threshold, chunk, device, b)
        finally:
            b.close()

    k = counted(gen, "generated vs train")
    kh = counted(held, "held-out vs train") if held else None
    cal = calibrated_from_counts(k, gen.n, null_count=kh, n_null=held.n if held else None, level=level)
    result.update({"memorized": k, **{f"memorization{s}": v for s, v in zip(("", "_lo", "_hi"), cal.fraction[:3])}})
    if held:
        result.update({"null_heldout_count": kh,
                       **{f"null_heldout{s}": v for s, v in zip(("", "_lo", "_hi"), cal.null[:3])},
                       **{f"excess_heldout{s}": v for s, v in zip(("", "_lo", "_hi"), cal.excess[:3])}})
    if law is not None:
        m = null_samples or gen.n
        draws = law.sample(m, 0.0, torch.Generator().manual_seed(seed)).to(torch.float64)
        kq = counted(SampleSet(draws, "vectors", "true law"), "true-law draws vs train")
        cq = calibrated_from_counts(k, gen.n, null_count=kq, n_null=m, level=level)
        quality = sample_quality(gen.data, law, draws)
        result.update({"null_true_law_count": kq, "n_true_law": m,
                       **{f"null_true_law{s}": v for s, v in zip(("", "_lo", "_hi"), cq.null[:3])},
                       **{f"excess_true_law{s}": v for s, v in zip(("", "_lo", "_hi"), cq.excess[:3])},
                       "logp_gap": quality.gap.mean, "logp_gap_se": quality.gap.stderr})
    if features != "none":
        if images:
            net = "pixels" if features == "pixels" else network
            b = bar("features", tr.n + gen.n + (held.n if held else 0), "images")
            try:
                f_train = _features(tr.data, net, chunk, device, b)
                f_gen = _features(gen.data, net, chunk, device, b)
                f_held = _features(held.data, net, chunk, device, b) if held else None
            finally:
                b.close()
        else:
            f_train, f_gen, f_held = tr.data, gen.data, None
        pr = precision_recall(f_train, f_gen, k=PR_K)
        for name, est in (("precision", pr.precision), ("recall", pr.recall)):
            iv = wilson_interval(int(round(est.mean * est.n)), est.n, level)
            result.update({name: iv.estimate, f"{name}_lo": iv.lo, f"{name}_hi": iv.hi})
        result["pr_k"] = PR_K
        if images:
            result["fid"] = fid(f_train, f_gen)
            result["fid_heldout"] = fid(f_train, f_held) if f_held is not None and f_held.shape[0] > 1 else math.nan
    return result


# --------------------------------------------------------------------------------------------- output
def _iv(r: dict, key: str, digits: int = 3) -> str:
    return f"{r[key]:.{digits}f} [{r[key + '_lo']:.{digits}f}, {r[key + '_hi']:.{digits}f}]"


def summary(r: dict) -> str:
    """The printed summary of a result."""
    pct = f"{100 * r['level']:g}%"
    what = (f"{r['n_generated']} generated {r['kind']} ({r['shape']}) against {r['n_train']} training "
            f"{r['kind']} ({r['n_train_distinct']} distinct); memorized iff d1/d2 < {r['threshold']:.4g}")
    lines = [f"memorization check: {what}",
             f"  memorization fraction     {_iv(r, 'memorization')}  ({r['memorized']} of {r['n_generated']}; "
             f"Wilson {pct})"]
    if r.get("n_heldout"):
        lines += [f"  held-out null rate        {_iv(r, 'null_heldout')}  ({r['null_heldout_count']} of "
                  f"{r['n_heldout']} held-out points tested as if generated)",
                  f"  excess over held-out      {_iv(r, 'excess_heldout')}  (Newcombe {pct})"]
    if "null_true_law" in r:
        lines += [f"  true-law null rate        {_iv(r, 'null_true_law')}  ({r['null_true_law_count']} of "
                  f"{r['n_true_law']} exact draws of the true law)",
                  f"  excess over true law      {_iv(r, 'excess_true_law')}  (Newcombe {pct})",
                  f"  sample quality            mean log p(generated) - mean log p(draws) = {r['logp_gap']:.3f} "
                  f"[{r['logp_gap'] - 1.96 * r['logp_gap_se']:.3f}, {r['logp_gap'] + 1.96 * r['logp_gap_se']:.3f}]"
                  " (normal 95%; ~0: fits the law, << 0: underfit)"]
    if "precision" in r:
        space = {"inception": "Inception pool3 features", "pixels": "pixels", "vectors": "the vectors"}[r["features"]]
        lines += [f"  precision (k = {r['pr_k']})         {_iv(r, 'precision')}  (generated inside the training "
                  f"manifold; on {space}; Wilson {pct})",
                  f"  recall (k = {r['pr_k']})            {_iv(r, 'recall')}  (training points inside the generated "
                  "manifold)"]
    if "fid" in r:
        floor = (f"; held-out vs training set: {r['fid_heldout']:.2f}, the floor at this sample size"
                 if r.get("n_heldout") and math.isfinite(r["fid_heldout"]) else "")
        lines.append(f"  FID vs the training set   {r['fid']:.2f}  (on {r['features']} features{floor})")
    return "\n".join(lines)


def save(result: dict, folder: Path) -> tuple[Path, Path]:
    from ._io import atomic_write

    folder.mkdir(parents=True, exist_ok=True)
    js, cs = folder / "memorization.json", folder / "memorization.csv"
    atomic_write(js, lambda p: Path(p).write_text(json.dumps(result, indent=2) + "\n"))

    def write_csv(p):
        with open(p, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(result))
            w.writeheader()
            w.writerow(result)

    atomic_write(cs, write_csv)
    return js, cs


# --------------------------------------------------------------------------------------------- command line
def _fraction(text: str) -> float:
    try:
        return float(Fraction(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number such as 0.333 or 1/3, got {text!r}") from None


def _parser():
    from .preflight import OneLineParser

    p = OneLineParser(prog="python -m verify memorization", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", required=True, help="the training set (array file or image folder)")
    p.add_argument("--generated", required=True, help="the model's samples (array file or image folder)")
    p.add_argument("--heldout", default=None, help="held-out data the model never saw (the null rate)")
    p.add_argument("--true-law", default=None, metavar="LAW",
                   help="vectors only: a Gaussian mixture file (weights, means, covariances: .npz/.pt/.json) or "
                        "paper:K=8,d=16,separation=2,seed=0")
    p.add_argument("--null-samples", type=int, default=None, help="draws of the true law (default: as many as "
                                                                  "generated)")
    p.add_argument("--threshold", type=_fraction, default=1 / 3, help="memorized iff d1/d2 < threshold (1/3)")
    p.add_argument("--level", type=float, default=0.95, help="confidence level of the intervals (0.95)")
    p.add_argument("--features", default="auto", choices=("auto", "inception", "pixels", "none"),
                   help="images: features for FID and precision/recall (auto = inception); vectors: the vectors")
    p.add_argument("--inception", default=None, metavar="FILE",
                   help="the FID Inception TorchScript file (default: fid_inception_2015-12-05_pool3.pt in "
                        "$MEMSEP_DATA or ../shared/data)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="samples per chunk (memory)")
    p.add_argument("--seed", type=int, default=0, help="seed of the true-law draws")
    p.add_argument("--out", default=None, help="folder for memorization.json and .csv (default: a fresh "
                                               "temporary folder)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def main(argv: list[str]) -> int:
    """``python -m verify memorization ...``; errors propagate to verify.__main__.main (one line, status 2)."""
    from . import preflight

    args = _parser().parse_args(argv)
    for what in ("train", "generated", "heldout"):
        spec = getattr(args, what)
        if spec is not None and not _split_key(spec)[0].exists():
            raise InputError(f"--{what} {spec}: no such file or folder")
    if args.true_law and not args.true_law.startswith("paper:") and not Path(args.true_law).is_file():
        raise InputError(f"--true-law {args.true_law}: no such file (or give paper:K=..,d=..)")
    if args.inception and not Path(args.inception).is_file():
        raise InputError(f"--inception {args.inception}: no such file")
    device = preflight.check_device(args.device)
    out = Path(args.out) if args.out else preflight.fresh_temporary_folder("memsep-memorization-")
    preflight.check_writable(out)
    result = check(args.train, args.generated, args.heldout, true_law=args.true_law, threshold=args.threshold,
                   level=args.level, features=args.features, inception=args.inception, chunk=args.chunk,
                   device=device, seed=args.seed, null_samples=args.null_samples, quiet=False)
    print(summary(result))
    js, cs = save(result, out)
    print(f"saved: {js} and {cs}")
    return 0
