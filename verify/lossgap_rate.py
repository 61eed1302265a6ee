"""How fast the Loss-Gap vanishes with n at a fixed small t (Sec. 4: "only at a rate like n^(-1/d)").

At fixed t the Loss-Gap sits at ~ d / sigma_t^2 while the training points are isolated at the noise scale
(nearest-neighbour spacing ~ n^(-1/d) >> sigma_t: the empirical law memorises), and starts to decay once
the spacing falls below sigma_t. For each small d and each fixed t, E_D[Loss-Gap_t] is measured (Fisher
form, Prop. 4.1) over a geometric range of n and several training sets; a power law n^slope is fitted by
weighted least squares on log E_D[Loss-Gap] over the points in the decay regime (E_D[Loss-Gap] below
``decay_fraction`` times the memorization level d / sigma_t^2, needing at least ``min_fit_points`` such n);
``tail_slope`` is the same fit over the last three n only (the asymptotic slope, if the range reaches it). The fitted slope is
shown next to -1/d and next to -1, the rate of a kernel-density-type variance 1/(n sigma_t^(d+2)) that
P^_t (an unbiased estimate of p_t: E_D p^_t = p_t) would have once many points share a noise ball.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

import theory
from theory import lossgap

from . import stats
from .verdicts import Claim, Constant, conjunction, decide_within, finding, inconclusive

NAME = "lossgap_rate"
CLAIM = "At fixed small t, Loss-Gap_t decays with n only once n^(-1/d) < sigma_t; fitted exponent vs -1/d (Sec. 4)"
ORDER = 32


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple
    times: tuple
    n_min: int
    n_max: int
    n_ns: int
    n_components: int
    separation: float
    trace_scale: float        # tr Sigma_k / d
    n_draws: int
    n_neighbour_queries: int
    decay_fraction: float     # decay regime: E_D[Loss-Gap] < decay_fraction * d / sigma_t^2
    min_fit_points: int
    seeds: tuple


PRESETS = {
    "smoke": Config(dims=(1, 2), times=(1e-2,), n_min=10, n_max=1000, n_ns=3, n_components=4, separation=2.0,
                    trace_scale=1.0, n_draws=64, n_neighbour_queries=100, decay_fraction=0.5, min_fit_points=2,
                    seeds=(0,)),
    "cpu": Config(dims=(1, 2, 4), times=(1e-3, 1e-2, 1e-1), n_min=10, n_max=100000, n_ns=9, n_components=4,
                  separation=2.0, trace_scale=1.0, n_draws=192, n_neighbour_queries=300, decay_fraction=0.5,
                  min_fit_points=3, seeds=(0, 1, 2)),
    "paper": Config(dims=(1, 2, 3, 4, 6), times=(1e-4, 1e-3, 1e-2, 1e-1), n_min=10, n_max=1000000, n_ns=16,
                    n_components=4, separation=2.0, trace_scale=1.0, n_draws=4000, n_neighbour_queries=2000,
                    decay_fraction=0.5, min_fit_points=3, seeds=tuple(range(8))),
}
ESTIMATED_RUNTIME = {"smoke": 3, "cpu": 30, "paper": 3600}
COLUMNS = ("d", "n", "t", "sigma2_t", "loss_gap", "loss_gap_se", "memorization_level", "nn_distance_median",
           "nn_over_sigma", "n_draws", "estimator", "seed", "preset", "device", "runtime_s", "point")


def sample_sizes(cfg: Config) -> list[int]:
    return sorted({int(round(v)) for v in np.geomspace(cfg.n_min, cfg.n_max, cfg.n_ns)})


def grid(cfg: Config) -> list[dict]:
    return [{"d": d, "n": n, "seed": seed} for d in cfg.dims for n in sample_sizes(cfg) for seed in cfg.seeds]


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    d, n, seed = point["d"], point["n"], point["seed"]
    truth = theory.paper_mixture(cfg.n_components, d, separation=cfg.separation, trace=cfg.trace_scale * d,
                                 seed=seed, device=device)
    gen = torch.Generator(device=device).manual_seed(40_000 + 1009 * seed + 13 * d + n)
    data = truth.sample(n, 0.0, gen)
    empirical = theory.EmpiricalLaw(data)
    m = min(n, cfg.n_neighbour_queries)
    nn_dist, _ = theory.nearest_neighbours(data[:m], data, k=2)
    nn_median = float(nn_dist[:, 1].median())
    rows = []
    for t in cfg.times:
        gap = lossgap.fisher_divergence(empirical, truth, float(t), cfg.n_draws, generator=gen)
        sigma_t = math.sqrt(float(theory.sigma2(t)))
        rows.append({"t": float(t), "sigma2_t": sigma_t ** 2, "loss_gap": gap.mean, "loss_gap_se": gap.stderr,
                     "memorization_level": d / sigma_t ** 2, "nn_distance_median": nn_median,
                     "nn_over_sigma": nn_median / sigma_t, "n_draws": cfg.n_draws,
                     "estimator": "fisher_under_empirical"})
    return rows


def fit_rates(table, cfg: Config):
    """Per (d, t): the fitted exponent of E_D[Loss-Gap_t] ~ n^slope over the decay regime with its standard
    error and 95% interval (``verify.stats.loglog_fit``, weighted by the errors of the means over training
    sets: the larger of the seed spread and the Monte-Carlo error), the n-range used, and the reference
    exponents -1/d and -1. Returns a DataFrame."""
    import pandas as pd

    rows = []
    for (d, t), sub in table.groupby(["d", "t"]):
        g = sub.groupby("n")
        mean = g["loss_gap"].mean()
        se = (g["loss_gap"].std(ddof=1) / np.sqrt(g.size())).fillna(0.0)
        se = np.maximum(se, g["loss_gap_se"].mean() / np.sqrt(g.size()))
        use = (mean < cfg.decay_fraction * g["memorization_level"].mean()).to_numpy()
        ns = mean.index.to_numpy(dtype=float)
        rec = {"d": d, "t": t, "minus_one_over_d": -1.0 / d, "minus_one": -1.0, "n_fit_points": int(use.sum())}
        if use.sum() >= cfg.min_fit_points:
            fit = stats.loglog_fit(ns[use], mean.to_numpy()[use], se.to_numpy()[use])
            rec.update(slope=fit.slope, slope_se=fit.slope_se, slope_lo=fit.lo, slope_hi=fit.hi,
                       n_fit_min=int(ns[use].min()), n_fit_max=int(ns[use].max()))
        else:
            rec.update(slope=math.nan, slope_se=math.nan, slope_lo=-math.inf, slope_hi=math.inf,
                       n_fit_min=math.nan, n_fit_max=math.nan)
        tail = np.zeros_like(use)
        tail[-3:] = True
        tail &= use
        tail_fit = (stats.loglog_fit(ns[tail], mean.to_numpy()[tail], se.to_numpy()[tail]) if tail.sum() == 3
                    else None)
        rec["tail_slope"], rec["tail_slope_se"] = ((tail_fit.slope, tail_fit.slope_se) if tail_fit
                                                   else (math.nan, math.nan))
        rows.append(rec)
    return pd.DataFrame(rows)


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    fits = fit_rates(table, cfg)
    times = sorted(table["t"].unique())
    fig, axes = plt.subplots(1, len(times), figsize=(5 * len(times), 4.4), squeeze=False)
    for ax, t in zip(axes[0], times):
        for i, d in enumerate(sorted(table["d"].unique())):
            sub = table[(table["d"] == d) & (table["t"] == t)]
            g = sub.groupby("n")
            mean = g["loss_gap"].mean()
            se = g["loss_gap"].std(ddof=1).fillna(0.0) / np.sqrt(g.size())
            ax.errorbar(mean.index, mean.values, yerr=2 * se.values, fmt="o", ms=4, capsize=2, color=f"C{i}")
            ax.axhline(float(sub["memorization_level"].iloc[0]), color=f"C{i}", lw=0.8, ls=":")
            f = fits[(fits["d"] == d) & (fits["t"] == t)].iloc[0]
            label = f"d={d}: "
            if math.isfinite(f["slope"]):
                nn = np.geomspace(f["n_fit_min"], f["n_fit_max"], 20)
                anchor = mean.loc[int(f["n_fit_max"])]
                ax.plot(nn, anchor * (nn / f["n_fit_max"]) ** f["slope"], "-", color=f"C{i}")
                ax.plot(nn, anchor * (nn / f["n_fit_max"]) ** (-1.0 / d), "--", color=f"C{i}", alpha=0.5)
                label += (f"fit n^{f['slope']:.2f} [{f['slope_lo']:.2f}, {f['slope_hi']:.2f}], last 3: "
                          f"{f['tail_slope']:.2f} (−1/d = {-1 / d:.2f})")
            else:
                label += "no decay regime in range"
            ax.plot([], [], "o-", color=f"C{i}", label=label)
        ax.plot([], [], "k:", label=r"memorization level $d/\sigma_t^2$")
        ax.plot([], [], "k--", alpha=0.5, label=r"slope $-1/d$ through the last point")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training set size n")
        ax.set_ylabel(r"$E_D$[Loss-Gap$_t$]")
        ax.set_title(rf"t = {t:g} ($\sigma_t$ = {math.sqrt(-math.expm1(-t)):.3g})")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6.5)
    fig.suptitle("Decay of the Loss-Gap with n at fixed t (fit over n with Loss-Gap < "
                 rf"{cfg.decay_fraction:g} $d/\sigma_t^2$; error bars 2 stderr over training sets)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- claims
def _preset_config(table) -> Config:
    """The preset config named by the table's ``preset`` column (cpu if absent or unknown)."""
    preset = str(table["preset"].iloc[0]) if "preset" in table.columns and len(table) else "cpu"
    return PRESETS.get(preset, PRESETS["cpu"])


def judge_rate(table, *, tolerance=0.1, decay_fraction=0.5):
    """Rule: for every (d, t) whose Loss-Gap is in its decaying regime (E_D[Loss-Gap] < decay_fraction *
    d / sigma_t^2) over at least the preset's minimum number of n, the fitted exponent of E_D[Loss-Gap_t] ~
    n^slope (weighted log-log fit, 95% interval) lies in -1/d -+ tolerance: holds if every interval lies
    inside its band, does not hold if some interval lies entirely outside it, inconclusive otherwise. The
    distance of each exponent to -1 (a kernel estimate's variance rate) is reported beside it."""
    import dataclasses

    t = table[table["error"].isna()] if "error" in table.columns else table
    cfg = dataclasses.replace(_preset_config(t), decay_fraction=decay_fraction)
    fits = fit_rates(t, cfg)
    stat = "fitted exponent of E_D[Loss-Gap_t] ~ n^slope against -1/d (the (d, t) farthest from its band)"
    rng = (f"d in {sorted(int(d) for d in t['d'].unique())}, t in {sorted(float(v) for v in t['t'].unique())}, "
           f"n {int(t['n'].min())}-{int(t['n'].max())}, {t['seed'].nunique()} training sets per n")
    unfit = fits[~np.isfinite(fits["slope"])]
    confounds = ([f"no decay regime with >= {cfg.min_fit_points} n at " + ", ".join(
        f"d={int(r.d)} t={stats.fmt(r.t)}" for r in unfit.itertuples()) + " (not judged)"] if len(unfit) else [])
    fits = fits[np.isfinite(fits["slope"])]
    if fits.empty:
        return inconclusive(stat, "no (d, t) with enough n in the decay regime", confounds=confounds, range_tested=rng)
    verdicts = [decide_within(r.slope_lo, r.slope_hi, -1 / r.d - tolerance, -1 / r.d + tolerance)
                for r in fits.itertuples()]
    # the deciding fit: the one whose interval is farthest from its band
    gap = [max(-1 / r.d - tolerance - r.slope_hi, r.slope_lo - (-1 / r.d + tolerance)) for r in fits.itertuples()]
    worst = fits.iloc[int(np.argmax(gap))]
    parts = [f"d={int(r.d)}, t={stats.fmt(r.t)}: {stats.fmt_interval(r.slope, r.slope_lo, r.slope_hi, 2)} "
             f"(-1/d = {-1 / r.d:.2f}; n {int(r.n_fit_min)}-{int(r.n_fit_max)})" for r in fits.itertuples()]
    near_one = sum(r.slope_lo <= -1 <= r.slope_hi for r in fits.itertuples())
    text = ("fitted exponents " + "; ".join(parts) + f"; {near_one} of {len(fits)} intervals contain -1 (the "
            "fixed-t variance rate of a kernel estimate)")
    return finding(stat, (float(worst["slope"]), float(worst["slope_lo"]), float(worst["slope_hi"])),
                   conjunction(verdicts), text, interval="wls", confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("lossgap_rate", "At fixed small t the Loss-Gap vanishes with n only at a rate like n^(-1/d)",
          "Sec. 4, after Thm 4.3", "fixed small t, n -> infinity", "theory.estimators.lossgap.fisher_divergence", judge_rate,
          (Constant("tolerance", 0.1, "half-width of the band around -1/d accepted as 'like n^(-1/d)'"),
           Constant("decay_fraction", 0.5, "decay regime: E_D[Loss-Gap] below this fraction of d / sigma_t^2"))),
]
