"""The one learning-rate schedule of memsep's trainers: linear warm-up, then cosine decay to a fraction.

    lr_k = lr (k + 1) / warmup                                         for k < warmup,
    lr_k = lr [f + (1 - f) (1 + cos(pi u)) / 2],   u = min(1, (k - warmup) / (steps - warmup))   after,

with f = ``final_fraction``: f = 0 decays to zero (the regression fits), f = 0.05 is the DSM trainer's
default, f = 1 keeps the rate constant after the warm-up (the image trainer).
"""

from __future__ import annotations

import math


def learning_rate(step: int, *, lr: float, steps: int, warmup: int, final_fraction: float) -> float:
    """The learning rate at optimiser step ``step`` (0-based) of a run of ``steps`` steps (module docstring)."""
    if step < warmup:
        return lr * (step + 1) / warmup
    u = (step - warmup) / max(1, steps - warmup)
    f = final_fraction
    return lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(u, 1.0))))
