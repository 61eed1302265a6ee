"""Thm 4.3, both readings: E_D[Loss-Gap_t] = Omega(d / sigma_t^2 + tr Sigma) as written, and the dimensionally
consistent Omega(d / sigma_t^2 + tr Sigma^-1); where the bound holds, and what sets its edge.

The mathematics (``theory.estimators.lossgap`` and ``theory.estimators.small_t``, docstrings):

* exactly, E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t) <= d/sigma_t^2 - J(P_t) < d/sigma_t^2 (J the Fisher
  information), with equality for n = 1;
* the Loss-Gap is a squared score (1/length^2), like d/sigma_t^2 and tr Sigma^-1, while tr Sigma is a length^2:
  since the gap never exceeds d/sigma_t^2, the as-written ratio is below 1/(1 + sigma_t^2 tr Sigma / d), and no
  constant uniform in Sigma exists once tr Sigma >> d / sigma_t^2;
* at small t, E_D[Loss-Gap_t] = d/sigma_t^2 - (n-1) c_d rho(0) sigma_t^(d-2)/alpha_t^d - J(P_0) + o(1) (d >= 2;
  the collision term, from pairs of training points within a few sigma_t/alpha_t, dominates J(P_0) in d = 1 and
  is of order one in d = 2), so the consistent ratio is about (d/sigma_t^2 - tr Sigma^-1)/(d/sigma_t^2 + tr
  Sigma^-1) while sigma_t^2 << lambda_min(Sigma) and sigma_t << alpha_t x the spacing of the training points.

The sweep: K-component mixtures with Delta_min = separation * sqrt(d) and isotropic Sigma_k = (trace_scale) I,
trace_scale (= tr Sigma / d) over several decades, one fixed law per (d, trace_scale) and several training
sets D (the seeds) per cell (d, n, trace_scale, t). For each D and t, Loss-Gap_t is estimated by
``theory.estimators.lossgap.loss_gap_terms`` (the Fisher form and the integration-by-parts form on the same
draws, combined with the variance-minimising weight), together with J(P^_t); J(P_t) and J(P_0) by
``fisher_information``. The table carries both ratios, the identity's terms, the small-t predictions, the
noise-to-spacing ratio sigma_t / (alpha_t x median nearest-neighbour distance) and sigma_t^2 / lambda_min.

The rules read the regime from the data (``find_regime``): cells whose components are wider than the noise
(sigma_t^2 / lambda_min <= width_max), up to the edge in the noise-to-spacing ratio: the largest one up to which
every such cell keeps the lower confidence limit of E_D[Loss-Gap_t] / (d/sigma_t^2 - J(P_t)) -- the gap relative
to its exact n = 1 plateau -- above ``fraction``. Inside that regime each reading's Omega constant is fitted (the
minimum cell) with its interval.
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
from .verdicts import Claim, Constant, decide_above, finding, inconclusive

NAME = "lossgap_bound"
CLAIM = ("E_D[Loss-Gap_t] >= c (d/sigma_t^2 + tr Sigma) as written vs c (d/sigma_t^2 + tr Sigma^-1), over tr Sigma/d "
         "in 1e-2..1e3; regime edge from the data (Thm 4.3)")
ORDER = 31


@dataclasses.dataclass(frozen=True)
class Config:
    dims: tuple
    ns: tuple
    trace_scales: tuple        # tr Sigma_k / d (isotropic Sigma_k = trace_scale I)
    separation: float          # Delta_min / sqrt(d): the theorem's Theta(sqrt d) case
    n_components: int
    times: tuple
    n_draws: int               # draws of P^_t per (training set, t)
    n_true_draws: int          # draws of P_t for J(P_t) and J(P_0)
    n_neighbour_queries: int   # training points whose nearest-neighbour distance is measured
    law_seed: int              # one true law per (d, trace_scale); the seeds draw the training sets
    seeds: tuple


PRESETS = {
    "smoke": Config(dims=(2,), ns=(1, 30), trace_scales=(0.01, 1.0, 100.0), separation=2.0, n_components=4,
                    times=(1e-3, 3e-2, 1.0), n_draws=64, n_true_draws=200, n_neighbour_queries=100, law_seed=0,
                    seeds=(0, 1)),
    "cpu": Config(dims=(2, 8, 32), ns=(1, 10, 100, 1000, 10000), trace_scales=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
                  separation=2.0, n_components=4, times=(1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0), n_draws=96,
                  n_true_draws=1000, n_neighbour_queries=300, law_seed=0, seeds=(0, 1, 2, 3, 4, 5)),
    "paper": Config(dims=(2, 4, 8, 16, 32, 64), ns=(1, 10, 100, 1000, 10000, 100000),
                    trace_scales=(0.01, 0.1, 1.0, 10.0, 100.0, 1000.0), separation=2.0, n_components=8,
                    times=(1e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0), n_draws=512, n_true_draws=4000,
                    n_neighbour_queries=1000, law_seed=0, seeds=(0, 1, 2, 3, 4)),
}
ESTIMATED_RUNTIME = {"smoke": 4, "cpu": 90, "paper": 2500}   # cpu: 52-89 s measured; paper: run on the 2-core CPU
# on 2 Dec 2026, 2,434 s of point time over 180 points (one thread, sharing the cores with another run)
COLUMNS = ("d", "n", "trace_scale", "separation", "K", "trace", "trace_inverse", "lambda_min", "collision_density",
           "t", "alpha_t", "sigma2_t", "loss_gap", "loss_gap_se", "loss_gap_fisher_form", "loss_gap_fisher_form_se",
           "fisher_empirical", "fisher_empirical_se", "fisher_true", "fisher_true_se", "fisher_true_0",
           "fisher_true_0_se", "memorization_level", "plateau", "small_t_prediction", "collision",
           "small_t_prediction_pairs", "bound_as_written", "bound_consistent", "ratio_as_written",
           "ratio_as_written_se", "ratio_consistent", "ratio_consistent_se", "nn_distance_median",
           "sigma_over_spacing", "sigma2_over_lambda_min", "log_n_over_d", "n_draws", "estimator", "seed", "preset",
           "device", "runtime_s", "point")


def grid(cfg: Config) -> list[dict]:
    """One point per (d, trace_scale, seed): it draws one training set of each n of the config (the runner
    checkpoints per point, and a point per n made the checkpoint writes dominate the cpu preset)."""
    return [{"d": d, "trace_scale": s, "seed": seed} for d in cfg.dims for s in cfg.trace_scales for seed in cfg.seeds]


def true_law(d: int, trace_scale: float, cfg: Config, device: str = "cpu") -> theory.GaussianMixture:
    return theory.paper_mixture(cfg.n_components, d, separation=cfg.separation, trace=trace_scale * d,
                                seed=cfg.law_seed, device=device)


def spacing(data: torch.Tensor, queries: int) -> float:
    """Median over (up to ``queries``) training points of the distance to their nearest other training point;
    NaN for a single point."""
    if data.shape[0] < 2:
        return math.nan
    m = min(data.shape[0], queries)
    dist, _ = theory.nearest_neighbours(data[:m], data, k=2)
    return float(dist[:, 1].median())


_TRUE_TERMS: dict = {}


def true_terms(d: int, scale: float, cfg: Config, device: str) -> dict:
    """The true law's quantities, shared by every training set of a (d, trace_scale) and computed once per
    process from their own generator (so they do not depend on the order of the points): tr Sigma, tr Sigma^-1,
    lambda_min, int p_0^2, J(P_0) and J(P_t) for every t of the config (``fisher_information``)."""
    key = (d, scale, cfg.times, cfg.n_true_draws, cfg.law_seed, cfg.n_components, cfg.separation, device)
    if key not in _TRUE_TERMS:
        truth = true_law(d, scale, cfg, device)
        gen = torch.Generator(device=device).manual_seed(31_000 + 17 * d + int(round(1e3 * math.log10(scale))))
        _TRUE_TERMS[key] = {
            "trace": lossgap.mean_covariance_trace(truth), "trace_inverse": lossgap.mean_precision_trace(truth),
            "lambda_min": lossgap.min_covariance_eigenvalue(truth), "collision_density": small_t.collision_density(truth),
            "j0": lossgap.fisher_information(truth, 0.0, cfg.n_true_draws, generator=gen),
            "jt": {float(t): lossgap.fisher_information(truth, float(t), cfg.n_true_draws, generator=gen)
                   for t in cfg.times}}
    return _TRUE_TERMS[key]


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    ns = (point["n"],) if "n" in point else cfg.ns
    return [row for n in ns for row in _training_set_rows({**point, "n": int(n)}, cfg, device)]


def _training_set_rows(point: dict, cfg: Config, device: str) -> list[dict]:
    """The rows (one per t) of one training set of size point["n"]; its own generator per (d, n, scale, seed)."""
    d, n, scale, seed = point["d"], point["n"], point["trace_scale"], point["seed"]
    truth = true_law(d, scale, cfg, device)
    gen = torch.Generator(device=device).manual_seed(30_000 + 1009 * seed + 7 * d + n + int(round(1e3 * math.log10(scale))))
    data = truth.sample(n, 0.0, gen)
    empirical = theory.EmpiricalLaw(data)
    nn = spacing(data, cfg.n_neighbour_queries)
    tt = true_terms(d, scale, cfg, device)
    trace, trace_inv, lam, rho, j0 = (tt[k] for k in ("trace", "trace_inverse", "lambda_min", "collision_density", "j0"))
    rows = []
    for t in cfg.times:
        t = float(t)
        a, s2 = float(theory.alpha(t)), float(theory.sigma2(t))
        terms = lossgap.loss_gap_terms(truth, empirical, t, cfg.n_draws, generator=gen)
        jt = tt["jt"][t]
        level = d / s2
        collision = float(small_t.collision_term(d, n, t, rho))
        aw = float(lossgap.loss_gap_lower_bound(d, t, trace))
        cons = float(lossgap.loss_gap_lower_bound_consistent(d, t, trace_inv))
        gap = terms.loss_gap
        rows.append({
            "n": n, "K": truth.n_components, "separation": cfg.separation, "trace": trace, "trace_inverse": trace_inv,
            "lambda_min": lam, "collision_density": rho, "t": t, "alpha_t": a, "sigma2_t": s2,
            "loss_gap": gap.mean, "loss_gap_se": gap.stderr,
            "loss_gap_fisher_form": terms.fisher_form.mean, "loss_gap_fisher_form_se": terms.fisher_form.stderr,
            "fisher_empirical": terms.fisher_empirical.mean, "fisher_empirical_se": terms.fisher_empirical.stderr,
            "fisher_true": jt.mean, "fisher_true_se": jt.stderr, "fisher_true_0": j0.mean, "fisher_true_0_se": j0.stderr,
            "memorization_level": level, "plateau": level - jt.mean, "small_t_prediction": level - j0.mean,
            "collision": collision, "small_t_prediction_pairs": level - collision - j0.mean,
            "bound_as_written": aw, "bound_consistent": cons,
            "ratio_as_written": gap.mean / aw, "ratio_as_written_se": gap.stderr / aw,
            "ratio_consistent": gap.mean / cons, "ratio_consistent_se": gap.stderr / cons,
            "nn_distance_median": nn, "sigma_over_spacing": 0.0 if n == 1 else math.sqrt(s2) / (a * nn),
            "sigma2_over_lambda_min": s2 / lam, "log_n_over_d": math.log(n) / d,
            "n_draws": cfg.n_draws, "estimator": "loss_gap_terms (Fisher form + by parts, combined)",
        })
    return rows


# --------------------------------------------------------------------------------------------- cells and regime
CELL_KEYS = ["d", "n", "trace_scale", "t"]


def cells(table: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (d, n, trace_scale, t): the training-set averages (E_D) of both ratios and of the
    plateau ratio E_D[Loss-Gap_t] / (d/sigma_t^2 - J(P_t)) with their standard errors (``stats.seed_mean``: the
    larger of the propagated Monte-Carlo error and the spread over training sets), and the cell's
    noise-to-spacing and noise-to-width ratios, bounds and predictions."""
    t = table[table["error"].isna()] if "error" in table.columns else table
    t = identity_form_for_single_points(t)
    t = t.assign(plateau_ratio=t["loss_gap"] / t["plateau"], plateau_ratio_se=t["loss_gap_se"] / t["plateau"])
    out = None
    for col in ("ratio_consistent", "ratio_as_written", "plateau_ratio", "loss_gap"):
        m = stats.seed_mean(t, CELL_KEYS, col, f"{col}_se").rename(columns={"mean": col, "se": f"{col}_se"})
        out = m if out is None else out.merge(m.drop(columns="k"), on=CELL_KEYS)
    extra = t.groupby(CELL_KEYS)[["sigma_over_spacing", "sigma2_over_lambda_min", "sigma2_t", "memorization_level",
                                  "plateau", "small_t_prediction", "small_t_prediction_pairs", "bound_as_written",
                                  "bound_consistent", "trace", "trace_inverse", "fisher_true"]].mean().reset_index()
    return out.merge(extra, on=CELL_KEYS)


def identity_form_for_single_points(t: pd.DataFrame) -> pd.DataFrame:
    """For n = 1 the expected Loss-Gap is d/sigma_t^2 - J(P_t) exactly (J(P^_t) = d/sigma_t^2 for one atom), while
    the per-training-set Loss-Gap scatters around it by O(J(P_t)) from one training point to the next, which a
    few training sets cannot average out where J(P_t) ~ d/sigma_t^2 (components narrower than the noise). Those
    rows therefore use the identity form J(P^_t) - J(P_t) (its Monte-Carlo error included) for the loss gap and
    both ratios; the per-set estimate stays in ``loss_gap_fisher_form`` and lossgap_identity checks the identity."""
    one = t["n"] == 1
    if not one.any():
        return t
    t = t.copy()
    gap = t["fisher_empirical"] - t["fisher_true"]
    se = np.hypot(t["fisher_empirical_se"], t["fisher_true_se"])
    t.loc[one, "loss_gap"], t.loc[one, "loss_gap_se"] = gap[one], se[one]
    for reading, bound in (("ratio_as_written", "bound_as_written"), ("ratio_consistent", "bound_consistent")):
        t.loc[one, reading] = gap[one] / t.loc[one, bound]
        t.loc[one, f"{reading}_se"] = se[one] / t.loc[one, bound]
    return t


@dataclasses.dataclass(frozen=True)
class Regime:
    cells: pd.DataFrame        # every cell, with "lcl" (Bonferroni lower limit of the plateau ratio) and "inside"
    edge: stats.Interval       # the sigma_t/(alpha_t spacing) edge (edge_bracket)
    fraction: float
    width_max: float           # cells with sigma_t^2 / lambda_min <= width_max are "wide"
    level: float               # the Bonferroni level of the cells' lower limits


def find_regime(table: pd.DataFrame, *, fraction: float, width_max: float) -> Regime:
    """The small-t regime of Thm 4.3, read from the data in two dimensionless ratios. Width: cells with
    sigma_t^2 / lambda_min(Sigma) <= width_max (components wider than the noise). Spacing: the edge is the
    largest sigma_t/(alpha_t x NN spacing) up to which every wide cell keeps the lower limit (normal,
    Bonferroni over the wide cells) of its plateau ratio E_D[Loss-Gap_t] / (d/sigma_t^2 - J(P_t)) -- the gap
    relative to its exact n = 1 value -- at or above ``fraction`` (``stats.edge_bracket``; n = 1 counts as
    spacing ratio 0). Inside: wide and at or below the edge."""
    c = cells(table)
    wide = c["sigma2_over_lambda_min"] <= width_max
    level = stats.bonferroni_level(max(int(wide.sum()), 1))
    c = c.assign(lcl=[stats.normal_interval(r.plateau_ratio, r.plateau_ratio_se, level).lo for r in c.itertuples()])
    w = c[wide]
    edge = (stats.edge_bracket(w["sigma_over_spacing"], w["lcl"] >= fraction) if len(w)
            else stats.Interval(math.nan, -math.inf, math.inf, stats.LEVEL, "edge_bracket"))
    inside = wide & (c["sigma_over_spacing"] <= (edge.estimate if math.isfinite(edge.estimate) else -1.0))
    return Regime(c.assign(inside=inside), edge, fraction, width_max, level)


def collapse_spread(regime: Regime, column: str = "ratio_consistent", bins_per_decade: int = 4):
    """How well ``column`` of the wide cells (components wider than the noise) collapses onto
    sigma_t/(alpha_t spacing): within bins of 1/bins_per_decade decade (cells with a neighbour), the spread
    max - min of the E_D values; returns the median and the largest spread over the bins with >= 3 cells, and
    the number of such bins."""
    c = regime.cells
    w = c[(c["sigma2_over_lambda_min"] <= regime.width_max) & (c["sigma_over_spacing"] > 0)]
    if w.empty:
        return math.nan, math.nan, 0
    b = np.floor(np.log10(w["sigma_over_spacing"]) * bins_per_decade)
    spreads = [float(g.max() - g.min()) for _, g in w.groupby(b)[column] if len(g) >= 3]
    if not spreads:
        return math.nan, math.nan, 0
    return float(np.median(spreads)), float(np.max(spreads)), len(spreads)


def _range_tested(table) -> str:
    t = table[table["error"].isna()] if "error" in table.columns else table
    return (f"d in {sorted(int(v) for v in t['d'].unique())}, n in {sorted(int(v) for v in t['n'].unique())}, "
            f"tr Sigma / d in {sorted(float(v) for v in t['trace_scale'].unique())}, t {stats.fmt(float(t['t'].min()))}"
            f"-{stats.fmt(float(t['t'].max()))}, {int(t['seed'].nunique())} training sets per cell")


def _fitted_constant(regime: Regime, column: str):
    """min over the regime's cells of the E_D ratio ``column`` with its interval: each cell's normal interval at
    the Bonferroni level, the minimum of the lower and of the upper limits (covers the minimum with >= 95%)."""
    inside = regime.cells[regime.cells["inside"]]
    level = stats.bonferroni_level(len(inside))
    ivs = [stats.normal_interval(getattr(r, column), getattr(r, f"{column}_se"), level) for r in inside.itertuples()]
    lo, hi = min(iv.lo for iv in ivs), min(iv.hi for iv in ivs)
    low = inside.loc[inside[column].idxmin()]
    return (float(low[column]), lo, hi), low, inside


def _judge(table, column: str, reading: str, *, floor, fraction, width_max):
    stat = f"fitted Omega constant: min over the regime's cells of E_D[Loss-Gap_t] / ({reading})"
    rng = _range_tested(table)
    regime = find_regime(table, fraction=fraction, width_max=width_max)
    if not regime.cells["inside"].any():
        return inconclusive(stat, f"the regime is empty: no cell with sigma_t^2/lambda_min <= {width_max:g} keeps "
                            f"its gap above {fraction:g} x its n = 1 value at the smallest spacing ratio",
                            range_tested=rng)
    (value, lo, hi), low, inside = _fitted_constant(regime, column)
    e = regime.edge
    c = regime.cells
    text = (f"min E_D ratio {stats.fmt(value)} [{stats.fmt(lo)}, {stats.fmt(hi)}] at d = {int(low['d'])}, n = "
            f"{int(low['n'])}, tr Sigma = {stats.fmt(float(low['trace_scale']))} d, t = {stats.fmt(float(low['t']), 2)} "
            f"(sigma_t^2 tr Sigma / d = {stats.fmt(float(low['sigma2_t'] * low['trace'] / low['d']), 2)}), over "
            f"{len(inside)} regime cells (sigma_t^2/lambda_min <= {width_max:g} and sigma_t/(alpha_t x NN spacing) <= "
            f"edge {stats.fmt(e.estimate)}, bracket [{stats.fmt(e.lo)}, {stats.fmt(e.hi)}]: where the gap's lower "
            f"limit first falls below {fraction:g} x its n = 1 value d/sigma_t^2 - J(P_t)); ratio range there "
            f"{stats.fmt(float(inside[column].min()))}..{stats.fmt(float(inside[column].max()))}")
    outside = c[~c["inside"]]
    if len(outside):
        text += (f"; outside (not judged): {stats.fmt(float(outside[column].min()))}.."
                 f"{stats.fmt(float(outside[column].max()))}")
    if column == "ratio_consistent":
        med, worst, bins = collapse_spread(regime)
        text += (f"; collapse onto sigma_t/(alpha_t spacing) (cells with sigma_t^2/lambda_min <= {width_max:g}): "
                 f"spread (max - min) within quarter-decade bins median {stats.fmt(med, 2)}, largest "
                 f"{stats.fmt(worst, 2)} over {bins} bins")
        fine = inside[inside["sigma_over_spacing"] <= 0.1 * e.estimate]
        if len(fine):
            pred = fine["small_t_prediction_pairs"] / fine["bound_consistent"]
            text += (f"; at spacing ratio <= {stats.fmt(0.1 * e.estimate, 2)} the ratio is "
                     f"(d/sigma_t^2 - collisions - J(P_0)) / (d/sigma_t^2 + tr Sigma^-1) to within "
                     f"{stats.fmt(float((fine[column] - pred).abs().max()), 2)} ({len(fine)} cells)")
        narrow = c[(c["sigma2_over_lambda_min"] > width_max) & (c["sigma_over_spacing"] <= e.estimate)]
        if len(narrow):
            big = narrow[narrow["sigma2_over_lambda_min"] >= 10 * width_max]
            text += (f"; components narrower than the noise (sigma_t^2/lambda_min > {width_max:g}, spacing below the "
                     f"edge): ratio {stats.fmt(float(narrow[column].min()))}..{stats.fmt(float(narrow[column].max()))}"
                     + (f", at most {stats.fmt(float(big[column].max()))} once sigma_t^2/lambda_min >= "
                        f"{10 * width_max:g}" if len(big) else ""))
    confounds = []
    if e.hi == math.inf:
        confounds.append("the edge was not reached within the grid (every wide cell stays on the plateau)")
    return finding(stat, (value, lo, hi), decide_above(lo, hi, floor), text, interval="bonferroni_normal",
                   confounds=confounds, range_tested=rng)


def judge_as_written(table, *, floor=0.1, fraction=0.4, width_max=0.1):
    """Thm 4.3 as written. Rule: in the regime found from the data (``find_regime``: components wider than the
    noise, sigma_t^2/lambda_min <= width_max, and sigma_t/(alpha_t x NN spacing) up to the edge where a cell's
    E_D[Loss-Gap_t] / (d/sigma_t^2 - J(P_t)) first has its Bonferroni lower limit below fraction), every cell's
    E_D[Loss-Gap_t] / (d/sigma_t^2 + tr Sigma) gets a normal interval at the Bonferroni level over the regime's
    cells (se: the larger of the propagated Monte-Carlo error and the spread over training sets); the fitted Omega
    constant, the minimum cell, lies in [min lo, min hi]. Holds if that interval lies above floor, does not hold
    if it lies at or below it."""
    return _judge(table, "ratio_as_written", "d/sigma_t^2 + tr Sigma", floor=floor, fraction=fraction,
                  width_max=width_max)


def judge_consistent(table, *, floor=0.1, fraction=0.4, width_max=0.1):
    """Thm 4.3, dimensionally consistent reading. Rule: the same regime and fit as the as-written rule, for the
    ratio E_D[Loss-Gap_t] / (d/sigma_t^2 + tr Sigma^-1): holds if the fitted constant's interval lies above floor,
    does not hold if it lies at or below it."""
    return _judge(table, "ratio_consistent", "d/sigma_t^2 + tr Sigma^-1", floor=floor, fraction=fraction,
                  width_max=width_max)


_REGIME_CONSTANTS = (
    Constant("floor", 0.1, "the Omega constant the fitted one must exceed"),
    Constant("fraction", 0.4, "the regime's spacing edge: where the gap's lower limit falls below this fraction "
                              "of its n = 1 value d/sigma_t^2 - J(P_t)"),
    Constant("width_max", 0.1, "largest sigma_t^2 / lambda_min(Sigma) counted as 'components wider than the noise'"),
)

CLAIMS = [
    Claim("lossgap_bound_as_written", "E_D[Loss-Gap_t] = Omega(d / sigma_t^2 + tr Sigma) at small t for separated "
          "Gaussian mixtures, with a constant uniform in Sigma (the theorem as written)", "Thm 4.3",
          "K-component mixtures, Delta_min = Theta(sqrt d), log n = O(d), t small (no explicit constant)",
          "theory.estimators.lossgap.loss_gap_lower_bound", judge_as_written, _REGIME_CONSTANTS),
    Claim("lossgap_bound_consistent", "E_D[Loss-Gap_t] = Omega(d / sigma_t^2 + tr Sigma^-1) at small t (the "
          "dimensionally consistent reading of Thm 4.3)", "Thm 4.3 (reading with tr Sigma^-1)",
          "as Thm 4.3; small t read as sigma_t small against the components' width and the points' spacing",
          "theory.estimators.lossgap.loss_gap_lower_bound_consistent", judge_consistent, _REGIME_CONSTANTS),
]


# --------------------------------------------------------------------------------------------- figure
def plot(table, cfg: Config):
    import matplotlib.pyplot as plt
    from matplotlib import colors, gridspec

    constants = {c.name: c.default for c in _REGIME_CONSTANTS}
    regime = find_regime(table, fraction=constants["fraction"], width_max=constants["width_max"])
    c = regime.cells
    z = stats.normal_quantile(stats.LEVEL)
    scales = sorted(c["trace_scale"].unique())
    fig = plt.figure(figsize=(17, 11))
    gs = gridspec.GridSpec(2, max(3, len(scales)), height_ratios=[1.25, 1], hspace=0.42, wspace=0.32)
    top = gs[0, :].subgridspec(1, 3, wspace=0.42)
    ax_a, ax_b, ax_c = (fig.add_subplot(top[0, i]) for i in range(3))
    markers = {d: m for d, m in zip(sorted(c["d"].unique()), "os^Dvp")}
    norm = colors.LogNorm(vmin=max(float(c["sigma2_over_lambda_min"].min()), 1e-8),
                          vmax=float(c["sigma2_over_lambda_min"].max()))
    cmap = plt.get_cmap("viridis")
    positive = c.loc[c["sigma_over_spacing"] > 0, "sigma_over_spacing"]
    x_floor = 0.3 * float(positive.min()) if len(positive) else 1e-3

    # (a) phase diagram: consistent ratio against sigma_t / (alpha_t spacing)
    for d, g in c.groupby("d"):
        x = np.where(g["sigma_over_spacing"] > 0, g["sigma_over_spacing"], x_floor)
        col = cmap(norm(g["sigma2_over_lambda_min"].clip(lower=norm.vmin)))
        ax_a.errorbar(x, g["ratio_consistent"], yerr=z * g["ratio_consistent_se"], fmt="none", ecolor="0.6",
                      elinewidth=0.6, zorder=1)
        ax_a.scatter(x, g["ratio_consistent"], c=col, marker=markers[d], s=18, edgecolors="k", linewidths=0.2,
                     zorder=2, label=f"d = {d}")
    ax_a.axvline(x_floor, color="0.5", lw=0.6, ls=":")
    ax_a.annotate("n = 1 (no neighbour)", (x_floor, 0.75), rotation=90, fontsize=6.5, ha="right", va="center")
    ax_a.axhline(constants["fraction"], color="C3", lw=0.8, ls="--",
                 label=f"edge: gap = {constants['fraction']:g} (d/σ$_t^2$ − J(P$_t$))")
    if math.isfinite(regime.edge.estimate):
        right = regime.edge.hi if math.isfinite(regime.edge.hi) else regime.edge.lo * 1.5
        ax_a.axvspan(regime.edge.lo, right, color="C3", alpha=0.2,
                     label=f"edge bracket [{regime.edge.lo:.2g}, {regime.edge.hi:.2g}]")
    ax_a.set_xscale("log")
    ax_a.set_ylim(-0.05, 1.12)
    ax_a.set_xlabel(r"$\sigma_t / (\alpha_t \times$ median nearest-neighbour spacing)")
    ax_a.set_ylabel(r"$E_D$[Loss-Gap$_t$] / $(d\sigma_t^{-2} + \mathrm{tr}\,\Sigma^{-1})$")
    ax_a.set_title("(a) consistent reading: phase diagram (colour: $\\sigma_t^2/\\lambda_{\\min}$)", fontsize=9)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax_a, pad=0.01).set_label(r"$\sigma_t^2 / \lambda_{\min}(\Sigma)$")
    ax_a.legend(fontsize=6, loc="lower left", bbox_to_anchor=(0.1, 0.42))   # empty: between n = 1 and the edge, below the plateau

    # (b) as written against sigma_t^2 tr Sigma / d, with the ceiling 1 / (1 + sigma_t^2 tr Sigma / d)
    u = c["sigma2_t"] * c["trace"] / c["d"]
    inside = c["inside"]
    ax_b.errorbar(u[inside], c.loc[inside, "ratio_as_written"], yerr=z * c.loc[inside, "ratio_as_written_se"],
                  fmt="o", ms=3, color="C0", elinewidth=0.6, label="cells inside the regime")
    ax_b.errorbar(u[~inside], c.loc[~inside, "ratio_as_written"], yerr=z * c.loc[~inside, "ratio_as_written_se"],
                  fmt=".", ms=2, color="0.65", elinewidth=0.4, label="outside the regime")
    uu = np.geomspace(float(u.min()), float(u.max()), 200)
    ax_b.plot(uu, 1 / (1 + uu), "k-", lw=1.2, label=r"ceiling $1/(1+\sigma_t^2\mathrm{tr}\Sigma/d)$ (gap $< d/\sigma_t^2$)")
    ax_b.axhline(constants["floor"], color="C3", ls=":", lw=1, label=f"floor {constants['floor']:g}")
    ax_b.set_xscale("log")
    ax_b.set_yscale("symlog", linthresh=1e-3)
    ax_b.set_ylim(-1e-3, 1.5)
    ax_b.set_xlabel(r"$\sigma_t^2\, \mathrm{tr}\,\Sigma / d$")
    ax_b.set_ylabel(r"$E_D$[Loss-Gap$_t$] / $(d\sigma_t^{-2} + \mathrm{tr}\,\Sigma)$")
    ax_b.set_title("(b) as written: collapses once tr Σ ≫ d/σ$_t^2$", fontsize=9)
    ax_b.legend(fontsize=6.5, loc="lower left")

    # (c) consistent ratio against sigma_t^2 / lambda_min for cells below the spacing edge
    near = c["sigma_over_spacing"] <= (regime.edge.estimate if math.isfinite(regime.edge.estimate) else 0.0)
    for d, g in c[near].groupby("d"):
        ax_c.errorbar(g["sigma2_over_lambda_min"], g["ratio_consistent"], yerr=z * g["ratio_consistent_se"],
                      fmt=markers[d], ms=3, elinewidth=0.6, label=f"d = {d}")
    yy = np.geomspace(float(c["sigma2_over_lambda_min"].min()), float(c["sigma2_over_lambda_min"].max()), 200)
    ax_c.plot(yy, 1 / (1 + yy) ** 2, "k-", lw=1.2, label=r"n = 1, $\Sigma=\lambda I$: $\approx 1/(1+\sigma_t^2/\lambda)^2$")
    ax_c.axvline(constants["width_max"], color="C3", ls=":", lw=1, label=f"width_max {constants['width_max']:g}")
    ax_c.set_xscale("log")
    ax_c.set_ylim(-0.05, 1.12)
    ax_c.set_xlabel(r"$\sigma_t^2 / \lambda_{\min}(\Sigma)$")
    ax_c.set_ylabel("consistent ratio")
    ax_c.set_title("(c) fails where the components are narrower than the noise\n(cells below the spacing edge)",
                   fontsize=9)
    ax_c.legend(fontsize=6.5, loc="lower left")

    # bottom: E_D[Loss-Gap_t] against t per trace scale (smallest d: the widest range of spacings), with the
    # exact n = 1 plateau and both bound shapes
    d_show = int(min(c["d"]))
    handles = {}
    for i, s in enumerate(scales):
        ax = fig.add_subplot(gs[1, i])
        sub = c[(c["d"] == d_show) & (c["trace_scale"] == s)]
        for k, (n, g) in enumerate(sub.groupby("n")):
            g = g.sort_values("t")
            pos = g["loss_gap"] > 0
            h = ax.errorbar(g.loc[pos, "t"], g.loc[pos, "loss_gap"], yerr=z * g.loc[pos, "loss_gap_se"], fmt="o-",
                            ms=2.5, lw=0.8, color=f"C{k}", elinewidth=0.6)
            handles.setdefault(f"n = {n}", h)
            if (~pos).any():      # non-positive estimates: marked on the bottom axis, not dropped
                ax.plot(g.loc[~pos, "t"], np.full(int((~pos).sum()), 0.02), "v", color=f"C{k}", ms=4,
                        transform=ax.get_xaxis_transform())
        ref = sub.groupby("t")[["plateau", "bound_as_written", "bound_consistent"]].mean()
        handles.setdefault(r"$d/\sigma_t^2 - J(P_t)$ (exact for n = 1)", ax.plot(ref.index, ref["plateau"], "k--", lw=1)[0])
        handles.setdefault(r"as written: $d/\sigma_t^2+\mathrm{tr}\Sigma$",
                           ax.plot(ref.index, ref["bound_as_written"], color="C3", ls=":", lw=1.4)[0])
        handles.setdefault(r"consistent: $d/\sigma_t^2+\mathrm{tr}\Sigma^{-1}$",
                           ax.plot(ref.index, ref["bound_consistent"], color="C9", ls="-.", lw=1.1)[0])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"d = {d_show}, tr Σ / d = {s:g}", fontsize=8.5)
        ax.set_xlabel("t", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.set_ylabel(r"$E_D$[Loss-Gap$_t$]  (score$^2$)")
        ax.grid(True, alpha=0.3)
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=len(handles), fontsize=7.5,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Thm 4.3, both readings (means over training sets; error bars and intervals: 95% normal, "
                 "se = max(Monte Carlo, spread over training sets); ▼: non-positive estimate)", fontsize=10)
    return fig
