"""The Gaussian-mixture memorization pipeline, shared by phase_2d, scale_sweep, sample_sweep, dim_sweep,
weight_decay_grid and duplication_memorization: train on n samples, sample, measure against the baselines.
Not a module itself.

One call of ``run_group`` trains an ensemble of score nets of one width (members differ by seed,
training-set size n, weight decay and the number of exact copies in the set), samples each member with the
probability-flow ODE (or the reverse SDE) from T to t0 and one Tweedie step at t0 (x0 = (x + sigma_t0^2 s) /
alpha_t0; memsep's choice), and builds per member the row of ``verify._memorization.memorization_row``: the
memorization fraction with its Wilson interval, the null rate of exact true-law draws at t0 against the same
training set, the anchor (the same sampler driven by the exact empirical score), the excess and the
normalized index with their intervals, sample quality against exact draws (mean and median), and the
held-out ODE log-likelihood (mean, median, collapse flag). Beside it, the memorization-index profile: the
trained score's mean-square distance to the empirical and to the true score on a grid of times, and its
crossover time t* (``theory.evaluation.likelihood.index_crossover``).

Independence from the ensemble a member sits in: a member's training set depends only on its seed, n and
copies (``member_training_set``: nested prefixes of one per-seed stream), its prior draws, null draws and
index draws only on its seed, and its initialisation and minibatches only on its seed (the trainer). So a
grid point rerun in another grouping gives the same rows (to round-off).

Everything not given by the paper is a memsep default in ``GMMDefaults`` (the protocol) and
``theory.training.dsm.ScoreTrainConfig`` (training); the sweep modules share one ``Config``, ``grid``,
``run_point``, ``COLUMNS`` and the figure helpers.
"""

from __future__ import annotations

import dataclasses
import math
import time
import zlib
from typing import Sequence

import numpy as np
import torch

from theory.evaluation.likelihood import index_crossover, memorization_index, ode_log_likelihood
from theory.evaluation.samplers import prior_sample, probability_flow, reverse_sde, tweedie_denoise
from theory.laws.empirical import EmpiricalLaw
from theory.laws.mixture import GaussianMixture, paper_mixture
from theory.networks.score_net import DEFAULT_FREQUENCIES, ScoreNet
from theory.training.dsm import ScoreTrainConfig, TrainResult, load_ema, train

from . import _memorization
from ._io import Checkpoint

INDEX_TIMES = tuple(float(f"{t:.3g}") for t in np.geomspace(1e-3, 10.0, 12))   # 1e-3 .. 10, 12 times


@dataclasses.dataclass(frozen=True)
class GMMDefaults:
    """memsep's protocol for the mixture experiments (the paper publishes none of these)."""

    separation: float = 1.5          # Delta_min / sqrt(d) of the mixture means
    trace: float | None = None       # tr Sigma_k (None: d, i.e. Sigma_k = I)
    mixture_seed: int = 0
    depth: int = 2                   # residual blocks
    sampler: str = "ode"             # "ode" (probability flow, Heun) or "sde"
    t0: float = 1e-3                 # the sampler's final time; also the time of the null draws and held-out LL
    sample_steps: int = 60           # 40 lets single trajectories of memorizing nets explode
    n_generated: int = 500
    n_anchor: int = 100              # the exact empirical-score sampler memorizes ~everything: 100 suffice
    n_null: int | None = None        # exact true-law draws for the null (None: n_generated)
    n_test: int = 200
    loglik_steps: int = 20
    index_times: tuple = INDEX_TIMES  # the memorization-index profile (empty: none)
    index_samples: int = 500
    sample_seed: int = 7             # a member's prior draws: seeded by (sample_seed, its seed)
    test_seed: int = 99              # the held-out test points of the true law (one set for all)
    index_seed: int = 3              # a member's draws of P^_t for the index: seeded by (index_seed, its seed)
    null_seed: int = 5               # a member's null and quality-reference draws: (null_seed, its seed)


def _generator(*key, device="cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(zlib.crc32(repr(key).encode()))


def mixture(dim: int, n_components: int, defaults: GMMDefaults, device="cpu") -> GaussianMixture:
    """The true law: ``paper_mixture(K, d, separation, trace)`` (trace None: d)."""
    trace = defaults.trace if defaults.trace is not None else float(dim)
    return paper_mixture(n_components, dim, separation=defaults.separation, trace=trace, seed=defaults.mixture_seed,
                         device=device)


def with_copies(pool: torch.Tensor, m: int, seed: int) -> torch.Tensor:
    """The pool followed by m exact copies of pool points chosen uniformly with repetition (seeded)."""
    g = torch.Generator().manual_seed(30_000 + seed)
    idx = torch.randint(pool.shape[0], (m,), generator=g).to(pool.device)
    return torch.cat([pool, pool[idx]])


STREAM_BLOCK = 64


def member_training_set(truth: GaussianMixture, seed: int, n: int, copies: int = 0) -> torch.Tensor:
    """A member's n training points: the first n - copies points of the seed's stream followed by
    ``copies`` exact copies of them (``with_copies``; 0: the first n points of the stream). The stream is a
    sequence of blocks of ``STREAM_BLOCK`` draws, block b from its own generator seeded by (seed, b), so the
    set depends only on (seed, n, copies), never on the other members of an ensemble, and sets of one seed
    are nested (n < n' gives a prefix)."""
    if not 0 <= copies < n:
        raise ValueError(f"need 0 <= copies < n, got copies={copies}, n={n}")
    k = n - copies
    blocks = [truth.sample(STREAM_BLOCK, 0.0, _generator("train", seed, b, device=truth.device))
              for b in range(-(-k // STREAM_BLOCK))]
    pts = torch.cat(blocks)[:k]
    return with_copies(pts, copies, seed) if copies else pts


def run_group(*, dim: int, n_components: int, width: int, members: Sequence[dict], train_cfg: ScoreTrainConfig,
              defaults: GMMDefaults = GMMDefaults(), device="cpu", keep_samples: bool = False,
              checkpoint: Checkpoint | None = None) -> list[dict]:
    """Train one ensemble (one row of ``members`` per net: keys seed, n, and optionally weight_decay and
    copies, the number of exact duplicates among the n, see ``member_training_set``) and measure every
    member. Returns one dict per member: the columns of ``COLUMNS`` (the summary row) and, under "profile",
    its memorization-index rows (one per time of ``defaults.index_times``); with keep_samples also its
    'samples' and 'train' tensors. ``checkpoint``: where training keeps its resumable state
    (``theory.training.dsm.train``), or None."""
    truth = mixture(dim, n_components, defaults, device)
    sets = [member_training_set(truth, int(m["seed"]), int(m["n"]), int(m.get("copies", 0))) for m in members]
    start = time.perf_counter()
    net, result = _train_group(sets, members, width, train_cfg, defaults, device, checkpoint,
                               data_variance=float(truth.moments(0.0)[1].diagonal().mean()))
    train_s = time.perf_counter() - start
    G = defaults.n_generated
    x_T = torch.cat([prior_sample((G, dim), generator=_generator("prior", defaults.sample_seed, int(m["seed"])),
                                  device=device) for m in members])
    fn = net.flat_score()
    samples = _sample(fn, x_T, train_cfg, defaults, _generator("sde", defaults.sample_seed, device=device))
    test = truth.sample(defaults.n_test, 0.0, _generator("test", defaults.test_seed, device=device))
    loglik = ode_log_likelihood(fn, test.repeat(len(members), 1), t0=defaults.t0, T=train_cfg.T,
                                steps=defaults.loglik_steps)
    rows = []
    for e, m in enumerate(members):
        tr = sets[e]
        mine = samples[e * G:(e + 1) * G]
        anchor = _sample(EmpiricalLaw(tr).score, x_T[e * G:e * G + min(defaults.n_anchor, G)], train_cfg, defaults,
                         _generator("sde-anchor", defaults.sample_seed, int(m["seed"]), device=device))
        row = _member_columns(m, tr, net, result, e, train_cfg, defaults, truth, train_s)
        row.update(_memorization.memorization_row(
            mine, tr, anchor=anchor, truth=truth, held_out=test,
            held_out_loglik=loglik[e * defaults.n_test:(e + 1) * defaults.n_test], t0=defaults.t0,
            generator=_generator("null", defaults.null_seed, int(m["seed"]), device=device),
            null_draws=defaults.n_null))
        profile, crossing = _index_profile(net.member(e), tr, truth, defaults, int(m["seed"]), device)
        row.update(crossing)
        row["profile"] = [{"kind": "index", **{k: row[k] for k in PROFILE_KEYS}, **p} for p in profile]
        if keep_samples:
            row["samples"], row["train"] = mine, tr
        rows.append(row)
    return rows


def _train_group(sets: list[torch.Tensor], members: Sequence[dict], width: int, train_cfg: ScoreTrainConfig,
                 defaults: GMMDefaults, device, checkpoint: Checkpoint | None, *,
                 data_variance: float) -> tuple[ScoreNet, TrainResult]:
    """The ensemble trained on the members' sets (zero-padded to the largest n; member e draws from its
    first n_e rows only), resuming from ``checkpoint``, its EMA weights loaded. ``data_variance``: the
    input scaling v of ``ScoreNet`` (the true law's mean per-coordinate variance: the same for every
    member, whatever the ensemble)."""
    n_max = max(s.shape[0] for s in sets)
    data = torch.stack([torch.cat([s, s.new_zeros(n_max - s.shape[0], s.shape[1])]) for s in sets])
    net = ScoreNet(data.shape[2], width, defaults.depth, seeds=[int(m["seed"]) for m in members],
                   frequencies=DEFAULT_FREQUENCIES, data_variance=data_variance).to(device)
    result = train(net, data.float(), train_cfg, n_per_member=[s.shape[0] for s in sets],
                   weight_decay=[float(m.get("weight_decay", train_cfg.weight_decay)) for m in members],
                   resume=checkpoint.load(map_location=device) if checkpoint is not None else None,
                   on_checkpoint=checkpoint.save if checkpoint is not None else None)
    load_ema(net, result.ema)
    net.eval()
    return net, result


def _sample(fn, x_T: torch.Tensor, train_cfg: ScoreTrainConfig, defaults: GMMDefaults, gen) -> torch.Tensor:
    """The configured sampler from x_T at T down to t0, then one Tweedie step."""
    kwargs = dict(T=train_cfg.T, t0=defaults.t0, steps=defaults.sample_steps)
    if defaults.sampler == "ode":
        x = probability_flow(fn, x_T, **kwargs)
    elif defaults.sampler == "sde":
        x = reverse_sde(fn, x_T, generator=gen, **kwargs)
    else:
        raise ValueError(f"sampler must be 'ode' or 'sde', got {defaults.sampler!r}")
    return tweedie_denoise(fn, x, defaults.t0)


def _member_columns(m: dict, train_e: torch.Tensor, net: ScoreNet, result: TrainResult, e: int,
                    train_cfg: ScoreTrainConfig, defaults: GMMDefaults, truth: GaussianMixture, train_s: float) -> dict:
    """Member e's grid values and protocol."""
    copies = int(m.get("copies", 0))
    return {"kind": "summary", "d": truth.dim, "K": truth.n_components, "separation": defaults.separation,
            "trace": float(truth.covariances[0].diagonal().sum()), "n": int(m["n"]), "n_distinct": int(m["n"]) - copies,
            "copies": copies, "width": net.width, "depth": defaults.depth, "params": net.parameters_per_member,
            "weight_decay": float(m.get("weight_decay", train_cfg.weight_decay)), "seed": int(m["seed"]),
            "members": net.members, "lr": train_cfg.lr, "batch_size": train_cfg.batch_size,
            "train_steps": train_cfg.steps, "train_t0": train_cfg.t0, "T": train_cfg.T, "t0": defaults.t0,
            "sampler": defaults.sampler, "sample_steps": defaults.sample_steps,
            "final_loss": float(result.losses[-100:, e].mean()), "train_s": round(train_s, 2)}


def _index_profile(member: ScoreNet, train_e: torch.Tensor, truth: GaussianMixture, defaults: GMMDefaults,
                   seed: int, device) -> tuple[list[dict], dict]:
    """The memorization-index profile of one member (``theory.evaluation.likelihood.memorization_index`` at
    every time of ``defaults.index_times``) and its crossover time t* with the bracket
    (``index_crossover``)."""
    times = sorted(float(t) for t in defaults.index_times)
    nan = {"t_star": math.nan, "t_star_lo": math.nan, "t_star_hi": math.nan, "n_index_times": len(times)}
    if not times:
        return [], nan
    emp, fn = EmpiricalLaw(train_e), member.flat_score()
    gen = _generator("index", defaults.index_seed, seed, device=device)
    profile, diffs = [], []
    for t in times:
        mi = memorization_index(fn, emp, truth, t, defaults.index_samples, gen)
        diffs.append(mi["difference"])
        profile.append({"t": t, "index_to_empirical": mi["to_empirical"].mean,
                        "index_to_empirical_se": mi["to_empirical"].stderr, "index_to_true": mi["to_true"].mean,
                        "index_to_true_se": mi["to_true"].stderr, "index_difference": mi["difference"].mean,
                        "index_difference_se": mi["difference"].stderr, "index": mi["index"]})
    if len(times) < 2:
        return profile, nan
    iv = index_crossover(times, diffs)
    return profile, {"t_star": iv.estimate, "t_star_lo": iv.lo, "t_star_hi": iv.hi, "n_index_times": len(times)}


# ------------------------------------------------------------------------------------------- columns
MEMBER_COLUMNS = ("kind", "d", "K", "separation", "trace", "n", "n_distinct", "copies", "width", "depth", "params",
                  "weight_decay", "members", "lr", "batch_size", "train_steps", "train_t0", "T", "t0", "sampler",
                  "sample_steps", "final_loss", "train_s")
PROFILE_KEYS = ("d", "n", "n_distinct", "copies", "width", "params", "weight_decay", "seed")
INDEX_COLUMNS = ("t_star", "t_star_lo", "t_star_hi", "n_index_times",            # on summary rows
                 "t", "index_to_empirical", "index_to_empirical_se", "index_to_true", "index_to_true_se",
                 "index_difference", "index_difference_se", "index")            # on the profile rows (kind index)
RUNNER_COLUMNS = ("seed", "preset", "device", "runtime_s", "point")
COLUMNS = (MEMBER_COLUMNS + tuple(c for c in _memorization.MEMORIZATION_COLUMNS if c not in MEMBER_COLUMNS)
           + INDEX_COLUMNS + RUNNER_COLUMNS)


# ------------------------------------------------------------------------------------ the sweep modules
@dataclasses.dataclass(frozen=True)
class Config:
    """A mixture sweep: one ensemble per (d, width) over ns x weight decays x seeds."""

    dims: tuple = (2,)
    n_components: int = 4
    widths: tuple = (32,)
    ns: tuple = (64,)
    weight_decays: tuple = (0.0,)
    seeds: tuple = (0, 1, 2)
    train: ScoreTrainConfig = ScoreTrainConfig()
    protocol: GMMDefaults = GMMDefaults()


# the cpu protocol of every mixture sweep (measured in /work/scratch/gmm/FINDINGS.md-style scans: AdamW at
# lr 5e-3, 1e-2 diverges; batch 128; 3000 steps; training times from 1e-4, sampling to 1e-3 with 60 steps)
CPU_TRAIN = ScoreTrainConfig(steps=3000, batch_size=128, lr=5e-3, warmup=100, t0=1e-4, T=10.0)
CPU_PROTOCOL = GMMDefaults()
# paper scale (GPU): long training, more samples, smaller times
PAPER_TRAIN = dataclasses.replace(CPU_TRAIN, steps=200_000, batch_size=256, lr=2e-3, t0=1e-5)
PAPER_PROTOCOL = dataclasses.replace(CPU_PROTOCOL, t0=1e-4, n_generated=10_000, n_anchor=1000, n_test=2000,
                                     sample_steps=200, loglik_steps=100, index_samples=4000)
SMOKE_TRAIN = ScoreTrainConfig(steps=30, batch_size=64, lr=5e-3, warmup=5, t0=1e-4, T=10.0)
SMOKE_PROTOCOL = GMMDefaults(sample_steps=4, n_generated=30, n_anchor=10, n_test=10, loglik_steps=2,
                             index_times=(1e-3, 0.1, 10.0), index_samples=20)


def grid(cfg: Config) -> list[dict]:
    """One point per (d, width): the ns x weight decays x seeds of that width train as one ensemble."""
    return [{"d": d, "width": w, "seed": 0} for d in cfg.dims for w in cfg.widths]


def members_of(cfg: Config) -> list[dict]:
    return [{"seed": s, "n": n, "weight_decay": wd} for n in cfg.ns for wd in cfg.weight_decays for s in cfg.seeds]


def run_members(point: dict, members: list[dict], cfg: Config, device: str, *, kind: str = "gmm",
                keep_samples: bool = False) -> list[dict]:
    """Train and measure one ensemble of ``members`` at the point's (d, width) under ``cfg``'s training and
    protocol, with a checkpoint keyed by the configuration; returns the summary rows followed by every
    member's index-profile rows (summary rows keep 'samples'/'train' with keep_samples)."""
    ckpt = Checkpoint.for_run(kind, {"config": dataclasses.asdict(cfg), "point": point, "members": members,
                                     "device": str(device)})
    rows = run_group(dim=point["d"], n_components=cfg.n_components, width=point["width"], members=members,
                     train_cfg=cfg.train, defaults=cfg.protocol, device=device, keep_samples=keep_samples,
                     checkpoint=ckpt)
    ckpt.clear()  # the rows are about to be saved: the checkpoint has served
    profiles = [p for r in rows for p in r.pop("profile")]
    return rows + profiles


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    return run_members(point, members_of(cfg), cfg, device)


# ------------------------------------------------------------------------------------------- figures
QUALITY_LABEL = r"sample quality $\Delta\log p$ / d (nats per dim)"
INTERVAL_NOTE = ("bars: 95% bootstrap over seeds and samples of the mean over seeds; small dots: single seeds; "
                 "open markers: nets failing the fit check")


def summaries(table):
    """The summary rows (one per trained net) of a mixture table."""
    t = table[table["kind"] == "summary"] if "kind" in table.columns else table
    if "error" in t.columns:
        t = t[t["error"].isna()]
    return t


def fit_ok(rows, tolerance: float = _memorization.QUALITY_TOLERANCE.default):
    return (rows["quality_gap"].astype(float) / rows["d"].astype(float)) >= -tolerance


def per_dim(rows, col: str):
    return rows[col].astype(float) / rows["d"].astype(float)


def _clip_for_plot(v: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Values with non-finite / below-floor entries put at the floor (shown, not dropped), and the mask."""
    v = np.asarray(v, float)
    bad = ~np.isfinite(v) | (v < floor)
    return np.where(bad, floor, v), bad


def line_figure(table, x: str, xlabel: str, title: str, *, logx: bool = True, t_star_panel: bool = True):
    """The figure of a one-parameter mixture sweep (x = params, n or d), from its table alone:
    (a) memorization fraction, its null (exact true-law draws) and its anchor (exact empirical-score sampler);
    (b) excess memorization (fraction - null); (c) sample quality per dimension with the fit check's
    threshold; (d) held-out log-likelihood median minus the true one, per dimension; (e) the
    memorization-index profile B/(A+B) against t, one line per x; (f) the crossover time t* against x."""
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors
    from matplotlib.ticker import NullFormatter

    summ = summaries(table).sort_values(x)
    xs = np.array(sorted(summ[x].unique()), float)
    tol = _memorization.QUALITY_TOLERANCE.default
    fig, axes = plt.subplots(2, 3, figsize=(16, 9))
    ax = axes.ravel()
    handles = {}

    def errbars(axis, col_count, col_n, colour, label, marker="o"):
        ests, los, his = [], [], []
        for v in xs:
            iv = _memorization.mean_rate(summ[summ[x] == v], col_count, col_n)
            ests.append(iv.estimate), los.append(iv.lo), his.append(iv.hi)
        ests, los, his = map(np.array, (ests, los, his))
        h = axis.errorbar(xs, ests, yerr=[ests - los, his - ests], fmt=marker + "-", color=colour, capsize=3, ms=5)
        handles.setdefault(label, h)
        return ests

    # (a) memorization with its baselines
    ok = fit_ok(summ, tol)
    errbars(ax[0], "mem_count", "n_generated", "C0", "memorization fraction of the net's samples (mean over seeds)")
    errbars(ax[0], "null_count", "n_null", "0.4", "null: exact true-law draws at $t_0$ (reference)", "s")
    errbars(ax[0], "anchor_count", "n_anchor", "C3", "anchor: exact empirical-score sampler (reference)", "^")
    ax[0].scatter(summ[x][ok], summ["mem_fraction"][ok], s=10, color="C0", alpha=0.5, zorder=3)
    h = ax[0].scatter(summ[x][~ok], summ["mem_fraction"][~ok], s=40, facecolors="none", edgecolors="C1", zorder=4)
    if (~ok).any():
        handles.setdefault(f"net failing the fit check ($\\Delta\\log p/d < -{tol:g}$)", h)
    ax[0].set_ylabel("fraction of samples memorized ($d_1/d_2 < 1/3$)")
    ax[0].set_ylim(-0.03, 1.05)
    ax[0].set_title("(a) memorization, null and anchor")

    # (b) excess memorization per seed and the seed-mean with its bootstrap interval
    ex = []
    for v in xs:
        g = summ[summ[x] == v]
        ex.append(_memorization.mean_excess(g))
    e = np.array([iv.estimate for iv in ex])
    h = ax[1].errorbar(xs, e, yerr=[e - [iv.lo for iv in ex], [iv.hi for iv in ex] - e], fmt="o-", color="C2",
                       capsize=3)
    handles.setdefault("excess memorization = fraction - null (mean over seeds)", h)
    ax[1].scatter(summ[x][ok], summ["mem_excess"][ok], s=10, color="C2", alpha=0.5)
    ax[1].scatter(summ[x][~ok], summ["mem_excess"][~ok], s=40, facecolors="none", edgecolors="C1")
    ax[1].axhline(0, color="0.4", lw=1, ls="--")
    ax[1].set_ylabel("excess memorization")
    ax[1].set_title("(b) excess over the null")

    # (c) sample quality: mean and median per dimension, threshold
    q, q_bad = _clip_for_plot(per_dim(summ, "quality_gap"), -100.0)
    qm, _ = _clip_for_plot(per_dim(summ, "quality_gap_median"), -100.0)
    for v in xs:
        sel = (summ[x] == v).to_numpy()
        ax[2].plot([v] * sel.sum(), q[sel], "o", color="C4", ms=4, alpha=0.7)
        ax[2].plot([v] * sel.sum(), qm[sel], "x", color="C5", ms=5)
    h1 = ax[2].plot(xs, [np.mean(q[(summ[x] == v).to_numpy()]) for v in xs], "-", color="C4")[0]
    h2 = ax[2].plot(xs, [np.median(qm[(summ[x] == v).to_numpy()]) for v in xs], ":", color="C5")[0]
    handles.setdefault("quality: mean log p of samples - of true draws, per dim (dots: seeds)", h1)
    handles.setdefault("quality from medians, per dim (crosses: seeds)", h2)
    h = ax[2].axhline(-tol, color="C1", ls="--", lw=1)
    handles.setdefault(f"fit check threshold $-{tol:g}$ nats/dim", h)
    ax[2].axhline(0, color="0.4", lw=0.8)
    if q_bad.any():
        ax[2].plot(summ[x][q_bad], q[q_bad], "v", color="r", ms=7)
    if np.nanmin(q) < -3:
        ax[2].set_yscale("symlog", linthresh=1.0)
    ax[2].set_ylabel(QUALITY_LABEL)
    ax[2].set_title("(c) sample quality and the fit check (se ~0.01/dim)")

    # (d) held-out log-likelihood: median minus the true median, per dimension
    ll = ((summ["test_loglik_median"].astype(float) - summ["test_loglik_true_median"].astype(float))
          / summ["d"].astype(float)).to_numpy()
    llc, ll_bad = _clip_for_plot(ll, -1e6)
    coll = summ["test_loglik_collapsed"].astype(bool).to_numpy()
    h = ax[3].plot(summ[x][~coll], llc[~coll], "o", color="C0", ms=5)[0]
    handles.setdefault("held-out log-lik. (PF-ODE) median - true median, per dim, one dot per seed", h)
    if coll.any():
        h = ax[3].plot(summ[x][coll], llc[coll], "v", color="r", ms=6)[0]
        handles.setdefault(f"collapsed (median < true - {_memorization.LOGLIK_COLLAPSE:g} d, or non-finite: "
                           "at the axis floor)", h)
    ax[3].axhline(0, color="0.4", lw=0.8)
    ax[3].set_yscale("symlog", linthresh=1.0)
    ax[3].set_ylabel("held-out log-likelihood gap (nats per dim)")
    ax[3].set_title("(d) held-out log-likelihood (median over test points)")

    # (e) the index profile, one line per x (mean over seeds), colour = x
    prof = table[table["kind"] == "index"] if "kind" in table.columns else table.iloc[:0]
    norm = colors.LogNorm(xs.min(), xs.max()) if logx and xs.min() > 0 and xs.max() > xs.min() else \
        colors.Normalize(xs.min(), xs.max() + (xs.max() == xs.min()))
    cmap = plt.get_cmap("viridis")
    for v in xs:
        p = prof[prof[x] == v]
        if p.empty:
            continue
        g = p.groupby("t")
        m = g["index"].mean()
        ax[4].plot(m.index, m.values, "o-", ms=3, color=cmap(norm(v)))
    ax[4].set_xscale("log")
    ax[4].set_ylim(-0.02, 1.02)
    ax[4].axhline(0.5, color="0.4", ls="--", lw=0.8)
    ax[4].set_xlabel("diffusion time t")
    ax[4].set_ylabel("index B/(A+B) (1: on the empirical score)")
    ax[4].set_title("(e) memorization index over time (mean over seeds)")
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax[4], label=xlabel)

    # (f) t* against x with brackets; inf (never closer to the empirical score) drawn at the top
    if t_star_panel and "t_star" in summ.columns and summ["t_star"].notna().any():
        times = sorted(prof["t"].unique()) if not prof.empty else [1e-3, 10.0]
        top, floor = times[-1] * 3, times[0] / 3
        order = summ.assign(fails_fit=~fit_ok(summ, tol)).sort_values("fails_fit", kind="stable")  # fitted nets first
        for i, r in enumerate(order.itertuples()):
            jitter = (1 + 0.06 * (r.seed - 1)) if logx else 0.12 * (r.seed - 1)
            xv = getattr(r, x) * jitter if logx else getattr(r, x) + jitter
            est = r.t_star if math.isfinite(r.t_star) else top
            lo = r.t_star_lo if r.t_star_lo > 0 else floor
            hi = r.t_star_hi if math.isfinite(r.t_star_hi) else top
            colour = "C1" if r.fails_fit else "C0"
            if math.isfinite(r.t_star):
                h = ax[5].errorbar([xv], [est], yerr=[[est - lo], [hi - est]], fmt="o", color=colour, capsize=3, ms=4)
                handles.setdefault("crossover time t* (one per seed, orange: failing the fit check; bar: grid bracket, to the axis "
                                   "floor where censored at the grid's first time)", h)
            else:
                h = ax[5].plot([xv], [top], "^", color=colour, ms=7)[0]
                handles.setdefault("t* = inf: never significantly closer to the empirical score", h)
        ax[5].axhspan(times[0], times[-1], color="0.92", zorder=0)
        ax[5].set_yscale("log")
        ax[5].set_ylabel("crossover time t*")
        ax[5].set_title("(f) crossover time t*\n(the net follows the empirical score for t >= t*)")
    else:
        ax[5].axis("off")

    for a in ax:
        if a is not ax[4]:
            a.set_xlabel(xlabel)
            if logx:
                a.set_xscale("log")
                a.xaxis.set_minor_formatter(NullFormatter())
        a.grid(alpha=0.3, which="major")
    fig.suptitle(title + "\n" + INTERVAL_NOTE, fontsize=10)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=2, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.15, 1, 0.96))
    return fig
