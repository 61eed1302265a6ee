"""Prop. 4.1: the Loss-Gap equals the Fisher divergence Fisher(P^_t, P_t) under the empirical noised law.

For a training set of n points drawn from a true law (a K-component Gaussian mixture, or one anisotropic
Gaussian) and each time t on a log grid, we estimate independently

* loss_gap: (1/n) sum_i [l_t(x_i, grad log p_t) - l_t(x_i, grad log p^_t)], the DSM loss of the true score
  minus that of the empirical score, by Monte Carlo over (i, z) with common random numbers;
* fisher: E_{X ~ P^_t} |grad log p^_t(X) - grad log p_t(X)|^2 by Monte Carlo with its own draws;
* quadrature (d <= 2 and n <= quad_max_n): the same number by deterministic Gauss-Legendre quadrature;

* by_parts: the same number in its integration-by-parts form E_{P^_t}[-Delta log p^_t + 2 Delta log p_t + |s|^2]
  (``lossgap.loss_gap_terms``, its own draws);

and report the differences in units of their standard errors (z_score, z_by_parts), which should look like
N(0, 1). The identity is exact for each fixed training set, so no averaging over data sets is involved.

A second kind of row (check = "expected") tests the identity of the expected Loss-Gap,
E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t) (``theory.estimators.lossgap``, module docstring): over n_datasets
training sets, the mean of the Fisher form (no integration by parts) against the mean of J(P^_t) (Laplacian
form) minus J(P_t) (closed form tr C_t^-1 for one Gaussian, Monte Carlo for a mixture); for n = 1 also against
the closed form d/sigma_t^2 - J(P_t), and beside it the upper bound E_D[Loss-Gap_t] <= d/sigma_t^2 - J(P_t).
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
    expected_dims: tuple   # the expected-identity rows: dimensions, sizes, times, training sets, draws per set
    expected_ns: tuple
    expected_times: tuple
    n_datasets: int
    expected_draws: int
    n_true_draws: int      # draws for J(P_t) of a mixture


PRESETS = {
    "smoke": Config(dims=(1, 3), ns=(4,), laws=("mixture",), n_components=3, separation=2.0, trace_scale=0.5,
                    anisotropy=4.0, t_min=1e-4, t_max=5.0, n_times=3, n_draws=400, quad_max_n=8, seeds=(0,),
                    expected_dims=(2,), expected_ns=(1, 4), expected_times=(1e-2, 1.0), n_datasets=16,
                    expected_draws=32, n_true_draws=500),
    "cpu": Config(dims=(1, 2, 8), ns=(5, 500), laws=("mixture", "gaussian"), n_components=4, separation=2.0,
                  trace_scale=0.5, anisotropy=4.0, t_min=1e-4, t_max=5.0, n_times=8, n_draws=2000,
                  quad_max_n=8, seeds=(0,), expected_dims=(1, 2, 8), expected_ns=(1, 5),
                  expected_times=(1e-3, 1e-2, 0.1, 1.0), n_datasets=64, expected_draws=64, n_true_draws=4000),
    "paper": Config(dims=(1, 2, 8, 32, 128), ns=(5, 500, 10000), laws=("mixture", "gaussian"), n_components=8,
                    separation=2.0, trace_scale=0.5, anisotropy=4.0, t_min=1e-4, t_max=5.0, n_times=12,
                    n_draws=5000, quad_max_n=8, seeds=(0, 1, 2), expected_dims=(1, 2, 8, 32), expected_ns=(1, 5, 50),
                    expected_times=(1e-3, 1e-2, 0.1, 1.0), n_datasets=400, expected_draws=128, n_true_draws=20000),
}
ESTIMATED_RUNTIME = {"smoke": 4, "cpu": 25, "paper": 1700}   # paper: run on the 2-core CPU on 2 Dec 2026, 1,644 s
# of point time over 114 points (one thread, sharing the cores with another run)
COLUMNS = ("check", "law", "d", "n", "K", "t", "sigma2_t", "loss_gap", "loss_gap_se", "fisher", "fisher_se",
           "difference", "difference_se", "z_score", "by_parts", "by_parts_se", "z_by_parts", "quadrature",
           "n_datasets", "ed_loss_gap", "ed_loss_gap_se", "ed_fisher_empirical", "ed_fisher_empirical_se",
           "fisher_true", "fisher_true_se", "memorization_level", "identity_difference", "identity_difference_se",
           "identity_z", "closed_form", "closed_form_z", "n_draws", "estimator", "seed", "preset", "device",
           "runtime_s", "point")


def grid(cfg: Config) -> list[dict]:
    per_set = [{"check": "per_dataset", "law": law, "d": d, "n": n, "seed": seed}
               for law in cfg.laws for d in cfg.dims for n in cfg.ns for seed in cfg.seeds]
    expected = [{"check": "expected", "law": law, "d": d, "n": n, "seed": 0}
                for law in cfg.laws for d in cfg.expected_dims for n in cfg.expected_ns]
    return per_set + expected


def _true_law(law: str, d: int, cfg: Config, seed: int, device: str) -> theory.GaussianMixture:
    if law not in ("mixture", "gaussian"):
        raise ValueError(f"law must be 'mixture' or 'gaussian', got {law!r}")
    k = cfg.n_components if law == "mixture" else 1
    aniso = 1.0 if law == "mixture" else cfg.anisotropy
    return theory.paper_mixture(k, d, separation=cfg.separation, trace=cfg.trace_scale * d, anisotropy=aniso,
                                seed=seed, device=device)


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    if point.get("check", "per_dataset") == "expected":
        return _expected_rows(point, cfg, device)
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
        parts = lossgap.loss_gap_terms(truth, empirical, t, cfg.n_draws, generator=gen).by_parts
        diff = gap - fisher  # independent draws: stderr = hypot
        by_diff = parts - fisher
        rows.append({
            "K": truth.n_components, "t": t, "sigma2_t": float(theory.sigma2(t)),
            "loss_gap": gap.mean, "loss_gap_se": gap.stderr,
            "fisher": fisher.mean, "fisher_se": fisher.stderr,
            "difference": diff.mean, "difference_se": diff.stderr,
            "z_score": diff.mean / diff.stderr if diff.stderr > 0 else float("nan"),
            "by_parts": parts.mean, "by_parts_se": parts.stderr,
            "z_by_parts": by_diff.mean / by_diff.stderr if by_diff.stderr > 0 else float("nan"),
            "quadrature": quadrature.fisher_divergence_quadrature(empirical, truth, t) if use_quad else float("nan"),
            "n_draws": cfg.n_draws, "estimator": "monte_carlo_crn",
        })
    return rows


def _expected_rows(point: dict, cfg: Config, device: str) -> list[dict]:
    """E_D[Loss-Gap_t] (the Fisher form, averaged over n_datasets training sets) against E_D[J(P^_t)] - J(P_t)."""
    d, n = point["d"], point["n"]
    truth = _true_law(point["law"], d, cfg, 0, device)
    gen = torch.Generator(device=device).manual_seed(21_000 + 31 * d + n + (7 if point["law"] == "mixture" else 0))
    rows = []
    for t in cfg.expected_times:
        t = float(t)
        if truth.n_components == 1:
            jt = theory.Estimate(float(lossgap.gaussian_fisher_information(truth.covariances[0], t)), 0.0, 0)
        else:
            jt = lossgap.fisher_information(truth, t, cfg.n_true_draws, generator=gen)
        f, j, e = [], [], []
        for _ in range(cfg.n_datasets):
            r = lossgap.loss_gap_terms(truth, truth.sample(n, 0.0, gen), t, cfg.expected_draws, generator=gen)
            f.append(r.fisher_form.mean)
            j.append(r.fisher_empirical.mean)
            e.append(r.fisher_form_excess.mean)
        f, j, e = (np.asarray(v) for v in (f, j, e))
        m = cfg.n_datasets
        se = lambda v: float(v.std(ddof=1) / math.sqrt(m))
        level = d / float(theory.sigma2(t))
        diff, diff_se = float(e.mean()) + jt.mean, math.hypot(se(e), jt.stderr)
        closed = level - jt.mean if n == 1 else math.nan
        rows.append({
            "K": truth.n_components, "t": t, "sigma2_t": float(theory.sigma2(t)), "n_datasets": m,
            "ed_loss_gap": float(f.mean()), "ed_loss_gap_se": se(f), "ed_fisher_empirical": float(j.mean()),
            "ed_fisher_empirical_se": se(j), "fisher_true": jt.mean, "fisher_true_se": jt.stderr,
            "memorization_level": level, "identity_difference": diff, "identity_difference_se": diff_se,
            "identity_z": diff / diff_se if diff_se > 0 else math.nan, "closed_form": closed,
            "closed_form_z": (float(f.mean()) - closed) / math.hypot(se(f), jt.stderr) if n == 1 else math.nan,
            "n_draws": cfg.expected_draws, "estimator": "loss_gap_terms over training sets",
        })
    return rows


def _rows_of(table, check: str):
    t = table[table["error"].isna()] if "error" in table.columns else table
    if "check" not in t.columns:
        return t if check == "per_dataset" else t.iloc[:0]
    return t[t["check"] == check]


def _one_legend(ax, panels, **kw) -> None:
    """One legend on ``ax`` for every labelled artist of ``panels`` (each label once); none if nothing is labelled."""
    seen: dict = {}
    for panel in panels:
        for handle, label in zip(*panel.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        ax.legend(list(seen.values()), list(seen), **kw)


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    per = _rows_of(table, "per_dataset")
    exp = _rows_of(table, "expected")
    z = stats.normal_quantile(stats.LEVEL)
    laws = [l for l in cfg.laws if l in set(per["law"])]
    dims = sorted(set(per["d"]) | set(exp["d"]))
    nrows = len(laws) + 2
    fig, axes = plt.subplots(nrows, len(dims), figsize=(4.4 * len(dims), 3.5 * nrows), squeeze=False)
    for r, law in enumerate(laws):
        for c, d in enumerate(dims):
            ax = axes[r, c]
            sub = per[(per["law"] == law) & (per["d"] == d)]
            for i, (n, g) in enumerate(sub.groupby("n")):
                g = g.groupby("t").mean(numeric_only=True).reset_index()
                ax.errorbar(g["t"], g["loss_gap"], yerr=z * g["loss_gap_se"], fmt="o", ms=4, color=f"C{i}",
                            capsize=2, label=f"DSM difference, n={n}")
                ax.plot(g["t"], g["fisher"], "-", color=f"C{i}", label=rf"Fisher form, n={n}")
                ax.plot(g["t"], g["by_parts"], "+", color=f"C{i}", ms=8, label=f"by parts, n={n}")
                for col in ("loss_gap", "by_parts"):     # non-positive estimates: marked on the bottom axis
                    bad = g[col] <= 0
                    if bad.any():
                        ax.plot(g.loc[bad, "t"], np.full(int(bad.sum()), 0.03), "v", color=f"C{i}", ms=5,
                                transform=ax.get_xaxis_transform(),
                                label=f"non-positive estimate, n={n}" if col == "loss_gap" or not (g["loss_gap"] <= 0).any() else None)
                if g["quadrature"].notna().any():
                    ax.plot(g["t"], g["quadrature"], "kx", ms=6, label="quadrature" if i == 0 else None)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(r"diffusion time $t$")
            ax.set_ylabel(r"Loss-Gap$_t$ (score$^2$)")
            ax.set_title(f"one training set: {law}, d={d}", fontsize=9)
            ax.grid(True, alpha=0.3)
    _one_legend(axes[0, 0], axes[:len(laws)].ravel(), fontsize=6)    # one legend for the per-set rows
    for c, d in enumerate(dims):
        ax = axes[len(laws), c]
        sub = per[per["d"] == d]
        for i, ((law, n), g) in enumerate(sub.groupby(["law", "n"])):
            ax.plot(g["t"], g["z_score"], "o", ms=3, color=f"C{i}", label=f"{law}, n={n}: DSM vs Fisher")
            ax.plot(g["t"], g["z_by_parts"], "s", ms=3, mfc="none", color=f"C{i}",
                    label=f"{law}, n={n}: by parts vs Fisher")
        ax.axhspan(-z, z, color="0.85", zorder=0)
        ax.set_xscale("log")
        ax.set_xlabel(r"diffusion time $t$")
        ax.set_ylabel("difference / its stderr")
        ax.set_title(f"d={d}: differences in standard errors (band: 95%)", fontsize=9)
        ax.grid(True, alpha=0.3)
        ax = axes[len(laws) + 1, c]
        sub = exp[exp["d"] == d]
        if sub.empty:                                  # the expected identity is run on expected_dims only
            ax.text(0.5, 0.5, f"expected identity not run at d = {d}\n(expected_dims)", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="0.4")
            ax.set_axis_off()
            continue
        for i, ((law, n), g) in enumerate(sub.groupby(["law", "n"])):
            g = g.sort_values("t")
            scale = 1.0 / g["memorization_level"]
            ax.errorbar(g["t"], g["ed_loss_gap"] * scale, yerr=z * g["ed_loss_gap_se"] * scale, fmt="o", ms=4,
                        color=f"C{i}", capsize=2, label=f"{law}, n={n}: E_D Fisher form")
            ax.plot(g["t"], (g["ed_fisher_empirical"] - g["fisher_true"]) * scale, "-", color=f"C{i}",
                    label=rf"{law}, n={n}: $E_D J(\hat P_t) - J(P_t)$")
        one = sub[sub["n"] == 1].groupby("t")["closed_form"].mean() if len(sub) else None
        if one is not None and len(one):
            for law, g in sub[sub["n"] == 1].groupby("law"):
                g = g.sort_values("t")
                ax.plot(g["t"], g["closed_form"] / g["memorization_level"], "k--", lw=0.8,
                        label=r"$d/\sigma_t^2 - J(P_t)$ (n = 1 exact, upper bound)" if law == laws[0] else None)
        ax.set_xscale("log")
        ax.set_xlabel(r"diffusion time $t$")
        ax.set_ylabel(r"$E_D$[Loss-Gap$_t$] $\cdot\,\sigma_t^2/d$")
        ax.set_title(f"expected identity, d={d} ({int(sub['n_datasets'].max()) if len(sub) else 0} training sets)",
                     fontsize=9)
        ax.grid(True, alpha=0.3)
    _one_legend(axes[len(laws), 0], axes[len(laws)], fontsize=5.5)
    _one_legend(axes[len(laws) + 1, 0], axes[len(laws) + 1], fontsize=5.5)
    fig.suptitle("Prop. 4.1 for each training set (DSM difference = Fisher form = by-parts form) and the expected "
                 "identity E_D[Loss-Gap] = E_D J(P^_t) - J(P_t)\n(error bars: 95% normal; ▼: non-positive estimate, "
                 "drawn on the bottom axis)", fontsize=10)
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
    """Rule: under the identity every z = (Loss-Gap - Fisher) / se and z = (by parts - Fisher) / se is N(0, 1) if
    the standard errors are honest, so the scale kappa of the z-scores (z ~ N(0, kappa^2); a systematic gap
    inflates it) has its chi-square interval inside [1/(1 + scale_tolerance), 1 + scale_tolerance]; the same for
    the z-scores of both Monte-Carlo estimates against deterministic quadrature where it exists. Power: the median
    relative standard error of the difference, se / Fisher, must be at most max_relative_se, else the rows could
    not see a gap of that size and the verdict is inconclusive."""
    t = _rows_of(table, "per_dataset")
    z = np.concatenate([t["z_score"].to_numpy(float)] + ([t["z_by_parts"].to_numpy(float)]
                                                          if "z_by_parts" in t.columns else []))
    stat = "scale kappa of the z-scores (Loss-Gap - Fisher) / se and (by parts - Fisher) / se"
    rng = (f"t {stats.fmt(float(t['t'].min()))}-{stats.fmt(float(t['t'].max()))}, d in "
           f"{sorted(int(d) for d in t['d'].unique())}, n in {sorted(int(n) for n in t['n'].unique())}, "
           f"{len(t)} (law, d, n, t) settings") if len(t) else ""
    z = z[np.isfinite(z)]
    if z.size < 10:
        return inconclusive(stat, f"only {z.size} finite z-scores", range_tested=rng)
    band = (1 / (1 + scale_tolerance), 1 + scale_tolerance)
    k = z_scale_interval(z)
    rel = float(np.median(t["difference_se"] / t["fisher"].abs()))
    confounds = [] if rel <= max_relative_se else [
        f"median relative se of the difference {stats.fmt(rel, 2)} > {max_relative_se:g}: the rows cannot see a "
        "gap of that size"]
    verdict = decide_within(k.lo, k.hi, *band) if not confounds else INCONCLUSIVE
    parts = [finding(stat, k, verdict, f"kappa {stats.fmt_interval(*k[:3], 3)} over {z.size} z-scores of {len(t)} "
                     f"rows (mean z {np.mean(z):.2f}, max |z| {np.abs(z).max():.2f}; median se/Fisher {stats.fmt(rel, 2)})",
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


def judge_expected_identity(table, *, scale_tolerance=0.5, max_relative_se=0.1):
    """Rule: over the expected-identity rows, z = (E_D[Fisher form] - (E_D[J(P^_t)] - J(P_t))) / se (se: the spread
    over the training sets, and J(P_t)'s Monte-Carlo error) and, for n = 1, z = (E_D[Fisher form] - (d/sigma_t^2 -
    J(P_t))) / se are N(0, 1) under the identity; their scale kappa has its chi-square interval inside
    [1/(1 + scale_tolerance), 1 + scale_tolerance]. Power: the median se / E_D[Loss-Gap] must be at most
    max_relative_se. The largest z of E_D[Fisher form] above d/sigma_t^2 - J(P_t) (the upper bound) is reported."""
    t = _rows_of(table, "expected")
    stat = "scale kappa of the z-scores of E_D[Loss-Gap] against E_D[J(P^_t)] - J(P_t) (and the n = 1 closed form)"
    if t.empty or "identity_z" not in t.columns:
        return inconclusive(stat, "no expected-identity rows")
    rng = (f"t {stats.fmt(float(t['t'].min()))}-{stats.fmt(float(t['t'].max()))}, d in "
           f"{sorted(int(d) for d in t['d'].unique())}, n in {sorted(int(n) for n in t['n'].unique())}, "
           f"{int(t['n_datasets'].max())} training sets per row, {len(t)} rows")
    z = np.concatenate([t["identity_z"].to_numpy(float), t["closed_form_z"].to_numpy(float)])
    z = z[np.isfinite(z)]
    if z.size < 10:
        return inconclusive(stat, f"only {z.size} finite z-scores", range_tested=rng)
    band = (1 / (1 + scale_tolerance), 1 + scale_tolerance)
    k = z_scale_interval(z)
    rel = float(np.median(t["identity_difference_se"] / t["ed_loss_gap"].abs()))
    confounds = [] if rel <= max_relative_se else [
        f"median se / E_D[Loss-Gap] {stats.fmt(rel, 2)} > {max_relative_se:g}: too imprecise"]
    plateau = t["memorization_level"] - t["fisher_true"]
    above = ((t["ed_loss_gap"] - plateau) / np.hypot(t["ed_loss_gap_se"], t["fisher_true_se"])).max()
    verdict = decide_within(k.lo, k.hi, *band) if not confounds else INCONCLUSIVE
    return finding(stat, k, verdict, f"kappa {stats.fmt_interval(*k[:3], 3)} over {z.size} z-scores (max |z| "
                   f"{np.abs(z).max():.2f}; median se / E_D[Loss-Gap] {stats.fmt(rel, 2)}); E_D[Loss-Gap] above the "
                   f"bound d/sigma_t^2 - J(P_t) by at most {stats.fmt(float(above), 2)} standard errors",
                   confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("lossgap_identity", "Loss-Gap_t (DSM loss of the true score minus that of the empirical score) equals "
          "Fisher(P^_t, P_t) under the empirical noised law", "Prop. 4.1", "every t > 0 and every training set (an "
          "identity)", "theory.estimators.lossgap.loss_gap", judge_identity,
          (Constant("scale_tolerance", 0.5, "z-score scale kappa accepted within [1/(1+tol), 1+tol]"),
           Constant("max_relative_se", 0.1, "power check: largest median se/Fisher of the difference"))),
    Claim("lossgap_expected_identity", "E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t) <= d/sigma_t^2 - J(P_t), with "
          "equality for n = 1 (J the Fisher information; memsep's identity behind Thm 4.3)",
          "behind Thm 4.3 (derived in theory.estimators.lossgap)", "every t > 0, every n, any P_0 with a density",
          "theory.estimators.lossgap.loss_gap_terms", judge_expected_identity,
          (Constant("scale_tolerance", 0.5, "z-score scale kappa accepted within [1/(1+tol), 1+tol]"),
           Constant("max_relative_se", 0.1, "power check: largest median se / E_D[Loss-Gap]"))),
]
