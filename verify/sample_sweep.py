"""Memorization against the training-set size n on a K = 8 Gaussian mixture in d = 8 (Sec. 6): all n and
seeds of one width train as one ensemble (member e trains on the first n_e points of its seed's stream,
``verify._gmm.member_training_set``, so the sets of one seed are nested and independent of the ensemble).
Rows carry the calibrated memorization, quality, held-out log-likelihood and index columns of
``verify._gmm``; the cpu preset's width 128 memorizes most of its samples at n = 32 and none at n = 1024."""

from __future__ import annotations


from . import _gmm, _memorization
from ._gmm import Config, grid, run_point  # noqa: F401  (the verify protocol)
from .verdicts import Claim

NAME = "sample_sweep"
CLAIM = "Score nets memorize less as the training set grows, K = 8 mixture (Sec. 6; the paper: n = 1K -> 100K)"
ORDER = 52
PRESETS = {
    "smoke": Config(dims=(2,), n_components=8, widths=(32,), ns=(16, 64), seeds=(0,), train=_gmm.SMOKE_TRAIN,
                    protocol=_gmm.SMOKE_PROTOCOL),
    "cpu": Config(dims=(8,), n_components=8, widths=(128,), ns=(32, 64, 128, 256, 512, 1024), seeds=(0, 1, 2),
                  train=_gmm.CPU_TRAIN, protocol=_gmm.CPU_PROTOCOL),
    "paper": Config(dims=(16,), n_components=8, widths=(1024,), ns=(1000, 3200, 10_000, 32_000, 100_000),
                    seeds=(0, 1, 2),
                    train=_gmm.PAPER_TRAIN, protocol=_gmm.PAPER_PROTOCOL),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 270, "paper": 4 * 3600}
COLUMNS = _gmm.COLUMNS


def judge_n(table, *, min_effect=0.05, quality_tolerance=0.25):
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
    s = _gmm.summaries(table)
    return _gmm.line_figure(table, "n", "training-set size n", f"Memorization against the training-set size (d = "
                            f"{int(s['d'].iloc[0])}, K = {cfg.n_components}, width {int(s['width'].iloc[0])}; memsep's "
                            "nets and training, not the paper's)")
