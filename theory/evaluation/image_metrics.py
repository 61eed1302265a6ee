"""Sample-quality metrics on features of a fixed network: FID and improved precision / recall.

Features. ``extract_features`` feeds uint8 NHWC images to any feature network in batches: bilinear resize
to ``size`` x ``size`` (299 for Inception; ``None`` keeps the size), then the TF Inception convention
(x - 128) / 128 in (-1, 1), NCHW float32; output (N, F) in float64. The conventional network is the TF
2015-12-05 FID Inception-v3 up to pool3 (F = 2048; ``verify._io.load_inception`` loads the shared
TorchScript file); the functions take any ``nn.Module`` / callable, so tests use a small stand-in.

FID (Heusel et al. 2017) between feature sets with means mu_1, mu_2 and covariances C_1, C_2:

    FID = |mu_1 - mu_2|^2 + tr(C_1 + C_2 - 2 (C_1 C_2)^{1/2}),

computed in float64 (we do not use torchmetrics: its FID wants its own input conventions and a dependency;
the formula is a few lines and is tested against a closed form). From covariances, ``frechet_distance``
uses ``scipy.linalg.sqrtm``. From features, ``fid`` uses the factors instead: with a = (f_1 - mu_1) /
sqrt(N_1 - 1) (so C_1 = a^T a) and b likewise, the nonzero eigenvalues of C_1 C_2 = a^T a b^T b are those
of (a b^T)(a b^T)^T, so

    tr (C_1 C_2)^{1/2} = || a b^T ||_*     (nuclear norm: the sum of singular values),

exact, and with a, b first reduced to R factors of their QR (R^T R = a^T a) when N > F, an SVD of at
most min(N_1, F) x min(N_2, F): milliseconds for 100 samples of 2048 Inception features where sqrtm of a
2048 x 2048 product takes ~15 s on one core and loses accuracy on the singular products of N < F.

Improved precision and recall (Kynkaanniemi et al. 2019): each set's manifold is the union of balls
around its points with radius the distance to the point's k-th nearest neighbour in the same set
(k = 3, self excluded; theory.evaluation.neighbours). precision = fraction of generated points inside the real
manifold; recall = fraction of real points inside the generated manifold. Ball membership is tested
exactly against every centre by chunked matrix products (not only the k nearest).

Uncertainty (``quality_bootstrap``). FID and precision / recall of N samples are random through the samples
and through the reference set. A bootstrap redraws both: the reference rows with replacement and the
generated rows with replacement within strata (e.g. the seed, i.e. the trained model, that produced each
row), with the *same* indices for every generated set given together (paired: row i of each set came from
the same initial noise). Use the spread of the draws, not their percentiles: a resample repeats about 37%
of its rows, and repeated feature vectors raise FID (the covariance loses rank; +3 to +26 FID units were
measured at N ~ 128 on Inception features), so the percentile interval can miss the estimate altogether.
The interval is the estimate -+ z sd(draws); for a difference of two paired sets, the estimate's
difference -+ z sd(draw differences), where the duplication shift nearly cancels.
"""

from __future__ import annotations

import warnings
from typing import Callable, NamedTuple

import numpy as np
import scipy.linalg
import torch

from .._validate import (as_tensor, check_callable, check_finite, check_output, check_positive_int,
                         check_psd, check_result, to_tensor)
from ..estimators.estimate import Estimate, binomial_estimate
from .neighbours import nearest_neighbours

FeatureNet = Callable[[torch.Tensor], torch.Tensor]
INCEPTION_SIZE = 299


@torch.no_grad()
def extract_features(images: torch.Tensor, network: FeatureNet, *, size: int | None = INCEPTION_SIZE,
                     batch_size: int = 50, device=None) -> torch.Tensor:
    """Features (N, F) float64 of uint8 images (N, H, W, 3) (a tensor or a numpy array; N >= 1): resize to
    ``size`` (bilinear), scale (x - 128) / 128, run ``network`` batch by batch on ``device`` (default: the
    images' device). The network must return finite values with one row per image (checked per batch)."""
    if not isinstance(images, torch.Tensor):
        images = to_tensor(images, "images")
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"images is empty (shape {tuple(images.shape)}): need at least one image")
    check_callable(network, "network")
    batch_size = check_positive_int(batch_size, "batch_size")
    if size is not None:
        size = check_positive_int(size, "size")
    device = device or images.device
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device).permute(0, 3, 1, 2).float()
        if size is not None and x.shape[-1] != size:
            x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        f = network((x - 128.0) / 128.0)
        if not isinstance(f, torch.Tensor) or f.ndim < 1 or f.shape[0] != x.shape[0]:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"network returned {shape} for images {i}..{i + x.shape[0] - 1}, expected one row of "
                             f"features per image ({x.shape[0]}, ...)")
        f = f.reshape(f.shape[0], -1)
        check_output(f, "network", f.shape, where=f"for images {i}..{i + x.shape[0] - 1}")
        out.append(f.double().cpu())
    return torch.cat(out)


def _numpy(value, name: str, ndim: int) -> np.ndarray:
    """``value`` (a numpy array, tensor, list or number) as a finite float64 array of at least ``ndim``
    dimensions (np.atleast_1d / 2d)."""
    x = as_tensor(value, name, dtype=torch.float64)
    check_finite(x, name)
    arr = x.detach().cpu().numpy()
    return np.atleast_1d(arr) if ndim == 1 else np.atleast_2d(arr)


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(C1 + C2 - 2 sqrtm(C1 C2)), float64. A singular product gets eps I added to
    both covariances (as pytorch-fid does); a negligible imaginary part of sqrtm is dropped. Means (F,) and
    covariances (F, F): arrays, tensors or lists, finite; covariances symmetric positive semi-definite
    (``theory._validate.check_psd``: singular ones, of N <= F samples, are fine)."""
    mu1, mu2 = _numpy(mu1, "mu1", 1), _numpy(mu2, "mu2", 1)
    cov1, cov2 = _numpy(cov1, "cov1", 2), _numpy(cov2, "cov2", 2)
    F = mu1.size
    for value, name, shape in ((mu1, "mu1", (F,)), (mu2, "mu2", (F,)), (cov1, "cov1", (F, F)), (cov2, "cov2", (F, F))):
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (mu1 has F = {F} entries), got {value.shape}")
    check_psd(torch.from_numpy(cov1), "cov1")
    check_psd(torch.from_numpy(cov2), "cov2")
    with warnings.catch_warnings():      # singular when N <= F (few samples): expected, FID is then biased
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():
            eps = 1e-6 * np.eye(cov1.shape[0])
            covmean = scipy.linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))
    if not np.isfinite(value):
        raise ValueError(f"frechet_distance is not finite ({value}): cov1 and cov2 overflow float64")
    return value


def _features(features, name: str, min_rows: int = 1) -> torch.Tensor:
    """A feature set (N, F): a tensor, array or list, finite, N >= ``min_rows``, F >= 1."""
    f = check_finite(as_tensor(features, name), name)
    if f.ndim != 2 or f.shape[0] < min_rows or f.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, F) with N >= {min_rows} and F >= 1, got {tuple(f.shape)}")
    return f


def _covariance_factor(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (F,) and a factor g with g^T g the unbiased covariance: g = (f - mu) / sqrt(N - 1), replaced
    by the R of its QR (F x F) when N > F. Float64."""
    f = features.double().cpu()
    mu = f.mean(0)
    g = (f - mu) / (f.shape[0] - 1) ** 0.5
    return mu, (torch.linalg.qr(g, mode="r").R if g.shape[0] > g.shape[1] else g)


def fid(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Frechet distance between two feature sets (N_a, F), (N_b, F), by factors (module docstring):
    |mu_a - mu_b|^2 + |a|_F^2 + |b|_F^2 - 2 |a b^T|_*. Each set: a tensor, array or list (N >= 2, F),
    finite, of one F."""
    fa, fb = _features(features_a, "features_a", 2), _features(features_b, "features_b", 2)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"features_a and features_b must have the same number of features F, got "
                         f"{tuple(fa.shape)} and {tuple(fb.shape)}")
    (mu_a, a), (mu_b, b) = _covariance_factor(fa), _covariance_factor(fb)
    trace_sqrt = torch.linalg.svdvals(a @ b.T).sum()
    value = (mu_a - mu_b).pow(2).sum() + a.pow(2).sum() + b.pow(2).sum() - 2 * trace_sqrt
    return float(check_result(value, "fid"))


class QualityDraws(NamedTuple):
    """Bootstrap draws (R,) float64 of one generated set's FID, precision and recall (``quality_bootstrap``)."""

    fid: torch.Tensor
    precision: torch.Tensor
    recall: torch.Tensor


def stratified_resample(strata: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices (N,) drawn with replacement within each stratum: row i is replaced by a uniform draw among
    the rows sharing its stratum label (so every stratum keeps its size)."""
    if strata.ndim != 1 or strata.numel() == 0:
        raise ValueError(f"strata must be a non-empty 1-D tensor, got shape {tuple(strata.shape)}")
    out = torch.empty(strata.numel(), dtype=torch.long)
    for label in torch.unique(strata):
        rows = (strata == label).nonzero().squeeze(1)
        out[rows] = rows[torch.randint(rows.numel(), (rows.numel(),), generator=generator)]
    return out


def quality_bootstrap(reference: torch.Tensor, generated: dict, *, resamples: int, generator: torch.Generator,
                      strata: torch.Tensor | None = None, k: int = 3) -> dict:
    """Bootstrap draws of FID and improved precision / recall (module docstring) of every generated set of
    ``generated`` (name -> (N, F) features, all of one length N, paired row by row) against ``reference``
    (N_ref, F). Each of ``resamples`` draws redraws the reference rows with replacement and the generated
    rows with replacement within ``strata`` ((N,) labels; None: one stratum), the same generated indices for
    every set. Returns name -> ``QualityDraws``. The draws' spread estimates the sampling error of the
    values on the original data; their level is shifted by the repeated rows (use the spread)."""
    if not generated:
        raise ValueError("generated must name at least one feature set")
    if resamples < 2:
        raise ValueError(f"resamples must be at least 2, got {resamples}")
    sizes = {name: tuple(f.shape) for name, f in generated.items()}
    n = next(iter(sizes.values()))[0]
    if any(s[0] != n or len(s) != 2 or s[1] != reference.shape[1] for s in sizes.values()) or reference.ndim != 2:
        raise ValueError(f"generated sets must share one shape (N, F) with F that of reference "
                         f"{tuple(reference.shape)}, got {sizes}")
    strata = torch.zeros(n, dtype=torch.long) if strata is None else torch.as_tensor(strata).reshape(-1)
    if strata.numel() != n:
        raise ValueError(f"strata must have one label per generated row ({n}), got {strata.numel()}")
    draws = {name: ([], [], []) for name in generated}
    for _ in range(resamples):
        ref = reference[torch.randint(reference.shape[0], (reference.shape[0],), generator=generator)]
        idx = stratified_resample(strata, generator)
        ref_radii = manifold_radii(ref, k)
        for name, feats in generated.items():
            g = feats[idx]
            draws[name][0].append(fid(ref, g))
            draws[name][1].append(float(inside_manifold(g, ref, ref_radii).double().mean()))
            draws[name][2].append(float(inside_manifold(ref, g, manifold_radii(g, k)).double().mean()))
    return {name: QualityDraws(*(torch.tensor(v, dtype=torch.float64) for v in d)) for name, d in draws.items()}


def manifold_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """Radius of each point's ball: distance to its k-th nearest neighbour in the same set (self excluded);
    ``features`` (N, F) with N > k."""
    f = _features(features, "features").double()
    dist, _ = nearest_neighbours(f, f, k=k, exclude_self=True)
    return dist[:, -1]


def inside_manifold(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, *,
                    chunk: int = 1024) -> torch.Tensor:
    """Boolean (B,): is |p - c_j| <= r_j for some centre j (exact over all centres; chunked, float64).
    ``points`` (B, F), ``centres`` (n, F), ``radii`` (n,) >= 0: tensors, arrays or lists, finite."""
    p, c = _features(points, "points").double(), _features(centres, "centres").double()
    if p.shape[1] != c.shape[1]:
        raise ValueError(f"points and centres must have the same number of features F, got {tuple(p.shape)} and "
                         f"{tuple(c.shape)}")
    radii = check_finite(as_tensor(radii, "radii", dtype=torch.float64, device=c.device), "radii")
    if radii.shape != (c.shape[0],):
        raise ValueError(f"radii must have shape ({c.shape[0]},) (one per centre), got {tuple(radii.shape)}")
    if bool((radii < 0).any()):
        raise ValueError(f"radii must be >= 0, got min {float(radii.min())}")
    chunk = check_positive_int(chunk, "chunk")
    shift = c.mean(0)
    p, c = p - shift, c - shift
    c_sq, r_sq = c.pow(2).sum(1), radii.double().pow(2)
    out = torch.zeros(p.shape[0], dtype=torch.bool)
    for i in range(0, p.shape[0], chunk):
        q = p[i:i + chunk]
        d2 = q.pow(2).sum(1, keepdim=True) + c_sq[None] - 2.0 * q @ c.T
        out[i:i + chunk] = (d2 <= r_sq[None] * (1 + 1e-9) + 1e-12).any(1).cpu()
    return out


class PrecisionRecall(NamedTuple):
    precision: Estimate
    recall: Estimate


def precision_recall(real: torch.Tensor, generated: torch.Tensor, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall (module docstring), each a fraction with its binomial standard error
    (conditional on the two manifolds)."""
    real, generated = _features(real, "real"), _features(generated, "generated")
    if real.shape[1] != generated.shape[1]:
        raise ValueError(f"real {tuple(real.shape)} and generated {tuple(generated.shape)} must be (N, F) of one F")
    prec = inside_manifold(generated, real, manifold_radii(real, k))
    rec = inside_manifold(real, generated, manifold_radii(generated, k))
    return PrecisionRecall(binomial_estimate(int(prec.sum()), prec.numel()),
                           binomial_estimate(int(rec.sum()), rec.numel()))
