"""Memorization against network size (parameter count) on a K = 8 Gaussian mixture in d = 8, Sec. 6 of the paper.

Residual-MLP score nets of growing width are trained by DSM on the same n points (three seeds, one ensemble
per width) and sampled by the probability-flow ODE; every row carries the memorization fraction read
against its baselines (null rate of exact true-law draws, anchor of the exact empirical-score sampler,
excess and normalized index with intervals), sample quality with the fit check, the held-out
log-likelihood, and the memorization-index profile over 12 times with its crossover time t*
(``verify._gmm``). The cpu preset's widths 16..256 span underfit (the smallest nets fail the fit check) ->
fitted with little memorization -> memorizing."""

from __future__ import annotations


from . import _gmm, _memorization
from ._gmm import Config, grid, run_point  # noqa: F401  (the verify protocol)
from .verdicts import Claim

NAME = "scale_sweep"
CLAIM = "Score nets memorize more as they grow, K = 8 mixture (Sec. 6; the paper: 24K -> 44M parameters)"
ORDER = 51
PRESETS = {
    "smoke": Config(dims=(2,), n_components=8, widths=(8, 32), ns=(32,), seeds=(0,), train=_gmm.SMOKE_TRAIN,
                    protocol=_gmm.SMOKE_PROTOCOL),
    "cpu": Config(dims=(8,), n_components=8, widths=(16, 32, 64, 128, 256), ns=(128,), seeds=(0, 1, 2),
                  train=_gmm.CPU_TRAIN, protocol=_gmm.CPU_PROTOCOL),
    # paper scale (GPU): d = 16, widths giving ~24K .. ~44M parameters, n = 3.2K, long training
    "paper": Config(dims=(16,), n_components=8, widths=(48, 160, 512, 1600, 2700), ns=(3200,), seeds=(0, 1, 2),
                    train=_gmm.PAPER_TRAIN, protocol=_gmm.PAPER_PROTOCOL),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 300, "paper": 6 * 3600}
COLUMNS = _gmm.COLUMNS


def judge_size(table, *, min_effect=0.05, quality_tolerance=0.25):
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
    s = _gmm.summaries(table)
    return _gmm.line_figure(table, "params", "parameters per net", f"Memorization against network size (d = "
                            f"{int(s['d'].iloc[0])}, K = {cfg.n_components}, n = {int(s['n'].iloc[0])}; memsep's nets "
                            "and training, not the paper's)")
