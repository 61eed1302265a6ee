"""Shared pieces of the five Gaussian-mixture memorization modules (phase_2d, scale_sweep, sample_sweep,
dim_sweep, weight_decay_grid): one config shape, one run_point, one line plot. Not a module itself."""

from __future__ import annotations

import dataclasses

import numpy as np

from verify._gmm_pipeline import GMMDefaults, run_group
from theory.training.dsm import TrainConfig

from .runner import checkpoint_path


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple = (2,)
    n_components: int = 4
    widths: tuple = (32,)
    ns: tuple = (64,)
    weight_decays: tuple = (0.0,)
    seeds: tuple = (0,)
    steps: int = 1000
    batch_size: int = 256
    lr: float = 2e-3
    t0: float = 1e-3
    T: float = 10.0
    n_generated: int = 300
    n_test: int = 100
    sample_steps: int = 40
    loglik_steps: int = 20
    index_samples: int = 200


def grid(cfg: Config) -> list[dict]:
    """One point per (d, width): the seeds x n x weight decays of that width train as one ensemble."""
    return [{"d": d, "width": w, "seed": 0} for d in cfg.dims for w in cfg.widths]


def run_point(point: dict, cfg: Config, device: str, keep_samples: bool = False) -> list[dict]:
    members = [{"seed": s, "n": n, "weight_decay": wd} for n in cfg.ns for wd in cfg.weight_decays
               for s in cfg.seeds]
    tc = TrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, t0=cfg.t0, T=cfg.T,
                     warmup=min(100, cfg.steps // 10 + 1))
    gd = GMMDefaults(n_generated=cfg.n_generated, n_test=cfg.n_test, sample_steps=cfg.sample_steps,
                     loglik_steps=cfg.loglik_steps, index_samples=cfg.index_samples)
    ckpt = checkpoint_path("gmm", {"config": dataclasses.asdict(cfg), "point": point, "device": str(device)})
    rows = run_group(dim=point["d"], n_components=cfg.n_components, width=point["width"], members=members,
                     train_cfg=tc, defaults=gd, device=device, keep_samples=keep_samples, checkpoint=ckpt)
    ckpt.unlink(missing_ok=True)  # the rows are about to be saved: the checkpoint has served
    for r in rows:
        r["kind"] = "summary"
    return rows


def line_plot(table, x: str, xlabel: str, title: str, logx: bool = True):
    """Memorization fraction, test log-likelihood (model vs true) and memorization index against x."""
    import matplotlib.pyplot as plt

    t = table[table.get("kind", "summary") == "summary"] if "kind" in table else table
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    g = t.groupby(x)
    xs = np.array(sorted(t[x].unique()))
    m, s = g["mem_fraction"].mean().loc[xs], g["mem_fraction"].std().fillna(0).loc[xs]
    axes[0].errorbar(xs, m, yerr=s, fmt="o-", capsize=3)
    axes[0].set_ylabel("memorization fraction  (d1/d2 < 1/3)")
    ll = g["test_loglik"].mean().loc[xs]
    axes[1].errorbar(xs, ll, yerr=g["test_loglik"].std().fillna(0).loc[xs], fmt="o-", capsize=3,
                     label=r"model $\log p^\theta_{t_0}$ (PF-ODE)")
    axes[1].plot(xs, g["test_loglik_true"].mean().loc[xs], "k--", label=r"true $\log p_{t_0}$")
    axes[1].set_ylabel("mean held-out log-likelihood")
    axes[1].legend(fontsize=8)
    for c in [c for c in t.columns if c.startswith("mem_index_t")]:
        axes[2].plot(xs, g[c].mean().loc[xs], "o-", label=c.replace("mem_index_", ""))
    axes[2].set_ylabel("memorization index B/(A+B)")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel(xlabel)
        if logx:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    fig.suptitle(title + " (mean ± sd over seeds; memsep's architecture and training, not the paper's)")
    fig.tight_layout()
    return fig
