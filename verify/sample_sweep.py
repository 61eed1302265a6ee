"""Memorization against the training-set size n on a K = 8 Gaussian mixture (Sec. 6): all n and seeds of
one width train as one ensemble (member e uses the first n_e points of its set)."""

from __future__ import annotations

from . import _gmm
from ._gmm import Config, grid, run_point  # noqa: F401

NAME = "sample_sweep"
CLAIM = "Score nets memorize less as the training set grows (n = 1K -> 100K), K = 8 mixture (Sec. 6)"
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


def plot(table, cfg):
    return _gmm.line_plot(table, "n", "training-set size n", "Memorization vs n")
