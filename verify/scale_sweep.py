"""Memorization against network size (parameter count) on a K = 8 Gaussian mixture, Sec. 6 of the paper.

Residual-MLP score nets of growing width are trained by DSM on the same n samples (several seeds, one
ensemble per width) and sampled by the probability-flow ODE; the table holds the memorization fraction,
the model's held-out ODE log-likelihood and the memorization index per width and seed."""

from __future__ import annotations

from . import _gmm, _memorization
from ._gmm import Config, grid, run_point  # noqa: F401  (the verify protocol)
from .verdicts import Claim

NAME = "scale_sweep"
CLAIM = "Score nets memorize more as they grow, K = 8 mixture (Sec. 6; the paper: 24K -> 44M parameters)"
ORDER = 51
PRESETS = {
    "smoke": Config(dims=(2,), n_components=8, widths=(8, 32), ns=(32,), seeds=(0,), steps=30, n_generated=30,
                    n_test=10, sample_steps=4, loglik_steps=2, index_samples=20),
    "cpu": Config(dims=(2,), n_components=8, widths=(16, 64, 256), ns=(64,), seeds=(0, 1), steps=1000,
                  t0=1e-3, n_generated=300, n_test=100, loglik_steps=15),
    # paper scale (GPU): d = 16, widths giving ~24K .. ~44M parameters, n = 3.2K, long training
    "paper": Config(dims=(16,), n_components=8, widths=(48, 160, 512, 1600, 2700), ns=(3200,),
                    seeds=(0, 1, 2), steps=200_000, t0=1e-4, n_generated=10_000, n_test=2000,
                    sample_steps=200, loglik_steps=100, index_samples=4000),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 20, "paper": 6 * 3600}
COLUMNS = _memorization.SWEEP_COLUMNS


def judge_size(table, *, min_effect=0.05, quality_tolerance=0.5):
    """Rule: excess memorization (memorized fraction minus the null rate of true-law draws) at the largest
    network minus at the smallest, among the networks that pass the fit check (means over seeds), has its
    bootstrap interval over seeds and samples above min_effect; does not hold if the interval lies at or
    below it; a table without the null/anchor/quality columns cannot decide."""
    return _memorization.judge_trend(table, "params", +1, min_effect=min_effect, quality_tolerance=quality_tolerance)


CLAIMS = [
    Claim("memorization_vs_size", "Memorization grows with the size of the score network", "Sec. 6, Gaussian-mixture "
          "experiments", "24K -> 44M parameters, K = 8 mixture", "theory.evaluation.memorization.calibrated_memorization",
          judge_size, (_memorization.MIN_EFFECT, _memorization.QUALITY_TOLERANCE)),
]


def plot(table, cfg):
    return _gmm.line_plot(table, "params", "parameters per net", "Memorization vs network size")
