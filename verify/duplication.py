"""Exact duplicates in the training set: the empirical score of n points of which m are copies is as hard
to fit as that of the n - m distinct points (Thm 5.1, corollary on duplicates).

For a fixed pool of n_distinct points drawn from the mixture, a data set of n = n_distinct + m points adds
m copies of points of the pool (chosen at random, with repetition); its empirical law P^_t has only
n_distinct atoms (with unequal weights). At one t, we fit ReLU nets of each width (as ``width_vs_n``) to

* "duplicated": the empirical score of the n points (n_distinct distinct), and
* "distinct": the empirical score of n_distinct distinct points, for n_distinct = n - m (the pool alone)
  and, as the control, n_distinct = n (the pool plus m fresh points),

and report W*, the smallest width reaching the target relative error. The corollary predicts that W* of a
duplicated set follows n - m (= n_distinct) and not n.

A second experiment trains diffusion models (verify._gmm, memsep's defaults, one ensemble over
all the data sets) and measures the memorization fraction of each data set's samples against its distinct
training points: duplicates shrink the effective n, so a set with copies should memorize like its n - m
distinct points rather than like n distinct points. (Its data sets are drawn from the same mixture with
the training code's own seeded stream, so they are not the exact point sets of the width experiment.)

Columns: kind (distinct | duplicated | memorization), n, m, n_distinct, t, width, depth, params, net_seed,
rel_error, rel_error_se, final_loss, target_error, width_star, params_star, seed (pool), preset,
device, runtime_s; memorization rows add data (distinct | duplicated), mem_fraction, mem_fraction_se,
sample_logp_true, train_steps.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np
import torch

import theory
from theory.training.dsm import ScoreTrainConfig
from verify import width_vs_n
from verify._gmm import GMMDefaults, run_group, with_copies
from verify._io import Checkpoint

NAME = "duplication"
CLAIM = "m exact duplicates among n samples make the empirical score as easy as n - m distinct ones (Thm 5.1 corollary)"
ORDER = 41


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(width_vs_n.FitConfig):
    n_distinct: tuple        # sizes of the distinct pool
    copies_factor: tuple     # m = factor * n_distinct copies added
    # memorization of a DSM-trained diffusion model on the same kinds of data set (verify._gmm)
    memorization_width: int = 128     # 0: skip
    memorization_steps: int = 1000
    memorization_samples: int = 300


PRESETS = {
    "smoke": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(4,), copies_factor=(1,),
                    times=(0.2,), widths=(4, 16), depth=2, net_seeds=(0,), data_seeds=(0,), target_error=0.1,
                    steps=20, batch_size=64, lr=1e-2, eval_points=256, memorization_width=16,
                    memorization_steps=20, memorization_samples=30),
    "cpu": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(8, 32), copies_factor=(1, 3),
                  times=(0.1,), widths=(4, 8, 16, 32, 64, 128, 256, 512), depth=2, net_seeds=(0,),
                  data_seeds=(0,), target_error=0.2, steps=600, batch_size=128, lr=1e-2, eval_points=2048),
    "paper": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(64, 256, 1024),
                    copies_factor=(1, 3, 7), times=(0.01, 0.1),
                    widths=(8, 16, 32, 64, 128, 256, 512, 1024, 2048), depth=2, net_seeds=(0, 1, 2),
                    data_seeds=(0, 1), target_error=0.05, steps=20000, batch_size=512, lr=3e-3, eval_points=16384,
                    memorization_width=512, memorization_steps=50_000, memorization_samples=2000),
}
ESTIMATED_RUNTIME = {"smoke": 3, "cpu": 60, "paper": 4 * 3600}


def grid(cfg: Config) -> list[dict]:
    """Duplicated sets (k distinct + m = f k copies) and, as controls, distinct sets of every size k and
    k + m (nested: the first points of one stream), so each duplicated set sits between W*(n - m) and W*(n);
    then one memorization point per data seed (all those sets, as one ensemble of trained diffusion models)."""
    pts = [{"kind": "duplicated" if d["m"] else "distinct", **d, "t": t, "seed": s}
           for t in cfg.times for s in cfg.data_seeds for d in data_sets(cfg)]
    if cfg.memorization_width:
        pts += [{"kind": "memorization", "seed": s} for s in cfg.data_seeds]
    return pts


def data_sets(cfg: Config) -> list[dict]:
    """The (n_distinct, m) pairs of the width experiment: distinct sets of every size, duplicated sets."""
    sizes = sorted({k * (1 + f) for k in cfg.n_distinct for f in (0,) + tuple(cfg.copies_factor)})
    return ([{"n_distinct": k, "m": 0} for k in sizes]
            + [{"n_distinct": k, "m": f * k} for k in cfg.n_distinct for f in cfg.copies_factor])


def memorization_rows(cfg: Config, seed: int, device: str) -> list[dict]:
    """Train one ensemble of DSM score nets (memsep's defaults, verify._gmm) on every data set of
    ``data_sets`` (seed's nested stream; duplicated sets copy their first n - m points) and return per
    set its memorization fraction (d1/d2 < 1/3 against the distinct training points) with its error."""
    sets = data_sets(cfg)
    members = [{"seed": seed, "n": d["n_distinct"] + d["m"], "copies": d["m"]} for d in sets]
    tc = ScoreTrainConfig(steps=cfg.memorization_steps, batch_size=256, lr=2e-3, t0=1e-3, T=10.0,
                     warmup=min(100, cfg.memorization_steps // 10 + 1))
    gd = GMMDefaults(separation=cfg.separation, trace=cfg.trace, n_generated=cfg.memorization_samples,
                     n_test=min(100, cfg.memorization_samples), sample_steps=40, loglik_steps=4,
                     index_times=(), index_samples=1)
    ckpt = Checkpoint.for_run(NAME, {"config": dataclasses.asdict(cfg), "seed": seed, "device": str(device)})
    rows = run_group(dim=cfg.dim, n_components=cfg.n_components, width=cfg.memorization_width, members=members,
                     train_cfg=tc, defaults=gd, device=device, checkpoint=ckpt)
    ckpt.clear()
    keep = ("params", "mem_fraction", "mem_fraction_se", "sample_logp_true", "final_loss", "train_steps")
    return [{"kind": "memorization", "data": "duplicated" if d["m"] else "distinct", "n_distinct": d["n_distinct"],
             "m": d["m"], "n": d["n_distinct"] + d["m"], "d": cfg.dim, "width": cfg.memorization_width,
             **{k: r[k] for k in keep}} for d, r in zip(sets, rows)]


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    if point["kind"] == "memorization":
        return memorization_rows(cfg, point["seed"], device)
    truth = width_vs_n.true_mixture(cfg, device)
    k, m, t, seed = point["n_distinct"], point["m"], point["t"], point["seed"]
    pool = width_vs_n.nested_training_set(truth, k, seed)
    data = with_copies(pool, m, seed) if point["kind"] == "duplicated" else pool
    n_unique = int(torch.unique(data, dim=0).shape[0])
    if n_unique != k:
        raise RuntimeError(f"expected {k} distinct points, found {n_unique}")
    key = zlib.crc32(repr((point["kind"], k, m, float(t), seed)).encode()) % 100_003
    rows = width_vs_n.fit_widths(theory.EmpiricalLaw(data), t, cfg, device, key)
    for r in rows:
        r.update({"n": k + m, "d": cfg.dim, "sigma_t": float(theory.sigma(t))})
    return rows


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    fits = table[table["kind"] != "memorization"]
    mem = table[table["kind"] == "memorization"]
    ws = fits.groupby(["kind", "t", "n_distinct", "m", "seed"], as_index=False)[["width_star", "n"]].first()
    times = sorted(ws["t"].unique())
    panels = len(times) + (not mem.empty)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.3), squeeze=False)
    for ax, t in zip(axes[0], times):
        sub = ws[ws["t"] == t]
        _by_distinct(ax, sub, "width_star")
        for _, r in sub[sub["width_star"].isna()].iterrows():
            ax.plot(r["n_distinct"], max(cfg.widths), "x", color="r")
        ax.set_yscale("log", base=2)
        ax.set_ylabel(f"W* (rel. error <= {cfg.target_error:g}); x: not reached")
        ax.set_title(f"width needed for the empirical score, t = {t:g}, d = {cfg.dim}, depth {cfg.depth}")
    if not mem.empty:
        ax = axes[0][-1]
        m = mem.groupby(["n_distinct", "m"], as_index=False)[["mem_fraction", "mem_fraction_se"]].mean()
        _by_distinct(ax, m.assign(kind=np.where(m["m"] > 0, "duplicated", "distinct")), "mem_fraction",
                     "mem_fraction_se")
        ax.set_ylabel("memorization fraction (d1/d2 < 1/3)")
        ax.set_title(f"trained diffusion model (width {cfg.memorization_width}, "
                     f"{cfg.memorization_steps} steps, memsep defaults)")
    fig.suptitle("Duplicates: do n points with m copies behave like n - m distinct points (corollary) or like n?")
    fig.tight_layout()
    return fig


def _by_distinct(ax, sub, value: str, err: str | None = None) -> None:
    """``value`` against the number of distinct points: distinct sets as a line, duplicated sets (by copy
    factor m / (n - m)) as markers slightly offset."""
    dist = sub[sub["kind"] == "distinct"].sort_values("n_distinct")
    ax.errorbar(dist["n_distinct"], dist[value], yerr=None if err is None else dist[err], fmt="ks-", ms=7,
                label="n distinct points (no copies)")
    dup = sub[sub["kind"] == "duplicated"]
    for i, (f, grp) in enumerate(dup.assign(f=dup["m"] / dup["n_distinct"]).groupby("f")):
        grp = grp.sort_values("n_distinct")
        ax.errorbar(grp["n_distinct"] * (1 + 0.03 * (i + 1)), grp[value], yerr=None if err is None else grp[err],
                    fmt="o--", ms=5, label=f"n - m distinct + m = {f:g}(n - m) copies")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of distinct points")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
