"""Exact duplicates in the training set: the empirical score of n points of which m are copies is as hard
to fit as that of the n - m distinct points (Thm 5.1, corollary on duplicates).

For a fixed pool of n_distinct points drawn from the mixture, a data set of n = n_distinct + m points adds
m copies of points of the pool (chosen at random, with repetition); its empirical law P^_t has only
n_distinct atoms (with unequal weights). At one t, we fit ReLU nets of each width (as ``width_vs_n``) to

* "duplicated": the empirical score of the n points (n_distinct distinct), and
* "distinct": the empirical score of n_distinct distinct points, for n_distinct = n - m (the pool alone)
  and, as the control, n_distinct = n (the pool plus m fresh points),

and report W*, the smallest width reaching the target relative error. The corollary predicts that W* of a
duplicated set follows n - m (= n_distinct) and not n.

A second experiment trains diffusion models (verify._gmm, memsep's defaults, one ensemble over
all the data sets) and measures the memorization fraction of each data set's samples against its distinct
training points: duplicates shrink the effective n, so a set with copies should memorize like its n - m
distinct points rather than like n distinct points. (Its data sets are drawn from the same mixture with
the training code's own seeded stream, so they are not the exact point sets of the width experiment.)

Columns: kind (distinct | duplicated | memorization), n, m, n_distinct, t, width, depth, params, net_seed,
rel_error, rel_error_se, final_loss, target_error, width_star, params_star, seed (pool), preset,
device, runtime_s; memorization rows add data (distinct | duplicated), mem_fraction, mem_fraction_se,
sample_logp_true, train_steps.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np
import torch

import theory
from theory.training.dsm import ScoreTrainConfig
from verify import width_vs_n
from verify._gmm import GMMDefaults, run_group, with_copies
from verify._io import Checkpoint

from . import _memorization, stats
from .verdicts import Claim, conjunction, decide_above, finding, inconclusive

NAME = "duplication"
CLAIM = "m exact duplicates among n samples make the empirical score as easy as n - m distinct ones (Thm 5.1 corollary)"
ORDER = 41


@dataclasses.dataclass(frozen=True, kw_only=True)
class Config(width_vs_n.FitConfig):
    n_distinct: tuple        # sizes of the distinct pool
    copies_factor: tuple     # m = factor * n_distinct copies added
    # memorization of a DSM-trained diffusion model on the same kinds of data set (verify._gmm)
    memorization_width: int = 128     # 0: skip
    memorization_steps: int = 1000
    memorization_samples: int = 300


PRESETS = {
    "smoke": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(4,), copies_factor=(1,),
                    times=(0.2,), widths=(4, 16), depth=2, net_seeds=(0,), data_seeds=(0,), target_error=0.1,
                    steps=20, batch_size=64, lr=1e-2, eval_points=256, memorization_width=16,
                    memorization_steps=20, memorization_samples=30),
    "cpu": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(8, 32), copies_factor=(1, 3),
                  times=(0.1,), widths=(4, 8, 16, 32, 64, 128, 256, 512), depth=2, net_seeds=(0,),
                  data_seeds=(0,), target_error=0.2, steps=600, batch_size=128, lr=1e-2, eval_points=2048),
    "paper": Config(dim=2, n_components=4, separation=1.0, trace=2.0, n_distinct=(64, 256, 1024),
                    copies_factor=(1, 3, 7), times=(0.01, 0.1),
                    widths=(8, 16, 32, 64, 128, 256, 512, 1024, 2048), depth=2, net_seeds=(0, 1, 2),
                    data_seeds=(0, 1), target_error=0.05, steps=20000, batch_size=512, lr=3e-3, eval_points=16384,
                    memorization_width=512, memorization_steps=50_000, memorization_samples=2000),
}
ESTIMATED_RUNTIME = {"smoke": 3, "cpu": 60, "paper": 4 * 3600}
COLUMNS = ("kind", "n_distinct", "m", "t", "width", "depth", "params", "net_seed", "rel_error", "rel_error_se",
           "final_loss", "target_error", "width_star", "params_star", "parameterisation", "n", "d",
           "sigma_t", "data", "mem_fraction", "mem_fraction_se", "sample_logp_true", "train_steps", "seed",
           "preset", "device", "runtime_s", "point")


def grid(cfg: Config) -> list[dict]:
    """Duplicated sets (k distinct + m = f k copies) and, as controls, distinct sets of every size k and
    k + m (nested: the first points of one stream), so each duplicated set sits between W*(n - m) and W*(n);
    then one memorization point per data seed (all those sets, as one ensemble of trained diffusion models)."""
    pts = [{"kind": "duplicated" if d["m"] else "distinct", **d, "t": t, "seed": s}
           for t in cfg.times for s in cfg.data_seeds for d in data_sets(cfg)]
    if cfg.memorization_width:
        pts += [{"kind": "memorization", "seed": s} for s in cfg.data_seeds]
    return pts


def data_sets(cfg: Config) -> list[dict]:
    """The (n_distinct, m) pairs of the width experiment: distinct sets of every size, duplicated sets."""
    sizes = sorted({k * (1 + f) for k in cfg.n_distinct for f in (0,) + tuple(cfg.copies_factor)})
    return ([{"n_distinct": k, "m": 0} for k in sizes]
            + [{"n_distinct": k, "m": f * k} for k in cfg.n_distinct for f in cfg.copies_factor])


def memorization_rows(cfg: Config, seed: int, device: str) -> list[dict]:
    """Train one ensemble of DSM score nets (memsep's defaults, verify._gmm) on every data set of
    ``data_sets`` (seed's nested stream; duplicated sets copy their first n - m points) and return per
    set its memorization fraction (d1/d2 < 1/3 against the distinct training points) with its error."""
    sets = data_sets(cfg)
    members = [{"seed": seed, "n": d["n_distinct"] + d["m"], "copies": d["m"]} for d in sets]
    tc = ScoreTrainConfig(steps=cfg.memorization_steps, batch_size=256, lr=2e-3, t0=1e-3, T=10.0,
                     warmup=min(100, cfg.memorization_steps // 10 + 1))
    gd = GMMDefaults(separation=cfg.separation, trace=cfg.trace, n_generated=cfg.memorization_samples,
                     n_test=min(100, cfg.memorization_samples), sample_steps=40, loglik_steps=4,
                     index_times=(), index_samples=1)
    ckpt = Checkpoint.for_run(NAME, {"config": dataclasses.asdict(cfg), "seed": seed, "device": str(device)})
    rows = run_group(dim=cfg.dim, n_components=cfg.n_components, width=cfg.memorization_width, members=members,
                     train_cfg=tc, defaults=gd, device=device, checkpoint=ckpt)
    ckpt.clear()
    keep = ("params", "mem_fraction", "mem_fraction_se", "sample_logp_true", "final_loss", "train_steps")
    return [{"kind": "memorization", "data": "duplicated" if d["m"] else "distinct", "n_distinct": d["n_distinct"],
             "m": d["m"], "n": d["n_distinct"] + d["m"], "d": cfg.dim, "width": cfg.memorization_width,
             **{k: r[k] for k in keep}} for d, r in zip(sets, rows)]


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    if point["kind"] == "memorization":
        return memorization_rows(cfg, point["seed"], device)
    truth = width_vs_n.true_mixture(cfg, device)
    k, m, t, seed = point["n_distinct"], point["m"], point["t"], point["seed"]
    pool = width_vs_n.nested_training_set(truth, k, seed)
    data = with_copies(pool, m, seed) if point["kind"] == "duplicated" else pool
    n_unique = int(torch.unique(data, dim=0).shape[0])
    if n_unique != k:
        raise RuntimeError(f"expected {k} distinct points, found {n_unique}")
    key = zlib.crc32(repr((point["kind"], k, m, float(t), seed)).encode()) % 100_003
    rows = width_vs_n.fit_widths(theory.EmpiricalLaw(data), t, cfg, device, key)
    for r in rows:
        r.update({"n": k + m, "d": cfg.dim, "sigma_t": float(theory.sigma(t))})
    return rows


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    fits = table[table["kind"] != "memorization"]
    mem = table[table["kind"] == "memorization"]
    ws = fits.groupby(["kind", "t", "n_distinct", "m", "seed"], as_index=False)[["width_star", "n"]].first()
    times = sorted(ws["t"].unique())
    panels = len(times) + (not mem.empty)
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 4.3), squeeze=False)
    for ax, t in zip(axes[0], times):
        sub = ws[ws["t"] == t]
        _by_distinct(ax, sub, "width_star")
        for _, r in sub[sub["width_star"].isna()].iterrows():
            ax.plot(r["n_distinct"], max(cfg.widths), "x", color="r")
        ax.set_yscale("log", base=2)
        ax.set_ylabel(f"W* (rel. error <= {cfg.target_error:g}); x: not reached")
        ax.set_title(f"width needed for the empirical score, t = {t:g}, d = {cfg.dim}, depth {cfg.depth}")
    if not mem.empty:
        ax = axes[0][-1]
        m = mem.groupby(["n_distinct", "m"], as_index=False)[["mem_fraction", "mem_fraction_se"]].mean()
        _by_distinct(ax, m.assign(kind=np.where(m["m"] > 0, "duplicated", "distinct")), "mem_fraction",
                     "mem_fraction_se")
        ax.set_ylabel("memorization fraction (d1/d2 < 1/3)")
        ax.set_title(f"trained diffusion model (width {cfg.memorization_width}, "
                     f"{cfg.memorization_steps} steps, memsep defaults)")
    fig.suptitle("Duplicates: do n points with m copies behave like n - m distinct points (corollary) or like n?")
    fig.tight_layout()
    return fig


def _by_distinct(ax, sub, value: str, err: str | None = None) -> None:
    """``value`` against the number of distinct points: distinct sets as a line, duplicated sets (by copy
    factor m / (n - m)) as markers slightly offset."""
    dist = sub[sub["kind"] == "distinct"].sort_values("n_distinct")
    ax.errorbar(dist["n_distinct"], dist[value], yerr=None if err is None else dist[err], fmt="ks-", ms=7,
                label="n distinct points (no copies)")
    dup = sub[sub["kind"] == "duplicated"]
    for i, (f, grp) in enumerate(dup.assign(f=dup["m"] / dup["n_distinct"]).groupby("f")):
        grp = grp.sort_values("n_distinct")
        ax.errorbar(grp["n_distinct"] * (1 + 0.03 * (i + 1)), grp[value], yerr=None if err is None else grp[err],
                    fmt="o--", ms=5, label=f"n - m distinct + m = {f:g}(n - m) copies")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("number of distinct points")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)


# --------------------------------------------------------------------------------------------- claims
_BIG = math.log(1e12)   # log of a width standing for "above the grid"


def width_bracket(widths, errors, target: float) -> tuple[float, float]:
    """The grid widths either side of the target crossing: (last width above the target, first at or
    below it); (1, w_0) if the narrowest already reaches it; (w_max, inf) if none does (censored)."""
    widths, errors = np.asarray(widths, float), np.asarray(errors, float)
    order = np.argsort(widths)
    widths, errors = widths[order], errors[order]
    hit = np.nonzero(errors <= target)[0]
    if hit.size == 0:
        return float(widths[-1]), math.inf
    j = int(hit[0])
    return (1.0 if j == 0 else float(widths[j - 1])), float(widths[j])


def _log_range(lo: float, hi: float) -> tuple[float, float]:
    return math.log(lo), (math.log(hi) if math.isfinite(hi) else _BIG)


def closeness_range(dup, k, n) -> tuple[float, float]:
    """Over every W_dup, W_k, W_n in their brackets (log scale): the least and largest value of
    D = |log W_dup - log W_n| - |log W_dup - log W_k| (D > 0: the duplicated set is closer to its n - m
    distinct points). D is piecewise linear with kinks where two arguments meet, so its extremes over the box
    are at combinations of the box's ends and of the other brackets' ends clipped into each bracket."""
    boxes = [_log_range(*dup), _log_range(*k), _log_range(*n)]
    ends = sorted({e for b in boxes for e in b})
    cand = [sorted({min(max(e, b[0]), b[1]) for e in ends} | set(b)) for b in boxes]
    vals = [abs(u - w) - abs(u - v) for u in cand[0] for v in cand[1] for w in cand[2]]
    return min(vals), max(vals)


def judge_duplicate_width(table):
    """Rule: for every data set of n points with m exact copies, D = |log W*_dup - log W*(n distinct)| -
    |log W*_dup - log W*(n - m distinct)| > 0 (closer to its n - m distinct points) for every value of the
    three W* within their grid brackets (the widths either side of the target crossing; a target not reached
    within the grid is the bracket [largest width, inf)). Holds if the least D over the brackets is > 0 for
    every set, does not hold if the largest D is < 0 for some set, inconclusive otherwise; a set whose two
    controls' brackets overlap cannot discriminate and is not judged. (One training run per width: the
    brackets are the only interval.)"""
    t = table[table["error"].isna()] if "error" in table.columns else table
    t = t[t["kind"].isin(["distinct", "duplicated"])]
    stat = "D = log-distance of W*_dup to W*(n distinct) minus to W*(n - m distinct), least over grid brackets"
    if t.empty:
        return inconclusive(stat, "no width rows")
    keys = ["kind", "n_distinct", "m", "t", "seed"]
    best = t.groupby(keys + ["width"], as_index=False)[["rel_error", "target_error"]].min()
    brackets, points = {}, {}
    for key, g in best.groupby(keys):
        brackets[key] = width_bracket(g["width"], g["rel_error"], float(g["target_error"].iloc[0]))
    for key, g in t.groupby(keys):
        points[key] = float(g["width_star"].iloc[0])
    rng = (f"n_distinct {int(t['n_distinct'].min())}-{int(t['n_distinct'].max())}, m/(n - m) in "
           f"{sorted({int(r.m // r.n_distinct) for r in t[t['m'] > 0].itertuples()})}, t = "
           f"{sorted(float(v) for v in t['t'].unique())}, widths {int(t['width'].min())}-{int(t['width'].max())}, "
           f"{t['seed'].nunique()} data seed(s) x {t['net_seed'].nunique()} net seed(s)")
    confounds = ["one training run per width: no sampling interval, only the grid brackets"]
    censored = [k for k, b in brackets.items() if math.isinf(b[1])]
    if censored:
        confounds.append("censored (target not reached within the grid; bracket [max width, inf)): "
                         + ", ".join(f"{k[0]} {k[1]}+{k[2]}" for k in censored))
    parts, verdicts, worst = [], [], None
    for key in [k for k in brackets if k[0] == "duplicated"]:
        _, kd, m, tt, seed = key
        k_key, n_key = ("distinct", kd, 0, tt, seed), ("distinct", kd + m, 0, tt, seed)
        if k_key not in brackets or n_key not in brackets:
            continue
        bk, bn, bd = brackets[k_key], brackets[n_key], brackets[key]
        text = (f"{kd}+{m} copies: W* {stats.fmt(points[key])} in {_fmt_bracket(bd)} vs {kd} distinct "
                f"{stats.fmt(points[k_key])} in {_fmt_bracket(bk)}, {kd + m} distinct {stats.fmt(points[n_key])} in "
                f"{_fmt_bracket(bn)}")
        if not (bk[1] < bn[0] or bn[1] < bk[0]):
            parts.append(text + " (control brackets overlap: not judged)")
            confounds.append(f"{kd}+{m} copies not judged: its two controls' brackets overlap")
            continue
        lo, hi = closeness_range(bd, bk, bn)
        est = _point_closeness(points[key], points[k_key], points[n_key])
        v = decide_above(lo, hi, 0.0)
        verdicts.append(v)
        parts.append(text + f": D {stats.fmt_interval(est, lo, hi, 2)}")
        if worst is None or lo < worst[1]:
            worst = (est, lo, hi)
    if not verdicts:
        return inconclusive(stat, "no duplicated set with two distinguishable controls; " + "; ".join(parts),
                            confounds=confounds, range_tested=rng)
    return finding(stat, worst, conjunction(verdicts), "; ".join(parts), interval="grid_bracket",
                   confounds=confounds, range_tested=rng)


def _fmt_bracket(b) -> str:
    return f"[{stats.fmt(b[0])}, {stats.fmt(b[1])}]"


def _point_closeness(dup: float, k: float, n: float) -> float:
    """D at the interpolated W* (NaN: above the grid, read as inf)."""
    u, v, w = (math.log(x) if math.isfinite(x) else _BIG for x in (dup, k, n))
    return abs(u - w) - abs(u - v)


def judge_duplicate_memorization(table, *, quality_tolerance=0.25):
    """Rule: for every data set of n points with m exact copies, the position of its excess memorization
    between its controls, P = (E_dup - E_n) / (E_k - E_n) (E: memorized fraction minus its null rate; k = n - m
    distinct points, n = n distinct points; P = 1: like its distinct points, P = 0: like n distinct), has its
    bootstrap interval (over seeds and samples) above 1/2; does not hold if some set's interval lies at or
    below 1/2. A set whose controls' excess difference has an interval containing 0 cannot discriminate and is
    not judged; models failing the fit check are not counted; a table without the null/anchor/quality columns
    cannot decide."""
    rows, confounds = _memorization.summary_rows(table)
    mem = rows[rows["kind"] == "memorization"] if "kind" in rows.columns else rows.iloc[:0]
    stat = "position P of a duplicated set's excess memorization between its controls (1: like n - m distinct)"
    if mem.empty:
        return inconclusive(stat, "no memorization rows", confounds=confounds)
    rng = _memorization.range_of(mem, cols=("n_distinct", "m", "width", "d"))
    missing = _memorization.missing_baselines(mem)
    if missing:
        return inconclusive(stat, _memorization.describe_raw(mem.assign(set=mem["n_distinct"].astype(str) + "+"
                                                                         + mem["m"].astype(str)), "set"),
                            confounds=confounds + [_memorization.baseline_confound(missing)], range_tested=rng)
    ok, fit_confounds = _memorization.fit_check(mem, quality_tolerance)
    confounds += fit_confounds
    mem = mem[ok]
    counts = {key: _memorization._counts(g) for key, g in mem.groupby(["n_distinct", "m"])}
    parts, verdicts, worst = [], [], None
    for (kd, m) in [key for key in counts if key[1] > 0]:
        k_key, n_key = (kd, 0), (kd + m, 0)
        if k_key not in counts or n_key not in counts:
            continue
        groups = {"dup": counts[(kd, m)], "k": counts[k_key], "n": counts[n_key]}
        exc = lambda p, g: (p[g][..., 0] - p[g][..., 1]).mean(-1)
        ctrl = stats.bootstrap_counts(groups, lambda p: exc(p, "k") - exc(p, "n"))
        label = f"{kd}+{m} copies"
        if ctrl.lo <= 0:
            parts.append(f"{label}: controls' excess difference {stats.fmt_interval(*ctrl[:3], 2)} (not judged)")
            confounds.append(f"{label} not judged: its controls' excess memorization cannot be told apart")
            continue
        pos = stats.bootstrap_counts(groups, lambda p: (exc(p, "dup") - exc(p, "n")) / (exc(p, "k") - exc(p, "n")))
        verdicts.append(decide_above(pos.lo, pos.hi, 0.5))
        parts.append(f"{label}: P {stats.fmt_interval(*pos[:3], 2)}")
        if worst is None or pos.lo < worst.lo:
            worst = pos
    if not verdicts:
        return inconclusive(stat, "no duplicated set with distinguishable controls; " + "; ".join(parts),
                            confounds=confounds, range_tested=rng)
    return finding(stat, worst, conjunction(verdicts), "; ".join(parts), confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("duplicate_width", "m exact duplicates among n samples make the empirical score as easy to fit as that of "
          "the n - m distinct points", "Thm 5.1, corollary on duplicates", "n samples of which m are exact copies",
          "theory.training.regression.fit_score", judge_duplicate_width),
    Claim("duplicate_memorization", "Duplicates shrink the effective n: a model trained on n points with m copies "
          "memorizes like one trained on the n - m distinct points", "Sec. 5, after Thm 5.1",
          "n samples of which m are exact copies", "theory.evaluation.memorization.calibrated_memorization",
          judge_duplicate_memorization, (_memorization.QUALITY_TOLERANCE,)),
]
