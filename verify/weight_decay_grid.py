"""Width x weight-decay heat maps of the memorization fraction and held-out log-likelihood at two n
(Sec. 6): each width trains one ensemble over (n, weight decay, seed), with per-member AdamW decay."""

from __future__ import annotations

import math

import numpy as np

from . import _memorization, stats
from ._gmm import Config, grid, run_point  # noqa: F401
from .verdicts import Claim, all_of, conjunction, decide_above, finding, inconclusive

NAME = "weight_decay_grid"
CLAIM = "Moderate width + weight decay curbs memorization at n = 3.2K; strong decay hurts at n = 10K (Sec. 6)"
ORDER = 54
PRESETS = {
    "smoke": Config(dims=(2,), n_components=8, widths=(16, 32), ns=(16, 32), weight_decays=(0.0, 0.1),
                    seeds=(0,), steps=30, n_generated=30, n_test=10, sample_steps=4, loglik_steps=2,
                    index_samples=20),
    # n = 16 memorizes strongly without decay at width 128 after 2000 steps; n = 64 much less (the roles of
    # the paper's 3.2K and 10K at this scale). AdamW's decay is decoupled (multiplied by the learning rate,
    # 2e-3), so the values that matter here are O(1).
    "cpu": Config(dims=(2,), n_components=8, widths=(32, 128), ns=(16, 64), weight_decays=(0.0, 1.0, 3.0, 10.0),
                  seeds=(0, 1), steps=2000, t0=1e-3, n_generated=300, n_test=100, loglik_steps=10),
    "paper": Config(dims=(16,), n_components=8, widths=(128, 256, 512, 1024), ns=(3200, 10_000),
                    weight_decays=(0.0, 0.1, 1.0, 3.0, 10.0), seeds=(0, 1), steps=200_000, t0=1e-4,
                    n_generated=10_000, n_test=2000, sample_steps=200, loglik_steps=100, index_samples=4000),
}
ESTIMATED_RUNTIME = {"smoke": 6, "cpu": 60, "paper": 8 * 3600}
COLUMNS = _memorization.SWEEP_COLUMNS


def plot(table, cfg):
    import matplotlib.pyplot as plt
    from matplotlib.colors import SymLogNorm

    ns = sorted(table["n"].unique())
    fig, axes = plt.subplots(2, len(ns), figsize=(5 * len(ns), 8), squeeze=False)
    for j, n in enumerate(ns):
        sub = table[table["n"] == n]
        for i, (col, label) in enumerate([("mem_fraction", "memorization fraction"),
                                          ("test_loglik", "held-out log-likelihood")]):
            piv = sub.pivot_table(index="width", columns="weight_decay", values=col, aggfunc="mean")
            ax = axes[i, j]
            # symmetric-log colours for the log-likelihood: a memorizing net's held-out value can be -1e4
            norm = SymLogNorm(linthresh=10.0) if col == "test_loglik" else None
            im = ax.imshow(piv.values, origin="lower", aspect="auto", cmap="viridis", norm=norm)
            ax.set_xticks(range(piv.shape[1]), [f"{v:g}" for v in piv.columns])
            ax.set_yticks(range(piv.shape[0]), [str(v) for v in piv.index])
            for (a, b), v in np.ndenumerate(piv.values):
                ax.text(b, a, f"{v:.2f}", ha="center", va="center", color="w", fontsize=8)
            ax.set_xlabel("AdamW weight decay")
            ax.set_ylabel("width")
            ax.set_title(f"{label}, n = {n}")
            fig.colorbar(im, ax=ax)
    fig.suptitle("Width x weight decay (memsep's architecture and training, not the paper's)")
    fig.tight_layout()
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


def _hurts(rows, n):
    """Part 2 at the larger n: the strongest decay lowers the held-out log-likelihood at every width."""
    decays = sorted(rows["weight_decay"].unique())
    stat = f"held-out log-likelihood without decay minus with the strongest ({decays[-1]:g}) at n = {int(n)}, least over widths"
    widths = sorted(rows["width"].unique())
    level = stats.bonferroni_level(len(widths))
    parts, verdicts, ivs = [], [], []
    for w in widths:
        g = rows[rows["width"] == w]
        a = stats.seed_mean(g[g["weight_decay"] == 0], "width", "test_loglik", "test_loglik_se")
        b = stats.seed_mean(g[g["weight_decay"] == decays[-1]], "width", "test_loglik", "test_loglik_se")
        if a.empty or b.empty:
            continue
        iv = stats.normal_interval(float(a["mean"][0] - b["mean"][0]), float(math.hypot(a["se"][0], b["se"][0])), level,
                                   method="bonferroni_normal")
        ivs.append(iv)
        verdicts.append(decide_above(iv.lo, iv.hi, 0.0))
        parts.append(f"width {int(w)}: {stats.fmt_interval(*iv[:3], 3)}")
    if not ivs:
        return inconclusive(stat, f"no width with both decay 0 and {decays[-1]:g}")
    worst = min(ivs, key=lambda iv: iv.lo)
    return finding(stat, worst, conjunction(verdicts), f"n={int(n)}, log-lik(decay 0) - log-lik(decay {decays[-1]:g}): "
                   + ", ".join(parts))


def judge_decay(table, *, min_effect=0.05, quality_tolerance=0.5):
    """Rule: two parts, both required. (1) At the smaller n some width has a weight decay > 0 whose net passes
    the fit check and lowers excess memorization (memorized fraction minus the null rate) below the undecayed
    net's by more than min_effect: the reduction's bootstrap interval over seeds and samples, at the Bonferroni
    level over all (width, decay) cells tried, lies above min_effect for the best cell (does not hold if every
    cell's lies at or below it); a decay whose samples fail the fit check never counts. (2) At the larger n
    the strongest decay lowers the held-out log-likelihood at every width (normal interval, Bonferroni over
    widths, above 0). A table without the null/anchor/quality columns cannot decide part (1)."""
    rows, confounds = _memorization.summary_rows(table)
    ns = sorted(rows["n"].unique())
    rng = _memorization.range_of(rows)
    stat = "largest reduction of excess memorization by weight decay at the smaller n"
    if len(ns) < 2 or 0 not in set(rows["weight_decay"]) or rows["weight_decay"].nunique() < 2:
        return inconclusive(stat, "need two n and weight decays including 0", confounds=confounds, range_tested=rng)
    missing = _memorization.missing_baselines(rows)
    hurts = _hurts(rows[rows["n"] == ns[-1]], ns[-1])
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
