"""Width x weight-decay grid at two n on a K = 8 Gaussian mixture in d = 8 (Sec. 6): each width trains one
ensemble over (n, weight decay, seed), with per-member AdamW decay. Judged on excess memorization AND sample
quality: a decay whose samples fail the fit check never counts as curbing memorization, and "strong decay
hurts" is read on sample quality, not on the held-out ODE log-likelihood (which a memorizing net collapses
and a wrecked broad net flatters; it is reported beside, median and collapse flag)."""

from __future__ import annotations

import math

import numpy as np

from . import _gmm, _memorization, stats
from ._gmm import Config, grid, run_point  # noqa: F401
from .verdicts import Claim, all_of, conjunction, decide_above, finding, inconclusive

NAME = "weight_decay_grid"
CLAIM = "Moderate width + weight decay curbs memorization at n = 3.2K; strong decay hurts at n = 10K (Sec. 6)"
ORDER = 54
PRESETS = {
    "smoke": Config(dims=(2,), n_components=8, widths=(16, 32), ns=(16, 32), weight_decays=(0.0, 0.1), seeds=(0,),
                    train=_gmm.SMOKE_TRAIN, protocol=_gmm.SMOKE_PROTOCOL),
    # width 128 memorizes ~half its samples at n = 64 without decay and ~5% at n = 256 (the roles of the
    # paper's 3.2K and 10K at this scale). AdamW's decay is decoupled (p <- p (1 - lr wd) per step, lr 5e-3
    # with cosine decay: a total log-shrink of about 7.9 wd over the run), so the values that matter are O(1).
    "cpu": Config(dims=(8,), n_components=8, widths=(64, 128), ns=(64, 256),
                  weight_decays=(0.0, 0.1, 0.3, 0.5, 1.0, 3.0), seeds=(0, 1, 2), train=_gmm.CPU_TRAIN,
                  protocol=_gmm.CPU_PROTOCOL),
    "paper": Config(dims=(16,), n_components=8, widths=(128, 256, 512, 1024), ns=(3200, 10_000),
                    weight_decays=(0.0, 0.1, 0.3, 1.0, 3.0), seeds=(0, 1, 2),
                    train=_gmm.PAPER_TRAIN, protocol=_gmm.PAPER_PROTOCOL),
}
ESTIMATED_RUNTIME = {"smoke": 6, "cpu": 600, "paper": 8 * 3600}
COLUMNS = _gmm.COLUMNS


def _cell_text(iv) -> str:
    """'0.33\n[0.29, 0.37]': two decimals for O(1) values, three significant digits beyond."""
    f = (lambda v: f"{v:.2f}") if max(abs(iv.estimate), abs(iv.lo), abs(iv.hi)) < 10 else (lambda v: stats.fmt(v, 3))
    return f"{f(iv.estimate)}\n[{f(iv.lo)}, {f(iv.hi)}]"


def plot(table, cfg):
    """Heat maps (rows: width, columns: decay), one column of panels per n, colours shared across n: excess
    memorization (mean over seeds, 95% bootstrap over seeds and samples in each cell), sample quality per
    dimension (mean over seeds, 95% seed-normal interval; hatched: fails the fit check) and the held-out
    log-likelihood median minus the true one per dimension (median over seeds; 'c': collapsed)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize, SymLogNorm

    summ = _gmm.summaries(table)
    ns = sorted(summ["n"].unique())
    widths, decays = sorted(summ["width"].unique()), sorted(summ["weight_decay"].unique())
    tol = _memorization.QUALITY_TOLERANCE.default
    fig, axes = plt.subplots(3, len(ns), figsize=(6.2 * len(ns), 13), squeeze=False, layout="constrained")
    cells = {}
    for n in ns:
        for w in widths:
            for wd in decays:
                g = summ[(summ["n"] == n) & (summ["width"] == w) & (summ["weight_decay"] == wd)]
                if g.empty:
                    continue
                q = stats.seed_mean(g.assign(q=_gmm.per_dim(g, "quality_gap"), q_se=g["quality_gap_se"] / g["d"]),
                                    "n", "q", "q_se").iloc[0]
                ll = ((g["test_loglik_median"] - g["test_loglik_true_median"]) / g["d"]).astype(float)
                cells[n, w, wd] = {"excess": _memorization.mean_excess(g), "quality": stats.seed_interval(q["mean"], q["se"]),
                                   "fit": bool(_gmm.fit_ok(g, tol).all()), "ll": float(np.nanmedian(ll.replace(-np.inf, np.nan)))
                                   if np.isfinite(ll).any() else -np.inf,
                                   "collapsed": bool(g["test_loglik_collapsed"].astype(bool).any())}
    norms = {"excess": Normalize(-0.05, max(0.3, max(c["excess"].estimate for c in cells.values()))),
             "quality": SymLogNorm(linthresh=0.25, vmin=-100, vmax=0.25),
             "ll": SymLogNorm(linthresh=1.0, vmin=-1e6, vmax=1.0)}
    titles = {"excess": "excess memorization (fraction - null)",
              "quality": f"sample quality per dim (fit check: >= -{tol:g})",
              "ll": "held-out log-lik. median - true, per dim"}
    cmaps = {"excess": "magma", "quality": "viridis", "ll": "cividis"}
    for j, n in enumerate(ns):
        for i, key in enumerate(("excess", "quality", "ll")):
            ax = axes[i, j]
            grid_v = np.full((len(widths), len(decays)), np.nan)
            for a, w in enumerate(widths):
                for b, wd in enumerate(decays):
                    c = cells.get((n, w, wd))
                    if c is None:
                        continue
                    v = c[key].estimate if key in ("excess", "quality") else c["ll"]
                    grid_v[a, b] = max(v, -1e6) if key == "ll" else max(v, -100.0)
                    if key == "ll":
                        text = ("non-finite" if not math.isfinite(c["ll"]) else stats.fmt(c["ll"], 2)) + (
                            "\ncollapsed" if c["collapsed"] else "")
                    else:
                        text = _cell_text(c[key])
                    ax.text(b, a, text, ha="center", va="center", fontsize=7,
                            color="w" if norms[key](grid_v[a, b]) < 0.6 else "k")
                    if key == "quality" and not c["fit"]:
                        ax.add_patch(plt.Rectangle((b - 0.5, a - 0.5), 1, 1, fill=False, hatch="//",
                                                   edgecolor="r", lw=0))
            im = ax.imshow(grid_v, origin="lower", aspect="auto", cmap=cmaps[key], norm=norms[key])
            ax.set_xticks(range(len(decays)), [f"{v:g}" for v in decays])
            ax.set_yticks(range(len(widths)), [str(int(v)) for v in widths])
            ax.set_xlabel("AdamW weight decay")
            ax.set_ylabel("width")
            ax.set_title(f"{titles[key]}, n = {int(n)}", fontsize=10)
            if j == len(ns) - 1:
                fig.colorbar(im, ax=axes[i, :].tolist())
    fig.suptitle(f"Width x weight decay (d = {int(summ['d'].iloc[0])}, K = {cfg.n_components}; memsep's nets and "
                 f"training, not the paper's)\nCells: mean over {summ['seed'].nunique()} seed(s) [95% interval] "
                 "(excess: bootstrap over seeds and samples; quality: seed-normal; log-likelihood: median over seeds)"
                 "\nred hatching: some seed fails the fit check (such a cell never counts as curbing memorization)",
                 fontsize=10)
    return fig


# --------------------------------------------------------------------------------------------- claims
def _curbs(rows, n, *, min_effect, quality_tolerance):
    """Part 1 at the smaller n: the best reduction of excess memorization by a decay > 0 that keeps the fit."""
    stat = f"largest reduction of excess memorization by weight decay at n = {int(n)} (decayed net passes the fit check)"
    ok, confounds = _memorization.fit_check(rows, quality_tolerance)
    cells = []
    for w, g in rows.groupby("width"):
        base = g[g["weight_decay"] == 0]
        if base.empty or not ok[base.index].all():
            confounds.append(f"n={int(n)} width {int(w)}: the undecayed net fails the fit check or is missing (not judged)")
            continue
        for wd, h in g[g["weight_decay"] > 0].groupby("weight_decay"):
            if not ok[h.index].all():
                continue  # a decay that wrecks the samples never counts as curbing memorization
            cells.append((w, wd, base, h))
    if not cells:
        return inconclusive(stat, f"no decayed net at n = {int(n)} passes the fit check", confounds=confounds)
    level = stats.bonferroni_level(len(cells))
    results = []
    for w, wd, base, h in cells:
        iv = _memorization.excess_difference(base, h, level=level)
        results.append((w, wd, iv))
    w, wd, best = max(results, key=lambda r: r[2].lo)
    text = f"n={int(n)}: " + ", ".join(f"width {int(w_)} decay {wd_:g}: {stats.fmt_interval(*iv[:3], 2)}"
                                       for w_, wd_, iv in results)
    iv = stats.Interval(best.estimate, best.lo, best.hi, best.level, "bootstrap")
    verdict = decide_above(max(r[2].lo for r in results), max(r[2].hi for r in results), min_effect)
    return finding(stat + f" (best: width {int(w)}, decay {wd:g}; each at the Bonferroni level 1 - 0.05/{len(cells)})",
                   iv, verdict, text, confounds=confounds)


def _hurts(rows, n, *, quality_tolerance):
    """Part 2 at the larger n: the strongest decay lowers sample quality (quality gap per dimension, mean over
    seeds) below the undecayed net's by more than the fit check's tolerance, at every width."""
    decays = sorted(rows["weight_decay"].unique())
    stat = (f"quality drop per dim from decay 0 to the strongest ({decays[-1]:g}) at n = {int(n)}, least over widths")
    widths = sorted(rows["width"].unique())
    level = stats.bonferroni_level(len(widths))
    parts, verdicts, ivs = [], [], []
    q = rows.assign(q=_gmm.per_dim(rows, "quality_gap"), q_se=rows["quality_gap_se"] / rows["d"])
    for w in widths:
        g = q[q["width"] == w]
        a = stats.seed_mean(g[g["weight_decay"] == 0], "width", "q", "q_se")
        b = stats.seed_mean(g[g["weight_decay"] == decays[-1]], "width", "q", "q_se")
        if a.empty or b.empty:
            continue
        diff = float(a["mean"][0] - b["mean"][0])
        se = float(math.hypot(a["se"][0], b["se"][0]))
        if math.isfinite(diff):
            iv = stats.normal_interval(diff, se, level, method="bonferroni_normal")
        else:   # a non-finite sample made a mean log-density -inf: the drop is infinite (or undefined)
            iv = stats.Interval(diff, diff, diff, level, "bonferroni_normal")
        ivs.append(iv)
        verdicts.append(decide_above(iv.lo, iv.hi, quality_tolerance))
        parts.append(f"width {int(w)}: {stats.fmt_interval(*iv[:3], 3)}")
    if not ivs:
        return inconclusive(stat, f"no width with both decay 0 and {decays[-1]:g}")
    worst = min(ivs, key=lambda iv: iv.lo)
    return finding(stat, worst, conjunction(verdicts), f"n={int(n)}, quality/d(decay 0) - quality/d(decay "
                   f"{decays[-1]:g}) (nats per dim; hurts if above {quality_tolerance:g}): " + ", ".join(parts))


def judge_decay(table, *, min_effect=0.05, quality_tolerance=0.25):
    """Rule: two parts, both required. (1) At the smaller n some width has a weight decay > 0 whose net passes
    the fit check and lowers excess memorization (memorized fraction minus the null rate) below the undecayed
    net's by more than min_effect: the reduction's bootstrap interval over seeds and samples, at the Bonferroni
    level over all (width, decay) cells tried, lies above min_effect for the best cell (does not hold if every
    cell's lies at or below it); a decay whose samples fail the fit check never counts. (2) At the larger n
    the strongest decay lowers sample quality (mean true log-density of the samples minus that of exact draws,
    per dimension, mean over seeds) below the undecayed net's by more than quality_tolerance at every width
    (seed-normal interval, Bonferroni over widths, above quality_tolerance; below it: does not hold). The
    held-out ODE log-likelihood is not used (it collapses for memorizing nets and rewards broad wrecked ones).
    A table without the null/anchor/quality columns cannot decide."""
    rows, confounds = _memorization.summary_rows(table)
    ns = sorted(rows["n"].unique())
    rng = _memorization.range_of(rows)
    stat = "largest reduction of excess memorization by weight decay at the smaller n"
    if len(ns) < 2 or 0 not in set(rows["weight_decay"]) or rows["weight_decay"].nunique() < 2:
        return inconclusive(stat, "need two n and weight decays including 0", confounds=confounds, range_tested=rng)
    missing = _memorization.missing_baselines(rows)
    hurts = (inconclusive("quality drop at the larger n", "no quality column",
                          confounds=[_memorization.baseline_confound(missing)]) if "quality_gap" in missing
             else _hurts(rows[rows["n"] == ns[-1]], ns[-1], quality_tolerance=quality_tolerance))
    if missing:
        curbs = inconclusive(stat, _memorization.describe_raw(rows[rows["n"] == ns[0]].assign(
            cell=lambda f: "w" + f["width"].astype(int).astype(str) + "/wd" + f["weight_decay"].map("{:g}".format)),
            "cell"), confounds=[_memorization.baseline_confound(missing)])
    else:
        curbs = _curbs(rows[rows["n"] == ns[0]], ns[0], min_effect=min_effect, quality_tolerance=quality_tolerance)
    return all_of([curbs, hurts], confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("weight_decay", "Moderate width with weight decay curbs memorization at the smaller n; strong decay hurts "
          "at the larger n", "Sec. 6, Gaussian-mixture experiments", "n = 3.2K (curbs) and n = 10K (hurts)",
          "theory.evaluation.memorization.calibrated_memorization", judge_decay,
          (_memorization.MIN_EFFECT, _memorization.QUALITY_TOLERANCE)),
]
