"""Underfit -> generalize -> memorize in 2-D (K = 4), the paper's picture (Sec. 6): generated samples over the
training points and the true components, one panel per network size, beside the memorization fraction read
against its null (at d = 2 about a tenth of exact true-law draws pass the d1/d2 < 1/3 test, so only the
excess over that null counts) and anchor, and the held-out log-likelihood. The table is long-format: one
'summary' row per net (every column of ``verify._gmm``), its 'index' rows, plus, for the first seed, one row per
generated sample (kind = 'generated') and per training point (kind = 'train') with coordinates x0, x1, so the figure is drawn
from the table alone (memsep's substitute for a companion CSV: it inherits the runner's atomic writes and
resume). The mixture is memsep's well-separated 2-D picture (Delta_min = 2 sqrt(2), per-coordinate std 1/2),
not the d >= 8 sweeps' one."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import _gmm, _memorization, stats
from ._gmm import Config, grid  # noqa: F401
from .verdicts import Claim

NAME = "phase_2d"
CLAIM = "2-D, K = 4: samples go from underfit to generalizing to memorized as the score net grows (Sec. 6)"
ORDER = 50
PICTURE = dataclasses.replace(_gmm.CPU_PROTOCOL, separation=2.0, trace=0.5)
PRESETS = {
    "smoke": Config(dims=(2,), n_components=4, widths=(8, 32), ns=(32,), seeds=(0,), train=_gmm.SMOKE_TRAIN,
                    protocol=dataclasses.replace(_gmm.SMOKE_PROTOCOL, separation=2.0, trace=0.5)),
    "cpu": Config(dims=(2,), n_components=4, widths=(4, 16, 64, 256), ns=(32,), seeds=(0, 1, 2),
                  train=dataclasses.replace(_gmm.CPU_TRAIN, steps=2000), protocol=PICTURE),
    "paper": Config(dims=(2,), n_components=4, widths=(4, 16, 64, 256, 1024), ns=(200,), seeds=(0, 1, 2),
                    train=dataclasses.replace(_gmm.CPU_TRAIN, steps=100_000, batch_size=256, lr=2e-3, t0=1e-5),
                    protocol=dataclasses.replace(PICTURE, t0=1e-4, n_generated=2000, n_anchor=1000, n_test=1000,
                                                 sample_steps=200, loglik_steps=100, index_samples=2000)),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 90, "paper": 3600}
COLUMNS = _gmm.COLUMNS + ("x0", "x1")


def judge_phase(table, *, min_effect=0.05, quality_tolerance=0.25):
    """Rule: underfit -> generalize -> memorize, two parts both required: (1) excess memorization over the
    null rate of true-law draws at the largest network minus at the smallest one that passes the fit check,
    bootstrap interval over seeds and samples above min_effect (does not hold at or below it); (2) the
    held-out log-likelihood of the best intermediate network exceeds that of both ends, each difference's
    normal interval at the Bonferroni level 1 - 0.05/2 above 0. A table without the null/anchor/quality
    columns cannot decide part (1)."""
    return _memorization.judge_phases(table, min_effect=min_effect, quality_tolerance=quality_tolerance)


CLAIMS = [
    Claim("phases_2d", "In 2-D (K = 4), growing the score network moves its samples from underfit to generalizing "
          "to memorized", "Sec. 6, Gaussian-mixture experiments", "d = 2, K = 4, network sizes from underfit to "
          "memorizing", "theory.evaluation.memorization.calibrated_memorization", judge_phase,
          (_memorization.MIN_EFFECT, _memorization.QUALITY_TOLERANCE)),
]


def run_point(point, cfg, device):
    out = []
    for r in _gmm.run_members(point, _gmm.members_of(cfg), cfg, device, keep_samples=True):
        if r["kind"] == "summary":
            samples, train = r.pop("samples"), r.pop("train")
            out.append(r)
            if r["seed"] != min(cfg.seeds):
                continue   # the picture shows the first seed's samples only
            for kind, pts in (("generated", samples), ("train", train)):
                out += [{"kind": kind, "n": r["n"], "seed": r["seed"], "width": r["width"], "x0": float(p[0]),
                         "x1": float(p[1])} for p in pts.cpu()]
        else:
            out.append(r)
    return out


def _ellipses(ax, truth, colour="k"):
    """The true components' 2-sigma ellipses (95% of a 2-D Gaussian lies inside 2.45 sigma; 2 sigma: 86%)."""
    from matplotlib.patches import Ellipse

    for k in range(truth.n_components):
        vals, vecs = truth.eigenvalues[k].cpu().numpy(), truth.eigenvectors[k].cpu().numpy()
        angle = math.degrees(math.atan2(vecs[1, -1], vecs[0, -1]))
        ax.add_patch(Ellipse(truth.means[k].cpu().numpy(), 4 * math.sqrt(vals[-1]), 4 * math.sqrt(vals[0]),
                             angle=angle, fill=False, color=colour, lw=1.2, ls="--"))


def plot(table, cfg):
    """One panel per width (seed 0's samples over its training points and the true components' 2-sigma
    ellipses, fixed limits from the true law: samples outside are drawn on the frame as red triangles), then
    memorization with its null and anchor, and the held-out log-likelihood against size."""
    import matplotlib.pyplot as plt

    summ = _gmm.summaries(table).sort_values("params")
    truth = _gmm.mixture(2, cfg.n_components, cfg.protocol)
    widths = sorted(summ["width"].unique())
    seed0 = min(summ["seed"].unique())
    mu = truth.means.cpu().numpy()
    half = float(np.abs(mu).max() + 3.5 * math.sqrt(float(truth.eigenvalues.max())))
    lim = (-half, half)
    fig, axes = plt.subplots(2, max(len(widths), 2), figsize=(4.2 * max(len(widths), 2), 8.6), squeeze=False)
    handles = {}
    for ax, w in zip(axes[0], widths):
        r = summ[(summ["width"] == w) & (summ["seed"] == seed0)].iloc[0]
        sel = (table["width"] == w) & (table["seed"] == seed0)
        g, tr = table[sel & (table["kind"] == "generated")], table[sel & (table["kind"] == "train")]
        gx, gy = g["x0"].to_numpy(float), g["x1"].to_numpy(float)
        out = ~(np.isfinite(gx) & np.isfinite(gy)) | (np.abs(gx) > half) | (np.abs(gy) > half)
        h = ax.scatter(gx[~out], gy[~out], s=4, alpha=0.5, color="C0")
        handles.setdefault("generated samples (seed 0)", h)
        if out.any():
            h = ax.scatter(np.clip(np.nan_to_num(gx[out]), *lim), np.clip(np.nan_to_num(gy[out]), *lim), s=30,
                           marker="^", color="r", clip_on=False, zorder=5)
            handles.setdefault("samples outside the frame (drawn on its edge)", h)
        h = ax.scatter(tr["x0"], tr["x1"], s=22, c="k", marker="x")
        handles.setdefault("training points", h)
        _ellipses(ax, truth)
        handles.setdefault("true components (2-sigma ellipses)", plt.Line2D([], [], color="k", ls="--"))
        ok = _gmm.fit_ok(summ[summ["width"] == w])
        fit = f"fit check: {int(ok.sum())} of {len(ok)} seeds pass"
        ax.set_title(f"width {int(w)}, {int(r['params'])} params ({fit})\nseed 0: memorized {r['mem_fraction']:.2f} "
                     f"[{r['mem_fraction_lo']:.2f}, {r['mem_fraction_hi']:.2f}], null {r['mem_null']:.2f}"
                     + (f", {int(out.sum())} outside" if out.any() else ""), fontsize=8)
        ax.set_xlim(lim), ax.set_ylim(lim)
        ax.set_aspect("equal")
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    for ax in axes[0][len(widths):]:
        ax.axis("off")
    # memorization against size with its baselines
    ax = axes[1][0]
    ps = np.array(sorted(summ["params"].unique()), float)
    for col, n_col, colour, label, marker in (
            ("mem_count", "n_generated", "C0", "memorization fraction (mean over seeds)", "o"),
            ("null_count", "n_null", "0.4", "null: exact true-law draws (reference)", "s"),
            ("anchor_count", "n_anchor", "C3", "anchor: exact empirical-score sampler (reference)", "^")):
        ivs = [_memorization.mean_rate(summ[summ["params"] == p], col, n_col) for p in ps]
        est = np.array([iv.estimate for iv in ivs])
        h = ax.errorbar(ps, est, yerr=[est - [iv.lo for iv in ivs], [iv.hi for iv in ivs] - est], fmt=marker + "-",
                        color=colour, capsize=3)
        handles.setdefault(label, h)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("parameters per net")
    ax.set_ylabel("fraction memorized ($d_1/d_2 < 1/3$)")
    ax.set_title("memorization, null and anchor\n(95% bootstrap over seeds and samples)", fontsize=9)
    # held-out log-likelihood (median over test points, per seed) against size
    ax = axes[1][1]
    ll = summ["test_loglik_median"].astype(float).to_numpy()
    llc, bad = _gmm._clip_for_plot(ll, float(np.nanmin(summ["test_loglik_true_median"])) - 50)
    h = ax.plot(summ["params"][~bad], llc[~bad], "o", color="C0")[0]
    handles.setdefault("held-out log-likelihood (PF-ODE), median over test points, one dot per seed", h)
    if bad.any():
        h = ax.plot(summ["params"][bad], llc[bad], "v", color="r")[0]
        handles.setdefault("held-out log-likelihood below the axis floor or non-finite (drawn at the floor)", h)
    m = stats.seed_mean(summ.assign(llm=np.where(bad, np.nan, ll)), "params", "llm")
    ax.plot(m["params"], m["mean"], "-", color="C0", alpha=0.6)
    h = ax.axhline(float(summ["test_loglik_true_median"].iloc[0]), color="k", ls="--")
    handles.setdefault("true law's log-likelihood of the same points (median)", h)
    ax.set_xscale("log")
    ax.set_xlabel("parameters per net")
    ax.set_ylabel(r"median $\log p_{t_0}$ of held-out points")
    ax.set_title("held-out log-likelihood", fontsize=9)
    # sample quality
    ax = axes[1][2] if len(axes[1]) > 2 else None
    if ax is not None:
        q = _gmm.per_dim(summ, "quality_gap").to_numpy(float)
        qc, qbad = _gmm._clip_for_plot(q, -100.0)
        h = ax.plot(summ["params"], qc, "o", color="C4")[0]
        handles.setdefault("sample quality: mean log p of samples - of true draws, per dim (one dot per seed)", h)
        h = ax.axhline(-_memorization.QUALITY_TOLERANCE.default, color="C1", ls="--")
        handles.setdefault(f"fit check threshold -{_memorization.QUALITY_TOLERANCE.default:g} nats/dim", h)
        ax.axhline(0, color="0.4", lw=0.8)
        if np.nanmin(qc) < -3:
            ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xscale("log")
        ax.set_xlabel("parameters per net")
        ax.set_ylabel(_gmm.QUALITY_LABEL)
        ax.set_title("sample quality and the fit check", fontsize=9)
    for ax in axes[1][3:]:
        ax.axis("off")
    n = int(summ["n"].iloc[0])
    fig.suptitle(f"2-D, K = 4, n = {n}: underfit -> generalize -> memorize (PF-ODE; memsep's nets and training)")
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 0.96))
    return fig
