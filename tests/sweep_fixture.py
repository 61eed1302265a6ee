"""A tiny verify-protocol module for the runner and executor tests, importable by Dask worker processes
(pytest puts tests/ on sys.path, and spawned workers inherit it).

Each point x gives ``rows`` rows: y = x^2, its row index, and a draw of the *global* torch generator (so a
test can see that a point's result does not depend on where or in which order it ran). A point in
``fail_on`` raises; a point in ``kill_on`` kills the worker process running it the first time (only in a
Dask worker, never the test process), leaving a marker in ``marker_dir`` so that the retry succeeds."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import torch

NAME = "sweep_fixture"
CLAIM = "squares"


@dataclasses.dataclass(frozen=True)
class Config:
    values: tuple = (1, 2, 3)
    rows: int = 1
    fail_on: tuple = ()
    kill_on: tuple = ()
    marker_dir: str = ""
    sleep: float = 0.0
    data: str = ""              # what data_fingerprint reports (a test changes it)


PRESETS = {"smoke": Config(), "cpu": Config(values=(1, 2, 3, 4), rows=3)}


def grid(cfg: Config) -> list[dict]:
    return [{"x": v, "seed": 0} for v in cfg.values]


def data_fingerprint(cfg: Config) -> str:
    """What the data files would hash to: $SWEEP_FIXTURE_DATA, else the config's ``data``."""
    return os.environ.get("SWEEP_FIXTURE_DATA", cfg.data)


def run_point(point: dict, cfg: Config, device: str) -> list[dict]:
    x = point["x"]
    if x in cfg.kill_on and os.environ.get("MEMSEP_WORKER") is not None:
        marker = Path(cfg.marker_dir) / f"killed-{x}"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
    if cfg.sleep:
        time.sleep(cfg.sleep)
    if x in cfg.fail_on:
        raise RuntimeError(f"boom at {x}")
    draw = float(torch.rand(()))
    return [{"y": x ** 2, "row": i, "draw": draw} for i in range(cfg.rows)]


def plot(table, cfg: Config):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(table["x"], table["y"], "o")
    return fig
