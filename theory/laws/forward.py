"""The forward (Ornstein-Uhlenbeck) process of the paper, Sec. 2.

    dX_t = -X_t / 2 dt + dW_t,    X_t = alpha_t X_0 + sigma_t Z,    Z ~ N(0, I),

    alpha_t = exp(-t / 2),        sigma_t^2 = 1 - exp(-t).

``sigma2`` uses ``expm1`` so that it keeps full relative precision at small t (``1 - exp(-1e-6)`` in
floating point loses ten digits; ``-expm1(-1e-6)`` loses none).
"""

from __future__ import annotations

from typing import Callable

import torch

from .._validate import TimeLike, check_time

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _time(t: TimeLike, like: torch.Tensor | None = None, allow_zero: bool = True) -> torch.Tensor:
    """Validated time tensor: a tensor keeps its device (and float dtype); a number becomes a tensor of
    ``like``'s dtype and device (float64 on the CPU without ``like``)."""
    if isinstance(t, torch.Tensor):
        dtype = t.dtype if t.is_floating_point() else (like.dtype if like is not None else None)
        return check_time(t, allow_zero=allow_zero, dtype=dtype, device=t.device)
    if like is None:
        return check_time(t, allow_zero=allow_zero)
    return check_time(t, allow_zero=allow_zero, dtype=like.dtype, device=like.device)


def alpha(t: TimeLike) -> torch.Tensor:
    """alpha_t = exp(-t/2): the signal coefficient of X_t = alpha_t X_0 + sigma_t Z."""
    return torch.exp(-0.5 * _time(t))


def sigma2(t: TimeLike) -> torch.Tensor:
    """sigma_t^2 = 1 - exp(-t), computed as -expm1(-t) (accurate to full relative precision as t -> 0)."""
    return -torch.expm1(-_time(t))


def sigma(t: TimeLike) -> torch.Tensor:
    """sigma_t = sqrt(1 - exp(-t))."""
    return torch.sqrt(sigma2(t))


def _column(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or per-sample ``(B,)`` coefficient against a ``(B, d)`` tensor."""
    return v.to(like.dtype).reshape(-1, *([1] * (like.ndim - 1))) if v.ndim else v.to(like.dtype)


def add_noise(x0: torch.Tensor, t: TimeLike, noise: torch.Tensor | None = None, *,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw X_t = alpha_t x0 + sigma_t z; returns ``(x_t, z)``. ``t`` is a scalar or ``(B,)``; pass
    ``noise`` to reuse the same z (common random numbers), else it is drawn from ``generator``."""
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (B, d), got {tuple(x0.shape)}")
    tt = _time(t, x0)
    if tt.ndim == 1 and tt.shape[0] != x0.shape[0]:
        raise ValueError(f"t must be a scalar or have shape ({x0.shape[0]},), got {tuple(tt.shape)}")
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    a, s = _column(alpha(tt), x0), _column(sigma(tt), x0)
    return a * x0 + s * noise, noise


def dsm_target(x_t: torch.Tensor, x0: torch.Tensor, t: TimeLike) -> torch.Tensor:
    """The denoising-score-matching regression target grad log N(x_t; alpha_t x0, sigma_t^2 I)
    = -(x_t - alpha_t x0) / sigma_t^2 (= -z / sigma_t for x_t = alpha_t x0 + sigma_t z)."""
    tt = _time(t, x0, allow_zero=False)
    return -(x_t - _column(alpha(tt), x0) * x0) / _column(sigma2(tt), x0)


def dsm_loss(score: ScoreFn, x0: torch.Tensor, t: TimeLike, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample DSM loss for one draw of the forward noise (Sec. 3, the loss l_t of Prop. 4.1):

        | -(X_t - alpha_t x0) / sigma_t^2 - s(X_t, t) |^2,   X_t = alpha_t x0 + sigma_t z.

    ``score(x, t)`` takes ``(B, d)`` points and the time tensor; ``noise`` is the ``(B, d)`` draw of z
    (pass the same draw to compare several score functions with common random numbers). Averaging over
    independent draws of ``noise`` gives l_t(x0, s) = E_z |...|^2. Returns ``(B,)``.
    """
    tt = _time(t, x0, allow_zero=False)
    x_t, _ = add_noise(x0, tt, noise)
    residual = dsm_target(x_t, x0, tt) - score(x_t, tt)
    return residual.pow(2).sum(dim=-1)
