"""Lipschitz constant of the empirical vs the true score against diffusion time t (Sec. 5, smoothness).

For n training points drawn from a true law (a K-component Gaussian mixture, or a single anisotropic
Gaussian), at each t we measure

* lip_empirical: max ||grad^2 log p^_t|| over a cloud near the data (draws of P^_t and the noised
  midpoints of nearest-neighbour pairs), which the theory says blows up like delta^2 / (4 sigma_t^4);
* lip_true: max ||grad^2 log p_t|| over the same cloud plus draws of P_t, which stays bounded;

next to the closed forms of ``theory.estimators.lipschitz``: the empirical lower bound (rigorous; for the closest
pair, as in the paper, and its best value over all nearest-neighbour pairs; and its small-t form
alpha_t^2 delta^2/(4 sigma_t^4) - 1/sigma_t^2) and, for the Gaussian, the exact
1/(sigma_t^2 + alpha_t^2 lambda_min(Sigma)).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

import theory

from . import stats
from .verdicts import Claim, Constant, all_of, decide_above, decide_below, decide_within, finding, inconclusive

NAME = "lipschitz_vs_t"
CLAIM = "Empirical score's Lipschitz constant grows like sigma_t^-4 min|x_i - x_j|^2; a Gaussian's stays 1/(sigma_t^2 + alpha_t^2 lambda_min) (Sec. 5)"
ORDER = 10


@dataclasses.dataclass(frozen=True)
class Config:
    dim: int
    n: int
    n_components: int
    separation: float      # Delta_min / sqrt(d) of the mixture's means
    trace: float           # tr Sigma_k
    anisotropy: float      # lambda_max / lambda_min of Sigma_k
    t_min: float
    t_max: float
    n_times: int
    n_cloud: int           # draws of P^_t (and of P_t) per time, besides the midpoints
    seeds: tuple


PRESETS = {
    "smoke": Config(dim=3, n=40, n_components=4, separation=2.0, trace=1.0, anisotropy=4.0,
                    t_min=1e-4, t_max=10.0, n_times=4, n_cloud=40, seeds=(0,)),
    "cpu": Config(dim=8, n=500, n_components=8, separation=2.0, trace=2.0, anisotropy=4.0,
                  t_min=1e-4, t_max=10.0, n_times=25, n_cloud=500, seeds=(0, 1, 2)),
    "paper": Config(dim=32, n=5000, n_components=8, separation=2.0, trace=8.0, anisotropy=4.0,
                    t_min=1e-5, t_max=10.0, n_times=30, n_cloud=4000, seeds=(0, 1, 2)),
}
ESTIMATED_RUNTIME = {"smoke": 2, "cpu": 30, "paper": 3500}   # paper: run on the 2-core CPU on 2 Dec 2026, 3,445 s
# of point time over 180 points (one thread, sharing the cores with another run)
COLUMNS = ("law", "t", "d", "n", "K", "alpha_t", "sigma2_t", "min_pair_distance", "lip_empirical", "lip_true",
           "lip_true_analytic", "bound_empirical", "bound_empirical_neighbours", "bound_empirical_small_t",
           "bound_holds", "n_cloud", "seed", "preset", "device", "runtime_s", "point")

LAWS = ("mixture", "gaussian")


def grid(cfg: Config) -> list[dict]:
    times = np.geomspace(cfg.t_min, cfg.t_max, cfg.n_times)
    return [{"law": law, "seed": seed, "t": float(t)} for law in LAWS for seed in cfg.seeds for t in times]


def _true_law(law: str, cfg: Config, seed: int, device: str) -> theory.GaussianMixture:
    k = cfg.n_components if law == "mixture" else 1
    return theory.paper_mixture(k, cfg.dim, separation=cfg.separation, trace=cfg.trace,
                                anisotropy=cfg.anisotropy, seed=seed, device=device)


def run_point(point: dict, cfg: Config, device: str) -> dict:
    seed, t = point["seed"], point["t"]
    truth = _true_law(point["law"], cfg, seed, device)
    gen = torch.Generator(device=device).manual_seed(10_000 + seed)
    data = truth.sample(cfg.n, 0.0, gen)
    empirical = theory.EmpiricalLaw(data)
    cloud = theory.lipschitz_cloud(data, t, cfg.n_cloud, gen)
    delta, _, _ = theory.nearest_pair(data)
    lip_emp = theory.local_lipschitz(empirical, cloud, t)
    lip_true = theory.local_lipschitz(truth, torch.cat([cloud, truth.sample(cfg.n_cloud, t, gen)]), t)
    bound = float(theory.empirical_lipschitz_lower_bound(data, t))
    bound_nn = float(theory.empirical_lipschitz_lower_bound(data, t, pairs="neighbours"))
    analytic = (float(theory.gaussian_lipschitz(truth.covariances[0], t)) if point["law"] == "gaussian"
                else float("nan"))
    return {
        "d": cfg.dim, "n": cfg.n, "K": truth.n_components,
        "alpha_t": float(theory.alpha(t)), "sigma2_t": float(theory.sigma2(t)),
        "min_pair_distance": delta,
        "lip_empirical": float(lip_emp.max()),
        "lip_true": float(lip_true.max()),
        "lip_true_analytic": analytic,
        "bound_empirical": bound,
        "bound_empirical_neighbours": bound_nn,
        "bound_empirical_small_t": float(theory.empirical_lipschitz_lower_bound(data, t, exact=False)),
        "bound_holds": bool(float(lip_emp.max()) >= max(bound, bound_nn) * (1 - 1e-9)),
        "n_cloud": cloud.shape[0],
    }


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(LAWS), figsize=(6 * len(LAWS), 4.4), sharey=True)
    for ax, law in zip(np.atleast_1d(axes), LAWS):
        sub = table[table["law"] == law]
        if sub.empty:
            continue
        g = sub.groupby("t")
        t = np.array(sorted(sub["t"].unique()))
        for col, label, style in [("lip_empirical", r"empirical score $\hat p_t$ (measured)", "o"),
                                  ("lip_true", r"true score $p_t$ (measured)", "s")]:
            mean, lo, hi = g[col].mean(), g[col].min(), g[col].max()
            ax.errorbar(t, mean.loc[t], yerr=[mean.loc[t] - lo.loc[t], hi.loc[t] - mean.loc[t]],
                        fmt=style, ms=4, capsize=2, label=label)
        bound = g["bound_empirical"].mean().loc[t]
        small = g["bound_empirical_small_t"].mean().loc[t]
        best = g["bound_empirical_neighbours"].mean().loc[t]
        ax.plot(t, np.where(bound > 0, bound, np.nan), "k-", lw=1.2,
                label=r"lower bound, closest pair: $\alpha_t^2\delta^2 w_iw_j/((w_i+w_j)\sigma_t^4)-\sigma_t^{-2}$")
        ax.plot(t, np.where(best > 0, best, np.nan), "C2--", lw=1.2,
                label="same bound, best nearest-neighbour pair")
        ax.plot(t, np.where(small > 0, small, np.nan), "k:", lw=1.2,
                label=r"small-$t$ form $\alpha_t^2\delta^2/(4\sigma_t^4)-\sigma_t^{-2}$")
        if law == "gaussian":
            ax.plot(t, g["lip_true_analytic"].mean().loc[t], "C1-", lw=1.2,
                    label=r"Gaussian exact $1/(\sigma_t^2+\alpha_t^2\lambda_{\min})$")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"diffusion time $t$")
        title = (f"K={int(sub['K'].iloc[0])} mixture" if law == "mixture" else "single Gaussian")
        ax.set_title(f"{title}, d={int(sub['d'].iloc[0])}, n={int(sub['n'].iloc[0])}, "
                     f"$\\delta$≈{sub['min_pair_distance'].mean():.2g}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    np.atleast_1d(axes)[0].set_ylabel(r"Lipschitz constant of the score  $\max\|\nabla^2\log p_t\|_2$")
    fig.suptitle("Lipschitz constant of the empirical vs the true score (min/mean/max over seeds)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- claims
def _ok(table):
    return table[table["error"].isna()] if "error" in table.columns else table


def judge_blowup(table, *, t_fit_max=1e-3, slope_tolerance=0.5, min_ratio=100.0, roundoff_scale=1000.0):
    """Rule: over the rows with t <= t_fit_max, the least-squares slope of log Lip(empirical) against
    log sigma_t^2 (every seed's row a point) has its 95% t-interval inside -2 -+ slope_tolerance
    (theory: sigma_t^-4, slope -2; does not hold if the interval lies outside the band); at the smallest t
    the empirical constant exceeds the true one by more than min_ratio in every seed; and no row falls
    below the rigorous two-atom lower bounds (closest pair, best nearest-neighbour pair) by more than
    float64 round-off: a single violation means the claim (or the code) is wrong. Where the bound is tight
    (the cloud holds the pair's noised midpoint, where the bound is attained) the measured value and the
    bound are two float64 computations of one number whose logits alpha_t <x, x_i>/sigma_t^2 carry a
    rounding of ~eps max|x_i - mean|^2 / sigma_t^2 (relative); the allowance is
    max(1e-9, roundoff_scale x eps / sigma_t^2), roundoff_scale a squared length above the data's
    max|x_i - mean|^2 (110-540 in the committed presets). The allowance was introduced after the first
    paper-preset run, whose tightest row fell 1.5e-9 short at sigma_t^2 = 1.6e-5 against a fixed 1e-9;
    the derived round-off there is ~160 eps / sigma_t^2 = 2.2e-9, and the verdict is the same with
    roundoff_scale halved or doubled (REPORT's sensitivity column)."""
    t = _ok(table)
    t = t[t["law"] == "mixture"] if "law" in t.columns and (t["law"] == "mixture").any() else t
    small = t[t["t"] <= t_fit_max]
    rng = (f"t {stats.fmt(float(small['t'].min()))}-{stats.fmt(float(small['t'].max()))} "
           f"({small['t'].nunique()} times, {small['seed'].nunique() if 'seed' in small else 1} seeds), "
           f"d {int(t['d'].iloc[0])}, n {int(t['n'].iloc[0])}") if len(small) else ""
    if small["t"].nunique() < 2:
        return inconclusive("slope of log Lip(empirical) vs log sigma_t^2", f"fewer than 2 times t <= {t_fit_max:g}",
                            range_tested=rng)
    fit = stats.loglog_fit(small["sigma2_t"], small["lip_empirical"])
    slope = finding("slope of log Lip(empirical) vs log sigma_t^2", fit.interval,
                    decide_within(fit.lo, fit.hi, -2 - slope_tolerance, -2 + slope_tolerance),
                    f"slope {stats.fmt_interval(fit.slope, fit.lo, fit.hi)} over {fit.n_points} rows (theory -2)",
                    range_tested=rng)
    first = small[small["t"] == small["t"].min()]
    ratios = (first["lip_empirical"] / first["lip_true"]).to_numpy(float)
    ratio = finding("min over seeds of Lip(empirical) / Lip(true) at the smallest t",
                    (float(ratios.min()), float(ratios.min()), float(ratios.min())),
                    decide_above(float(ratios.min()), float(ratios.min()), min_ratio),
                    f"Lip(emp)/Lip(true) at t = {stats.fmt(float(first['t'].iloc[0]))}: {stats.fmt(float(ratios.min()))}"
                    f"..{stats.fmt(float(ratios.max()))}", interval="exact", range_tested=rng)
    bounds = [c for c in ("bound_empirical", "bound_empirical_neighbours") if c in t.columns]
    allowance = np.maximum(1e-9, roundoff_scale * np.finfo(np.float64).eps / t["sigma2_t"].to_numpy(float))
    if bounds:
        # measured / bound per row, the smaller of the two bounds' ratios; a bound <= 0 constrains nothing
        rel = np.min(np.column_stack([(t["lip_empirical"] / t[c]).where(t[c] > 0).fillna(np.inf).to_numpy(float)
                                        for c in bounds]), axis=1)
        margin = rel - (1 - allowance)                              # >= 0: above the bound, up to round-off
        at = int(np.argmin(rel))
        worst, lowest = float(rel[at]), float(np.min(margin))
        text = (f"measured / bound >= {stats.fmt(worst, 4)} over {len(t)} rows (>= 1 required up to float64 "
                f"round-off; largest shortfall {stats.fmt(max(0.0, 1 - worst), 2)} at t = "
                f"{stats.fmt(float(t['t'].iloc[at]))}, allowance there {stats.fmt(float(allowance[at]), 2)})")
        verdict = decide_above(lowest, lowest, 0.0)
    else:
        worst, text, verdict = math.nan, "no bound columns", decide_above(math.nan, math.nan, 1)
    bound = finding("min over rows of Lip(empirical) / two-atom lower bound", (worst, worst, worst), verdict, text,
                    interval="exact", range_tested=rng)
    return all_of([slope, ratio, bound], range_tested=rng)


def judge_gaussian(table, *, tolerance=1e-6):
    """Rule: for a single Gaussian, the measured max Hessian norm equals 1/(sigma_t^2 + alpha_t^2
    lambda_min(Sigma)) at every t: the largest relative error is at most tolerance (an exact computation in
    float64: no sampling interval)."""
    t = _ok(table)
    g = t[t["law"] == "gaussian"] if "law" in t.columns else t.iloc[:0]
    stat = "max relative error of Lip(true) against 1/(sigma_t^2 + alpha_t^2 lambda_min)"
    if g.empty:
        return inconclusive(stat, "no single-Gaussian rows")
    err = float((g["lip_true"] / g["lip_true_analytic"] - 1).abs().max())
    rng = f"t {stats.fmt(float(g['t'].min()))}-{stats.fmt(float(g['t'].max()))}, d {int(g['d'].iloc[0])}"
    return finding(stat, (err, err, err), decide_below(err, err, tolerance),
                   f"max relative error {stats.fmt(err)} over {len(g)} rows", interval="exact", range_tested=rng)


CLAIMS = [
    Claim("lipschitz_blowup", "The empirical score's Lipschitz constant blows up like sigma_t^-4 min|x_i - x_j|^2 "
          "as t -> 0, far above the true score's", "Sec. 5 (smoothness)", "t -> 0, any n distinct points",
          "theory.empirical_lipschitz_lower_bound", judge_blowup,
          (Constant("t_fit_max", 1e-3, "largest t used in the slope fit (the small-t regime)"),
           Constant("slope_tolerance", 0.5, "half-width of the band around the theoretical slope -2"),
           Constant("min_ratio", 100.0, "Lip(empirical)/Lip(true) at the smallest t that counts as a blow-up"),
           Constant("roundoff_scale", 1000.0, "squared length in the float64 allowance max(1e-9, roundoff_scale "
                    "eps / sigma_t^2) by which a row may fall short of the two-atom bound"))),
    Claim("gaussian_lipschitz", "A Gaussian's score has Lipschitz constant 1/(sigma_t^2 + alpha_t^2 lambda_min(Sigma))",
          "Sec. 5 (smoothness)", "every t, any covariance", "theory.gaussian_lipschitz", judge_gaussian,
          (Constant("tolerance", 1e-6, "largest relative error accepted from an exact float64 computation"),)),
]
