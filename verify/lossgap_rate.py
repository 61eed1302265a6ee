"""How the Loss-Gap vanishes with n (Sec. 4: "only at a rate like n^(-1/d)"): the fixed-t exponent, and the
crossover n*(t) where E_D[Loss-Gap_t] leaves its small-t plateau.

At fixed t, E_D[Loss-Gap_t] sits on its plateau d/sigma_t^2 - J(P_t) (its exact value for n = 1) while the
training points are isolated at the noise scale, and decays once they share noise balls. The pair-collision
expansion (``theory.estimators.small_t``) makes this precise: each extra point takes off about
c_d rho(0) sigma_t^(d-2)/alpha_t^d (exactly, ``expected_pair_deficit``) while collisions are rare, so the plateau
is left when n ~ sigma_t^-d, i.e. sigma* ~ n^(-1/d): the paper's "rate like n^(-1/d)" is the rate at which the
memorization scale sigma* shrinks with n, not a fixed-t exponent.

For each d and each t of its grid (chosen so that the crossover falls inside the n-range), E_D[Loss-Gap_t] is
measured over several training sets per n (``theory.estimators.lossgap.loss_gap_terms``: the Fisher and the
by-parts forms combined) and divided by the plateau. Two readings:

* fixed t: the exponent of E_D[Loss-Gap_t] ~ n^slope over the decay regime (E_D[Loss-Gap] below
  ``decay_fraction`` of d/sigma_t^2), by ``verify.stats.loglog_fit``, against -1/d;
* the crossover: n*(t), where the ratio E_D[Loss-Gap_t] / (d/sigma_t^2 - J(P_t)) falls to
  ``crossover_fraction`` (``verify.stats.crossing``: linear interpolation in log n, interval from the pointwise
  95% intervals), and the slope of log n* against log sigma_t (weighted log-log fit), against -d; beside it the
  first-order (pair) prediction ``theory.estimators.small_t.first_order_crossover``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import torch

import theory
from theory import lossgap, small_t

from . import stats
from .verdicts import Claim, Constant, conjunction, decide_within, finding, inconclusive

NAME = "lossgap_rate"
CLAIM = ("Loss-Gap against n: the fixed-t exponent vs -1/d (Sec. 4), and the crossover n*(t) ~ sigma_t^-d "
         "(sigma* ~ n^(-1/d))")
ORDER = 32


@dataclasses.dataclass(frozen=True)
class Config:
    times_by_dim: tuple       # ((d, (t, ...)), ...): the times of each dimension
    n_min: int
    n_max: int
    n_ns: int
    n_components: int
    separation: float
    trace_scale: float        # tr Sigma_k / d
    n_draws: int
    n_true_draws: int         # draws of P_t for J(P_t)
    n_pairs: int              # pairs for the first-order (pair) prediction
    n_neighbour_queries: int
    decay_fraction: float     # fixed-t decay regime: E_D[Loss-Gap] < decay_fraction * d / sigma_t^2
    min_fit_points: int
    crossover_fraction: float
    law_seed: int
    seeds: tuple

    @property
    def dims(self) -> tuple:
        return tuple(d for d, _ in self.times_by_dim)

    def times(self, d: int) -> tuple:
        return dict((int(k), tuple(v)) for k, v in self.times_by_dim)[int(d)]


PRESETS = {
    "smoke": Config(times_by_dim=((1, (1e-4, 1e-2)), (2, (1e-2,))), n_min=3, n_max=1000, n_ns=4, n_components=4,
                    separation=2.0, trace_scale=1.0, n_draws=64, n_true_draws=200, n_pairs=2000,
                    n_neighbour_queries=100, decay_fraction=0.5, min_fit_points=2, crossover_fraction=0.5,
                    law_seed=0, seeds=(0, 1)),
    "cpu": Config(times_by_dim=((1, (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)), (2, (1e-4, 1e-3, 1e-2, 1e-1)),
                                (4, (1e-2, 3e-2, 1e-1, 3e-1)), (8, (0.1, 0.15, 0.2, 0.3))),
                  n_min=3, n_max=100_000, n_ns=11, n_components=4, separation=2.0, trace_scale=1.0, n_draws=192,
                  n_true_draws=1000, n_pairs=50_000, n_neighbour_queries=300, decay_fraction=0.5, min_fit_points=3,
                  crossover_fraction=0.5, law_seed=0, seeds=(0, 1, 2)),
    "paper": Config(times_by_dim=((1, (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2)), (2, (3e-5, 1e-4, 1e-3, 1e-2, 1e-1)),
                                  (4, (3e-3, 1e-2, 3e-2, 1e-1, 3e-1)), (8, (0.07, 0.1, 0.15, 0.2, 0.3))),
                    n_min=3, n_max=1_000_000, n_ns=16, n_components=4, separation=2.0, trace_scale=1.0, n_draws=384,
                    n_true_draws=4000, n_pairs=200_000, n_neighbour_queries=1000, decay_fraction=0.5,
                    min_fit_points=3, crossover_fraction=0.5, law_seed=0, seeds=(0, 1, 2, 3, 4)),
}
ESTIMATED_RUNTIME = {"smoke": 3, "cpu": 70, "paper": 1800}   # paper: run on the 2-core CPU on 2 Dec 2026, 1,709 s
# of point time over 320 points (one thread, sharing the cores with another run)
COLUMNS = ("d", "n", "t", "sigma_t", "sigma2_t", "alpha_t", "loss_gap", "loss_gap_se", "fisher_true", "plateau",
           "ratio", "ratio_se", "memorization_level", "collision_density", "pair_deficit", "pair_deficit_se",
           "first_order_crossover", "nn_distance_median", "nn_over_sigma", "n_draws", "estimator", "seed", "preset",
           "device", "runtime_s", "point")


def sample_sizes(cfg: Config) -> list[int]:
    return sorted({int(round(v)) for v in np.geomspace(cfg.n_min, cfg.n_max, cfg.n_ns)})


def grid(cfg: Config) -> list[dict]:
    return [{"d": d, "n": n, "seed": seed} for d in cfg.dims for n in sample_sizes(cfg) for seed in cfg.seeds]


def true_law(d: int, cfg: Config, device: str = "cpu") -> theory.GaussianMixture:
    return theory.paper_mixture(cfg.n_components, d, separation=cfg.separation, trace=cfg.trace_scale * d,
                                seed=cfg.law_seed, device=device)


_TRUE_TERMS: dict = {}


def true_terms(d: int, cfg: Config, device: str) -> dict:
    """Per t of dimension d, computed once per process from their own generator: J(P_t) and the exact pair deficit
    E_{x1,x2}[(u^2/sigma_t^2) g(u)] (``small_t.expected_pair_deficit``); and int p_0^2."""
    key = (d, cfg.times(d), cfg.n_true_draws, cfg.n_pairs, cfg.law_seed, cfg.n_components, cfg.separation,
           cfg.trace_scale, device)
    if key not in _TRUE_TERMS:
        truth = true_law(d, cfg, device)
        gen = torch.Generator(device=device).manual_seed(41_000 + 13 * d)
        _TRUE_TERMS[key] = {"rho": small_t.collision_density(truth), "t": {float(t): (
            lossgap.fisher_information(truth, float(t), cfg.n_true_draws, generator=gen),
            small_t.expected_pair_deficit(truth, float(t), cfg.n_pairs, generator=gen)) for t in cfg.times(d)}}
    return _TRUE_TERMS[key]


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    d, n, seed = point["d"], point["n"], point["seed"]
    truth = true_law(d, cfg, device)
    gen = torch.Generator(device=device).manual_seed(40_000 + 1009 * seed + 13 * d + n)
    data = truth.sample(n, 0.0, gen)
    empirical = theory.EmpiricalLaw(data)
    m = min(n, cfg.n_neighbour_queries)
    nn_median = float(theory.nearest_neighbours(data[:m], data, k=2)[0][:, 1].median()) if n > 1 else math.nan
    tt = true_terms(d, cfg, device)
    rows = []
    for t in cfg.times(d):
        t = float(t)
        jt, pair = tt["t"][t]
        gap = lossgap.loss_gap_terms(truth, empirical, t, cfg.n_draws, generator=gen).loss_gap
        a, s2 = float(theory.alpha(t)), float(theory.sigma2(t))
        level = d / s2
        plateau = level - jt.mean
        rows.append({"t": t, "sigma_t": math.sqrt(s2), "sigma2_t": s2, "alpha_t": a, "loss_gap": gap.mean,
                     "loss_gap_se": gap.stderr, "fisher_true": jt.mean, "plateau": plateau,
                     "ratio": gap.mean / plateau, "ratio_se": gap.stderr / plateau, "memorization_level": level,
                     "collision_density": tt["rho"], "pair_deficit": pair.mean, "pair_deficit_se": pair.stderr,
                     "first_order_crossover": small_t.first_order_crossover(
                         d, t, fisher_true=jt.mean, pair_deficit=pair.mean, fraction=cfg.crossover_fraction)
                     if pair.mean > 0 else math.inf,
                     "nn_distance_median": nn_median, "nn_over_sigma": nn_median / math.sqrt(s2),
                     "n_draws": cfg.n_draws, "estimator": "loss_gap_terms (Fisher form + by parts, combined)"})
    return rows


def _ok(table):
    return table[table["error"].isna()] if "error" in table.columns else table


# --------------------------------------------------------------------------------------------- fixed-t exponent
def fit_rates(table, cfg: Config):
    """Per (d, t): the fitted exponent of E_D[Loss-Gap_t] ~ n^slope over the decay regime with its standard
    error and 95% interval (``verify.stats.loglog_fit``, weighted by the errors of the means over training
    sets: the larger of the seed spread and the Monte-Carlo error), the n-range used, and the reference
    exponents -1/d and -1. Returns a DataFrame."""
    rows = []
    for (d, t), sub in _ok(table).groupby(["d", "t"]):
        e = stats.seed_mean(sub, ["n"], "loss_gap", "loss_gap_se")
        level = float(sub["memorization_level"].iloc[0])
        use = (e["mean"] < cfg.decay_fraction * level).to_numpy()
        ns, mean, se = e["n"].to_numpy(float), e["mean"].to_numpy(), e["se"].to_numpy()
        rec = {"d": d, "t": t, "minus_one_over_d": -1.0 / d, "minus_one": -1.0, "n_fit_points": int(use.sum())}
        if use.sum() >= cfg.min_fit_points:
            fit = stats.loglog_fit(ns[use], mean[use], se[use])
            rec.update(slope=fit.slope, slope_se=fit.slope_se, slope_lo=fit.lo, slope_hi=fit.hi,
                       n_fit_min=int(ns[use].min()), n_fit_max=int(ns[use].max()))
        else:
            rec.update(slope=math.nan, slope_se=math.nan, slope_lo=-math.inf, slope_hi=math.inf,
                       n_fit_min=math.nan, n_fit_max=math.nan)
        rows.append(rec)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- crossover
def crossovers(table, fraction: float) -> pd.DataFrame:
    """Per (d, t): n*(t), where the E_D ratio Loss-Gap / plateau first falls below ``fraction``
    (``stats.crossing`` on the training-set means with their normal 95% intervals), its interval, and the
    first-order (pair) prediction. Censored crossings (below or beyond the n-range) have an infinite side."""
    rows = []
    z = stats.normal_quantile(stats.LEVEL)
    for (d, t), sub in _ok(table).groupby(["d", "t"]):
        e = stats.seed_mean(sub, ["n"], "ratio", "ratio_se").sort_values("n")
        c = stats.crossing(e["n"], e["mean"], e["mean"] - z * e["se"], e["mean"] + z * e["se"], fraction)
        rows.append({"d": int(d), "t": float(t), "sigma_t": float(sub["sigma_t"].iloc[0]), "n_star": c.estimate,
                     "n_star_lo": c.lo, "n_star_hi": c.hi,
                     "censored": not (math.isfinite(c.estimate) and c.lo > 0 and math.isfinite(c.hi)),
                     "first_order": float(sub["first_order_crossover"].iloc[0]),
                     "n_min": int(e["n"].min()), "n_max": int(e["n"].max())})
    return pd.DataFrame(rows)


def crossover_slopes(cross: pd.DataFrame, min_points: int = 3) -> pd.DataFrame:
    """Per d: the weighted log-log slope of n* against sigma_t over the uncensored crossings (``loglog_fit`` with
    se(log n*) from the crossing interval), its 95% interval, and the same slope of the first-order prediction."""
    rows = []
    for d, g in cross.groupby("d"):
        ok = g[~g["censored"]]
        rec = {"d": int(d), "minus_d": -float(d), "n_points": len(ok), "n_censored": int(g["censored"].sum())}
        if len(ok) >= min_points:
            se = [n * stats.log_interval_se(lo, hi) for n, lo, hi in zip(ok["n_star"], ok["n_star_lo"], ok["n_star_hi"])]
            fit = stats.loglog_fit(ok["sigma_t"], ok["n_star"], se)
            rec.update(slope=fit.slope, slope_se=fit.slope_se, slope_lo=fit.lo, slope_hi=fit.hi, method=fit.method)
        else:
            rec.update(slope=math.nan, slope_se=math.nan, slope_lo=-math.inf, slope_hi=math.inf, method="wls")
        fo = g[np.isfinite(g["first_order"])]
        rec["first_order_slope"] = stats.loglog_fit(fo["sigma_t"], fo["first_order"]).slope if len(fo) >= 2 else math.nan
        rows.append(rec)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- claims
def _preset_config(table) -> Config:
    """The preset config named by the table's ``preset`` column (cpu if absent or unknown)."""
    preset = str(table["preset"].iloc[0]) if "preset" in table.columns and len(table) else "cpu"
    return PRESETS.get(preset, PRESETS["cpu"])


def _range(t) -> str:
    return (f"d in {sorted(int(d) for d in t['d'].unique())}, t {stats.fmt(float(t['t'].min()))}-"
            f"{stats.fmt(float(t['t'].max()))}, n {int(t['n'].min())}-{int(t['n'].max())}, "
            f"{t['seed'].nunique()} training sets per n")


def judge_rate(table, *, tolerance=0.1, decay_fraction=0.5):
    """Rule: for every (d, t) whose Loss-Gap is in its decaying regime (E_D[Loss-Gap] < decay_fraction *
    d / sigma_t^2) over at least the preset's minimum number of n, the fitted exponent of E_D[Loss-Gap_t] ~
    n^slope (weighted log-log fit, 95% interval) lies in -1/d -+ tolerance: holds if every interval lies
    inside its band, does not hold if some interval lies entirely outside it, inconclusive otherwise. The
    distance of each exponent to -1 (a kernel estimate's variance rate) is reported beside it."""
    t = _ok(table)
    cfg = dataclasses.replace(_preset_config(t), decay_fraction=decay_fraction)
    fits = fit_rates(t, cfg)
    stat = "fitted exponent of E_D[Loss-Gap_t] ~ n^slope against -1/d (the (d, t) farthest from its band)"
    rng = _range(t)
    unfit = fits[~np.isfinite(fits["slope"])]
    confounds = ([f"no decay regime with >= {cfg.min_fit_points} n at " + ", ".join(
        f"d={int(r.d)} t={stats.fmt(r.t)}" for r in unfit.itertuples()) + " (not judged)"] if len(unfit) else [])
    fits = fits[np.isfinite(fits["slope"])]
    if fits.empty:
        return inconclusive(stat, "no (d, t) with enough n in the decay regime", confounds=confounds, range_tested=rng)
    verdicts = [decide_within(r.slope_lo, r.slope_hi, -1 / r.d - tolerance, -1 / r.d + tolerance)
                for r in fits.itertuples()]
    gap = [max(-1 / r.d - tolerance - r.slope_hi, r.slope_lo - (-1 / r.d + tolerance)) for r in fits.itertuples()]
    worst = fits.iloc[int(np.argmax(gap))]
    parts = [f"d={int(r.d)}, t={stats.fmt(r.t)}: {stats.fmt_interval(r.slope, r.slope_lo, r.slope_hi, 2)} "
             f"(-1/d = {-1 / r.d:.2f}; n {int(r.n_fit_min)}-{int(r.n_fit_max)})" for r in fits.itertuples()]
    near_one = sum(r.slope_lo <= -1 <= r.slope_hi for r in fits.itertuples())
    text = ("fitted exponents " + "; ".join(parts) + f"; {near_one} of {len(fits)} intervals contain -1 (the "
            "fixed-t variance rate of a kernel estimate)")
    return finding(stat, (float(worst["slope"]), float(worst["slope_lo"]), float(worst["slope_hi"])),
                   conjunction(verdicts), text, interval="wls", confounds=confounds, range_tested=rng)


def judge_crossover(table, *, tolerance=0.25, crossover_fraction=0.5):
    """Rule: per d, the crossover n*(t) is where E_D[Loss-Gap_t] / (d/sigma_t^2 - J(P_t)) falls to
    crossover_fraction (interpolated in log n; interval from the pointwise 95% intervals of the ratio); over the
    uncensored crossings (at least 3 times t), the weighted log-log slope of n* against sigma_t has its 95%
    interval inside -d (1 -+ tolerance): holds if every d's interval lies inside its band, does not hold if some
    d's interval lies entirely outside it, inconclusive otherwise. Censored crossings (outside the n-range) are
    confounds, never points of the fit."""
    t = _ok(table)
    cross = crossovers(t, crossover_fraction)
    slopes = crossover_slopes(cross)
    stat = "slope of log n*(t) against log sigma_t against -d (the d farthest from its band)"
    rng = _range(t)
    cens = cross[cross["censored"]]
    confounds = ([f"{len(cens)} censored crossings (outside the n-range, not fitted): " + ", ".join(
        f"d={r.d} t={stats.fmt(r.t)}" for r in cens.itertuples())] if len(cens) else [])
    unfit = slopes[~np.isfinite(slopes["slope"])]
    if len(unfit):
        confounds.append("fewer than 3 uncensored crossings at d = " + ", ".join(str(int(d)) for d in unfit["d"])
                         + " (not judged)")
    fitted = slopes[np.isfinite(slopes["slope"])]
    if fitted.empty:
        return inconclusive(stat, "no dimension with 3 uncensored crossings", confounds=confounds, range_tested=rng)
    bands = [(-r.d * (1 + tolerance), -r.d * (1 - tolerance)) for r in fitted.itertuples()]
    verdicts = [decide_within(r.slope_lo, r.slope_hi, *b) for r, b in zip(fitted.itertuples(), bands)]
    gap = [max(b[0] - r.slope_hi, r.slope_lo - b[1]) / r.d for r, b in zip(fitted.itertuples(), bands)]
    worst = fitted.iloc[int(np.argmax(gap))]
    parts = [f"d={int(r.d)}: {stats.fmt_interval(r.slope, r.slope_lo, r.slope_hi, 3)} (-d = {-r.d}; first-order "
             f"pair prediction {stats.fmt(r.first_order_slope, 3)}; {r.n_points} crossings)" for r in fitted.itertuples()]
    text = "slopes of log n* vs log sigma_t: " + "; ".join(parts)
    return finding(stat, (float(worst["slope"]), float(worst["slope_lo"]), float(worst["slope_hi"])),
                   conjunction(verdicts), text, interval="wls", confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("lossgap_rate", "At fixed small t the Loss-Gap vanishes with n only at a rate like n^(-1/d)",
          "Sec. 4, after Thm 4.3", "fixed small t, n -> infinity", "theory.estimators.lossgap.loss_gap_terms", judge_rate,
          (Constant("tolerance", 0.1, "half-width of the band around -1/d accepted as 'like n^(-1/d)'"),
           Constant("decay_fraction", 0.5, "decay regime: E_D[Loss-Gap] below this fraction of d / sigma_t^2"))),
    Claim("lossgap_crossover", "The rate reframed: E_D[Loss-Gap_t] leaves its memorization plateau at n*(t) ~ "
          "sigma_t^-d, i.e. the memorization scale sigma* ~ n^(-1/d)", "Sec. 4 (memsep's reading of the rate)",
          "small t (sigma_t below the data scale)", "theory.estimators.small_t.first_order_crossover", judge_crossover,
          (Constant("tolerance", 0.25, "relative half-width of the band around -d for the slope of log n* vs log sigma_t"),
           Constant("crossover_fraction", 0.5, "n*: where E_D[Loss-Gap_t] falls to this fraction of d/sigma_t^2 - J(P_t)"))),
]


# --------------------------------------------------------------------------------------------- figure
def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    t_all = _ok(table)
    dims = sorted(t_all["d"].unique())
    cross = crossovers(t_all, cfg.crossover_fraction)
    slopes = crossover_slopes(cross)
    fits = fit_rates(t_all, cfg)
    z = stats.normal_quantile(stats.LEVEL)
    cols = 2 * max(len(dims), 2)
    fig = plt.figure(figsize=(4.3 * cols / 2, 9.0))
    gs = fig.add_gridspec(2, cols, height_ratios=[1, 0.95], hspace=0.42, wspace=0.6)
    for i, d in enumerate(dims):
        ax = fig.add_subplot(gs[0, 2 * i:2 * i + 2])
        sub = t_all[t_all["d"] == d]
        for k, (t, g) in enumerate(sub.groupby("t")):
            e = stats.seed_mean(g, ["n"], "ratio", "ratio_se").sort_values("n")
            pos = e["mean"] > 0
            colour = f"C{k}"
            sig = math.sqrt(float(theory.sigma2(float(t))))
            ax.errorbar(e.loc[pos, "n"], e.loc[pos, "mean"], yerr=z * e.loc[pos, "se"], fmt="o-", ms=3, lw=0.9,
                        color=colour, elinewidth=0.6, capsize=1.5, label=f"t = {t:g} (σ$_t$ = {sig:.2g})")
            if (~pos).any():       # non-positive means: marked at the bottom, not dropped
                ax.plot(e.loc[~pos, "n"], np.full(int((~pos).sum()), 0.03), "v", color=colour, ms=4,
                        transform=ax.get_xaxis_transform())
            pair = float(g["pair_deficit"].iloc[0]) / float(g["plateau"].iloc[0])
            nn = np.geomspace(1, float(e["n"].max()), 100)
            first = 1 - (nn - 1) * pair
            ax.plot(nn[first > 1e-3], first[first > 1e-3], "--", color=colour, lw=0.8, alpha=0.8)
            c = cross[(cross["d"] == d) & (cross["t"] == t)].iloc[0]
            if math.isfinite(c["n_star"]):
                lo, hi = c["n_star_lo"], c["n_star_hi"] if math.isfinite(c["n_star_hi"]) else float(e["n"].max())
                ax.errorbar([c["n_star"]], [cfg.crossover_fraction], xerr=[[c["n_star"] - lo], [hi - c["n_star"]]],
                            fmt="D", color=colour, ms=5, mec="k", capsize=3)
        ax.axhline(cfg.crossover_fraction, color="k", lw=0.7, ls=":")
        ax.plot([], [], "k--", lw=0.8, label="first-order (pair) prediction")
        ax.plot([], [], "kD", ms=5, label=f"n* (ratio = {cfg.crossover_fraction:g}), 95% interval")
        ax.set_xscale("log")
        ax.set_yscale("log")
        positive = stats.seed_mean(sub, ["n", "t"], "ratio", "ratio_se")["mean"]
        positive = positive[positive > 0]
        ax.set_ylim(min(1e-3, 0.5 * float(positive.min())) if len(positive) else 1e-3, 2.0)   # every positive mean shown
        ax.set_xlabel("training set size n")
        if i == 0:
            ax.set_ylabel(r"$E_D$[Loss-Gap$_t$] / $(d/\sigma_t^2 - J(P_t))$")
        ax.set_title(f"d = {d}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")

    ax = fig.add_subplot(gs[1, :cols // 2])
    for k, d in enumerate(dims):
        g = cross[(cross["d"] == d) & ~cross["censored"]]
        colour = f"C{k}"
        ax.errorbar(g["sigma_t"], g["n_star"], yerr=[g["n_star"] - g["n_star_lo"], g["n_star_hi"] - g["n_star"]],
                    fmt="o", color=colour, ms=4, capsize=2)
        fo = cross[cross["d"] == d]
        ax.plot(fo["sigma_t"], fo["first_order"], "x", color=colour, ms=5)
        s = slopes[slopes["d"] == d].iloc[0]
        label = f"d = {d}: slope "
        if math.isfinite(s["slope"]) and len(g):
            ss = np.geomspace(float(g["sigma_t"].min()), float(g["sigma_t"].max()), 20)
            anchor = np.exp(np.mean(np.log(g["n_star"]) - s["slope"] * np.log(g["sigma_t"])))
            ax.plot(ss, anchor * ss ** s["slope"], "-", color=colour, lw=1)
            ax.plot(ss, np.exp(np.mean(np.log(g["n_star"]) + d * np.log(g["sigma_t"]))) * ss ** (-d), ":",
                    color=colour, lw=1)
            label += f"{s['slope']:.2f} [{s['slope_lo']:.2f}, {s['slope_hi']:.2f}] vs −{d}"
        else:
            label += "not fitted (< 3 crossings)"
        ax.plot([], [], "o-", color=colour, label=label)
    ax.plot([], [], "kx", label="first-order (pair) prediction")
    ax.plot([], [], "k:", label="slope −d through the points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\sigma_t$")
    ax.set_ylabel("crossover n*(t)")
    ax.set_title("crossover n*(t) ~ σ$_t^{-d}$? (fit: weighted log-log, 95% interval)", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")

    ax = fig.add_subplot(gs[1, cols // 2:])
    f = fits[np.isfinite(fits["slope"])]
    for k, d in enumerate(dims):
        g = f[f["d"] == d]
        x = np.log10(g["t"].to_numpy(float))
        ax.errorbar(x, g["slope"], yerr=[g["slope"] - g["slope_lo"], g["slope_hi"] - g["slope"]], fmt="o",
                    color=f"C{k}", ms=4, capsize=2, label=f"d = {d} (−1/d = {-1 / d:.2f}, dotted)")
        ax.axhline(-1 / d, color=f"C{k}", ls=":", lw=1)
    ax.axhline(-1, color="k", lw=0.8, ls="--", label="−1 (kernel-estimate variance rate)")
    ax.set_xlabel(r"$\log_{10} t$")
    ax.set_ylabel("fixed-t exponent of E_D[Loss-Gap_t] ~ n^slope")
    ax.set_title(f"fixed-t exponents over the decay regime (< {cfg.decay_fraction:g} d/σ$_t^2$), 95% interval", fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6.5)
    fig.suptitle("Loss-Gap against n: the plateau, its crossover n*(t) and the fixed-t exponents (means over "
                 "training sets; error bars: 95% normal)", fontsize=10)
    return fig
