"""A module whose FLOPs are known exactly, for the cost-model tests: per point, ``steps`` products of a
(batch, 64) by a (64, 64) matrix and ``samples`` products of (1, 64) by (64, 64): 2*64*64*(steps*batch +
samples) FLOPs, plus a fixed product of (64, 64) by (64, 64)."""

from __future__ import annotations

import dataclasses

import torch

NAME = "cost_fixture"
CLAIM = "known FLOPs"


@dataclasses.dataclass(frozen=True)
class Inner:
    batch: int = 16


@dataclasses.dataclass(frozen=True)
class Config:
    steps: int = 1000
    samples: int = 500
    inner: Inner = Inner()


PRESETS = {"smoke": Config(), "paper": Config(steps=100_000, samples=20_000, inner=Inner(batch=256))}
COST_MODEL = {"reduced": {"steps": 2, "samples": 2, "inner.batch": 2},
              "terms": [("steps", "inner.batch"), ("samples",)]}


def exact_flops(cfg: Config) -> int:
    return 2 * 64 * 64 * (cfg.steps * cfg.inner.batch + cfg.samples + 64)


def grid(cfg):
    return [{"k": 0, "seed": s} for s in (0, 1)] + [{"k": 1, "seed": 0}]


def run_point(point, cfg, device):
    w = torch.ones(64, 64)
    torch.mm(w, w)
    x = torch.ones(cfg.inner.batch, 64)
    for _ in range(cfg.steps):
        torch.mm(x, w)
    for _ in range(cfg.samples):
        torch.mm(x[:1], w)
    return {"k": point["k"]}


def plot(table, cfg):
    import matplotlib.pyplot as plt

    return plt.figure()
