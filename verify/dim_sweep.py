"""Memorization against the dimension d on a K = 8 Gaussian mixture (Sec. 6): one ensemble of seeds per d."""

from __future__ import annotations

from . import _gmm, _memorization
from ._gmm import Config, grid, run_point  # noqa: F401  (the verify protocol)
from .verdicts import Claim

NAME = "dim_sweep"
CLAIM = "Score nets memorize less as the dimension grows, K = 8 mixture (Sec. 6; the paper: d = 8 -> 64)"
ORDER = 53
PRESETS = {
    "smoke": Config(dims=(2, 4), n_components=8, widths=(32,), ns=(32,), seeds=(0,), steps=30, n_generated=30,
                    n_test=10, sample_steps=4, loglik_steps=2, index_samples=20),
    "cpu": Config(dims=(2, 4, 8), n_components=8, widths=(128,), ns=(64,), seeds=(0, 1), steps=1000,
                  t0=1e-3, n_generated=300, n_test=100, loglik_steps=10),
    "paper": Config(dims=(8, 16, 32, 64), n_components=8, widths=(1024,), ns=(3200,), seeds=(0, 1, 2),
                    steps=200_000, t0=1e-4, n_generated=10_000, n_test=2000, sample_steps=200,
                    loglik_steps=100, index_samples=4000),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 20, "paper": 4 * 3600}
COLUMNS = _memorization.SWEEP_COLUMNS


def judge_d(table, *, min_effect=0.05, quality_tolerance=0.5):
    """Rule: excess memorization (memorized fraction minus the null rate of true-law draws, which itself
    falls like 3^-d) at the smallest d minus at the largest d, among the networks that pass the fit check
    (means over seeds; a d whose nets do not fit is reported, not judged), has its bootstrap interval over
    seeds and samples above min_effect; does not hold if the interval lies at or below it; a table without
    the null/anchor/quality columns cannot decide."""
    return _memorization.judge_trend(table, "d", -1, min_effect=min_effect, quality_tolerance=quality_tolerance)


CLAIMS = [
    Claim("memorization_vs_d", "Memorization falls as the dimension grows", "Sec. 6, Gaussian-mixture experiments",
          "d = 8 -> 64, K = 8 mixture", "theory.evaluation.memorization.calibrated_memorization", judge_d,
          (_memorization.MIN_EFFECT, _memorization.QUALITY_TOLERANCE)),
]


def plot(table, cfg):
    return _gmm.line_plot(table, "d", "dimension d", "Memorization vs dimension", logx=False)
