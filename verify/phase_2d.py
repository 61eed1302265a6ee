"""Underfit -> generalize -> memorize in 2-D (K = 4): generated samples over the training points, one panel per
network size, each titled with its memorization fraction. The table is long-format: one 'summary' row per
net, plus one row per generated sample (kind = 'generated') and per training point (kind = 'train') with
coordinates x0, x1, so the figure is drawn from the table alone (memsep's substitute for a companion CSV:
it inherits the runner's atomic writes and resume)."""

from __future__ import annotations

from . import _gmm, _memorization
from ._gmm import Config, grid  # noqa: F401
from .verdicts import Claim

NAME = "phase_2d"
CLAIM = "2-D, K = 4: samples go from underfit to generalizing to memorized as the score net grows (Sec. 6)"
ORDER = 50
PRESETS = {
    "smoke": Config(dims=(2,), n_components=4, widths=(8, 32), ns=(32,), seeds=(0,), steps=30, n_generated=30,
                    n_test=10, sample_steps=4, loglik_steps=2, index_samples=20),
    "cpu": Config(dims=(2,), n_components=4, widths=(4, 32, 256), ns=(32,), seeds=(0,), steps=1000, t0=1e-3,
                  n_generated=300, n_test=100, loglik_steps=10),
    "paper": Config(dims=(2,), n_components=4, widths=(4, 16, 64, 256, 1024), ns=(200,), seeds=(0,),
                    steps=100_000, t0=1e-4, n_generated=2000, n_test=1000, sample_steps=200, loglik_steps=100,
                    index_samples=2000),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 15, "paper": 3600}
COLUMNS = _memorization.SWEEP_COLUMNS + ("x0", "x1")


def judge_phase(table, *, min_effect=0.05, quality_tolerance=0.5):
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
    for r in _gmm.run_point(point, cfg, device, keep_samples=True):
        samples, train = r.pop("samples"), r.pop("train")
        out.append(r)
        for kind, pts in (("generated", samples), ("train", train)):
            out += [{"kind": kind, "n": r["n"], "x0": float(p[0]), "x1": float(p[1])} for p in pts.cpu()]
    return out


def plot(table, cfg):
    import matplotlib.pyplot as plt

    summ = table[table["kind"] == "summary"].sort_values("params")
    fig, axes = plt.subplots(1, len(summ), figsize=(4 * len(summ), 4.2), squeeze=False)
    for ax, (_, row) in zip(axes[0], summ.iterrows()):
        pts = table[table["point"] == row["point"]]
        g, tr = pts[pts["kind"] == "generated"], pts[pts["kind"] == "train"]
        ax.scatter(g["x0"], g["x1"], s=4, alpha=0.5, label="generated")
        ax.scatter(tr["x0"], tr["x1"], s=18, c="r", marker="x", label="training points")
        ax.set_title(f"{int(row['params'])} params: memorized {row['mem_fraction']:.2f}"
                     f" ± {row['mem_fraction_se']:.2f}", fontsize=9)
        ax.set_xlabel("$x_1$")
        ax.set_ylabel("$x_2$")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Generated samples vs training points (PF-ODE, n = %d; memsep's nets)" % int(summ["n"].iloc[0]))
    fig.tight_layout()
    return fig
