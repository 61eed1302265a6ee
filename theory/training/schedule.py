"""The one learning-rate schedule of memsep's trainers: linear warm-up, then cosine decay to a fraction.

    lr_k = lr (k + 1) / warmup                                         for k < warmup,
    lr_k = lr [f + (1 - f) (1 + cos(pi u)) / 2],   u = min(1, (k - warmup) / (steps - warmup))   after,

with f = ``final_fraction``: f = 0 decays to zero (the regression fits), f = 0.05 is the DSM trainer's
default, f = 1 keeps the rate constant after the warm-up (the image trainer).
"""

from __future__ import annotations

import math


def learning_rate(step: int, *, lr: float, steps: int, warmup: int, final_fraction: float) -> float:
    """The learning rate at optimiser step ``step`` (0-based; steps past the end get the final rate) of a
    run of ``steps`` >= 1 steps (module docstring); lr and final_fraction finite and >= 0, warmup >= 0.
    Called every step, so the checks are plain comparisons."""
    if not (isinstance(steps, int) and steps >= 1 and isinstance(warmup, int) and warmup >= 0
            and isinstance(step, int) and step >= 0):
        raise ValueError(f"need integers step >= 0, steps >= 1 and warmup >= 0, got step={step!r}, "
                         f"steps={steps!r}, warmup={warmup!r}")
    if not (0 <= lr < math.inf and 0 <= final_fraction < math.inf):
        raise ValueError(f"lr and final_fraction must be finite numbers >= 0, got lr={lr!r}, "
                         f"final_fraction={final_fraction!r}")
    if step < warmup:
        return lr * (step + 1) / warmup
    u = (step - warmup) / max(1, steps - warmup)
    f = final_fraction
    return lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(u, 1.0))))
