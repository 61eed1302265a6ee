"""Memorization against the training-set size n on a K = 8 Gaussian mixture (Sec. 6): all n and seeds of
one width train as one ensemble (member e uses the first n_e points of its set)."""

from __future__ import annotations

from . import _gmm, _memorization
from ._gmm import Config, grid, run_point  # noqa: F401  (the verify protocol)
from .verdicts import Claim

NAME = "sample_sweep"
CLAIM = "Score nets memorize less as the training set grows, K = 8 mixture (Sec. 6; the paper: n = 1K -> 100K)"
ORDER = 52
PRESETS = {
    "smoke": Config(dims=(2,), n_components=8, widths=(32,), ns=(16, 64), seeds=(0,), steps=30, n_generated=30,
                    n_test=10, sample_steps=4, loglik_steps=2, index_samples=20),
    "cpu": Config(dims=(2,), n_components=8, widths=(128,), ns=(16, 64, 256, 1024), seeds=(0, 1), steps=1000,
                  t0=1e-3, n_generated=300, n_test=100, loglik_steps=15),
    "paper": Config(dims=(16,), n_components=8, widths=(1024,), ns=(1000, 3200, 10_000, 32_000, 100_000),
                    seeds=(0, 1, 2), steps=200_000, t0=1e-4, n_generated=10_000, n_test=2000,
                    sample_steps=200, loglik_steps=100, index_samples=4000),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 15, "paper": 4 * 3600}
COLUMNS = _memorization.SWEEP_COLUMNS


def judge_n(table, *, min_effect=0.05, quality_tolerance=0.5):
    """Rule: excess memorization (memorized fraction minus the null rate of true-law draws) at the smallest n
    minus at the largest n, among the networks that pass the fit check (means over seeds), has its bootstrap
    interval over seeds and samples above min_effect; does not hold if the interval lies at or below it; a
    table without the null/anchor/quality columns cannot decide."""
    return _memorization.judge_trend(table, "n", -1, min_effect=min_effect, quality_tolerance=quality_tolerance)


CLAIMS = [
    Claim("memorization_vs_n", "Memorization falls as the training set grows", "Sec. 6, Gaussian-mixture experiments",
          "n = 1K -> 100K, K = 8 mixture", "theory.evaluation.memorization.calibrated_memorization", judge_n,
          (_memorization.MIN_EFFECT, _memorization.QUALITY_TOLERANCE)),
]


def plot(table, cfg):
    return _gmm.line_plot(table, "n", "training-set size n", "Memorization vs n")
