"""Prop. 4.1: the Loss-Gap equals the Fisher divergence Fisher(P^_t, P_t) under the empirical noised law.

For a training set of n points drawn from a true law (a K-component Gaussian mixture, or one anisotropic
Gaussian) and each time t on a log grid, we estimate independently

* loss_gap: (1/n) sum_i [l_t(x_i, grad log p_t) - l_t(x_i, grad log p^_t)], the DSM loss of the true score
  minus that of the empirical score, by Monte Carlo over (i, z) with common random numbers;
* fisher: E_{X ~ P^_t} |grad log p^_t(X) - grad log p_t(X)|^2 by Monte Carlo with its own draws;
* quadrature (d <= 2 and n <= quad_max_n): the same number by deterministic Gauss-Legendre quadrature;

and report the difference in units of its standard error (z_score), which should look like N(0, 1).
The identity is exact for each fixed training set, so no averaging over data sets is involved.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

import theory
from theory import lossgap, quadrature

from . import stats
from .verdicts import INCONCLUSIVE, Claim, Constant, all_of, decide_within, finding, inconclusive

NAME = "lossgap_identity"
CLAIM = "Loss-Gap_t (DSM loss of true minus empirical score) = Fisher(P^_t, P_t) under P^_t, exactly (Prop. 4.1)"
ORDER = 30


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple
    ns: tuple
    laws: tuple            # "mixture" (K components, isotropic) and/or "gaussian" (one anisotropic component)
    n_components: int
    separation: float      # Delta_min / sqrt(d)
    trace_scale: float     # tr Sigma_k / d
    anisotropy: float      # of the "gaussian" law
    t_min: float
    t_max: float
    n_times: int
    n_draws: int           # Monte-Carlo draws for each of the two estimators
    quad_max_n: int        # quadrature only for d <= 2 and n <= this
    seeds: tuple


PRESETS = {
    "smoke": Config(dims=(1, 3), ns=(4,), laws=("mixture",), n_components=3, separation=2.0, trace_scale=0.5,
                    anisotropy=4.0, t_min=1e-4, t_max=5.0, n_times=3, n_draws=400, quad_max_n=8, seeds=(0,)),
    "cpu": Config(dims=(1, 2, 8), ns=(5, 500), laws=("mixture", "gaussian"), n_components=4, separation=2.0,
                  trace_scale=0.5, anisotropy=4.0, t_min=1e-4, t_max=5.0, n_times=8, n_draws=2000,
                  quad_max_n=8, seeds=(0,)),
    "paper": Config(dims=(1, 2, 8, 32, 128), ns=(5, 500, 10000), laws=("mixture", "gaussian"), n_components=8,
                    separation=2.0, trace_scale=0.5, anisotropy=4.0, t_min=1e-4, t_max=5.0, n_times=16,
                    n_draws=20000, quad_max_n=8, seeds=(0, 1, 2)),
}
ESTIMATED_RUNTIME = {"smoke": 3, "cpu": 12, "paper": 900}
COLUMNS = ("law", "d", "n", "K", "t", "sigma2_t", "loss_gap", "loss_gap_se", "fisher", "fisher_se", "difference",
           "difference_se", "z_score", "quadrature", "n_draws", "estimator", "seed", "preset", "device",
           "runtime_s", "point")


def grid(cfg: Config) -> list[dict]:
    return [{"law": law, "d": d, "n": n, "seed": seed}
            for law in cfg.laws for d in cfg.dims for n in cfg.ns for seed in cfg.seeds]


def _true_law(law: str, d: int, cfg: Config, seed: int, device: str) -> theory.GaussianMixture:
    if law not in ("mixture", "gaussian"):
        raise ValueError(f"law must be 'mixture' or 'gaussian', got {law!r}")
    k = cfg.n_components if law == "mixture" else 1
    aniso = 1.0 if law == "mixture" else cfg.anisotropy
    return theory.paper_mixture(k, d, separation=cfg.separation, trace=cfg.trace_scale * d, anisotropy=aniso,
                                seed=seed, device=device)


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    d, n, seed = point["d"], point["n"], point["seed"]
    truth = _true_law(point["law"], d, cfg, seed, device)
    gen = torch.Generator(device=device).manual_seed(20_000 + 97 * seed + n + d)
    data = truth.sample(n, 0.0, gen)
    empirical = theory.EmpiricalLaw(data)
    use_quad = d <= 2 and n <= cfg.quad_max_n
    rows = []
    for t in np.geomspace(cfg.t_min, cfg.t_max, cfg.n_times):
        t = float(t)
        gap = lossgap.loss_gap(truth, empirical, t, n_draws=cfg.n_draws, generator=gen)
        fisher = lossgap.fisher_divergence(empirical, truth, t, cfg.n_draws, generator=gen)
        diff = gap - fisher  # independent draws: stderr = hypot
        rows.append({
            "K": truth.n_components, "t": t, "sigma2_t": float(theory.sigma2(t)),
            "loss_gap": gap.mean, "loss_gap_se": gap.stderr,
            "fisher": fisher.mean, "fisher_se": fisher.stderr,
            "difference": diff.mean, "difference_se": diff.stderr,
            "z_score": diff.mean / diff.stderr if diff.stderr > 0 else float("nan"),
            "quadrature": quadrature.fisher_divergence_quadrature(empirical, truth, t) if use_quad else float("nan"),
            "n_draws": cfg.n_draws, "estimator": "monte_carlo_crn",
        })
    return rows


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    laws = [l for l in cfg.laws if l in set(table["law"])]
    dims = sorted(table["d"].unique())
    fig, axes = plt.subplots(len(laws) + 1, len(dims), figsize=(4.2 * len(dims), 3.6 * (len(laws) + 1)),
                             squeeze=False)
    for r, law in enumerate(laws):
        for c, d in enumerate(dims):
            ax = axes[r, c]
            sub = table[(table["law"] == law) & (table["d"] == d)]
            for i, (n, g) in enumerate(sub.groupby("n")):
                g = g.groupby("t").mean(numeric_only=True).reset_index()
                ax.errorbar(g["t"], g["loss_gap"], yerr=2 * g["loss_gap_se"], fmt="o", ms=4, color=f"C{i}",
                            capsize=2, label=f"Loss-Gap (DSM difference), n={n}")
                ax.plot(g["t"], g["fisher"], "-", color=f"C{i}", label=rf"Fisher$(\hat P_t, P_t)$, n={n}")
                if g["quadrature"].notna().any():
                    ax.plot(g["t"], g["quadrature"], "kx", ms=6, label="quadrature" if i == 0 else None)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(r"diffusion time $t$")
            ax.set_ylabel(r"Loss-Gap$_t$, Fisher  (units of score$^2$)")
            ax.set_title(f"{law}, d={d}")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=6)
    for c, d in enumerate(dims):
        ax = axes[-1, c]
        sub = table[table["d"] == d]
        for i, ((law, n), g) in enumerate(sub.groupby(["law", "n"])):
            ax.plot(g["t"], g["z_score"], "o-", ms=3, label=f"{law}, n={n}")
        ax.axhspan(-2, 2, color="0.85", zorder=0)
        ax.set_xscale("log")
        ax.set_xlabel(r"diffusion time $t$")
        ax.set_ylabel("(Loss-Gap - Fisher) / stderr")
        ax.set_title(f"d={d}: difference in standard errors (band: ±2)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle("Prop. 4.1: Loss-Gap$_t$ = Fisher$(\\hat P_t, P_t)$ (error bars: 2 stderr)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- claims
def z_scale_interval(z, level: float = stats.LEVEL) -> stats.Interval:
    """kappa-hat = sqrt(mean z^2) with the chi-square interval of the scale kappa of z_i ~ N(0, kappa^2):
    kappa^2 in [sum z^2 / chi2_{(1+level)/2, m}, sum z^2 / chi2_{(1-level)/2, m}]."""
    import scipy.stats

    z = np.asarray(z, float)
    z = z[np.isfinite(z)]
    m, s = z.size, float((z ** 2).sum())
    lo = math.sqrt(s / scipy.stats.chi2.ppf(0.5 + level / 2, m))
    hi = math.sqrt(s / scipy.stats.chi2.ppf(0.5 - level / 2, m))
    return stats.Interval(math.sqrt(s / m), lo, hi, level, "chi2_scale")


def judge_identity(table, *, scale_tolerance=0.5, max_relative_se=0.1):
    """Rule: under the identity every z = (Loss-Gap - Fisher) / se is N(0, 1) if the standard errors are
    honest, so the scale kappa of the z-scores (z ~ N(0, kappa^2); a systematic gap inflates it) has its
    chi-square interval inside [1/(1 + scale_tolerance), 1 + scale_tolerance]; the same for the z-scores of
    both Monte-Carlo estimates against deterministic quadrature where it exists. Power: the median relative
    standard error of the difference, se / Fisher, must be at most max_relative_se, else the rows could not
    see a gap of that size and the verdict is inconclusive."""
    t = table[table["error"].isna()] if "error" in table.columns else table
    z = t["z_score"].to_numpy(float)
    stat = "scale kappa of the z-scores (Loss-Gap - Fisher) / se"
    rng = (f"t {stats.fmt(float(t['t'].min()))}-{stats.fmt(float(t['t'].max()))}, d in "
           f"{sorted(int(d) for d in t['d'].unique())}, n in {sorted(int(n) for n in t['n'].unique())}, "
           f"{len(t)} (law, d, n, t) settings") if len(t) else ""
    if np.isfinite(z).sum() < 10:
        return inconclusive(stat, f"only {int(np.isfinite(z).sum())} finite z-scores", range_tested=rng)
    band = (1 / (1 + scale_tolerance), 1 + scale_tolerance)
    k = z_scale_interval(z)
    rel = float(np.median(t["difference_se"] / t["fisher"].abs()))
    confounds = [] if rel <= max_relative_se else [
        f"median relative se of the difference {stats.fmt(rel, 2)} > {max_relative_se:g}: the rows cannot see a "
        "gap of that size"]
    verdict = decide_within(k.lo, k.hi, *band) if not confounds else INCONCLUSIVE
    parts = [finding(stat, k, verdict, f"kappa {stats.fmt_interval(*k[:3], 3)} over {z.size} rows "
                     f"(mean z {np.mean(z):.2f}, max |z| {np.abs(z).max():.2f}; median se/Fisher {stats.fmt(rel, 2)})",
                     confounds=confounds, range_tested=rng)]
    q = t[t["quadrature"].notna()] if "quadrature" in t.columns else t.iloc[:0]
    if len(q):
        zq = np.concatenate([((q["loss_gap"] - q["quadrature"]) / q["loss_gap_se"]).to_numpy(float),
                             ((q["fisher"] - q["quadrature"]) / q["fisher_se"]).to_numpy(float)])
        kq = z_scale_interval(zq)
        parts.append(finding("scale of the z-scores of both estimates against quadrature", kq,
                             decide_within(kq.lo, kq.hi, *band),
                             f"vs quadrature ({len(q)} rows): kappa {stats.fmt_interval(*kq[:3], 3)}", range_tested=rng))
    return all_of(parts, range_tested=rng)


CLAIMS = [
    Claim("lossgap_identity", "Loss-Gap_t (DSM loss of the true score minus that of the empirical score) equals "
          "Fisher(P^_t, P_t) under the empirical noised law", "Prop. 4.1", "every t > 0 and every training set (an "
          "identity)", "theory.estimators.lossgap.loss_gap", judge_identity,
          (Constant("scale_tolerance", 0.5, "z-score scale kappa accepted within [1/(1+tol), 1+tol]"),
           Constant("max_relative_se", 0.1, "power check: largest median se/Fisher of the difference"))),
]
