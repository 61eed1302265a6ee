"""Mitigating memorization by pruning attention heads (the paper's Algorithm 1 and its Table, Sec. 6).

A pixel-space DiT (theory.dit) is trained on the first n exact CIFAR-10 training images (scaled to
[-1, 1]) with the OU forward process in the DDPM time change (theory.image_training). Then, for each seed:

* Algorithm 1: every attention head gets its ablation importance (increase of the denoising loss on
  the training images when the head is masked; t from Beta(0.8, 2) on the normalised time axis, common
  random numbers; theory.head_pruning); the ``prune_ratio`` least important heads are masked and the
  model is fine-tuned ``finetune_steps`` steps;
* random pruning of the same number of heads, with the same fine-tuning;
* the original (EMA) model, unpruned and not fine-tuned.

All three sample from the same initial noise (probability-flow ODE, then one Tweedie denoising step at
t0), quantised to uint8, and are scored by the memorization fraction (d1/d2 < 1/3 against the training
images, pixel space, exact), improved precision / recall (k = 3) and FID on features of
``feature_network`` against ``reference`` (see the protocol columns); ``fid_real`` is the FID of as many
held-out real images (the exact training images after the first max(n_train, n_reference)), the floor
that FID from this few samples can reach. One row per (variant, seed); the
figure and the printed summary aggregate mean and std over seeds. The original model is trained once
(seed ``train_seed``) and shared by the seeds; seeds vary the importance draws, the random pruning, the
fine-tuning batches and the samples. Checkpoints (resumable) go to ``$MEMSEP_CHECKPOINTS`` (default
``checkpoints/`` at the repository root, git-ignored); the data folder is ``data_dir`` or
``$MEMSEP_DATA`` (default ../shared/data).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import torch

import theory
from verify import _io as cifar
from theory.networks.dit import DiT, DiTConfig, dit_parameter_count
from theory.networks.heads import head_importance, prune_mask, random_prune_mask, set_head_mask
from theory.evaluation.image_metrics import extract_features, fid, load_inception, precision_recall
from theory.training.image import TrainConfig, train_denoiser

NAME = "cifar_pruning"
CLAIM = ("Pruning the attention heads least important at small t (Algorithm 1) lowers a CIFAR-10 DiT's "
         "memorization at similar quality, unlike random pruning (Sec. 6, Table)")
ORDER = 60

# The paper's table (mean over 5 runs), drawn beside the measurement as the claim being checked.
PAPER = {"original": {"precision": 0.39, "recall": 0.08, "memorization": 0.7382, "fid": 15.47},
         "pruned": {"precision": 0.33, "recall": 0.12, "memorization": 0.6858, "fid": 15.07},
         "random": {"precision": 0.30, "recall": 0.09, "memorization": 0.6687, "fid": 17.14}}
VARIANTS = ("original", "pruned", "random")
METRICS = ("precision", "recall", "memorization", "fid")


@dataclasses.dataclass(frozen=True)
class Config:
    n_train: int                 # first n of the 5,000 exact training images
    patch: int
    width: int
    depth: int
    heads: int
    freq_dim: int
    train_steps: int
    batch_size: int
    lr: float
    ema_decay: float
    train_chunk_steps: int       # at most this many training steps per call (resume by rerunning)
    importance_draws: int        # batches for the head scores
    importance_batch: int
    importance_beta: tuple       # Beta(a, b) on the normalised time axis
    prune_ratio: float
    prune_which: str             # "least" (Algorithm 1) or "most" (ablation)
    finetune_steps: int
    finetune_lr: float
    finetune_ema_decay: float
    n_samples: int
    sampler: str                 # "ode" (probability flow, Heun) or "sde"
    sampler_steps: int
    sample_batch: int
    feature_network: str         # "inception" (FID Inception pool3) or "pooled_pixels" (4x4-pooled stand-in)
    reference: str               # "train_exact": the first n_reference exact training images
    n_reference: int
    precondition: str = "gaussian"   # theory.dit: "gaussian" (EDM-style skip; a briefly trained plain DiT's
                                     # eps errors at t ~ T blow up in the sampler) or "none" (the plain DiT)
    data_std: float = 0.5
    t0: float = 1e-3
    T: float = 10.0
    train_seed: int = 0
    seeds: tuple = (0,)
    data_dir: str = ""           # empty: $MEMSEP_DATA or ../shared/data
    n_figure: int = 8            # samples per variant kept for the figure
    cpu_threads: int = 1         # torch threads on a CPU device during a point (0: leave as is); one thread
                                 # avoids the oversubscription that slows a shared 2-core machine ~30x


PRESETS = {
    "smoke": Config(n_train=32, patch=8, width=32, depth=2, heads=2, freq_dim=32, train_steps=30,
                    batch_size=16, lr=2e-3, ema_decay=0.9, train_chunk_steps=10_000, importance_draws=1,
                    importance_batch=8, importance_beta=(0.8, 2.0), prune_ratio=0.25, prune_which="least",
                    finetune_steps=5, finetune_lr=1e-3, finetune_ema_decay=0.5, n_samples=16, sampler="ode",
                    sampler_steps=4, sample_batch=16, feature_network="pooled_pixels",
                    reference="train_exact", n_reference=32, seeds=(0,), n_figure=4),
    # 16 images, 6,000 steps: the smallest setting in which the original model starts to memorize on a CPU
    # (1,200 steps on 64 images gave blurry colour layouts, FID ~365, no memorization). 64 samples against
    # 64 exact training-set images for FID (the first 16 are the training set). 32 ODE steps: the sampler
    # shrinks a Gaussian by 1.5% (7.6% at 16 steps; tests/test_dit.py).
    "cpu": Config(n_train=16, patch=4, width=64, depth=4, heads=4, freq_dim=64, train_steps=6000,
                  batch_size=32, lr=2e-3, ema_decay=0.99, train_chunk_steps=10_000, importance_draws=2,
                  importance_batch=16, importance_beta=(0.8, 2.0), prune_ratio=0.2, prune_which="least",
                  finetune_steps=60, finetune_lr=4e-4, finetune_ema_decay=0.9, n_samples=64, sampler="ode",
                  sampler_steps=32, sample_batch=64, feature_network="inception", reference="train_exact",
                  n_reference=64, seeds=(0, 1), cpu_threads=2),
    # DiT-S/2 (33M parameters, 72 heads) on all 5,000 images, long enough to memorize strongly; about
    # 4-10 GPU-hours at 200k steps, trained in resumable chunks of 5k steps (minutes each; rerun to continue).
    # A plain DiT (no preconditioning), as DiTs are usually trained at this length. Still to run on a GPU.
    "paper": Config(n_train=5000, patch=2, width=384, depth=12, heads=6, freq_dim=256, train_steps=200_000,
                    batch_size=128, lr=1e-4, ema_decay=0.9999, train_chunk_steps=5_000, importance_draws=64,
                    importance_batch=128, importance_beta=(0.8, 2.0), prune_ratio=0.2, prune_which="least",
                    finetune_steps=5000, finetune_lr=5e-5, finetune_ema_decay=0.999, n_samples=10_000,
                    sampler="ode", sampler_steps=100, sample_batch=500, feature_network="inception",
                    reference="train_exact", n_reference=5000, precondition="none", seeds=(0, 1, 2, 3, 4)),
}
ESTIMATED_RUNTIME = {"smoke": 15, "cpu": 520, "paper": 12 * 3600}  # cpu: 516 s from scratch on 2 cores


def grid(cfg: Config) -> list[dict]:
    return [{"seed": s} for s in cfg.seeds]


def dit_config(cfg: Config) -> DiTConfig:
    return DiTConfig(patch=cfg.patch, width=cfg.width, depth=cfg.depth, heads=cfg.heads, freq_dim=cfg.freq_dim,
                     precondition=cfg.precondition, data_std=cfg.data_std)


def checkpoint_dir(cfg: Config) -> Path:
    """``$MEMSEP_CHECKPOINTS``/cifar_pruning/<hash of what the original model depends on>."""
    root = Path(os.environ.get("MEMSEP_CHECKPOINTS") or (cifar.REPO_ROOT / "checkpoints"))
    keys = ("n_train", "patch", "width", "depth", "heads", "freq_dim", "train_steps", "batch_size", "lr",
            "ema_decay", "t0", "T", "train_seed", "precondition", "data_std")
    tag = hashlib.sha1(json.dumps({k: getattr(cfg, k) for k in keys}).encode()).hexdigest()[:10]
    return root / NAME / tag


def _pooled_pixels(x: torch.Tensor) -> torch.Tensor:
    """Stand-in feature network for smoke runs: 4x4 average-pooled pixels (48 features at 32x32)."""
    return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def _features(images: torch.Tensor, cfg: Config, device: str) -> torch.Tensor:
    if cfg.feature_network == "pooled_pixels":
        return extract_features(images, _pooled_pixels, size=None, device=device)
    if cfg.feature_network == "inception":
        net = load_inception(cifar.data_dir(cfg.data_dir) / cifar.INCEPTION, device=device)
        return extract_features(images, net, batch_size=100 if device.startswith("cuda") else 16, device=device)
    raise ValueError(f"feature_network must be 'inception' or 'pooled_pixels', got {cfg.feature_network!r}")


def _cached(path: Path, compute):
    """torch.load(path) if it exists, else compute(), saved atomically to path."""
    if path.exists():
        return torch.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(value, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    return value


def _reference_features(cfg: Config, device: str) -> torch.Tensor:
    if cfg.reference != "train_exact":
        raise ValueError(f"reference must be 'train_exact', got {cfg.reference!r}")
    path = checkpoint_dir(cfg).parent / f"reference_{cfg.reference}_{cfg.n_reference}_{cfg.feature_network}.pt"
    return _cached(path, lambda: _features(cifar.load_training_images(cfg.n_reference, data_dir_path=cfg.data_dir),
                                           cfg, device))


def _real_fid(cfg: Config, ref: torch.Tensor, device: str) -> float:
    """FID of n_samples held-out real images (exact training images first..first + n_samples, first =
    max(n_train, n_reference): in neither the training nor the reference set) against ``ref``: the value a
    perfect generator would score at this sample size. NaN if the data folder has too few images."""
    first = max(cfg.n_train, cfg.n_reference)
    path = checkpoint_dir(cfg).parent / (f"real_fid_{cfg.reference}_{cfg.n_reference}_{first}_{cfg.n_samples}_"
                                         f"{cfg.feature_network}.pt")

    def compute():
        images = cifar.load_training_images(data_dir_path=cfg.data_dir)[first:first + cfg.n_samples]
        return torch.tensor(fid(ref, _features(images, cfg, device)) if len(images) == cfg.n_samples else math.nan)

    return float(_cached(path, compute))


def original_model(cfg: Config, images: torch.Tensor, device: str) -> tuple[DiT, dict]:
    """Train (or resume, or load) the original model; returns its EMA weights. Raises if training needs
    more than ``train_chunk_steps`` further steps (rerun to continue from the checkpoint)."""
    model = DiT(dit_config(cfg), generator=torch.Generator().manual_seed(cfg.train_seed)).to(device)
    tcfg = TrainConfig(steps=cfg.train_steps, batch_size=cfg.batch_size, lr=cfg.lr, ema_decay=cfg.ema_decay,
                       t0=cfg.t0, T=cfg.T, warmup=min(100, cfg.train_steps // 10 + 1),
                       checkpoint_every=max(1, min(1000, cfg.train_steps)))
    ema, info = train_denoiser(model, images, tcfg, seed=cfg.train_seed,
                               checkpoint=checkpoint_dir(cfg) / "original.pt",
                               max_steps_this_call=cfg.train_chunk_steps)
    if info["step"] < cfg.train_steps:
        raise RuntimeError(f"original model trained to step {info['step']} of {cfg.train_steps}; rerun to resume")
    return ema, info


def _sample(model: DiT, cfg: Config, seed: int, device: str) -> torch.Tensor:
    """n_samples images (uint8 NHWC): PF ODE or reverse SDE from T to t0, then the Tweedie step
    x0 = (x + sigma_t0^2 s(x, t0)) / alpha_t0. The initial noise depends on the seed only (common
    random numbers across variants)."""
    gen = torch.Generator().manual_seed(40_000 + seed)
    out = []
    for i in range(0, cfg.n_samples, cfg.sample_batch):
        m = min(cfg.sample_batch, cfg.n_samples - i)
        x_T = theory.prior_sample((m, 3, 32, 32), generator=gen, dtype=torch.float32).to(device)
        if cfg.sampler == "ode":
            x = theory.probability_flow(model.score, x_T, T=cfg.T, t0=cfg.t0, steps=cfg.sampler_steps)
        elif cfg.sampler == "sde":
            g = torch.Generator(device=device).manual_seed(50_000 + 1000 * seed + i)
            x = theory.reverse_sde(model.score, x_T, T=cfg.T, t0=cfg.t0, steps=cfg.sampler_steps, generator=g)
        else:
            raise ValueError(f"sampler must be 'ode' or 'sde', got {cfg.sampler!r}")
        with torch.no_grad():
            t0 = torch.full((m,), cfg.t0, device=device)
            x0 = (x + float(theory.sigma2(cfg.t0)) * model.score(x, t0)) / float(theory.alpha(cfg.t0))
        out.append(cifar.to_uint8(x0.cpu()))
    return torch.cat(out)


def _heads_string(mask: torch.Tensor) -> str:
    """Masked heads as 'L<layer>H<head>' words ('none' if none), e.g. 'L0H3 L2H1'."""
    return " ".join(f"L{l}H{h}" for l, h in (mask == 0).nonzero().tolist()) or "none"


def run_point(point: dict, cfg: Config, device: str, out_dir=None) -> list[dict]:
    threads = torch.get_num_threads()
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _run_point(point["seed"], cfg, device, out_dir)
    finally:
        torch.set_num_threads(threads)


def _run_point(seed: int, cfg: Config, device: str, out_dir) -> list[dict]:
    train_u8 = cifar.load_training_images(cfg.n_train, data_dir_path=cfg.data_dir)
    images = cifar.to_model_range(train_u8).to(device)
    original, info = original_model(cfg, images, device)

    gen = torch.Generator(device=device).manual_seed(10_000 + seed)
    imp = head_importance(original, images, draws=cfg.importance_draws, batch_size=cfg.importance_batch,
                          t0=cfg.t0, T=cfg.T, generator=gen, beta=tuple(cfg.importance_beta))
    # the optional first-order Taylor score on fresh draws of the same size, compared with the ablation
    taylor = head_importance(original, images, draws=cfg.importance_draws, batch_size=cfg.importance_batch,
                             t0=cfg.t0, T=cfg.T, generator=gen, beta=tuple(cfg.importance_beta), method="taylor")
    taylor_corr = float(scipy.stats.spearmanr(imp.mean.flatten(), taylor.mean.flatten())[0])
    taylor_overlap = float(((prune_mask(imp.mean, cfg.prune_ratio, which=cfg.prune_which) == 0)
                            & (prune_mask(taylor.mean, cfg.prune_ratio, which=cfg.prune_which) == 0)).sum())
    masks = {"pruned": prune_mask(imp.mean, cfg.prune_ratio, which=cfg.prune_which),
             "random": random_prune_mask(original.head_shape, cfg.prune_ratio,
                                         torch.Generator().manual_seed(20_000 + seed))}
    models = {"original": original}
    ft_losses = {"original": math.nan}
    ft = TrainConfig(steps=cfg.finetune_steps, batch_size=cfg.batch_size, lr=cfg.finetune_lr,
                     ema_decay=cfg.finetune_ema_decay, t0=cfg.t0, T=cfg.T, warmup=1,
                     checkpoint_every=max(1, cfg.finetune_steps))
    for variant, mask in masks.items():
        model = copy.deepcopy(original).requires_grad_(True)
        set_head_mask(model, mask.to(device))
        ck = checkpoint_dir(cfg) / f"{variant}_{cfg.prune_which}_{cfg.prune_ratio}_{cfg.finetune_steps}_seed{seed}.pt"
        models[variant], ft_info = train_denoiser(model, images, ft, seed=30_000 + seed, checkpoint=ck)
        ft_losses[variant] = ft_info["loss"]

    ref = _reference_features(cfg, device)
    fid_real = _real_fid(cfg, ref, device)
    train_flat = train_u8.reshape(cfg.n_train, -1).double()
    rows, figure = [], {}
    n_heads = cfg.depth * cfg.heads
    for variant in VARIANTS:
        model = models[variant].eval()
        samples = _sample(model, cfg, seed, device)
        flat = samples.reshape(samples.shape[0], -1).double()
        mem = theory.memorization_fraction(flat, train_flat)
        d1, d2, nn_idx = theory.neighbour_distances(flat[:cfg.n_figure], train_flat)
        figure[f"{variant}_samples"] = samples[:cfg.n_figure].numpy()
        figure[f"{variant}_neighbours"] = train_u8[nn_idx].numpy()
        figure[f"{variant}_ratio"] = (d1 / d2).numpy()
        feats = _features(samples, cfg, device)
        pr = precision_recall(ref, feats, k=3)
        mask = torch.ones(original.head_shape) if variant == "original" else masks[variant]
        rows.append({
            "variant": variant,
            "precision": pr.precision.mean, "precision_se": pr.precision.stderr,
            "recall": pr.recall.mean, "recall_se": pr.recall.stderr,
            "memorization": mem.mean, "memorization_se": mem.stderr,
            "fid": fid(ref, feats), "fid_real": fid_real,
            "heads_total": n_heads, "heads_pruned": int((mask == 0).sum()), "pruned_heads": _heads_string(mask),
            "importance_of_pruned": float((imp.mean * (mask == 0)).sum()),
            "importance_mean": float(imp.mean.mean()), "importance_se_mean": float(imp.stderr.mean()),
            "taylor_spearman": taylor_corr, "taylor_same_pruned": taylor_overlap,
            "finetune_loss": ft_losses[variant], "train_loss": info["loss"],
            "n_train": cfg.n_train, "params": dit_parameter_count(dit_config(cfg)),
            "dit": f"W{cfg.width}-L{cfg.depth}-H{cfg.heads}-p{cfg.patch}", "precondition": cfg.precondition,
            "train_steps": cfg.train_steps, "finetune_steps": 0 if variant == "original" else cfg.finetune_steps,
            "prune_ratio": cfg.prune_ratio, "prune_which": cfg.prune_which,
            "importance": f"ablation, t=t_vp(u), u~Beta{tuple(cfg.importance_beta)}, "
                          f"{cfg.importance_draws}x{cfg.importance_batch} draws",
            "n_samples": cfg.n_samples, "sampler": f"{cfg.sampler}-{cfg.sampler_steps}", "t0": cfg.t0, "T": cfg.T,
            "threshold": "d1/d2<1/3", "feature_network": cfg.feature_network,
            "reference_set": f"{cfg.reference} ({cfg.n_reference})", "k": 3,
        })
    if out_dir is not None:
        path = Path(out_dir) / f"{NAME}_samples_seed{seed}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez_compressed(tmp, **figure)
        os.replace(tmp, path)
    return rows


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each metric, by variant (in the paper's row order)."""
    g = table.groupby("variant")[list(METRICS)]
    out = g.mean().add_suffix("_mean").join(g.std().add_suffix("_std")).join(g.size().rename("seeds"))
    return out.reindex([v for v in VARIANTS if v in out.index])


def plot(table: pd.DataFrame, cfg: Config, out_dir=None):
    import matplotlib.pyplot as plt

    summ = summary(table)
    print(f"[{NAME}] mean (std) over seeds:\n{summ.round(4).to_string()}", file=sys.stderr)
    fig = plt.figure(figsize=(15, 6.2))
    top = fig.add_gridspec(2, 4, height_ratios=[1, 0.75], hspace=0.3, top=0.9, bottom=0.03)
    colours = {"original": "C0", "pruned": "C2", "random": "C3"}
    for j, metric in enumerate(METRICS):
        ax = fig.add_subplot(top[0, j])
        for i, v in enumerate(summ.index):
            sub = table[table["variant"] == v][metric]
            ax.bar(i, summ.loc[v, f"{metric}_mean"], color=colours[v], alpha=0.7)
            ax.plot(np.full(len(sub), i), sub, "k.", ms=4)
            if metric == "memorization" or table["feature_network"].iloc[0] == "inception":
                ax.plot(i, PAPER[v][metric], marker="D", mfc="none", mec="k", ms=7,
                        label="paper (5k images, DiT)" if i == 0 else None)
        if metric == "fid" and "fid_real" in table and np.isfinite(table["fid_real"]).any():
            ax.axhline(table["fid_real"].mean(), ls="--", color="0.4",
                       label=f"{int(table['n_samples'].iloc[0])} held-out real images")
            ax.set_ylim(0, 1.3 * max(ax.get_ylim()[1], 1.0))
            ax.legend(fontsize=7, loc="upper center")
        ax.set_xticks(range(len(summ.index)), summ.index)
        ax.set_title({"fid": "FID (lower is better)", "memorization": "memorization fraction (d1/d2<1/3)",
                      "precision": "precision (k=3)", "recall": "recall (k=3)"}[metric], fontsize=9)
        if j == 2:
            ax.legend(fontsize=7)
    pruned_rows = table[table["variant"] == "pruned"]
    row0 = (pruned_rows if len(pruned_rows) else table).iloc[0]
    fig.text(0.5, 0.965, f"{row0['dit']} DiT ({row0.get('precondition', 'none')} preconditioning) on n={int(row0['n_train'])} CIFAR-10 images, "
             f"{int(row0['train_steps'])} steps; pruned {int(row0['heads_pruned'])} of {int(row0['heads_total'])} "
             f"heads; {int(row0['n_samples'])} samples/variant, features {row0['feature_network']} vs "
             f"{row0['reference_set']}; bars: mean over {int(summ['seeds'].max())} seed(s), dots: seeds",
             ha="center", fontsize=9)
    seeds = sorted(table["seed"].unique())
    path = Path(out_dir) / f"{NAME}_samples_seed{seeds[0]}.npz" if out_dir is not None else None
    if path is not None and path.exists():
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
        bottom = top[1, :].subgridspec(1, len(VARIANTS), wspace=0.15)
        for j, v in enumerate(VARIANTS):
            ax = fig.add_subplot(bottom[0, j])
            s, n = data[f"{v}_samples"], data[f"{v}_neighbours"]
            grid_img = np.concatenate([np.concatenate(list(s), 1), np.concatenate(list(n), 1)], 0)
            ax.imshow(grid_img, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([16, 48], ["sample", "nearest\ntrain"], fontsize=7)
            ratios = " ".join(f"{r:.2f}" for r in data[f"{v}_ratio"])
            ax.set_title(f"{v} (seed {seeds[0]}); d1/d2: {ratios}", fontsize=7)
    return fig
