"""Mitigating memorization by pruning attention heads (the paper's Algorithm 1 and its Table, Sec. 6).

A pixel-space DiT (theory.networks.dit) is trained on the first n exact CIFAR-10 training images (scaled
to [-1, 1]) with the OU forward process in the DDPM time change (theory.training.image). Then, for each seed:

* Algorithm 1: every attention head gets its ablation importance (increase of the denoising loss on
  the training images when the head is masked; t from Beta(0.8, 2) on the normalised time axis, common
  random numbers; theory.networks.heads); the ``pruning.ratio`` least important heads are masked and the
  model is fine-tuned ``pruning.finetune_steps`` steps;
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
fine-tuning batches and the samples. The rows of the first seed also carry ``evaluation.n_figure``
example samples and their nearest training images (uint8 pixels, hex-encoded) with their d1/d2 ratios,
so that the figure is drawn from the table alone. Checkpoints (resumable) go to ``$MEMSEP_CHECKPOINTS``
(default ``checkpoints/`` at the repository root, git-ignored); the data folder is ``data_dir`` or
``$MEMSEP_DATA`` (default ../shared/data); see verify._io.

The configuration is nested: ``model`` (theory's DiTConfig), ``training`` (theory's ImageTrainConfig for
the original model; its t0 and T are the time range of the whole experiment), ``pruning`` (Algorithm 1
and the fine-tuning), ``sampling`` and ``evaluation``; the smaller presets are derived from the paper's
with ``dataclasses.replace``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import torch

import theory
from theory.evaluation.image_metrics import extract_features, fid, precision_recall
from theory.evaluation.samplers import tweedie_denoise
from theory.networks.dit import DiT, DiTConfig, dit_parameter_count
from theory.networks.heads import HeadImportance, head_importance, prune_mask, random_prune_mask, set_head_mask
from theory.training.image import ImageTrainConfig, train_denoiser

from . import _io

from . import stats
from .verdicts import Claim, Constant, all_of, decide_above, decide_below, finding, inconclusive

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
THRESHOLD = 1 / 3            # memorized iff d1/d2 < 1/3 (theory.evaluation.memorization)
PR_K = 3                     # neighbours of improved precision / recall


@dataclasses.dataclass(frozen=True)
class Pruning:
    """Algorithm 1: head importance, the pruning rule and the fine-tuning of the pruned models."""

    importance_draws: int        # batches for the head scores
    importance_batch: int
    finetune_steps: int
    finetune_lr: float
    finetune_ema_decay: float
    importance_beta: tuple = (0.8, 2.0)   # Beta(a, b) on the normalised time axis
    ratio: float = 0.2
    which: str = "least"         # "least" (Algorithm 1) or "most" (ablation)


@dataclasses.dataclass(frozen=True)
class Sampling:
    n_generated: int               # generated images per variant
    steps: int
    batch: int
    sampler: str = "ode"         # "ode" (probability flow, Heun) or "sde"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    feature_network: str         # "inception" (FID Inception pool3) or "pooled_pixels" (4x4-pooled stand-in)
    n_reference: int
    reference: str = "train_exact"   # the first n_reference exact training images
    n_figure: int = 8            # example samples per variant kept (first seed) for the figure


@dataclasses.dataclass(frozen=True)
class Config:
    n_train: int                 # first n of the 5,000 exact training images
    model: DiTConfig
    training: ImageTrainConfig   # the original model; its t0, T are the time range of every step
    train_chunk_steps: int       # at most this many training steps per call (resume by rerunning)
    pruning: Pruning
    sampling: Sampling
    evaluation: Evaluation
    train_seed: int = 0
    seeds: tuple = (0,)
    data_dir: str = ""           # empty: $MEMSEP_DATA or ../shared/data
    cpu_threads: int = 1         # torch threads on a CPU device during a point (0: leave as is); one thread
                                 # avoids the oversubscription that slows a shared 2-core machine ~30x


# DiT-S/2 (33M parameters, 72 heads) on all 5,000 images, long enough to memorize strongly; about
# 4-10 GPU-hours at 200k steps, trained in resumable chunks of 5k steps (minutes each; rerun to continue).
# A plain DiT (no preconditioning), as DiTs are usually trained at this length. Still to run on a GPU.
_PAPER = Config(
    n_train=5000, model=DiTConfig(patch=2, width=384, depth=12, heads=6, freq_dim=256, precondition="none"),
    training=ImageTrainConfig(steps=200_000, batch_size=128, lr=1e-4, ema_decay=0.9999, warmup=100,
                              checkpoint_every=1000, t0=1e-3, T=10.0),
    train_chunk_steps=5_000,
    pruning=Pruning(importance_draws=64, importance_batch=128, finetune_steps=5000, finetune_lr=5e-5,
                    finetune_ema_decay=0.999),
    sampling=Sampling(n_generated=10_000, steps=100, batch=500),
    evaluation=Evaluation(feature_network="inception", n_reference=5000), seeds=(0, 1, 2, 3, 4))
# 16 images, 6,000 steps: the smallest setting in which the original model starts to memorize on a CPU
# (1,200 steps on 64 images gave blurry colour layouts, FID ~365, no memorization). 64 samples against
# 64 exact training-set images for FID (the first 16 are the training set). 32 ODE steps: the sampler
# shrinks a Gaussian by 1.5% (7.6% at 16 steps; tests/test_dit.py).
_CPU = dataclasses.replace(
    _PAPER, n_train=16,
    model=dataclasses.replace(_PAPER.model, patch=4, width=64, depth=4, heads=4, freq_dim=64, precondition="gaussian"),
    training=dataclasses.replace(_PAPER.training, steps=6000, batch_size=32, lr=2e-3, ema_decay=0.99),
    train_chunk_steps=10_000,
    pruning=dataclasses.replace(_PAPER.pruning, importance_draws=2, importance_batch=16, finetune_steps=60,
                                finetune_lr=4e-4, finetune_ema_decay=0.9),
    sampling=Sampling(n_generated=64, steps=32, batch=64),
    evaluation=Evaluation(feature_network="inception", n_reference=64), seeds=(0, 1), cpu_threads=2)
PRESETS = {
    "smoke": dataclasses.replace(
        _CPU, n_train=32, model=dataclasses.replace(_CPU.model, patch=8, width=32, depth=2, heads=2, freq_dim=32),
        training=dataclasses.replace(_CPU.training, steps=30, batch_size=16, ema_decay=0.9, warmup=4,
                                     checkpoint_every=30),
        pruning=dataclasses.replace(_CPU.pruning, importance_draws=1, importance_batch=8, ratio=0.25,
                                    finetune_steps=5, finetune_lr=1e-3, finetune_ema_decay=0.5),
        sampling=Sampling(n_generated=16, steps=4, batch=16),
        evaluation=Evaluation(feature_network="pooled_pixels", n_reference=32, n_figure=4), seeds=(0,),
        cpu_threads=1),
    "cpu": _CPU,
    "paper": _PAPER,
}
ESTIMATED_RUNTIME = {"smoke": 15, "cpu": 520, "paper": 12 * 3600}  # cpu: 516 s from scratch on 2 cores
COLUMNS = ("variant", "precision", "precision_se", "recall", "recall_se", "memorization", "memorization_se", "fid",
           "fid_real", "heads_total", "heads_pruned", "pruned_heads", "importance_of_pruned", "importance_mean",
           "importance_se_mean", "taylor_spearman", "taylor_same_pruned", "finetune_loss", "final_loss", "n_train",
           "params", "dit", "precondition", "train_steps", "finetune_steps", "prune_ratio", "prune_which",
           "importance", "n_generated", "sampler", "sample_steps", "t0", "T", "threshold", "feature_network", "reference_set", "k",
           "seed", "preset", "device", "runtime_s", "point")


def grid(cfg: Config) -> list[dict]:
    return [{"seed": s} for s in cfg.seeds]


def check_data(cfg: Config) -> None:
    """The files a run reads, checked before it starts (verify.preflight): the exact training images (at
    least max(n_train, n_reference)) and, for Inception features, the FID network."""
    _io.require_training_images(max(cfg.n_train, cfg.evaluation.n_reference), cfg.data_dir)
    if cfg.evaluation.feature_network == "inception":
        _io.require_inception(_io.data_dir(cfg.data_dir) / _io.INCEPTION)


def finetune_config(cfg: Config) -> ImageTrainConfig:
    """The fine-tuning of a pruned model: the original's settings with the pruning's steps, rate and EMA."""
    p = cfg.pruning
    return dataclasses.replace(cfg.training, steps=p.finetune_steps, lr=p.finetune_lr,
                               ema_decay=p.finetune_ema_decay, warmup=1, checkpoint_every=max(1, p.finetune_steps))


def checkpoint_dir(cfg: Config) -> Path:
    """``$MEMSEP_CHECKPOINTS``/cifar_pruning/<hash of what the original model depends on>."""
    key = {"n_train": cfg.n_train, "model": dataclasses.asdict(cfg.model),
           "training": dataclasses.asdict(cfg.training), "train_seed": cfg.train_seed}
    return _io.checkpoint_root() / NAME / _io.key_tag(key, 10)


def _pooled_pixels(x: torch.Tensor) -> torch.Tensor:
    """Stand-in feature network for smoke runs: 4x4 average-pooled pixels (48 features at 32x32)."""
    return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def _features(images: torch.Tensor, cfg: Config, device: str) -> torch.Tensor:
    network = cfg.evaluation.feature_network
    if network == "pooled_pixels":
        return extract_features(images, _pooled_pixels, size=None, device=device)
    if network == "inception":
        net = _io.load_inception(_io.data_dir(cfg.data_dir) / _io.INCEPTION, device=device)
        return extract_features(images, net, batch_size=100 if device.startswith("cuda") else 16, device=device)
    raise ValueError(f"feature_network must be 'inception' or 'pooled_pixels', got {network!r}")


def _reference_features(cfg: Config, device: str) -> torch.Tensor:
    ev = cfg.evaluation
    if ev.reference != "train_exact":
        raise ValueError(f"reference must be 'train_exact', got {ev.reference!r}")
    cache = _io.Checkpoint(checkpoint_dir(cfg).parent / f"reference_{ev.reference}_{ev.n_reference}_{ev.feature_network}.pt")
    return cache.cached(lambda: _features(_io.load_training_images(ev.n_reference, data_dir_path=cfg.data_dir),
                                          cfg, device))


def _real_fid(cfg: Config, ref: torch.Tensor, device: str) -> float:
    """FID of n_generated held-out real images (exact training images first..first + n_generated, first =
    max(n_train, n_reference): in neither the training nor the reference set) against ``ref``: the value a
    perfect generator would score at this sample size. NaN if the data folder has too few images."""
    ev, n = cfg.evaluation, cfg.sampling.n_generated
    first = max(cfg.n_train, ev.n_reference)
    cache = _io.Checkpoint(checkpoint_dir(cfg).parent / (f"real_fid_{ev.reference}_{ev.n_reference}_{first}_{n}_"
                                                         f"{ev.feature_network}.pt"))

    def compute():
        images = _io.load_training_images(data_dir_path=cfg.data_dir)[first:first + n]
        return torch.tensor(fid(ref, _features(images, cfg, device)) if len(images) == n else math.nan)

    return float(cache.cached(compute))


def original_model(cfg: Config, images: torch.Tensor, device: str) -> tuple[DiT, dict]:
    """Train (or resume, or load) the original model; returns its EMA weights. Raises if training needs
    more than ``train_chunk_steps`` further steps (rerun to continue from the checkpoint)."""
    model = DiT(cfg.model, generator=torch.Generator().manual_seed(cfg.train_seed)).to(device)
    ck = _io.Checkpoint(checkpoint_dir(cfg) / "original.pt")
    ema, info = train_denoiser(model, images, cfg.training, seed=cfg.train_seed, resume=ck.load(device),
                               on_checkpoint=ck.save, max_steps_this_call=cfg.train_chunk_steps)
    if info["step"] < cfg.training.steps:
        raise RuntimeError(f"original model trained to step {info['step']} of {cfg.training.steps}; rerun to resume")
    return ema, info


def _sample(model: DiT, cfg: Config, seed: int, device: str) -> torch.Tensor:
    """n_generated images (uint8 NHWC): PF ODE or reverse SDE from T to t0, then the Tweedie step
    x0 = (x + sigma_t0^2 s(x, t0)) / alpha_t0. The initial noise depends on the seed only (common
    random numbers across variants)."""
    sp, t0, T = cfg.sampling, cfg.training.t0, cfg.training.T
    gen = torch.Generator().manual_seed(40_000 + seed)
    out = []
    for i in range(0, sp.n_generated, sp.batch):
        m = min(sp.batch, sp.n_generated - i)
        x_T = theory.prior_sample((m, 3, 32, 32), generator=gen, dtype=torch.float32).to(device)
        if sp.sampler == "ode":
            x = theory.probability_flow(model.score, x_T, T=T, t0=t0, steps=sp.steps)
        elif sp.sampler == "sde":
            g = torch.Generator(device=device).manual_seed(50_000 + 1000 * seed + i)
            x = theory.reverse_sde(model.score, x_T, T=T, t0=t0, steps=sp.steps, generator=g)
        else:
            raise ValueError(f"sampler must be 'ode' or 'sde', got {sp.sampler!r}")
        out.append(_io.to_uint8(tweedie_denoise(model.score, x, t0).cpu()))
    return torch.cat(out)


def _heads_string(mask: torch.Tensor) -> str:
    """Masked heads as 'L<layer>H<head>' words ('none' if none), e.g. 'L0H3 L2H1'."""
    return " ".join(f"L{l}H{h}" for l, h in (mask == 0).nonzero().tolist()) or "none"


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    threads = torch.get_num_threads()
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        return _run_point(point["seed"], cfg, device)
    finally:
        torch.set_num_threads(threads)


def _run_point(seed: int, cfg: Config, device: str) -> list[dict]:
    train_u8 = _io.load_training_images(cfg.n_train, data_dir_path=cfg.data_dir)
    images = _io.to_model_range(train_u8).to(device)
    original, info = original_model(cfg, images, device)
    imp, taylor = _importance(original, images, cfg, seed, device)
    masks = {"original": torch.ones(original.head_shape),
             "pruned": prune_mask(imp.mean, cfg.pruning.ratio, which=cfg.pruning.which),
             "random": random_prune_mask(original.head_shape, cfg.pruning.ratio,
                                         torch.Generator().manual_seed(20_000 + seed))}
    models, ft_losses = {"original": original}, {"original": math.nan}
    for variant in ("pruned", "random"):
        models[variant], ft_losses[variant] = _finetuned(original, masks[variant], variant, images, cfg, seed, device)
    ref = _reference_features(cfg, device)
    fid_real = _real_fid(cfg, ref, device)
    common = {"fid_real": fid_real, "importance_mean": float(imp.mean.mean()),
              "importance_se_mean": float(imp.stderr.mean()), **taylor, "final_loss": info["loss"], **_protocol(cfg)}
    rows = []
    for variant in VARIANTS:
        samples = _sample(models[variant].eval(), cfg, seed, device)
        row = {"variant": variant, **_scores(samples, train_u8, ref, cfg, device), **common,
               **_pruning_columns(masks[variant], imp, cfg),
               "finetune_loss": ft_losses[variant],
               "finetune_steps": 0 if variant == "original" else cfg.pruning.finetune_steps}
        if seed == cfg.seeds[0]:
            row.update(_examples(samples, train_u8, cfg.evaluation.n_figure))
        rows.append(row)
    return rows


def _importance(original: DiT, images: torch.Tensor, cfg: Config, seed: int, device: str) -> tuple[HeadImportance, dict]:
    """Algorithm 1's ablation importance, and how the first-order Taylor score (on fresh draws of the same
    size) compares with it: their Spearman correlation and how many pruned heads they share."""
    p = cfg.pruning
    gen = torch.Generator(device=device).manual_seed(10_000 + seed)
    kwargs = dict(draws=p.importance_draws, batch_size=p.importance_batch, t0=cfg.training.t0, T=cfg.training.T,
                  generator=gen, beta=tuple(p.importance_beta))
    imp = head_importance(original, images, **kwargs)
    taylor = head_importance(original, images, method="taylor", **kwargs)
    same = ((prune_mask(imp.mean, p.ratio, which=p.which) == 0) & (prune_mask(taylor.mean, p.ratio, which=p.which) == 0))
    return imp, {"taylor_spearman": float(scipy.stats.spearmanr(imp.mean.flatten(), taylor.mean.flatten())[0]),
                 "taylor_same_pruned": float(same.sum())}


def _finetuned(original: DiT, mask: torch.Tensor, variant: str, images: torch.Tensor, cfg: Config, seed: int,
               device: str) -> tuple[DiT, float]:
    """A copy of the original with ``mask`` on its heads, fine-tuned (resumable); its EMA and final loss."""
    p = cfg.pruning
    model = copy.deepcopy(original).requires_grad_(True)
    set_head_mask(model, mask.to(device))
    ck = _io.Checkpoint(checkpoint_dir(cfg) / f"{variant}_{p.which}_{p.ratio}_{p.finetune_steps}_seed{seed}.pt")
    ema, info = train_denoiser(model, images, finetune_config(cfg), seed=30_000 + seed, resume=ck.load(device),
                               on_checkpoint=ck.save)
    return ema, info["loss"]


def _scores(samples: torch.Tensor, train_u8: torch.Tensor, ref: torch.Tensor, cfg: Config, device: str) -> dict:
    """Memorization against the training images and precision / recall / FID against the reference."""
    flat = samples.reshape(samples.shape[0], -1).double()
    mem = theory.memorization_fraction(flat, train_u8.reshape(train_u8.shape[0], -1).double(), threshold=THRESHOLD)
    feats = _features(samples, cfg, device)
    pr = precision_recall(ref, feats, k=PR_K)
    return {"precision": pr.precision.mean, "precision_se": pr.precision.stderr,
            "recall": pr.recall.mean, "recall_se": pr.recall.stderr,
            "memorization": mem.mean, "memorization_se": mem.stderr, "fid": fid(ref, feats)}


def _pruning_columns(mask: torch.Tensor, imp: HeadImportance, cfg: Config) -> dict:
    return {"heads_total": cfg.model.depth * cfg.model.heads, "heads_pruned": int((mask == 0).sum()),
            "pruned_heads": _heads_string(mask), "importance_of_pruned": float((imp.mean * (mask == 0)).sum())}


def _protocol(cfg: Config) -> dict:
    """The columns that say how the row was produced."""
    m, p, sp, ev = cfg.model, cfg.pruning, cfg.sampling, cfg.evaluation
    return {"n_train": cfg.n_train, "params": dit_parameter_count(m),
            "dit": f"W{m.width}-L{m.depth}-H{m.heads}-p{m.patch}", "precondition": m.precondition,
            "train_steps": cfg.training.steps, "prune_ratio": p.ratio, "prune_which": p.which,
            "importance": f"ablation, t=t_vp(u), u~Beta{tuple(p.importance_beta)}, "
                          f"{p.importance_draws}x{p.importance_batch} draws",
            "n_generated": sp.n_generated, "sampler": sp.sampler, "sample_steps": sp.steps,
            "t0": cfg.training.t0, "T": cfg.training.T, "threshold": THRESHOLD,
            "feature_network": ev.feature_network, "reference_set": f"{ev.reference} ({ev.n_reference})", "k": PR_K}


def _examples(samples: torch.Tensor, train_u8: torch.Tensor, count: int) -> dict:
    """The first ``count`` samples and their nearest training images as hex-encoded uint8 NHWC pixels,
    with their d1/d2 ratios (space-separated): what the figure's bottom row shows."""
    flat = samples[:count].reshape(min(count, samples.shape[0]), -1).double()
    d1, d2, nn_idx = theory.neighbour_distances(flat, train_u8.reshape(train_u8.shape[0], -1).double())
    return {"example_samples": _hex(samples[:count]), "example_neighbours": _hex(train_u8[nn_idx]),
            "example_ratios": " ".join(f"{r:.6g}" for r in (d1 / d2).tolist())}


def _hex(images: torch.Tensor) -> str:
    return images.contiguous().numpy().astype(np.uint8).tobytes().hex()


def _unhex(text: str) -> np.ndarray:
    """The inverse of ``_hex``: (N, 32, 32, 3) uint8."""
    return np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(-1, 32, 32, 3)


def variant_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each metric, by variant (in the paper's row order)."""
    g = table.groupby("variant")[list(METRICS)]
    out = g.mean().add_suffix("_mean").join(g.std().add_suffix("_std")).join(g.size().rename("seeds"))
    return out.reindex([v for v in VARIANTS if v in out.index])


def plot(table: pd.DataFrame, cfg: Config):
    import matplotlib.pyplot as plt

    summ = variant_summary(table)
    print(f"[{NAME}] mean (std) over seeds:\n{summ.round(4).to_string()}", file=sys.stderr)
    fig = plt.figure(figsize=(15, 6.2))
    top = fig.add_gridspec(2, 4, height_ratios=[1, 0.75], hspace=0.3, top=0.9, bottom=0.03)
    for j, metric in enumerate(METRICS):
        _metric_panel(fig.add_subplot(top[0, j]), table, summ, metric, legend=j == 2)
    pruned_rows = table[table["variant"] == "pruned"]
    row0 = (pruned_rows if len(pruned_rows) else table).iloc[0]
    fig.text(0.5, 0.965, f"{row0['dit']} DiT ({row0.get('precondition', 'none')} preconditioning) on n={int(row0['n_train'])} CIFAR-10 images, "
             f"{int(row0['train_steps'])} steps; pruned {int(row0['heads_pruned'])} of {int(row0['heads_total'])} "
             f"heads; {int(row0['n_generated'])} samples/variant, features {row0['feature_network']} vs "
             f"{row0['reference_set']}; bars: mean over {int(summ['seeds'].max())} seed(s), dots: seeds",
             ha="center", fontsize=9)
    examples = table[table["example_samples"].notna()] if "example_samples" in table else table.iloc[:0]
    if len(examples):
        seed = int(examples["seed"].min())
        bottom = top[1, :].subgridspec(1, len(VARIANTS), wspace=0.15)
        for j, v in enumerate(VARIANTS):
            row = examples[(examples["variant"] == v) & (examples["seed"] == seed)].iloc[0]
            s, n = _unhex(row["example_samples"]), _unhex(row["example_neighbours"])
            ax = fig.add_subplot(bottom[0, j])
            ax.imshow(np.concatenate([np.concatenate(list(s), 1), np.concatenate(list(n), 1)], 0),
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([16, 48], ["sample", "nearest\ntrain"], fontsize=7)
            ratios = " ".join(f"{float(r):.2f}" for r in str(row["example_ratios"]).split())
            ax.set_title(f"{v} (seed {seed}); d1/d2: {ratios}", fontsize=7)
    return fig


def _metric_panel(ax, table: pd.DataFrame, summ: pd.DataFrame, metric: str, legend: bool) -> None:
    """Bars of the seed mean per variant, dots per seed, the paper's value as a diamond; for FID the
    floor of as many held-out real images."""
    colours = {"original": "C0", "pruned": "C2", "random": "C3"}
    for i, v in enumerate(summ.index):
        sub = table[table["variant"] == v][metric]
        ax.bar(i, summ.loc[v, f"{metric}_mean"], color=colours[v], alpha=0.7)
        ax.plot(np.full(len(sub), i), sub, "k.", ms=4)
        if metric == "memorization" or table["feature_network"].iloc[0] == "inception":
            ax.plot(i, PAPER[v][metric], marker="D", mfc="none", mec="k", ms=7,
                    label="paper (5k images, DiT)" if i == 0 else None)
    if metric == "fid" and "fid_real" in table and np.isfinite(table["fid_real"]).any():
        ax.axhline(table["fid_real"].mean(), ls="--", color="0.4",
                   label=f"{int(table['n_generated'].iloc[0])} held-out real images")
        ax.set_ylim(0, 1.3 * max(ax.get_ylim()[1], 1.0))
        ax.legend(fontsize=7, loc="upper center")
    ax.set_xticks(range(len(summ.index)), summ.index)
    ax.set_title({"fid": "FID (lower is better)", "memorization": "memorization fraction (d1/d2<1/3)",
                  "precision": "precision (k=3)", "recall": "recall (k=3)"}[metric], fontsize=9)
    if legend:
        ax.legend(fontsize=7)


# --------------------------------------------------------------------------------------------- claims
def _paired(table: pd.DataFrame, a: str, b: str, value: str, se: str | None) -> tuple[stats.Interval, int]:
    """Mean over seeds of the per-seed difference value(a) - value(b) (the variants of a seed share their
    initial noise: paired), with the ``seed_normal`` interval: se = max(propagated per-seed errors, treated as
    independent: conservative under common random numbers; seed spread / sqrt(k)); and k."""
    wide = table.pivot_table(index="seed", columns="variant", values=[value] + ([se] if se else []), aggfunc="first")
    diff = (wide[value][a] - wide[value][b]).dropna()
    k = len(diff)
    spread = float(diff.std(ddof=1) / math.sqrt(k)) if k > 1 else math.nan
    prop = (float(np.sqrt((wide[se][a] ** 2 + wide[se][b] ** 2).loc[diff.index].sum())) / k) if se else 0.0
    err = max(prop, spread) if math.isfinite(spread) else (prop if se else math.inf)
    return stats.seed_interval(float(diff.mean()), err), k


def judge_pruning(table, *, min_original=0.1, fid_tolerance=0.05):
    """Rule: three parts, all required. Precondition: the original model memorizes (mean memorization over
    seeds >= min_original; otherwise the table cannot decide). (1) Pruning the least small-t-important heads
    lowers memorization: the mean over seeds of the paired difference original - pruned has its seed_normal
    interval above 0 (does not hold if at or below 0). (2) At similar quality: the mean paired ratio FID(pruned)
    / FID(original) has its interval below 1 + fid_tolerance (does not hold if at or above it). (3) Unlike random
    pruning: FID(random) - FID(pruned) has its interval above 0. (The paper, 5 runs: memorization 73.8% ->
    68.6%, FID 15.5 -> 15.1, random 17.1.)"""
    t = table[table["error"].isna()] if "error" in table.columns else table
    stat = "memorization of the original minus the pruned model (paired by seed)"
    if not {"original", "pruned", "random"} <= set(t["variant"]):
        return inconclusive(stat, "missing variants")
    row = t[t["variant"] == "pruned"].iloc[0]
    rng = (f"{row['dit']} DiT ({int(row['params'])} parameters) on n = {int(row['n_train'])} CIFAR-10 images, "
           f"{int(row['heads_pruned'])} of {int(row['heads_total'])} heads pruned, {t['seed'].nunique()} seeds x "
           f"{int(row['n_generated'])} samples")
    confounds = ["no null rate (memorization of held-out images) in the table"]
    mem = t.groupby("variant")["memorization"].mean()
    fid = t.groupby("variant")["fid"].mean()
    text = ", ".join(f"{v}: memorization {mem[v]:.3f}, FID {fid[v]:.1f}" for v in ("original", "pruned", "random"))
    if mem["original"] < min_original:
        return inconclusive(stat, text + f" (the original model memorizes less than {min_original:g}: nothing to curb)",
                            confounds=confounds, range_tested=rng)
    drop, k = _paired(t, "original", "pruned", "memorization", "memorization_se")
    ratio_rows = t.assign(fid_rel=t["fid"] / t["seed"].map(t[t["variant"] == "original"].set_index("seed")["fid"]))
    ratio, _ = _paired(ratio_rows, "pruned", "original", "fid_rel", None)
    ratio = stats.Interval(ratio.estimate + 1.0, ratio.lo + 1.0, ratio.hi + 1.0, ratio.level, ratio.method)
    versus, _ = _paired(t, "random", "pruned", "fid", None)
    if k < 2:
        confounds.append("one seed: no seed spread for the FID comparisons (interval unbounded)")
    parts = [finding(stat, drop, decide_above(drop.lo, drop.hi, 0.0),
                     text + f"; original - pruned memorization {stats.fmt_interval(*drop[:3], 2)}", range_tested=rng),
             finding("FID(pruned) / FID(original) (paired by seed)", ratio, decide_below(ratio.lo, ratio.hi, 1.0 + fid_tolerance),
                     f"FID ratio pruned/original {stats.fmt_interval(*ratio[:3], 3)}", range_tested=rng),
             finding("FID(random) - FID(pruned) (paired by seed)", versus, decide_above(versus.lo, versus.hi, 0.0),
                     f"FID random - pruned {stats.fmt_interval(*versus[:3], 3)}", range_tested=rng)]
    return all_of(parts, confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("head_pruning", "Pruning the attention heads least important at small t (Algorithm 1) lowers a DiT's "
          "memorization at similar FID, unlike random pruning", "Sec. 6, Algorithm 1 and its Table",
          "DiT on 5,000 CIFAR-10 images, 20% of heads pruned, 5 runs", "theory.networks.heads.head_importance",
          judge_pruning,
          (Constant("min_original", 0.1, "smallest memorization of the original model for a drop to be measurable"),
           Constant("fid_tolerance", 0.05, "largest relative FID increase of the pruned model counted as 'similar quality'"))),
]
