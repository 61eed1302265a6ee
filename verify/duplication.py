"""Exact duplicates in the training set: the empirical score of n points of which m are copies is as hard
to fit as that of the n - m distinct points (Thm 5.1, corollary on duplicates).

For a pool of k distinct points drawn from the mixture, a duplicated set of n = k + m points adds m copies
of pool points (chosen at random, with repetition); its empirical law P^_t has only k atoms (with unequal
weights). For every pool size k and copy factor f = m / k, three sets are fitted with ReLU nets of each
width (``verify.width_vs_n.fit_width_groups``, the same protocol as ``width_vs_n``):

* "distinct" k: the pool alone,
* "distinct" k + m: the pool plus m fresh points (the first k + m points of the pool's stream), and
* "duplicated" k + m: the pool plus m copies,

all three at the pool's t (sigma_t / alpha_t = ``spacing_ratio`` x the pool's median nearest-neighbour
distance: the pool's points are resolved, as in ``width_vs_n``). W* is the smallest width reaching the
target relative L2 error (best net seed), one value per data seed and set; a set whose target is not
reached within the grid is censored above. The corollary predicts log W*_dup near log W*(k) rather than
log W*(k + m).

The rule fits, per (k, f), a censored normal model of log W* with one mean per set and judges the contrast
c = mu_dup - (mu_k + mu_{k+m}) / 2 (c < 0: the duplicated set is nearer its k distinct points, on the log
scale) by its profile-likelihood interval; a triple whose controls cannot be told apart (the interval of
mu_{k+m} - mu_k not above 0) cannot discriminate and is not judged.

Columns: kind (distinct | duplicated), pool (k), m, n_distinct, n, t, sigma_t, spacing, noise_ratio, width,
depth, params, net_seed, rel_error, rel_error_se, final_loss, error_curve, curve_steps, train_steps, lr,
batch_size, stop_target, target_error, width_star, width_star_lo, width_star_hi, params_star,
parameterisation, d, plus the runner's seed (data set), preset, device, runtime_s, point.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np
import pandas as pd
import torch

import theory
from verify import width_vs_n
from verify._gmm import with_copies

from . import stats
from .verdicts import Claim, Constant, conjunction, decide_above, decide_below, finding, inconclusive

NAME = "duplication"
CLAIM = "m exact duplicates among n samples make the empirical score as easy as n - m distinct ones (Thm 5.1 corollary)"
ORDER = 41


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(width_vs_n.FitConfig):
    n_distinct: tuple        # pool sizes k
    copies_factor: tuple     # m = factor * k copies added


PRESETS = {
    "smoke": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(4,), copies_factor=(1,),
                    widths=(4, 16), depth=2, net_seeds=(0,), data_seeds=(0, 1), targets=(0.3, 0.6),
                    target_error=0.6, spacing_ratio=0.5, steps=20, batch_size=64, lr=1e-2, eval_points=256),
    "cpu": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(8, 32), copies_factor=(1, 3),
                  widths=(4, 8, 16, 32, 64, 128), depth=2, net_seeds=(0, 1), data_seeds=(0, 1, 2),
                  targets=(0.05, 0.1, 0.2), target_error=0.1, spacing_ratio=0.25, steps=1000, batch_size=128, lr=1e-2,
                  eval_points=2048),
    "paper": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(16, 64, 256),
                    copies_factor=(1, 3, 7), widths=(4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096), depth=2,
                    net_seeds=(0, 1, 2), data_seeds=(0, 1, 2, 3, 4), targets=(0.05, 0.1, 0.2), target_error=0.1,
                    spacing_ratio=0.25, steps=20000, batch_size=512, lr=3e-3, eval_points=16384),
}
COLUMNS = ("kind", "pool", "m", "n_distinct", "n", "t", "sigma_t", "spacing", "noise_ratio", "width", "depth",
           "params", "net_seed", "rel_error", "rel_error_se", "final_loss", "error_curve", "curve_steps",
           "train_steps", "lr", "batch_size", "stop_target", "target_error", "width_star", "width_star_lo",
           "width_star_hi", "params_star", "parameterisation", "d", "seed", "preset", "device", "runtime_s", "point")


def estimated_seconds(cfg: Config, device: str = "cpu") -> float:
    """The cost model of ``verify.width_vs_n`` (an upper bound: every set at every width) for this grid."""
    ns = [s["pool"] + s["m"] for s in data_sets(cfg)]
    return len(cfg.data_seeds) * width_vs_n.fit_macs(ns, cfg, cfg.steps, True) * width_vs_n.SECONDS_PER_MAC[device]


def grid(cfg: Config) -> list[dict]:
    """One point per data seed: every set of every pool, fitted as one ensemble per width bucket."""
    return [{"seed": s} for s in cfg.data_seeds]


def data_sets(cfg: Config) -> list[dict]:
    """Per pool k: the pool (distinct, m = 0), and per copy factor f the k + f k distinct points and the
    pool with f k copies; ``m`` is the number of added points, ``pool`` the pool size."""
    sets = []
    for k in cfg.n_distinct:
        sets.append({"kind": "distinct", "pool": k, "m": 0})
        for f in cfg.copies_factor:
            sets += [{"kind": "distinct", "pool": k, "m": f * k}, {"kind": "duplicated", "pool": k, "m": f * k}]
    return sets


def build_set(truth, spec: dict, seed: int) -> torch.Tensor:
    """The points of one set (``data_sets``): the first k (+ m) of the seed's nested stream, or the pool
    followed by m copies of its points."""
    k, m = spec["pool"], spec["m"]
    if spec["kind"] == "duplicated":
        return with_copies(width_vs_n.nested_training_set(truth, k, seed), m, seed)
    return width_vs_n.nested_training_set(truth, k + m, seed)


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    truth = width_vs_n.true_mixture(cfg, device)
    seed = point["seed"]
    groups, info = [], []
    for spec in data_sets(cfg):
        data = build_set(truth, spec, seed)
        distinct = int(torch.unique(data, dim=0).shape[0])
        expected = spec["pool"] + (spec["m"] if spec["kind"] == "distinct" else 0)
        if distinct != expected:
            raise RuntimeError(f"expected {expected} distinct points, found {distinct}")
        pool = width_vs_n.nested_training_set(truth, spec["pool"], seed)
        delta = width_vs_n.median_spacing(pool)
        t = width_vs_n.time_for_ratio(cfg.spacing_ratio, delta)
        stream = zlib.crc32(repr((spec["kind"], spec["pool"], spec["m"], seed)).encode()) % 1_000_003
        groups.append({"law": theory.EmpiricalLaw(data), "t": t, "stream": stream})
        info.append({**spec, "n_distinct": distinct, "n": int(data.shape[0]), "t": t,
                     "sigma_t": float(theory.sigma(t)), "spacing": delta,
                     "noise_ratio": width_vs_n.noise_ratio(t, delta), "d": cfg.dim})
    rows = []
    for meta, members in zip(info, width_vs_n.fit_width_groups(groups, cfg, device)):
        width_vs_n.add_star(members, cfg, cfg.target_error)
        rows += [{**meta, **r} for r in members]
    return rows


# --------------------------------------------------------------------------------------------- statistics
KEYS = ["kind", "pool", "m", "seed"]


def stars(table: pd.DataFrame, target: float) -> pd.DataFrame:
    """W* at ``target`` per set and data seed, recomputed from the error rows (best net seed per width):
    columns kind, pool, m, seed, n, w_star, lo, hi, kind_of_value (exact | above | below | undecided)."""
    t = table[table["error"].isna()] if "error" in table.columns else table
    t = t[t["kind"].isin(["distinct", "duplicated"])]
    grid_max = float(t["width"].max()) if len(t) else math.nan
    out = []
    for key, g in t.groupby(KEYS):
        best = g.groupby("width")["rel_error"].min()
        w, lo, hi = width_vs_n.star_bounds(best.index, best.values, target, grid_max=grid_max)
        value = ("undecided" if math.isnan(lo) else "exact" if lo == hi else "above" if math.isinf(hi) else "below")
        out.append({**dict(zip(KEYS, key)), "n": int(g["n"].iloc[0]), "w_star": w, "lo": lo, "hi": hi,
                    "value": value})
    return pd.DataFrame(out, columns=KEYS + ["n", "w_star", "lo", "hi", "value"])


def triple_fit(s: pd.DataFrame, pool: int, m: int) -> dict | None:
    """The censored cell-means model of log W* over the three sets of (pool, m) and every data seed:
    coefficients (mu_k, mu_n, c) with mu_dup = c + (mu_k + mu_n) / 2; returns the profile fits of c (the
    contrast) and of the control gap mu_n - mu_k, or None if a set is missing."""
    cells = {"k": s[(s["kind"] == "distinct") & (s["pool"] == pool) & (s["m"] == 0)],
             "n": s[(s["kind"] == "distinct") & (s["pool"] == pool) & (s["m"] == m)],
             "dup": s[(s["kind"] == "duplicated") & (s["pool"] == pool) & (s["m"] == m)]}
    cells = {k: v[v["value"] != "undecided"] for k, v in cells.items()}
    if any(v.empty for v in cells.values()):
        return None
    rows = {"k": [1.0, 0.0, 0.0], "n": [0.0, 1.0, 0.0], "dup": [0.5, 0.5, 1.0]}
    X = np.array([rows[k] for k, v in cells.items() for _ in range(len(v))])
    lo, hi = stats.log_bounds(np.concatenate([v["lo"] for v in cells.values()]),
                               np.concatenate([v["hi"] for v in cells.values()]))
    contrast = stats.censored_normal_fit(X, lo, hi, coef=2)
    # the control gap: mu_n - mu_k as a coefficient (mu_k, gap, c') with mu_n = mu_k + gap
    rows_g = {"k": [1.0, 0.0, 0.0], "n": [1.0, 1.0, 0.0], "dup": [1.0, 0.5, 1.0]}
    Xg = np.array([rows_g[k] for k, v in cells.items() for _ in range(len(v))])
    gap = stats.censored_normal_fit(Xg, lo, hi, coef=1)
    means = {k: float(np.exp(np.mean(np.log(v["w_star"][v["value"] == "exact"]))))
             if (v["value"] == "exact").any() else math.nan for k, v in cells.items()}
    counts = {k: (int((v["value"] == "above").sum()), len(v)) for k, v in cells.items()}
    return {"contrast": contrast, "gap": gap, "means": means, "counts": counts}


# --------------------------------------------------------------------------------------------- figure
def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    s = stars(table, cfg.target_error)
    pools = sorted(s["pool"].unique())
    fig, axes = plt.subplots(1, len(pools) + 1, figsize=(5.6 * (len(pools) + 1), 4.6), squeeze=False)
    wmin, wmax = min(cfg.widths), max(cfg.widths)
    for ax, k in zip(axes[0], pools):
        sub = s[s["pool"] == k]
        t = table[table["pool"] == k]["t"].iloc[0]
        for kind, colour, marker in (("distinct", "k", "s"), ("duplicated", "C3", "o")):
            g = sub[sub["kind"] == kind]
            shift = 1.0 if kind == "distinct" else 1.04
            ex = g[g["value"] == "exact"]
            ax.plot(ex["n"] * shift, ex["w_star"], marker, color=colour, alpha=0.35, ms=4)
            ab = g[g["value"] == "above"]
            if len(ab):
                ax.scatter(ab["n"] * shift, [wmax * 1.4] * len(ab), marker=r"$\uparrow$", s=60, color=colour)
            be = g[g["value"] == "below"]
            if len(be):
                ax.scatter(be["n"] * shift, [wmin / 1.4] * len(be), marker=r"$\downarrow$", s=60, color=colour)
            means = []
            for n, gn in g[g["value"] != "undecided"].groupby("n"):
                f = stats.censored_log_mean(gn["lo"], gn["hi"])
                means.append((n, f.estimate, f.lo, f.hi))
            if means:
                n_, est, lo, hi = map(np.array, zip(*means))
                okm = np.isfinite(est)
                e = np.exp(est[okm])
                ax.errorbar(n_[okm] * shift, e, yerr=[e - np.exp(lo[okm]).clip(wmin / 3),
                                                        np.exp(hi[okm]).clip(max=wmax * 8) - e],
                            fmt=marker + ("-" if kind == "distinct" else ""), color=colour, ms=7, capsize=2,
                            label=("n distinct points" if kind == "distinct" else f"{k} distinct + m copies (at n = {k} + m)"))
        base = sub[(sub["kind"] == "distinct") & (sub["m"] == 0)]
        fk = stats.censored_log_mean(base["lo"], base["hi"])
        if math.isfinite(fk.estimate):
            ax.axhline(math.exp(fk.estimate), color="C3", ls=":", lw=1, label=f"W* of the {k} distinct points alone")
        ax.axhspan(wmax, wmax * 8, color="0.9", zorder=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_ylim(wmin / 3, wmax * 8)
        ax.set_xlabel("number of training points n (distinct + copies)")
        ax.set_ylabel(f"W* (relative error <= {cfg.target_error:g})")
        ax.set_title(f"pool of k = {k}: t = {t:.3g} ($\\sigma_t/\\alpha_t$ = {cfg.spacing_ratio:g} x pool spacing)",
                     fontsize=9)
        ax.text(0.01, 0.99, f"small markers: data seeds; bars: 95% profile interval of the censored geometric mean;\n"
                f"grey band: above the grid (censored, arrows at {wmax})", transform=ax.transAxes, va="top",
                fontsize=6.5)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[0][-1]
    labels = []
    for i, (k, m) in enumerate(sorted({(int(r.pool), int(r.m)) for r in s[s["m"] > 0].itertuples()})):
        fit = triple_fit(s, k, m)
        if fit is None:
            continue
        c = fit["contrast"]
        judged = fit["gap"].lo > 0
        lo, hi = max(c.lo, -4.0), min(c.hi, 4.0)
        colour = "C3" if judged else "0.6"
        if math.isfinite(c.estimate):
            ax.errorbar([c.estimate], [i], xerr=[[c.estimate - lo], [hi - c.estimate]], fmt="o", color=colour,
                        capsize=3)
        elif math.isfinite(c.lo) or math.isfinite(c.hi):      # one-sided: a control censored at every seed
            ax.plot([lo, hi], [i, i], "-", color=colour)
            ax.plot([hi if math.isfinite(c.hi) else lo], [i], "|" , color=colour, ms=10)
            ax.plot([lo if c.estimate < 0 else hi], [i], "<" if c.estimate < 0 else ">", color=colour, ms=7)
        labels.append((i, f"{k} + {m} copies" + ("" if judged else "\n(controls alike:\nnot judged)")
                       + ("\n(one-sided: a control\nabove the grid)" if judged and not math.isfinite(c.estimate) else "")))
    ax.set_yticks([p for p, _ in labels], [l for _, l in labels], fontsize=7)
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlim(-4, 4)
    ax.invert_yaxis()
    ax.set_xlabel("c = log W*_dup - (log W*(k) + log W*(k + m)) / 2  (95% profile interval)")
    ax.set_title("< 0: duplicates behave like their distinct points (corollary)\n> 0: like the n points", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle(f"Duplicates and the width needed for the empirical score (d = {cfg.dim}, depth {cfg.depth}, "
                 f"{len(cfg.data_seeds)} data seeds x {len(cfg.net_seeds)} net seeds, {cfg.steps} steps)")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- claims
def judge_duplicate_width(table, *, target_error=0.1):
    """Rule: per pool k and copy factor, a censored normal model of log W* (W*: the smallest width reaching
    target_error, best net seed; one value per data seed and set; sets not reaching it within the grid
    enter as bounds) with one mean per set gives the contrast c = mu_dup - (mu_k + mu_{k+m}) / 2 with its 95%
    profile-likelihood interval: holds if every judged triple has c's interval below 0 (the duplicated set
    is nearer its k distinct points), does not hold if some triple's interval is above 0, inconclusive
    otherwise. A triple whose control gap mu_{k+m} - mu_k has an interval not above 0 cannot discriminate
    and is not judged."""
    stat = "contrast c = log W*_dup - (log W*(k distinct) + log W*(k + m distinct)) / 2 (censored fit)"
    if table.empty or "kind" not in table.columns:
        return inconclusive(stat, "no width rows")
    missing = sorted({"pool", "m", "seed", "n", "t", "width", "net_seed", "rel_error"} - set(table.columns))
    if missing:
        return inconclusive(stat, f"the table predates this rule (no {', '.join(missing)} columns): rerun the module",
                            range_tested=f"an older protocol's table ({len(table)} rows)")
    s = stars(table, target_error)
    if s.empty:
        return inconclusive(stat, "no width rows")
    t = table[table["kind"].isin(["distinct", "duplicated"])]
    rng = (f"pools k = {sorted(int(v) for v in s['pool'].unique())}, m/k in "
           f"{sorted({int(r.m // r.pool) for r in s[s['m'] > 0].itertuples()})}, n {int(s['n'].min())}-"
           f"{int(s['n'].max())}, t = {stats.fmt(t['t'].min())}-{stats.fmt(t['t'].max())}, widths "
           f"{int(t['width'].min())}-{int(t['width'].max())}, eps = {target_error:g}, {s['seed'].nunique()} data "
           f"seed(s) x {t['net_seed'].nunique()} net seed(s)")
    confounds = []
    above = s[s["value"] == "above"]
    if len(above):
        confounds.append(f"{len(above)} of {len(s)} values censored above W = {int(t['width'].max())} ("
                         + ", ".join(sorted({f'{r.kind} {r.pool}+{r.m}' for r in above.itertuples()})) + "): in the fit as bounds")
    parts, verdicts, worst = [], [], None
    for k, m in sorted({(int(r.pool), int(r.m)) for r in s[s["m"] > 0].itertuples()}):
        fit = triple_fit(s, k, m)
        if fit is None:
            continue
        c, gap, mu = fit["contrast"], fit["gap"], fit["means"]
        label = f"{k}+{m} copies"
        desc = (f"{label}: W* (geometric mean of exact values) dup {stats.fmt(mu['dup'])} vs {k} distinct "
                f"{stats.fmt(mu['k'])}, {k + m} distinct {stats.fmt(mu['n'])}; gap {stats.fmt_interval(gap.estimate, gap.lo, gap.hi, 2)}")
        if not gap.lo > 0:
            parts.append(desc + " (controls not told apart: not judged)")
            confounds.append(f"{label} not judged: its controls' W* cannot be told apart")
            continue
        v = decide_below(c.lo, c.hi, 0.0)
        verdicts.append(v)
        parts.append(desc + f"; c {stats.fmt_interval(c.estimate, c.lo, c.hi, 2)}")
        if worst is None or c.hi > worst[2]:
            worst = (c.estimate, c.lo, c.hi)
    if not verdicts:
        return inconclusive(stat, "no duplicated set with distinguishable controls; " + "; ".join(parts),
                            confounds=confounds, range_tested=rng)
    return finding(stat, worst, conjunction(verdicts), "; ".join(parts), interval="tobit_profile",
                   confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("duplicate_width", "m exact duplicates among n samples make the empirical score as easy to fit as that of "
          "the n - m distinct points", "Thm 5.1, corollary on duplicates", "n samples of which m are exact copies",
          "theory.training.regression.fit_score", judge_duplicate_width,
          (Constant("target_error", 0.1, "relative L2 error a width must reach (the eps of W*)"),)),
]


# cpu: measured (512 G multiply-adds x SECONDS_PER_MAC); paper: the cost model's upper bound, a literal so
# that `verify list` reads it without importing torch (a test checks it against estimated_seconds)
ESTIMATED_RUNTIME = {"smoke": 2, "cpu": 175, "paper": 10849}
