"""The Gaussian-mixture memorization pipeline, shared by phase_2d, scale_sweep, sample_sweep, dim_sweep,
weight_decay_grid and duplication: train on n samples, sample, measure. Not a module itself.

One call of ``run_group`` trains an ensemble of score nets of one width (members differ by seed,
training-set size n and weight decay), samples each member with the probability-flow ODE (or the reverse
SDE) from T to t0, applies one Tweedie denoising step at t0 (x0 = (x + sigma_t0^2 s) / alpha_t0; memsep's
choice), and measures per member: the memorization fraction (d1/d2 < 1/3) with its binomial standard
error, the true log-density of the samples, the model's ODE log-likelihood of held-out test points beside
the true and the empirical log p_{t0} of the same points, and the memorization index at a few times.
Everything not given by the paper is a memsep default in ``GMMDefaults``, the seeds of the sampler, the
test set and the index draws included. The sweep modules share one ``Config``, ``grid``, ``run_point`` and
``line_plot``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch

from theory.evaluation.likelihood import memorization_index, ode_log_likelihood
from theory.evaluation.memorization import memorization_fraction
from theory.evaluation.samplers import prior_sample, probability_flow, reverse_sde, tweedie_denoise
from theory.laws.empirical import EmpiricalLaw
from theory.laws.mixture import GaussianMixture, paper_mixture
from theory.networks.score_net import DEFAULT_FREQUENCIES, ScoreNet
from theory.training.dsm import ScoreTrainConfig, TrainResult, load_ema, train

from ._io import Checkpoint


@dataclasses.dataclass(frozen=True)
class GMMDefaults:
    """memsep's defaults for the mixture experiments (the paper publishes none of these)."""

    separation: float = 2.0          # Delta_min / sqrt(d) of the mixture means
    trace: float | None = None       # tr Sigma_k (None: d/4, i.e. per-coordinate std 1/2)
    depth: int = 2                   # residual blocks
    sampler: str = "ode"             # "ode" (probability flow, Heun) or "sde"
    sample_steps: int = 60
    n_generated: int = 500
    n_test: int = 200
    loglik_steps: int = 30
    index_times: tuple = (1e-3, 1e-2, 1e-1)
    index_samples: int = 500
    sample_seed: int = 7             # the prior draws (and SDE noise) of every member's samples
    test_seed: int = 99              # the held-out test points of the true law
    index_seed: int = 3              # the draws of P^_t for the memorization index


def with_copies(pool: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """The pool followed by m exact copies of pool points chosen uniformly with repetition (seeded)."""
    g = torch.Generator().manual_seed(30_000 + seed)
    idx = torch.randint(pool.shape[0], (m,), generator=g).to(pool.device)
    return torch.cat([pool, pool[idx]])


def member_training_set(truth: GaussianMixture, n_max: int, seed: int, n: int, copies: int = 0) -> torch.Tensor:
    """n_max points whose first n are the member's training set: the first n - copies draws of the seed's
    stream followed by ``copies`` exact copies of them (``with_copies``; 0: n fresh draws, so sets of one
    seed are nested). Rows past n are fresh draws, unused in training."""
    if not 0 <= copies < n <= n_max:
        raise ValueError(f"need 0 <= copies < n <= n_max, got copies={copies}, n={n}, n_max={n_max}")
    pts = truth.sample(n_max, 0.0, torch.Generator(device=truth.device).manual_seed(10_000 + seed))
    if copies:
        pts = torch.cat([with_copies(pts[: n - copies], copies, seed), pts[n:]])
    return pts


def run_group(*, dim: int, n_components: int, width: int, members: Sequence[dict], train_cfg: ScoreTrainConfig,
              defaults: GMMDefaults = GMMDefaults(), mixture_seed: int = 0, device="cpu",
              keep_samples: bool = False, checkpoint: Checkpoint | None = None) -> list[dict]:
    """Train one ensemble (one row of ``members`` per net: keys seed, n, and optionally weight_decay and
    copies, the number of exact duplicates among the n, see ``member_training_set``) and measure every
    member. Returns one dict per member (with 'samples' and 'train' tensors if keep_samples).
    ``checkpoint``: where training keeps its resumable state (``theory.training.dsm.train``), or None."""
    trace = defaults.trace if defaults.trace is not None else dim / 4
    truth = paper_mixture(n_components, dim, separation=defaults.separation, trace=trace, seed=mixture_seed,
                          device=device)
    n_max = max(int(m["n"]) for m in members)
    sets = [member_training_set(truth, n_max, int(m["seed"]), int(m["n"]), int(m.get("copies", 0)))
            for m in members]
    net, result = _train_group(sets, members, width, train_cfg, defaults, device, checkpoint)
    fn = net.flat_score()
    samples = _generate(fn, len(members), dim, train_cfg, defaults, device)
    test = truth.sample(defaults.n_test, 0.0, torch.Generator(device=device).manual_seed(defaults.test_seed))
    loglik = ode_log_likelihood(fn, test.repeat(len(members), 1), t0=train_cfg.t0, T=train_cfg.T,
                                steps=defaults.loglik_steps)
    rows = []
    for e, m in enumerate(members):
        G, n_test = defaults.n_generated, defaults.n_test
        row = _member_row(e, m, sets[e][: int(m["n"])], samples[e * G:(e + 1) * G], test,
                          loglik[e * n_test:(e + 1) * n_test], truth, net, result, fn, train_cfg, defaults, device)
        if keep_samples:
            row["samples"], row["train"] = samples[e * G:(e + 1) * G], sets[e][: int(m["n"])]
        rows.append(row)
    return rows


def _train_group(sets: list[torch.Tensor], members: Sequence[dict], width: int, train_cfg: ScoreTrainConfig,
                 defaults: GMMDefaults, device, checkpoint: Checkpoint | None) -> tuple[ScoreNet, TrainResult]:
    """The ensemble trained on the members' sets (resuming from ``checkpoint``), its EMA weights loaded."""
    data = torch.stack(sets)
    var = float(data[0].var(0).mean())
    net = ScoreNet(data.shape[2], width, defaults.depth, seeds=[int(m["seed"]) for m in members],
                   frequencies=DEFAULT_FREQUENCIES, data_variance=var).to(device)
    result = train(net, data.float(), train_cfg, n_per_member=[int(m["n"]) for m in members],
                   weight_decay=[float(m.get("weight_decay", train_cfg.weight_decay)) for m in members],
                   resume=checkpoint.load(map_location=device) if checkpoint is not None else None,
                   on_checkpoint=checkpoint.save if checkpoint is not None else None)
    load_ema(net, result.ema)
    net.eval()
    return net, result


def _generate(fn, members: int, dim: int, train_cfg: ScoreTrainConfig, defaults: GMMDefaults, device) -> torch.Tensor:
    """``n_generated`` samples per member (members' blocks laid end to end), from one seeded prior draw,
    by the configured sampler from T to t0 and one Tweedie step."""
    gen = torch.Generator(device=device).manual_seed(defaults.sample_seed)
    x_T = prior_sample((members * defaults.n_generated, dim), generator=gen, device=device)
    kwargs = dict(T=train_cfg.T, t0=train_cfg.t0, steps=defaults.sample_steps)
    if defaults.sampler == "ode":
        x = probability_flow(fn, x_T, **kwargs)
    elif defaults.sampler == "sde":
        x = reverse_sde(fn, x_T, generator=gen, **kwargs)
    else:
        raise ValueError(f"sampler must be 'ode' or 'sde', got {defaults.sampler!r}")
    return tweedie_denoise(fn, x, train_cfg.t0)


def _member_row(e: int, m: dict, train_e: torch.Tensor, samples: torch.Tensor, test: torch.Tensor,
                ll: torch.Tensor, truth: GaussianMixture, net: ScoreNet, result: TrainResult, fn,
                train_cfg: ScoreTrainConfig, defaults: GMMDefaults, device) -> dict:
    """The table row of member e: its grid values, measurements and protocol."""
    G, t0 = samples.shape[0], train_cfg.t0
    mem = memorization_fraction(samples, train_e)
    emp = EmpiricalLaw(train_e)
    logp = truth.log_prob(samples, 0.0)
    row = {"d": truth.dim, "K": truth.n_components, "n": int(m["n"]), "width": net.width, "depth": defaults.depth,
           "params": net.parameters_per_member, "weight_decay": float(m.get("weight_decay", 0.0)),
           "seed": int(m["seed"]), "copies": int(m.get("copies", 0)),
           "mem_fraction": mem.mean, "mem_fraction_se": mem.stderr,
           "sample_logp_true": float(logp.mean()), "sample_logp_true_se": float(logp.std() / G ** 0.5),
           "test_loglik": float(ll.mean()), "test_loglik_se": float(ll.std() / len(ll) ** 0.5),
           "test_loglik_true": float(truth.log_prob(test, t0).mean()),
           "test_loglik_empirical": float(emp.log_prob(test, t0).mean()),
           "final_loss": float(result.losses[-100:, e].mean()),
           "sampler": defaults.sampler, "sample_steps": defaults.sample_steps, "t0": t0, "T": train_cfg.T,
           "train_steps": train_cfg.steps, "threshold": 1 / 3}
    member_fn = _member_fn(fn, net.members, e, truth.dim)
    for t in defaults.index_times:
        mi = memorization_index(member_fn, emp, truth, t, defaults.index_samples,
                                torch.Generator(device=device).manual_seed(defaults.index_seed))
        row[f"mem_index_t{t:g}"] = mi["index"]
    return row


def _member_fn(fn, E: int, e: int, dim: int):
    """Member e's score on (B, d) inputs, through the flat ensemble function (others see zeros)."""
    def member(x, t):
        B = x.shape[0]
        full = torch.zeros(E * B, dim, dtype=x.dtype, device=x.device)
        full[e * B:(e + 1) * B] = x
        tt = torch.as_tensor(t, dtype=x.dtype, device=x.device).expand(B).repeat(E)
        return fn(full, tt)[e * B:(e + 1) * B]
    return member


# ------------------------------------------------------------------------------------ the sweep modules
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
    sample_seed: int = 7
    test_seed: int = 99
    index_seed: int = 3


def grid(cfg: Config) -> list[dict]:
    """One point per (d, width): the seeds x n x weight decays of that width train as one ensemble."""
    return [{"d": d, "width": w, "seed": 0} for d in cfg.dims for w in cfg.widths]


def run_point(point: dict, cfg: Config, device: str, keep_samples: bool = False) -> list[dict]:
    members = [{"seed": s, "n": n, "weight_decay": wd} for n in cfg.ns for wd in cfg.weight_decays
               for s in cfg.seeds]
    tc = ScoreTrainConfig(steps=cfg.steps, batch_size=cfg.batch_size, lr=cfg.lr, t0=cfg.t0, T=cfg.T,
                          warmup=min(100, cfg.steps // 10 + 1))
    gd = GMMDefaults(n_generated=cfg.n_generated, n_test=cfg.n_test, sample_steps=cfg.sample_steps,
                     loglik_steps=cfg.loglik_steps, index_samples=cfg.index_samples, sample_seed=cfg.sample_seed,
                     test_seed=cfg.test_seed, index_seed=cfg.index_seed)
    ckpt = Checkpoint.for_run("gmm", {"config": dataclasses.asdict(cfg), "point": point, "device": str(device)})
    rows = run_group(dim=point["d"], n_components=cfg.n_components, width=point["width"], members=members,
                     train_cfg=tc, defaults=gd, device=device, keep_samples=keep_samples, checkpoint=ckpt)
    ckpt.clear()  # the rows are about to be saved: the checkpoint has served
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
