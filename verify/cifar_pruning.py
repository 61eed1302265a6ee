"""Mitigating memorization by pruning attention heads (the paper's Algorithm 1 and its Table, Sec. 6), with
the ablations that test its reasoning.

The paper's setting: a DiT trained on 5,000 CIFAR-10 images at 32x32; Algorithm 1 prunes the 20% of
attention heads least important at small t (t ~ Beta(0.8, 2) on the normalised time axis) and fine-tunes;
memorization 73.8% -> 68.6% at FID 15.5 -> 15.1, while random pruning gives 66.9% at FID 17.1 (5 runs).

**The cpu preset is a documented down-scaled variant, not the paper's setting**: the first 16 exact
CIFAR-10 training images, each 2x2 area-averaged to 16x16 and rounded back to uint8
(``verify._io.area_downsample``); memorization is measured in that 16x16 pixel space (768-d). A DiT with
patch 4 (16 tokens), width 64, depth 4, 4 heads (16 heads, 321,648 parameters), Gaussian preconditioning,
trained 4,000 steps (lr 4e-3, batch 32, EMA 0.99). Measured (scratch exploration, see README): at 32x32 a
seed's original model costs too much to train on a CPU, n = 32 images memorize 3x more slowly, and patch 8
cannot memorize at width 64; this variant's originals memorize 54-71% of their samples within 4,000-6,000
steps. The ``paper`` preset is the paper's scale (DiT-S/2 on 5,000 32x32 images), still to be run on a GPU.

Per seed (the unit of replication: each seed trains its own original, with its own initialisation, data
order and noise, and draws its own importance estimates, random masks, fine-tuning batches and samples):

* ``original``: the EMA model, unpruned;
* ``alg1`` (Algorithm 1): the ``pruning.ratio`` least important heads by the ablation importance at small t
  (theory.networks.heads.head_importance, ``TIME_LAWS["small"]``), fine-tuned ``pruning.finetune_steps``
  steps. The importance is estimated ``importance_repeats`` times independently (K masks, one per estimate;
  a loss-tied head at the boundary makes the mask partly a draw); the seed's Alg. 1 effect is the mean over
  the K masks (identical masks give identical models and samples, computed once);
* ``random``: ``random_masks`` masks of as many heads drawn uniformly, each fine-tuned the same way (the
  random arm's spread is mostly the mask draw);
* ablations, each on the first mask of its kind and ``sampling.n_ablation`` samples: fine-tuning length
  (``pruning.finetune_ablation``: ``alg1_ft0``, ``alg1_ft300``, ``random_ft0``, ``random_ft300``; the
  length decides the Alg. 1 effect, as measured), the most important heads instead of the least (``most``),
  the pruning ratio (``alg1_10pct``, ``alg1_30pct``), and the time law of the importance (``uniform_t``,
  ``large_t``: Beta(1, 1) and Beta(2, 0.8); a row whose mask equals Alg. 1's says so in ``same_heads_as``).

Every arm of a seed samples from the same initial noises (probability-flow ODE, Heun, ``sampling.steps``
steps, then one Tweedie step at t0; 32 steps keep 94% of the samples on the same nearest image as 128
steps, where 16 steps inflate memorization by ~12 points), so the memorization difference against the
original is paired sample by sample (``mem_diff``, with the discordant counts ``n_lost`` / ``n_gained``).
Memorized: d1/d2 < 1/3 against the training images (exact, pixel space). The **null** is the same test on
held-out CIFAR-10 test images (``cifar10_test_exact.npz``, down-scaled the same way) against the same
training images: what memorizing nothing scores.

Quality (the ``quality`` stage, one last grid point, ``seed = -1``: pooled over seeds): FID and improved
precision / recall (k = 3) on features of ``evaluation.feature_network`` (Inception pool3) of the first
``fid_per_seed`` samples of each seed for the main arms (original, alg1, random, first mask) and the first
``fid_per_seed_ablation`` for every arm, against ``n_reference`` held-out exact training images; each with
its ``bootstrap_sd`` interval (``theory.evaluation.image_metrics.quality_bootstrap``: samples redrawn
within seeds, reference redrawn; differences paired), and beside it the **real-vs-real** value: as many
further held-out real images, scored the same way, and the ``memorizer`` (the training images themselves,
redrawn to the same count). The memorization summaries of that stage are means over seeds with ``seed_t``
intervals.

Tables: ``stage = "memorization"`` rows, one per (seed, arm, mask); ``stage = "quality"`` rows, one per
(arm, FID count), plus ``null``, ``real`` and ``memorizer``. The figure and the verdicts read the table
only. Checkpoints and caches (resumable original training; importance estimates; samples; features) live
under ``$MEMSEP_CHECKPOINTS``/cifar_pruning, keyed by everything they depend on, including a content
fingerprint of the images (``verify._io.fingerprint``) and the seed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import sys
import time

import numpy as np
import pandas as pd
import scipy.stats
import torch

import theory
from theory.evaluation.image_metrics import extract_features, fid, precision_recall, quality_bootstrap
from theory.evaluation.samplers import tweedie_denoise
from theory.networks.dit import DiT, DiTConfig, dit_parameter_count
from theory.networks.heads import (TIME_LAWS, HeadImportance, head_importance, importance_gap, prune_mask,
                                   random_prune_mask, set_head_mask)
from theory.training.image import ImageTrainConfig, train_denoiser

from . import _io, stats
from .verdicts import (Claim, Constant, all_of, any_of, decide_above, decide_below, finding, inconclusive)

NAME = "cifar_pruning"
CLAIM = ("Pruning the attention heads least important at small t (Algorithm 1) lowers a CIFAR-10 DiT's "
         "memorization at similar quality, unlike random pruning (Sec. 6, Table); with ablations of its reasoning")
ORDER = 60
SHARED_FIRST_POINT = True    # the first seed trains the original model the others reuse: on a cluster it runs alone first

# The paper's table (mean over 5 runs), drawn beside the measurement as the claim being checked.
PAPER = {"original": {"precision": 0.39, "recall": 0.08, "memorization": 0.7382, "fid": 15.47},
         "alg1": {"precision": 0.33, "recall": 0.12, "memorization": 0.6858, "fid": 15.07},
         "random": {"precision": 0.30, "recall": 0.09, "memorization": 0.6687, "fid": 17.14}}
MAIN = ("original", "alg1", "random")
THRESHOLD = 1 / 3            # memorized iff d1/d2 < 1/3 (theory.evaluation.memorization)
PR_K = 3                     # neighbours of improved precision / recall
QUALITY_SEED = -1            # the seed column of the pooled quality rows
NULL_ARM = "held_out_null"   # the null row's arm ("null" itself reads back from a CSV as a missing value)


@dataclasses.dataclass(frozen=True)
class Pruning:
    """Algorithm 1 (head importance, the pruning rule, the fine-tuning) and its ablations."""

    importance_draws: int        # batches for each importance estimate
    importance_batch: int
    finetune_lr: float
    finetune_ema_decay: float
    finetune_steps: int = 100    # Algorithm 1's fine-tuning (the main arms)
    finetune_ablation: tuple = (0, 300)   # further lengths for Alg. 1 and random (first mask)
    ratio: float = 0.2
    ratio_ablation: tuple = (0.1, 0.3)
    importance_repeats: int = 3  # K independent small-t importance estimates -> K Alg. 1 masks per seed
    random_masks: int = 3        # random masks per seed
    law: str = "small"           # Algorithm 1's time law (theory.networks.heads.TIME_LAWS)
    law_ablation: tuple = ("uniform", "large")


@dataclasses.dataclass(frozen=True)
class Sampling:
    n_generated: int             # samples per main arm and seed (original, alg1, random)
    n_ablation: int              # samples per ablation arm and seed: the first of the same noises
    steps: int
    batch: int
    sampler: str = "ode"         # "ode" (probability flow, Heun) or "sde"


@dataclasses.dataclass(frozen=True)
class Evaluation:
    feature_network: str         # "inception" (FID Inception pool3) or "pooled_pixels" (4x4-pooled stand-in)
    n_reference: int             # FID reference: held-out real images (see ``reference``)
    fid_per_seed: int            # main arms: the first this many samples of each seed, pooled over seeds
    fid_per_seed_ablation: int   # every arm (and the original again): the first this many of each seed
    reference: str = "held_out"  # "held_out": exact training images after the first n_train (reference, then
                                 # the real-vs-real sets); "test_jpeg": the JPEG test images (paper scale)
    bootstrap: int = 100         # resamples of the quality bootstrap
    n_null: int = 0              # held-out test images for the null (0: all 1,017)
    n_figure: int = 8            # example samples per main arm kept (first seed) for the figure


@dataclasses.dataclass(frozen=True)
class Config:
    n_train: int                 # first n of the 5,000 exact training images
    image_size: int              # 32 (the paper) or a divisor: images area-downsampled to it
    model: DiTConfig
    training: ImageTrainConfig   # the original model; its t0, T are the time range of every step
    train_chunk_steps: int       # at most this many training steps per call (resume by rerunning)
    pruning: Pruning
    sampling: Sampling
    evaluation: Evaluation
    seeds: tuple = (0,)
    data_dir: str = ""           # empty: $MEMSEP_DATA or ../shared/data
    cpu_threads: int = 1         # torch threads on a CPU device during a point (0: leave as is); one thread
                                 # avoids the oversubscription that slows a shared 2-core machine ~30x


# DiT-S/2 (33M parameters, 72 heads) on all 5,000 images at 32x32, long enough to memorize strongly; about
# 4-10 GPU-hours at 200k steps, trained in resumable chunks of 5k steps (rerun to continue). A plain DiT (no
# preconditioning), as DiTs are usually trained at this length. FID against 5,000 JPEG test images, the
# real-vs-real value from the other 5,000. Still to run on a GPU.
_PAPER = Config(
    n_train=5000, image_size=32,
    model=DiTConfig(patch=2, width=384, depth=12, heads=6, freq_dim=256, precondition="none"),
    training=ImageTrainConfig(steps=200_000, batch_size=128, lr=1e-4, ema_decay=0.9999, warmup=100,
                              checkpoint_every=1000, t0=1e-3, T=10.0, fused=True),
    train_chunk_steps=5_000,
    pruning=Pruning(importance_draws=64, importance_batch=128, finetune_lr=5e-5, finetune_ema_decay=0.999,
                    finetune_steps=5000, finetune_ablation=(0, 15_000)),
    sampling=Sampling(n_generated=10_000, n_ablation=2_000, steps=100, batch=500),
    evaluation=Evaluation(feature_network="inception", n_reference=5000, fid_per_seed=1000,
                          fid_per_seed_ablation=400, reference="test_jpeg"),
    seeds=(0, 1, 2, 3, 4))
# The down-scaled variant (module docstring); the knobs are measured, see README ("cifar_pruning design").
# 6 seeds x 256 samples: the seed-level interval of the Alg. 1 effect is about +-4 points (between-seed sd
# ~4 points measured); FID from 32 samples per seed (192 pooled) for the main arms, 16 (96) for ablations.
_CPU = dataclasses.replace(
    _PAPER, n_train=16, image_size=16,
    model=DiTConfig(image_size=16, patch=4, width=64, depth=4, heads=4, freq_dim=64, precondition="gaussian"),
    training=dataclasses.replace(_PAPER.training, steps=4000, batch_size=32, lr=4e-3, ema_decay=0.99),
    train_chunk_steps=10_000,
    pruning=Pruning(importance_draws=12, importance_batch=32, finetune_lr=4e-4, finetune_ema_decay=0.9,
                    finetune_steps=100, finetune_ablation=(0, 300)),
    sampling=Sampling(n_generated=256, n_ablation=128, steps=32, batch=256),
    evaluation=Evaluation(feature_network="inception", n_reference=256, fid_per_seed=32, fid_per_seed_ablation=16),
    seeds=(0, 1, 2, 3, 4, 5), cpu_threads=1)
PRESETS = {
    "smoke": dataclasses.replace(
        _CPU, n_train=8, image_size=8,
        model=dataclasses.replace(_CPU.model, image_size=8, width=32, depth=2, heads=4, freq_dim=32),
        training=dataclasses.replace(_CPU.training, steps=30, batch_size=8, ema_decay=0.9, warmup=4, checkpoint_every=30),
        pruning=Pruning(importance_draws=1, importance_batch=8, finetune_lr=1e-3, finetune_ema_decay=0.5,
                        finetune_steps=2, finetune_ablation=(0, 4), ratio=0.25, ratio_ablation=(0.125, 0.375),
                        importance_repeats=2, random_masks=2),
        sampling=Sampling(n_generated=8, n_ablation=6, steps=3, batch=8),
        evaluation=Evaluation(feature_network="pooled_pixels", n_reference=12, fid_per_seed=6,
                              fid_per_seed_ablation=4, bootstrap=4, n_figure=3),
        seeds=(0, 1)),
    "cpu": _CPU,
    "paper": _PAPER,
}
ESTIMATED_RUNTIME = {"smoke": 15, "cpu": 2100, "paper": 16 * 3600}   # cpu: see README's timing table
COLUMNS = (
    "stage", "arm", "group", "variant", "importance_law", "prune_ratio", "finetune_steps", "mask", "n_generated",
    "memorization", "memorization_se", "mem_count", "mem_diff", "mem_diff_se", "mem_diff_first", "n_lost", "n_gained",
    "heads_total", "heads_pruned", "pruned_heads", "same_heads_as", "importance_of_pruned", "importance_gap_se", "importance_spearman",
    "importance_mean", "importance_se_mean", "taylor_spearman", "taylor_same_pruned", "finetune_loss",
    "final_loss", "original_fingerprint", "data_fingerprint",
    # quality rows
    "seeds", "masks_per_seed", "memorization_lo", "memorization_hi", "mem_diff_lo", "mem_diff_hi", "mcnemar_p", "fid_group", "n_fid",
    "fid", "fid_lo", "fid_hi", "fid_diff", "fid_diff_lo", "fid_diff_hi", "fid_vs_alg1", "fid_vs_alg1_lo",
    "fid_vs_alg1_hi", "precision", "precision_lo", "precision_hi", "recall", "recall_lo", "recall_hi",
    "fid_real", "fid_real_lo", "fid_real_hi", "null_count", "n_null", "null_rate", "null_lo", "null_hi",
    # protocol
    "n_train", "image_size", "params", "dit", "precondition", "train_steps", "importance", "sampler", "sample_steps",
    "t0", "T", "threshold", "feature_network", "reference_set", "k", "bootstrap",
    "reference_s", "train_s", "importance_s", "finetune_s", "sample_s", "feature_s", "bootstrap_s",
    "seed", "preset", "device", "runtime_s", "point")


# --------------------------------------------------------------------------------------------- the arms
@dataclasses.dataclass(frozen=True)
class Arm:
    """One pruning variant: which heads (``none``, ``least``, ``most``, ``random``), by which time law, how
    many, how long it is fine-tuned, how many masks per seed, samples per seed and FID samples per seed."""

    name: str
    group: str                   # main, finetune, ranking, ratio, time_law
    label: str
    which: str
    law: str
    ratio: float
    finetune_steps: int
    masks: int
    n_samples: int
    fid_count: int               # per seed in the main FID group (0: none)


def arms(cfg: Config) -> list[Arm]:
    """Every arm of the experiment in table order (module docstring)."""
    p, sp, ev = cfg.pruning, cfg.sampling, cfg.evaluation
    n, na = sp.n_generated, sp.n_ablation
    out = [Arm("original", "main", "original", "none", "", 0.0, 0, 1, n, ev.fid_per_seed),
           Arm("alg1", "main", "Alg. 1", "least", p.law, p.ratio, p.finetune_steps, p.importance_repeats, n,
               ev.fid_per_seed),
           Arm("random", "main", "random", "random", "", p.ratio, p.finetune_steps, p.random_masks, n, ev.fid_per_seed)]
    for f in p.finetune_ablation:
        out += [Arm(f"alg1_ft{f}", "finetune", f"Alg. 1, ft {f}", "least", p.law, p.ratio, f, 1, na, 0),
                Arm(f"random_ft{f}", "finetune", f"random, ft {f}", "random", "", p.ratio, f, 1, na, 0)]
    out.append(Arm("most", "ranking", "most important", "most", p.law, p.ratio, p.finetune_steps, 1, na, 0))
    for r in p.ratio_ablation:
        out.append(Arm(f"alg1_{round(100 * r)}pct", "ratio", f"least, {100 * r:g}%", "least", p.law, r,
                       p.finetune_steps, 1, na, 0))
    for law in p.law_ablation:
        out.append(Arm(f"{law}_t", "time_law", f"least, {law} t", "least", law, p.ratio, p.finetune_steps, 1, na, 0))
    return out


def grid(cfg: Config) -> list[dict]:
    """One point per seed, then the pooled quality point (seed -1), which reads the seeds' caches."""
    return [{"stage": "memorization", "seed": s} for s in cfg.seeds] + [{"stage": "quality", "seed": QUALITY_SEED}]


def check_data(cfg: Config) -> None:
    """The files a run reads, checked before it starts (verify.preflight): the exact training images (the
    n_train training images, and with the held-out reference the n_reference images after them) and, for
    Inception features, the FID network."""
    ev = cfg.evaluation
    _io.require_training_images(cfg.n_train + (ev.n_reference if ev.reference == "held_out" else 0), cfg.data_dir)
    if ev.feature_network == "inception":
        _io.require_inception(_io.data_dir(cfg.data_dir) / _io.INCEPTION)


def finetune_config(cfg: Config, steps: int, every: int) -> ImageTrainConfig:
    """The fine-tuning of a pruned model: the original's settings with the pruning's rate and EMA, a
    constant rate after one warm-up step (so the first k steps of a longer run are a k-step run), and the
    state handed over every ``every`` steps."""
    p = cfg.pruning
    return dataclasses.replace(cfg.training, steps=steps, lr=p.finetune_lr, ema_decay=p.finetune_ema_decay, warmup=1,
                               checkpoint_every=max(1, every))


def _derived_seed(*parts) -> int:
    """A generator seed derived from a description (stable across runs and machines)."""
    return int(_io.key_tag(list(parts), 12), 16)


# --------------------------------------------------------------------------------------------- data
def training_images(cfg: Config) -> torch.Tensor:
    """The n_train exact training images at ``image_size`` (uint8 NHWC)."""
    return _io.area_downsample(_io.load_training_images(cfg.n_train, data_dir_path=cfg.data_dir), cfg.image_size)


def real_sets(cfg: Config, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The FID reference images and ``count`` further real images, whose first N are the real-vs-real set at
    any count N <= count (uint8, at ``image_size``); none of them is a training image."""
    ev = cfg.evaluation
    need = ev.n_reference + count
    if ev.reference == "held_out":
        pool = _io.load_training_images(data_dir_path=cfg.data_dir)[cfg.n_train:]
    elif ev.reference == "test_jpeg":
        pool = _io.load_jpeg_npz(_io.data_dir(cfg.data_dir) / _io.TEST_JPEG)[0]
    else:
        raise ValueError(f"reference must be 'held_out' or 'test_jpeg', got {ev.reference!r}")
    if pool.shape[0] < need:
        raise ValueError(f"the reference pool has {pool.shape[0]} images, {need} are needed")
    pool = _io.area_downsample(pool[:need], cfg.image_size)
    return pool[:ev.n_reference], pool[ev.n_reference:]


def null_count(cfg: Config, train_u8: torch.Tensor) -> tuple[int, int]:
    """(memorized, total) of the held-out test images (down-scaled like the training images) against the
    training images: the null rate of the d1/d2 test."""
    test = _io.area_downsample(_io.load_test_images(cfg.evaluation.n_null or None, data_dir_path=cfg.data_dir),
                               cfg.image_size)
    flags = theory.memorized(_flat(test), _flat(train_u8), threshold=THRESHOLD)
    return int(flags.sum()), int(flags.numel())


def _flat(u8: torch.Tensor) -> torch.Tensor:
    return u8.reshape(u8.shape[0], -1).double()


# --------------------------------------------------------------------------------------------- caches
def _seed_dir(cfg: Config, data_fp: str, seed: int):
    """``$MEMSEP_CHECKPOINTS``/cifar_pruning/<hash of the images' fingerprint, model, training, seed>: every
    file of one seed's original model and what is derived from it."""
    key = {"data": data_fp, "n_train": cfg.n_train, "image_size": cfg.image_size, "model": dataclasses.asdict(cfg.model),
           "training": dataclasses.asdict(cfg.training), "seed": seed}
    return _io.checkpoint_root() / NAME / _io.key_tag(key, 12)


@functools.lru_cache(maxsize=4)
def _inception(path: str, device: str):
    return _io.load_inception(path, device=device)


def data_fingerprint(cfg: Config) -> str:
    """A hash of the files the rows are computed from: the training images, the held-out test images (the
    null) and, for Inception features, the network and the FID reference pool (``verify.store``: rows of
    other data are never reused; the per-seed caches are keyed by the images' content as well)."""
    folder = _io.data_dir(cfg.data_dir)
    files = [folder / _io.TRAIN_5K, folder / _io.TEST_EXACT]
    if cfg.evaluation.reference == "test_jpeg":
        files.append(folder / _io.TEST_JPEG)
    if cfg.evaluation.feature_network == "inception":
        files.append(folder / _io.INCEPTION)
    return _io.fingerprint(*[_io.file_fingerprint(f) for f in files])


def _pooled_pixels(x: torch.Tensor) -> torch.Tensor:
    """Stand-in feature network for smoke runs: 4x4 average-pooled pixels (48 features)."""
    return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def features(images: torch.Tensor, cfg: Config, device: str) -> torch.Tensor:
    network = cfg.evaluation.feature_network
    if network == "pooled_pixels":
        return extract_features(images, _pooled_pixels, size=None, device=device)
    if network == "inception":
        net = _inception(str(_io.data_dir(cfg.data_dir) / _io.INCEPTION), device)
        return extract_features(images, net, batch_size=100 if device.startswith("cuda") else 32, device=device)
    raise ValueError(f"feature_network must be 'inception' or 'pooled_pixels', got {network!r}")


def _cached_features(images: torch.Tensor, cfg: Config, device: str) -> torch.Tensor:
    """Features of real images, cached by the images' content and the feature network."""
    ck = _io.Checkpoint(_io.checkpoint_root() / NAME / "features" /
                        f"{_io.fingerprint(images, cfg.evaluation.feature_network)}.pt")
    return ck.cached(lambda: features(images, cfg, device))


# --------------------------------------------------------------------------------------------- one seed
TIMERS = ("train_s", "importance_s", "finetune_s", "sample_s", "feature_s", "bootstrap_s")
"""Seconds spent in each stage of a point (0 where everything came from the caches)."""


class _Timer(dict):
    def add(self, name: str, start: float) -> None:
        self[name] = self.get(name, 0.0) + time.perf_counter() - start


def original_model(cfg: Config, images: torch.Tensor, folder, seed: int, device: str) -> tuple[DiT, dict]:
    """Train (or resume, or load) seed ``seed``'s original model; returns its EMA weights and {step, loss}.
    Raises if training needs more than ``train_chunk_steps`` further steps (rerun to continue)."""
    model = DiT(cfg.model, generator=torch.Generator().manual_seed(seed)).to(device)
    ck = _io.Checkpoint(folder / "original.pt")
    state = ck.load(device)
    if state is not None and int(state["step"]) >= cfg.training.steps:
        model.load_state_dict(state["ema"])
        return model.eval().requires_grad_(False), {"step": int(state["step"]), "loss": float(state["loss"])}
    ema, info = train_denoiser(model, images, cfg.training, seed=seed, resume=state, on_checkpoint=ck.save,
                               max_steps_this_call=cfg.train_chunk_steps)
    if info["step"] < cfg.training.steps:
        raise RuntimeError(f"original model trained to step {info['step']} of {cfg.training.steps}; rerun to resume")
    return ema.eval().requires_grad_(False), info


def heads_string(mask: torch.Tensor) -> str:
    """Masked heads as 'L<layer>H<head>' words ('none' if none), e.g. 'L0H3 L2H1'."""
    return " ".join(f"L{l}H{h}" for l, h in (mask == 0).nonzero().tolist()) or "none"


class _Seed:
    """One seed's original model, importance estimates, masks, samples and features, each computed once and
    cached (lazily: a rerun with everything cached loads files and trains nothing)."""

    def __init__(self, cfg: Config, seed: int, device: str):
        self.cfg, self.seed, self.device, self.timer = cfg, seed, device, _Timer()
        self.train_u8 = training_images(cfg)
        self.data_fp = _io.fingerprint(self.train_u8)
        self.folder = _seed_dir(cfg, self.data_fp, seed)
        self.images = _io.to_model_range(self.train_u8).to(device)
        self._original, self._imps, self._noise = None, {}, None
        self.shape = (cfg.model.depth, cfg.model.heads)

    # the original model -----------------------------------------------------------------------------
    def original(self) -> tuple[DiT, dict]:
        if self._original is None:
            start = time.perf_counter()
            self._original = original_model(self.cfg, self.images, self.folder, self.seed, self.device)
            self.timer.add("train_s", start)
        return self._original

    # importance -------------------------------------------------------------------------------------
    def importance(self, law: str, rep: int) -> HeadImportance:
        """The rep-th independent importance estimate under the time law ``law`` (cached)."""
        if (law, rep) not in self._imps:
            p = self.cfg.pruning
            ck = _io.Checkpoint(self.folder / f"importance_{law}_{rep}_{p.importance_draws}x{p.importance_batch}.pt")

            def compute():
                model = self.original()[0]          # trained first, outside the importance timer
                start = time.perf_counter()
                gen = torch.Generator(device=self.device).manual_seed(_derived_seed("importance", self.seed, law, rep))
                imp = head_importance(model, self.images, draws=p.importance_draws,
                                      batch_size=p.importance_batch, t0=self.cfg.training.t0, T=self.cfg.training.T,
                                      generator=gen, beta=TIME_LAWS[law])
                self.timer.add("importance_s", start)
                return dict(imp._asdict())

            self._imps[(law, rep)] = HeadImportance(**ck.cached(compute))
        return self._imps[(law, rep)]

    def taylor(self) -> dict:
        """How the first-order Taylor score (fresh draws of the same size, Alg. 1's law) compares with the first
        ablation estimate: Spearman correlation and the number of pruned heads they share (cached)."""
        p = self.cfg.pruning
        ck = _io.Checkpoint(self.folder / f"taylor_{p.law}_{p.importance_draws}x{p.importance_batch}.pt")

        def compute():
            model = self.original()[0]
            start = time.perf_counter()
            gen = torch.Generator(device=self.device).manual_seed(_derived_seed("taylor", self.seed))
            tay = head_importance(model, self.images, draws=p.importance_draws, batch_size=p.importance_batch,
                                  t0=self.cfg.training.t0, T=self.cfg.training.T, generator=gen,
                                  beta=TIME_LAWS[p.law], method="taylor")
            self.timer.add("importance_s", start)
            imp = self.importance(p.law, 0)
            same = (prune_mask(imp.mean, p.ratio) == 0) & (prune_mask(tay.mean, p.ratio) == 0)
            return {"taylor_spearman": float(scipy.stats.spearmanr(imp.mean.flatten(), tay.mean.flatten())[0]),
                    "taylor_same_pruned": float(same.sum())}

        return ck.cached(compute)

    # masks --------------------------------------------------------------------------------------------
    def mask(self, arm: Arm, m: int) -> torch.Tensor:
        if arm.which == "none":
            return torch.ones(self.shape)
        if arm.which == "random":
            return random_prune_mask(self.shape, arm.ratio, torch.Generator().manual_seed(_derived_seed("random", self.seed, m)))
        return prune_mask(self.importance(arm.law, m).mean, arm.ratio, which=arm.which)

    # samples --------------------------------------------------------------------------------------------
    def noise(self) -> torch.Tensor:
        """The seed's initial noises, common to every arm (the first n of them for an arm of n samples)."""
        if self._noise is None:
            sp, s = self.cfg.sampling, self.cfg.image_size
            n = max(sp.n_generated, sp.n_ablation)
            gen = torch.Generator().manual_seed(40_000 + self.seed)
            self._noise = theory.prior_sample((n, self.cfg.model.channels, s, s), generator=gen, dtype=torch.float32)
        return self._noise

    def _sample_ck(self, mask: torch.Tensor, ft: int) -> _io.Checkpoint:
        p, sp = self.cfg.pruning, self.cfg.sampling
        key = {"mask": heads_string(mask), "ft": ft, "ft_lr": p.finetune_lr, "ft_ema": p.finetune_ema_decay,
               "sampler": sp.sampler, "steps": sp.steps, "t0": self.cfg.training.t0, "T": self.cfg.training.T}
        return _io.Checkpoint(self.folder / f"samples_{_io.key_tag(key, 16)}.pt")

    def samples(self, requests: dict) -> dict:
        """``requests``: (mask string, ft) -> (mask, n); returns (mask string, ft) -> {"samples": uint8 (n, S, S, 3),
        "finetune_loss"}. Cached per (mask, fine-tuning length); a mask missing any length is fine-tuned once to
        its longest, the models at the shorter lengths taken on the way."""
        out, todo = {}, {}
        for (ms, ft), (mask, n) in requests.items():
            hit = self._sample_ck(mask, ft).load()
            if hit is not None and hit["samples"].shape[0] >= n:
                out[(ms, ft)] = {"samples": hit["samples"][:n], "finetune_loss": hit["finetune_loss"]}
            else:
                todo.setdefault(ms, (mask, {}))[1][ft] = n
        for ms, (mask, lengths) in todo.items():
            for ft, (model, loss) in self._finetuned(mask, sorted(lengths)).items():
                start = time.perf_counter()
                s = self._sample(model, lengths[ft])
                self.timer.add("sample_s", start)
                self._sample_ck(mask, ft).save({"samples": s, "finetune_loss": loss})
                out[(ms, ft)] = {"samples": s, "finetune_loss": loss}
        return out

    def _finetuned(self, mask: torch.Tensor, lengths: list) -> dict:
        """ft -> (model, mean loss of its last <= 100 steps) for every length in ``lengths`` (0: the masked
        original, NaN loss), from one fine-tuning run to the longest."""
        original = self.original()[0]
        model = copy.deepcopy(original).requires_grad_(True)
        set_head_mask(model, mask.to(self.device))
        out = {0: (copy.deepcopy(model).eval(), math.nan)} if 0 in lengths else {}
        positive = [f for f in lengths if f > 0]
        if positive:
            start = time.perf_counter()
            snaps = {}

            def grab(state):
                if state["step"] in positive and state["step"] not in snaps:
                    snaps[state["step"]] = (copy.deepcopy(state["ema"]), float(state["loss"]))

            every = functools.reduce(math.gcd, positive)
            ema, _ = train_denoiser(model, self.images, finetune_config(self.cfg, max(positive), every),
                                    seed=30_000 + self.seed, on_checkpoint=grab)
            for f in positive:
                m = copy.deepcopy(ema)
                m.load_state_dict(snaps[f][0])
                out[f] = (m.eval().requires_grad_(False), snaps[f][1])
            self.timer.add("finetune_s", start)
        return out

    def _sample(self, model: DiT, n: int) -> torch.Tensor:
        """n images (uint8 NHWC): PF ODE or reverse SDE from T to t0 from the seed's first n noises, then the
        Tweedie step x0 = (x + sigma_t0^2 s(x, t0)) / alpha_t0."""
        sp, t0, T = self.cfg.sampling, self.cfg.training.t0, self.cfg.training.T
        noise, out = self.noise(), []
        for i in range(0, n, sp.batch):
            x_T = noise[i:min(n, i + sp.batch)].to(self.device)
            if sp.sampler == "ode":
                x = theory.probability_flow(model.score, x_T, T=T, t0=t0, steps=sp.steps)
            elif sp.sampler == "sde":
                g = torch.Generator(device=self.device).manual_seed(50_000 + 1000 * self.seed + i)
                x = theory.reverse_sde(model.score, x_T, T=T, t0=t0, steps=sp.steps, generator=g)
            else:
                raise ValueError(f"sampler must be 'ode' or 'sde', got {sp.sampler!r}")
            out.append(_io.to_uint8(tweedie_denoise(model.score, x, t0).cpu()))
        return torch.cat(out)

    def sample_features(self, samples: torch.Tensor, mask: torch.Tensor, ft: int) -> torch.Tensor:
        """Features of ``samples``, the first rows of (mask, ft)'s samples; cached per (mask, ft), extended
        when more rows are asked for than are stored."""
        sample_ck = self._sample_ck(mask, ft)
        ck = _io.Checkpoint(sample_ck.path.with_name(f"features_{self.cfg.evaluation.feature_network}_{sample_ck.path.name}"))
        have = ck.load()
        have = have if have is not None else torch.zeros(0, 0, dtype=torch.float64)
        n = samples.shape[0]
        if have.shape[0] < n:
            start = time.perf_counter()
            more = features(samples[have.shape[0]:], self.cfg, self.device)
            have = torch.cat([have, more]) if have.shape[0] else more
            ck.save(have)
            self.timer.add("feature_s", start)
        return have[:n]

    # everything -----------------------------------------------------------------------------------------
    def evaluate(self) -> dict:
        """arm name -> list over masks of {mask, samples, flags, finetune_loss, importance}; plus the original's
        flags. Computes (or loads) every sample of every arm."""
        requests, plan = {}, []
        for arm in arms(self.cfg):
            for m in range(arm.masks):
                mask = self.mask(arm, m)
                key = (heads_string(mask), arm.finetune_steps)
                prev = requests.get(key, (mask, 0))[1]
                requests[key] = (mask, max(prev, arm.n_samples))
                plan.append((arm, m, mask, key))
        got = self.samples(requests)
        train = _flat(self.train_u8)
        result = {}
        for arm, m, mask, key in plan:
            s = got[key]["samples"][:arm.n_samples]
            d1, d2, nn = theory.neighbour_distances(_flat(s), train)
            result.setdefault(arm.name, []).append({"mask": mask, "key": key, "samples": s, "flags": d1 < THRESHOLD * d2,
                                                   "ratios": d1 / d2, "nn": nn,
                                                   "finetune_loss": got[key]["finetune_loss"]})
        return result


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    threads = torch.get_num_threads()
    if device == "cpu" and cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    try:
        ref_s = _reference_timing()
        rows = _quality_rows(cfg, device) if point["stage"] == "quality" else _seed_rows(point["seed"], cfg, device)
        for row in rows:
            row["reference_s"] = ref_s
        return rows
    finally:
        torch.set_num_threads(threads)


def _reference_timing() -> float:
    """Seconds for 20 products of two 1024 x 1024 float32 matrices on one thread (5 timed, times 4): the
    yardstick that lets a timing taken on a loaded machine be rescaled (README's timing table)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
        a @ b
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        return round(4 * (time.perf_counter() - start), 4)
    finally:
        torch.set_num_threads(threads)


def _seed_rows(seed: int, cfg: Config, device: str) -> list[dict]:
    run = _Seed(cfg, seed, device)
    result = run.evaluate()
    original, info = run.original()
    fingerprint = _io.fingerprint(*[p.detach() for p in original.parameters()])
    imp0 = run.importance(cfg.pruning.law, 0)
    common = {"final_loss": info["loss"], "original_fingerprint": fingerprint, "data_fingerprint": run.data_fp,
              "importance_mean": float(imp0.mean.mean()), "importance_se_mean": float(imp0.stderr.mean()),
              **run.taylor(), **_protocol(cfg)}
    orig_flags = result["original"][0]["flags"]
    first_of = {}                         # mask key -> the first "arm mask m" with it
    rows = []
    for arm in arms(cfg):
        for m, r in enumerate(result[arm.name]):
            rows.append(_seed_row(run, arm, m, r, orig_flags, first_of, cfg, common))
            if seed == cfg.seeds[0] and arm.name in MAIN and m == 0:
                rows[-1].update(_examples(r, run.train_u8, cfg.evaluation.n_figure))
    for arm in arms(cfg):                 # features of the quality subsets, cached for the quality stage
        count = max(arm.fid_count, cfg.evaluation.fid_per_seed_ablation)
        r = result[arm.name][0]
        run.sample_features(r["samples"][:count], r["mask"], arm.finetune_steps)
    for row in rows:
        row.update({k: round(run.timer.get(k, 0.0), 3) for k in TIMERS})
    return rows


def _seed_row(run: _Seed, arm: Arm, m: int, r: dict, orig_flags: torch.Tensor, first_of: dict, cfg: Config,
              common: dict) -> dict:
    flags, n = r["flags"], r["flags"].numel()
    base = orig_flags[:n]
    diff = flags.double() - base.double()
    mask = r["mask"]
    key = r["key"]
    same = first_of.setdefault(key, f"{arm.name} mask {m}")
    row = {"stage": "memorization", "arm": arm.name, "group": arm.group, "variant": arm.which,
           "importance_law": arm.law, "prune_ratio": arm.ratio, "finetune_steps": arm.finetune_steps, "mask": m,
           "n_generated": n, "memorization": float(flags.double().mean()),
           "memorization_se": float(flags.double().std(unbiased=False) / math.sqrt(n)), "mem_count": int(flags.sum()),
           "mem_diff": float(diff.mean()), "mem_diff_se": float(diff.std() / math.sqrt(n)) if n > 1 else math.nan,
           "mem_diff_first": float(diff[:cfg.sampling.n_ablation].mean()),
           "n_lost": int((base & ~flags).sum()), "n_gained": int((flags & ~base).sum()),
           "heads_total": cfg.model.depth * cfg.model.heads, "heads_pruned": int((mask == 0).sum()),
           "pruned_heads": heads_string(mask), "same_heads_as": "" if same == f"{arm.name} mask {m}" else same,
           "finetune_loss": r["finetune_loss"], **common}
    if arm.which in ("least", "most"):
        imp = run.importance(arm.law, m)
        row["importance_of_pruned"] = float((imp.mean * (mask == 0)).sum())
        row["importance_gap_se"] = importance_gap(imp, arm.ratio, which=arm.which)
        ref = run.importance(cfg.pruning.law, 0).mean.flatten()
        row["importance_spearman"] = float(scipy.stats.spearmanr(imp.mean.flatten(), ref)[0])
    return row


def _protocol(cfg: Config) -> dict:
    """The columns that say how the rows were produced."""
    m, p, sp, ev = cfg.model, cfg.pruning, cfg.sampling, cfg.evaluation
    return {"n_train": cfg.n_train, "image_size": cfg.image_size, "params": dit_parameter_count(m),
            "dit": f"W{m.width}-L{m.depth}-H{m.heads}-p{m.patch}", "precondition": m.precondition,
            "train_steps": cfg.training.steps,
            "importance": f"ablation, t=t_vp(u), u~Beta{TIME_LAWS[p.law]} (Alg. 1), {p.importance_draws}x"
                          f"{p.importance_batch} draws, {p.importance_repeats} estimates",
            "sampler": sp.sampler, "sample_steps": sp.steps, "t0": cfg.training.t0, "T": cfg.training.T,
            "threshold": THRESHOLD, "feature_network": ev.feature_network,
            "reference_set": f"{ev.reference} ({ev.n_reference})", "k": PR_K, "bootstrap": ev.bootstrap}


def _examples(r: dict, train_u8: torch.Tensor, count: int) -> dict:
    """The first ``count`` samples and their nearest training images as hex-encoded uint8 NHWC pixels, with
    their d1/d2 ratios (space-separated): what the figure's bottom row shows."""
    count = min(count, r["samples"].shape[0])
    return {"example_samples": _hex(r["samples"][:count]), "example_neighbours": _hex(train_u8[r["nn"][:count]]),
            "example_ratios": " ".join(f"{x:.6g}" for x in r["ratios"][:count].tolist())}


def _hex(images: torch.Tensor) -> str:
    return images.contiguous().numpy().astype(np.uint8).tobytes().hex()


def unhex(text: str, size: int) -> np.ndarray:
    """The inverse of ``_hex``: (N, size, size, 3) uint8."""
    return np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(-1, size, size, 3)


# --------------------------------------------------------------------------------------------- quality
def _quality_rows(cfg: Config, device: str) -> list[dict]:
    """The pooled rows (module docstring): per arm, memorization over seeds (seed_t) and paired McNemar; FID,
    precision and recall with bootstrap_sd intervals in two groups (main arms at fid_per_seed per seed,
    every arm at fid_per_seed_ablation), each beside the real-vs-real value and the memorizer at that count;
    the null."""
    ev, timer = cfg.evaluation, _Timer()
    runs = [_Seed(cfg, s, device) for s in cfg.seeds]
    results = [run.evaluate() for run in runs]
    train_u8 = runs[0].train_u8
    k_null, n_null = null_count(cfg, train_u8)
    null = stats.wilson_interval(k_null, n_null)
    common = {"stage": "quality", "seeds": len(cfg.seeds), "null_count": k_null, "n_null": n_null,
              "null_rate": null.estimate, "null_lo": null.lo, "null_hi": null.hi, **_protocol(cfg)}
    S = len(cfg.seeds)
    groups = {"main": [a for a in arms(cfg) if a.fid_count > 0], "ablation": arms(cfg)}
    counts = {"main": ev.fid_per_seed, "ablation": ev.fid_per_seed_ablation}
    start = time.perf_counter()
    ref_u8, real_u8 = real_sets(cfg, S * max(counts.values()))
    ref, real_all = _cached_features(ref_u8, cfg, device), _cached_features(real_u8, cfg, device)
    real = {S * c: real_all[:S * c] for c in counts.values()}
    train_feats = _cached_features(train_u8, cfg, device)
    timer.add("feature_s", start)
    gen = torch.Generator().manual_seed(_derived_seed("quality bootstrap"))
    rows = []
    quality = {}
    for group, members in groups.items():
        c = counts[group]
        strata = torch.arange(S).repeat_interleave(c)
        sets = {}
        for arm in members:
            parts = []
            for run, res in zip(runs, results):
                r = res[arm.name][0]
                count = max(arm.fid_count, ev.fid_per_seed_ablation)
                parts.append(run.sample_features(r["samples"][:count], r["mask"], arm.finetune_steps)[:c])
            sets[arm.name] = torch.cat(parts)
        memorizer = train_feats[torch.randint(train_feats.shape[0], (S * c,), generator=gen)]
        sets["memorizer"] = memorizer
        start = time.perf_counter()
        draws = quality_bootstrap(ref, sets, resamples=ev.bootstrap, generator=gen, strata=strata, k=PR_K)
        real_draws = quality_bootstrap(ref, {"real": real[S * c]}, resamples=ev.bootstrap, generator=gen, k=PR_K)
        timer.add("bootstrap_s", start)
        point = {name: _quality_point(ref, f) for name, f in {**sets, "real": real[S * c]}.items()}
        allq = {**draws, **real_draws}
        quality[group] = (point, allq)
        real_iv = stats.bootstrap_sd_interval(point["real"]["fid"], allq["real"].fid)
        for name in list(sets) + ["real"]:
            row = {"arm": name, "fid_group": group, "n_fid": S * c, "seed": QUALITY_SEED, **common,
                   "fid_real": real_iv.estimate, "fid_real_lo": real_iv.lo, "fid_real_hi": real_iv.hi}
            for metric, top in (("fid", math.inf), ("precision", 1.0), ("recall", 1.0)):
                iv = stats.bootstrap_sd_interval(point[name][metric], getattr(allq[name], metric))
                row.update({metric: iv.estimate, f"{metric}_lo": max(iv.lo, 0.0), f"{metric}_hi": min(iv.hi, top)})
            for other, col in (("original", "fid_diff"), ("alg1", "fid_vs_alg1")):
                if name in sets and name not in ("memorizer", other) and other in sets:
                    iv = stats.bootstrap_sd_interval(point[name]["fid"] - point[other]["fid"],
                                                     allq[name].fid - allq[other].fid)
                    row.update({col: iv.estimate, f"{col}_lo": iv.lo, f"{col}_hi": iv.hi})
            if name in [a.name for a in members]:
                row.update(_memorization_summary(next(a for a in members if a.name == name), results, cfg))
            elif name == "memorizer":
                row.update({"memorization": 1.0, "group": "baseline", "label": "memorizer (training images)"})
            else:
                row.update({"group": "baseline", "label": "real (held-out images)"})
            rows.append(row)
    rows.append({"arm": NULL_ARM, "group": "baseline", "seed": QUALITY_SEED, **common, "memorization": null.estimate,
                 "memorization_lo": null.lo, "memorization_hi": null.hi, "n_generated": n_null, "mem_count": k_null})
    for run in runs:                      # work redone for a seed whose caches were missing
        for k, v in run.timer.items():
            timer[k] = timer.get(k, 0.0) + v
    for row in rows:
        row.update({k: round(timer.get(k, 0.0), 3) for k in TIMERS})
    return rows


def _quality_point(ref: torch.Tensor, feats: torch.Tensor) -> dict:
    pr = precision_recall(ref, feats, k=PR_K)
    return {"fid": fid(ref, feats), "precision": pr.precision.mean, "recall": pr.recall.mean}


def _memorization_summary(arm: Arm, results: list, cfg: Config) -> dict:
    """Per arm over seeds: memorization and its paired difference from the original (each seed's value the
    mean over its masks), with seed_t intervals; the pooled McNemar test of the discordant pairs."""
    levels, diffs, lost, gained = [], [], 0, 0
    for res in results:
        orig = res["original"][0]["flags"]
        lv, dv = [], []
        for r in res[arm.name]:
            f = r["flags"]
            base = orig[:f.numel()]
            lv.append(float(f.double().mean()))
            dv.append(float((f.double() - base.double()).mean()))
            lost, gained = lost + int((base & ~f).sum()), gained + int((f & ~base).sum())
        levels.append(np.mean(lv))
        diffs.append(np.mean(dv))
    level, diff = stats.seed_t_interval(levels), stats.seed_t_interval(diffs)
    p = float(scipy.stats.binomtest(min(lost, gained), lost + gained).pvalue) if lost + gained else 1.0
    return {"group": arm.group, "label": arm.label, "variant": arm.which, "importance_law": arm.law,
            "prune_ratio": arm.ratio, "finetune_steps": arm.finetune_steps, "masks_per_seed": arm.masks,
            "n_generated": arm.n_samples, "memorization": level.estimate, "memorization_lo": level.lo,
            "memorization_hi": level.hi, "mem_diff": diff.estimate, "mem_diff_lo": diff.lo, "mem_diff_hi": diff.hi,
            "n_lost": lost, "n_gained": gained, "mcnemar_p": p,
            "heads_pruned": round(arm.ratio * cfg.model.depth * cfg.model.heads),
            "heads_total": cfg.model.depth * cfg.model.heads}


# --------------------------------------------------------------------------------------------- table views
def seed_rows(table: pd.DataFrame) -> pd.DataFrame:
    t = table[table["error"].isna()] if "error" in table.columns else table
    return t[t["stage"] == "memorization"]


def quality_rows(table: pd.DataFrame) -> pd.DataFrame:
    t = table[table["error"].isna()] if "error" in table.columns else table
    return t[t["stage"] == "quality"]


def seed_effects(table: pd.DataFrame, value: str = "mem_diff", first_mask: bool = False) -> pd.DataFrame:
    """seed x arm: each seed's mean over its masks (or its first mask only) of ``value``: ``mem_diff`` is the
    arm's memorization minus the original's on the same noises (all of the arm's samples), ``mem_diff_first``
    the same over the first ``n_ablation`` noises (the count every ablation arm uses: like for like)."""
    s = seed_rows(table)
    if first_mask:
        s = s[s["mask"] == 0]
    return s.pivot_table(index="seed", columns="arm", values=value, aggfunc="mean")


def arm_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (table order) and FID group: the quality stage's summary columns."""
    q = quality_rows(table)
    cols = ["arm", "fid_group", "label", "n_generated", "memorization", "memorization_lo", "memorization_hi",
            "mem_diff", "mem_diff_lo", "mem_diff_hi", "mcnemar_p", "n_fid", "fid", "fid_lo", "fid_hi", "fid_diff",
            "fid_diff_lo", "fid_diff_hi", "precision", "precision_lo", "precision_hi", "recall", "recall_lo",
            "recall_hi", "fid_real"]
    return q[[c for c in cols if c in q.columns]].reset_index(drop=True)


# --------------------------------------------------------------------------------------------- figure
def plot(table: pd.DataFrame, cfg: Config):
    import matplotlib.pyplot as plt

    summ = arm_summary(table)
    print(f"[{NAME}] per arm (memorization: mean over seeds, seed_t 95%; FID: bootstrap_sd 95%):\n"
          f"{summ.round(4).to_string()}", file=sys.stderr)
    q = quality_rows(table)
    order = [a.name for a in arms(cfg) if a.name in set(q["arm"])]
    fig = plt.figure(figsize=(17, 8.6))
    outer = fig.add_gridspec(2, 1, height_ratios=[1.55, 0.55], hspace=0.3, top=0.9, bottom=0.03, left=0.05, right=0.98)
    top = outer[0].subgridspec(2, 2, hspace=0.55, wspace=0.12)
    labels = {a.name: a.label for a in arms(cfg)}
    _memorization_panel(fig.add_subplot(top[0, 0]), table, q, order, labels)
    _difference_panel(fig.add_subplot(top[0, 1]), table, q, order, labels)
    _fid_panel(fig.add_subplot(top[1, 0]), q, order, labels)
    _pr_panel(fig.add_subplot(top[1, 1]), q, order, labels)
    s = seed_rows(table)
    row0 = s.iloc[0] if len(s) else q.iloc[0]
    fig.suptitle(f"Algorithm 1 (head pruning) on CIFAR-10, cpu variant: n={int(row0['n_train'])} images at "
                 f"{int(row0['image_size'])}x{int(row0['image_size'])}, DiT {row0['dit']} ({int(row0['params']):,} "
                 f"parameters), {int(row0['train_steps'])} steps, {s['seed'].nunique()} seeds (one original each)",
                 fontsize=11, y=0.985)
    fig.text(0.5, 0.948, "paper: DiT on 5,000 32x32 images, FID from 10k samples. Error bars: memorization, mean over "
             "seeds with 95% seed-t interval (dots: seeds); FID / precision / recall, 95% bootstrap-sd interval "
             "(samples within seeds and reference redrawn)", ha="center", fontsize=8.5)
    _examples_panel(fig, outer[1], s, labels)
    return fig


def _arm_colour(name: str) -> str:
    return {"original": "C0", "alg1": "C2", "random": "C3"}.get(name, "C2" if name.startswith(("alg1", "uniform",
                                                                "large")) else ("C3" if name.startswith("random") else "C4"))


def _group_separators(ax, order, q):
    groups = [q[q["arm"] == a]["group"].iloc[0] for a in order]
    for i in range(1, len(order)):
        if groups[i] != groups[i - 1]:
            ax.axvline(i - 0.5, color="0.8", lw=0.8)


def _memorization_panel(ax, table, q, order, labels):
    s = seed_rows(table)
    per_seed = s.groupby(["arm", "seed"])["memorization"].mean()
    for i, a in enumerate(order):
        r = q[(q["arm"] == a)].iloc[0]
        ax.errorbar(i, r["memorization"], yerr=[[r["memorization"] - r["memorization_lo"]],
                                                [r["memorization_hi"] - r["memorization"]]],
                    fmt="o", color=_arm_colour(a), capsize=3, ms=5)
        if a in per_seed.index.get_level_values(0):
            v = per_seed.loc[a].values
            ax.plot(i + 0.18 + np.zeros(len(v)), v, ".", color="0.45", ms=3)
        if a in PAPER:
            ax.plot(i - 0.22, PAPER[a]["memorization"], marker="D", mfc="none", mec="k", ms=6,
                    label="paper (5k images, 32x32)" if a == "original" else None)
    nr = q[q["arm"] == NULL_ARM]
    if len(nr):
        r = nr.iloc[0]
        ax.axhspan(r["null_lo"], max(r["null_hi"], 0.004), color="0.6", alpha=0.5,
                   label=f"null: {int(r['null_count'])}/{int(r['n_null'])} held-out test images (Wilson 95%)")
    _group_separators(ax, order, q)
    ax.set_xticks(range(len(order)), [labels[a] for a in order], rotation=30, ha="right", fontsize=7.5)
    ax.set_ylim(-0.02, 1.0)
    ax.set_ylabel("memorized fraction (d1/d2 < 1/3)", fontsize=8)
    counts = s.groupby("group")["n_generated"].max()
    main_n = int(counts.get("main", 0))
    abl_n = int(counts.drop("main", errors="ignore").max()) if len(counts.drop("main", errors="ignore")) else main_n
    ax.set_title(f"memorization per arm (main arms {main_n} samples/seed, ablations {abl_n}); diamonds: paper",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper right")


def _difference_panel(ax, table, q, order, labels):
    eff = seed_effects(table)
    arms_ = [a for a in order if a != "original"]
    for i, a in enumerate(arms_):
        r = q[q["arm"] == a].iloc[0]
        ax.errorbar(i, 100 * r["mem_diff"], yerr=[[100 * (r["mem_diff"] - r["mem_diff_lo"])],
                                                  [100 * (r["mem_diff_hi"] - r["mem_diff"])]],
                    fmt="o", color=_arm_colour(a), capsize=3, ms=5)
        if a in eff.columns:
            v = 100 * eff[a].dropna().values
            ax.plot(i + 0.18 + np.zeros(len(v)), v, ".", color="0.45", ms=3)
        if a in PAPER:
            ax.plot(i - 0.22, 100 * (PAPER[a]["memorization"] - PAPER["original"]["memorization"]), marker="D",
                    mfc="none", mec="k", ms=6, label="paper" if a == "alg1" else None)
    ax.axhline(0, color="k", lw=0.8)
    _group_separators(ax, arms_, q)
    ax.set_xticks(range(len(arms_)), [labels[a] for a in arms_], rotation=30, ha="right", fontsize=7.5)
    ax.set_ylabel("arm - original (points)", fontsize=8)
    ax.set_title("memorization change against the original, paired by seed and noise (95% seed-t)", fontsize=9)
    ax.legend(fontsize=7, loc="lower left")


def _fid_panel(ax, q, order, labels):
    xs = {a: i for i, a in enumerate(order)}
    for group, marker, off in (("main", "o", -0.12), ("ablation", "s", 0.12)):
        g = q[q["fid_group"] == group]
        if not len(g):
            continue
        n = int(g["n_fid"].iloc[0])
        for _, r in g[g["arm"].isin(order)].iterrows():
            ax.errorbar(xs[r["arm"]] + off, r["fid"], yerr=[[r["fid"] - r["fid_lo"]], [r["fid_hi"] - r["fid"]]],
                        fmt=marker, color=_arm_colour(r["arm"]), capsize=2, ms=4, mfc="white" if group == "ablation" else None)
        for name, ls in (("real", "--"), ("memorizer", ":")):
            rr = g[g["arm"] == name]
            if len(rr):
                rr = rr.iloc[0]
                ax.axhspan(rr["fid_lo"], rr["fid_hi"], color="0.5" if name == "real" else "C1", alpha=0.15)
                ax.axhline(rr["fid"], ls=ls, color="0.3" if name == "real" else "C1", lw=0.9,
                           label=f"{'real vs real' if name == 'real' else 'memorizer (train images)'}, N={n}")
        ax.plot([], [], marker, color="0.3", mfc="white" if group == "ablation" else None,
                label=f"{'main' if group == 'main' else 'all arms'}: N={n} pooled samples")
    _group_separators(ax, order, q)
    ax.set_xticks(range(len(order)), [labels[a] for a in order], rotation=30, ha="right", fontsize=7.5)
    ax.set_ylabel("FID (Inception pool3)", fontsize=8)
    ax.set_title("FID against held-out real images, with the real-vs-real value at the same N", fontsize=9)
    paper = ", ".join(f"{k} {v['fid']:g}" for k, v in PAPER.items())
    ax.text(0.99, 0.03, f"paper (10k samples, 32x32; not comparable in level): {paper}", transform=ax.transAxes,
            ha="right", fontsize=7, bbox=dict(fc="white", ec="0.7"))
    ax.legend(fontsize=6.5, loc="upper left", ncol=2)


def _pr_panel(ax, q, order, labels):
    xs = {a: i for i, a in enumerate(order)}
    g = q[q["fid_group"] == "ablation"]
    n = int(g["n_fid"].iloc[0]) if len(g) else 0
    for metric, colour, off in (("precision", "C0", -0.12), ("recall", "C1", 0.12)):
        sub = g[g["arm"].isin(order)]
        ax.errorbar([xs[a] + off for a in sub["arm"]], sub[metric],
                    yerr=[sub[metric] - sub[f"{metric}_lo"], sub[f"{metric}_hi"] - sub[metric]],
                    fmt="o", color=colour, capsize=2, ms=4, label=f"{metric} (N={n})")
        rr = g[g["arm"] == "real"]
        if len(rr):
            ax.axhline(rr[metric].iloc[0], color=colour, ls="--", lw=0.9, label=f"{metric}, real vs real")
        for a in order:
            if a in PAPER:
                ax.plot(xs[a] + off, PAPER[a][metric], marker="D", mfc="none", mec=colour, ms=6)
    _group_separators(ax, order, q)
    ax.set_xticks(range(len(order)), [labels[a] for a in order], rotation=30, ha="right", fontsize=7.5)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("improved precision / recall (k=3)", fontsize=8)
    ax.set_title("precision and recall (95% bootstrap-sd; diamonds: paper)", fontsize=9)
    ax.legend(fontsize=6.5, loc="center right", ncol=2)


def _examples_panel(fig, spec, s, labels):
    ex = s[s["example_samples"].notna()] if "example_samples" in s.columns else s.iloc[:0]
    if not len(ex):
        return
    seed = int(ex["seed"].min())
    cells = spec.subgridspec(1, len(MAIN), wspace=0.08)
    for j, a in enumerate(MAIN):
        rows = ex[(ex["arm"] == a) & (ex["seed"] == seed)]
        if not len(rows):
            continue
        row = rows.iloc[0]
        size = int(row["image_size"])
        smp, nbr = unhex(row["example_samples"], size), unhex(row["example_neighbours"], size)
        ratios = [float(r) for r in str(row["example_ratios"]).split()]
        ax = fig.add_subplot(cells[0, j])
        pad = np.full((size, 2, 3), 255, np.uint8)
        top = np.concatenate([np.concatenate([im, pad], 1) for im in smp], 1)
        bottom = np.concatenate([np.concatenate([im, pad], 1) for im in nbr], 1)
        ax.imshow(np.concatenate([top, np.full((2, top.shape[1], 3), 255, np.uint8), bottom], 0), interpolation="nearest")
        for i, r in enumerate(ratios):
            ax.text(i * (size + 2) + size / 2, 2 * size + 2 + 2.5, f"{r:.2f}", ha="center", va="top", fontsize=6.5,
                    color="C3" if r < THRESHOLD else "0.3")
        ax.set_xticks([])
        ax.set_yticks([size / 2, 1.5 * size + 2], ["sample", "nearest\ntrain"], fontsize=7)
        ax.set_title(f"{labels[a]} (seed {seed}, mask 0): samples, nearest training image, d1/d2 (red: memorized)",
                     fontsize=7.5)


# --------------------------------------------------------------------------------------------- claims
def _range_tested(table: pd.DataFrame) -> str:
    s = seed_rows(table)
    r = s.iloc[0]
    return (f"cpu variant: {r['dit']} DiT ({int(r['params']):,} parameters) on n = {int(r['n_train'])} CIFAR-10 images "
            f"at {int(r['image_size'])}x{int(r['image_size'])}, {s['seed'].nunique()} seeds (one original each) x "
            f"{int(s[s['arm'] == 'original']['n_generated'].iloc[0])} samples, {int(r['train_steps'])} steps")


def _effect(table: pd.DataFrame, arm: str, like_for_like: bool = False) -> stats.Interval:
    """Mean over seeds of an arm's paired memorization change (seed means over masks), seed_t interval;
    ``like_for_like``: first masks only, over the first n_ablation noises (as the ablation arms)."""
    eff = seed_effects(table, "mem_diff_first", True) if like_for_like else seed_effects(table)
    return stats.seed_t_interval(eff[arm].values if arm in eff.columns else [])


def _contrast(table: pd.DataFrame, a: str, b: str, like_for_like: bool = False) -> stats.Interval:
    """Mean over seeds of (effect of a - effect of b), seed_t interval (paired by seed); ``like_for_like`` as
    in ``_effect`` (for contrasts involving an ablation arm)."""
    eff = seed_effects(table, "mem_diff_first", True) if like_for_like else seed_effects(table)
    if a not in eff.columns or b not in eff.columns:
        return stats.seed_t_interval([])
    return stats.seed_t_interval((eff[a] - eff[b]).values)


def _quality(table: pd.DataFrame, arm: str, group: str) -> pd.Series | None:
    q = quality_rows(table)
    r = q[(q["arm"] == arm) & (q["fid_group"] == group)]
    return r.iloc[0] if len(r) else None


def _relative(row: pd.Series, col: str, base: float) -> stats.Interval:
    """A FID difference column with its interval, divided by the original's FID ``base``."""
    return stats.Interval(row[col] / base, row[f"{col}_lo"] / base, row[f"{col}_hi"] / base, 0.95, "bootstrap_sd")


def _pts(iv: stats.Interval) -> str:
    return f"{100 * iv.estimate:+.1f} [{100 * iv.lo:+.1f}, {100 * iv.hi:+.1f}] points"


def _precondition(table: pd.DataFrame, min_excess: float) -> tuple[str | None, list[str], str]:
    """(reason the table cannot decide or None, confounds, text on the baselines)."""
    s, q = seed_rows(table), quality_rows(table)
    if not len(s) or not len(q) or "original" not in set(s["arm"]):
        return "no memorization or quality rows", [], ""
    confounds = []
    nr = q[q["arm"] == NULL_ARM]
    null = float(nr["memorization"].iloc[0]) if len(nr) else math.nan
    orig = _effect_level(table, "original")
    text = (f"original memorizes {orig.estimate:.3f} [{orig.lo:.3f}, {orig.hi:.3f}] (seed_t) against a null of "
            + (f"{int(nr['null_count'].iloc[0])}/{int(nr['n_null'].iloc[0])} held-out test images "
               f"(Wilson upper {nr['null_hi'].iloc[0]:.4f})" if len(nr) else "(no null row)"))
    fps = s[s["arm"] == "original"].groupby("seed")["original_fingerprint"].first()
    if fps.nunique() < len(fps):
        confounds.append(f"seeds share an original model ({fps.nunique()} distinct of {len(fps)})")
    if not len(nr):
        return "no null row", confounds, text
    if not orig.lo - null > min_excess:
        return f"the original's memorization does not exceed the null by {min_excess:g}", confounds, text
    return None, confounds, text


def _effect_level(table: pd.DataFrame, arm: str) -> stats.Interval:
    s = seed_rows(table)
    return stats.seed_t_interval(s[s["arm"] == arm].groupby("seed")["memorization"].mean().values)


def judge_pruning(table, *, min_excess=0.2, fid_tolerance=0.05):
    """Rule: precondition: the original models memorize: the lower end of the seed_t interval of their
    memorization exceeds the null (held-out test images) by min_excess; otherwise inconclusive. Three parts,
    all required. (1) Algorithm 1 lowers memorization: alg1 - original memorization (paired by seed and noise,
    each seed's mean over its K masks) has its seed_t interval below 0 (does not hold if it lies at or above
    0). (2) At equal FID: FID(alg1) - FID(original) over FID(original) (main FID group, paired bootstrap_sd
    interval) lies below fid_tolerance (does not hold if it lies at or above it). (3) Unlike random pruning:
    random pruning fails to do the same, i.e. its FID is worse than alg1's by more than fid_tolerance of the
    original's (bootstrap_sd interval above), or it lowers memorization less than alg1 (random - alg1 effect,
    seed_t interval above 0); does not hold if neither: random lowers memorization at least as much (interval
    at or below 0) at an FID no worse than alg1's by fid_tolerance (interval below). (The paper, 5 runs:
    memorization 73.8% -> 68.6%, FID 15.5 -> 15.1, random 66.9% at FID 17.1.)"""
    stat = "alg1 - original memorization (paired by seed)"
    reason, confounds, base_text = _precondition(table, min_excess)
    if reason is not None:
        return inconclusive(stat, f"{reason}; {base_text}", confounds=confounds)
    rng = _range_tested(table)
    drop = _effect(table, "alg1")
    orig_q, alg_q, rnd_q = (_quality(table, a, "main") for a in MAIN)
    if orig_q is None or alg_q is None or rnd_q is None:
        return inconclusive(stat, "no main-group quality rows", confounds=confounds, range_tested=rng)
    base = float(orig_q["fid"])
    rel = _relative(alg_q, "fid_diff", base)
    rnd_vs_alg = _relative(rnd_q, "fid_vs_alg1", base)
    versus = _contrast(table, "random", "alg1")
    rnd = _effect(table, "random")
    fid_text = (f"FID original {base:.1f} [{orig_q['fid_lo']:.1f}, {orig_q['fid_hi']:.1f}], alg1 {alg_q['fid']:.1f}, "
                f"random {rnd_q['fid']:.1f}; real vs real {orig_q['fid_real']:.1f} at N = {int(orig_q['n_fid'])}")
    parts = [finding(stat, drop, decide_below(drop.lo, drop.hi, 0.0),
                     f"{base_text}; alg1 - original {_pts(drop)} (pooled McNemar p = {_quality(table, 'alg1', 'main')['mcnemar_p']:.3g})",
                     range_tested=rng),
             finding("(FID(alg1) - FID(original)) / FID(original)", rel, decide_below(rel.lo, rel.hi, fid_tolerance),
                     f"relative FID change of alg1 {rel.estimate:+.3f} [{rel.lo:+.3f}, {rel.hi:+.3f}]; {fid_text}",
                     range_tested=rng)]
    unlike = any_of([
        finding("(FID(random) - FID(alg1)) / FID(original)", rnd_vs_alg,
                decide_above(rnd_vs_alg.lo, rnd_vs_alg.hi, fid_tolerance),
                f"random's FID against alg1's {rnd_vs_alg.estimate:+.3f} [{rnd_vs_alg.lo:+.3f}, {rnd_vs_alg.hi:+.3f}] "
                "of the original's", range_tested=rng),
        finding("random - alg1 memorization change (paired by seed)", versus, decide_above(versus.lo, versus.hi, 0.0),
                f"random - original {_pts(rnd)}; random - alg1 {_pts(versus)}", range_tested=rng)])
    parts.append(dataclasses.replace(unlike, text="unlike random: " + unlike.text))
    return all_of(parts, confounds=confounds, range_tested=rng)


def judge_time_law(table, *, min_excess=0.2):
    """Ablation: does the small-t law of the importance matter? Rule: the masks chosen by small-t importance
    lower memorization more than those chosen by uniform-t and by large-t importance: for each other law,
    (effect of alg1's first mask at small t) - (effect of that law's mask), paired by seed, has its seed_t
    interval below 0; holds if both do, does not hold if either lies at or above 0 (a law whose masks equal
    the small-t masks in every seed gives exactly 0: the time law does not change what is pruned).
    Precondition as head_pruning's."""
    stat = "small-t minus other-law memorization change (paired by seed)"
    reason, confounds, base_text = _precondition(table, min_excess)
    if reason is not None:
        return inconclusive(stat, reason, confounds=confounds)
    rng = _range_tested(table)
    s = seed_rows(table)
    small = s[(s["arm"] == "alg1") & (s["mask"] == 0)].set_index("seed")
    parts = []
    for arm in [a for a in dict.fromkeys(s["arm"]) if s[s["arm"] == a]["group"].iloc[0] == "time_law"]:
        rows = s[s["arm"] == arm].set_index("seed")
        law = rows["importance_law"].iloc[0]
        iv = _contrast(table, "alg1", arm, like_for_like=True)
        same = int((rows["pruned_heads"] == small["pruned_heads"].reindex(rows.index)).sum())
        parts.append(finding(f"small-t - {law}-t memorization change", iv, decide_below(iv.lo, iv.hi, 0.0),
                             f"{law}-t masks: the same heads as small t in {same} of {len(rows)} seeds; "
                             f"{law}-t {_pts(_effect(table, arm, True))}, small-t {_pts(_effect(table, 'alg1', True))} "
                             f"(first masks, first {int(rows['n_generated'].iloc[0])} samples); small - {law} {_pts(iv)}",
                             range_tested=rng))
        if same:
            confounds.append(f"{law}-t importance pruned the same heads as small t in {same} of {len(rows)} seeds "
                             "(their difference is exactly 0 there)")
    if not parts:
        return inconclusive(stat, "no time-law ablation rows", confounds=confounds, range_tested=rng)
    return all_of(parts, confounds=confounds, range_tested=rng)


def judge_least_vs_most(table, *, min_excess=0.2):
    """Ablation: is the importance ranking meaningful? Rule: pruning the most important heads costs more
    quality than pruning the least important ones: FID(most) - FID(alg1 at the same count) (ablation FID group,
    paired bootstrap_sd interval) above 0 holds, at or below 0 does not hold. The memorization changes of both
    are reported beside it. Precondition as head_pruning's."""
    stat = "FID(most important pruned) - FID(least important pruned)"
    reason, confounds, base_text = _precondition(table, min_excess)
    if reason is not None:
        return inconclusive(stat, reason, confounds=confounds)
    rng = _range_tested(table)
    most = _quality(table, "most", "ablation")
    if most is None:
        return inconclusive(stat, "no ablation quality rows", confounds=confounds, range_tested=rng)
    iv = stats.Interval(most["fid_vs_alg1"], most["fid_vs_alg1_lo"], most["fid_vs_alg1_hi"], 0.95, "bootstrap_sd")
    text = (f"FID most - least {iv.estimate:+.1f} [{iv.lo:+.1f}, {iv.hi:+.1f}] at N = {int(most['n_fid'])} "
            f"(real vs real {most['fid_real']:.1f}); memorization change (first masks, first "
            f"{int(most['n_generated'])} samples): most {_pts(_effect(table, 'most', True))}, least (alg1) "
            f"{_pts(_effect(table, 'alg1', True))}, most - least {_pts(_contrast(table, 'most', 'alg1', True))}")
    return finding(stat, iv, decide_above(iv.lo, iv.hi, 0.0), text, confounds=confounds, range_tested=rng)


def judge_ratio(table, *, min_excess=0.2):
    """Ablation: dose-response. Rule: pruning more heads lowers memorization more: (effect at the largest
    ablation ratio) - (effect at the smallest), paired by seed, seed_t interval below 0 holds, at or above 0
    does not hold. The effect at the main ratio is reported beside them. Precondition as head_pruning's."""
    stat = "memorization change at the largest minus the smallest pruning ratio"
    reason, confounds, base_text = _precondition(table, min_excess)
    if reason is not None:
        return inconclusive(stat, reason, confounds=confounds)
    rng = _range_tested(table)
    s = seed_rows(table)
    ratio_arms = s[s["group"] == "ratio"].groupby("arm")["prune_ratio"].first().sort_values()
    if len(ratio_arms) < 2:
        return inconclusive(stat, "fewer than two ratio-ablation arms", confounds=confounds, range_tested=rng)
    lo_arm, hi_arm = ratio_arms.index[0], ratio_arms.index[-1]
    iv = _contrast(table, hi_arm, lo_arm)
    text = "; ".join(f"{100 * r:g}%: {_pts(_effect(table, a, True))}" for a, r in
                     [(lo_arm, ratio_arms.iloc[0]), ("alg1", float(s[s['arm'] == 'alg1']['prune_ratio'].iloc[0])),
                      (hi_arm, ratio_arms.iloc[-1])])
    return finding(stat, iv, decide_below(iv.lo, iv.hi, 0.0), f"{text}; largest - smallest {_pts(iv)}",
                   confounds=confounds, range_tested=rng)


def judge_finetune(table, *, min_excess=0.2):
    """Ablation: does Algorithm 1's drop survive fine-tuning? Rule: alg1's memorization change after the
    longest fine-tuning (first mask), paired by seed, seed_t interval below 0 holds; at or above 0 does not
    hold. The changes at every length, and random's, are reported beside it. Precondition as head_pruning's."""
    stat = "alg1 - original memorization after the longest fine-tuning"
    reason, confounds, base_text = _precondition(table, min_excess)
    if reason is not None:
        return inconclusive(stat, reason, confounds=confounds)
    rng = _range_tested(table)
    s = seed_rows(table)
    ft = s[s["group"] == "finetune"].groupby("arm")["finetune_steps"].first()
    alg = ft[[a for a in ft.index if a.startswith("alg1")]]
    if not len(alg):
        return inconclusive(stat, "no fine-tuning ablation rows", confounds=confounds, range_tested=rng)
    longest = alg.idxmax()
    iv = _effect(table, longest)
    main_ft = int(s[s["arm"] == "alg1"]["finetune_steps"].iloc[0])
    lines = []
    for prefix in ("alg1", "random"):
        steps = sorted([(int(v), a) for a, v in ft.items() if a.startswith(prefix)] + [(main_ft, prefix)])
        lines.append(f"{prefix}: " + ", ".join(f"ft {k} {_pts(_effect(table, a, True))}" for k, a in steps))
    return finding(stat, iv, decide_below(iv.lo, iv.hi, 0.0), "; ".join(lines) + " (first masks, first "
                   f"{int(s[s['arm'] == longest]['n_generated'].iloc[0])} samples)", confounds=confounds, range_tested=rng)


_MEM = Constant("min_excess", 0.2, "smallest margin by which the original's memorization (lower seed_t end) "
                "must exceed the held-out null for a drop to be measurable")
CLAIMS = [
    Claim("head_pruning", "Pruning the attention heads least important at small t (Algorithm 1) lowers a DiT's "
          "memorization at equal FID, unlike random pruning", "Sec. 6, Algorithm 1 and its Table",
          "DiT on 5,000 CIFAR-10 images (32x32), 20% of heads pruned, 5 runs", "theory.networks.heads.head_importance",
          judge_pruning,
          (_MEM, Constant("fid_tolerance", 0.05, "largest FID increase, as a fraction of the original's FID, "
                                                 "counted as equal quality"))),
    Claim("pruning_time_law", "Ablation of Algorithm 1's reasoning: the small-t law of the head importance "
          "matters (masks from small-t importance lower memorization more than masks from uniform-t or large-t "
          "importance)", "Sec. 6, Algorithm 1 (t ~ Beta(0.8, 2)); ablation not in the paper",
          "not tested in the paper (memsep's ablation)", "theory.networks.heads.head_importance", judge_time_law, (_MEM,)),
    Claim("pruning_least_vs_most", "Ablation: the importance ranking is meaningful (pruning the most important "
          "heads costs more FID than pruning the least important)", "Sec. 6, Algorithm 1; ablation not in the paper",
          "not tested in the paper (memsep's ablation)", "theory.networks.heads.prune_mask", judge_least_vs_most, (_MEM,)),
    Claim("pruning_ratio", "Ablation: pruning more heads lowers memorization more (10% vs 30% of heads)",
          "Sec. 6, Algorithm 1 (20%); ablation not in the paper", "not tested in the paper (memsep's ablation)",
          "theory.networks.heads.prune_mask", judge_ratio, (_MEM,)),
    Claim("pruning_finetune", "Ablation: Algorithm 1's drop in memorization survives longer fine-tuning",
          "Sec. 6, Algorithm 1 (prune, then fine-tune); ablation not in the paper",
          "not tested in the paper (memsep's ablation)", "theory.training.image.train_denoiser", judge_finetune, (_MEM,)),
]
