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

import numpy as np
import torch

import theory

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
                    t_min=1e-5, t_max=10.0, n_times=40, n_cloud=4000, seeds=(0, 1, 2, 3, 4)),
}
ESTIMATED_RUNTIME = {"smoke": 2, "cpu": 20, "paper": 1200}

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
