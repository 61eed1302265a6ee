"""Memorization against the dimension d on a K = 8 Gaussian mixture (Sec. 6): one ensemble of seeds per d."""

from __future__ import annotations

from . import _gmm
from ._gmm import Config, grid, run_point  # noqa: F401

NAME = "dim_sweep"
CLAIM = "Score nets memorize less as the dimension grows (d = 8 -> 64), K = 8 mixture (Sec. 6)"
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


def plot(table, cfg):
    return _gmm.line_plot(table, "d", "dimension d", "Memorization vs dimension", logx=False)
