"""The forward (Ornstein-Uhlenbeck) process of the paper, Sec. 2, and the parametrisations it links.

    dX_t = -X_t / 2 dt + dW_t,    X_t = alpha_t X_0 + sigma_t Z,    Z ~ N(0, I),

    alpha_t = exp(-t / 2),        sigma_t^2 = 1 - exp(-t).

``sigma2`` uses ``expm1`` so that it keeps full relative precision at small t (``1 - exp(-1e-6)`` in
floating point loses ten digits; ``-expm1(-1e-6)`` loses none).

This module is the one owner of alpha_t and sigma_t, and of the conversions between the three ways a
network can describe the noised law at time t (Tweedie's formula, E[Z | X_t] = -sigma_t grad log p_t):

    score      s(x, t) = grad log p_t(x)
    noise      eps(x, t) = E[Z | X_t = x]        = -sigma_t s
    denoiser   D(x, t)   = E[X_0 | X_t = x]      = (x + sigma_t^2 s) / alpha_t

Time arguments. Public functions take ``t`` as a number, a tensor of shape ``()`` or of a leading prefix of
the other argument's shape (``(B,)`` against ``(B, d)`` or ``(B, C, H, W)``, ``(E, B)`` against
``(E, B, d)``), or the ``TimeCoefficients`` that ``coefficients`` returned: ``t`` is validated once, where
it enters, and a caller that reuses one t many times passes the coefficients on instead of re-checking.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Union

import torch

from .._validate import TimeLike, check_time

#: a score function s(x, t): a (B, ...) batch and a (B,) (or scalar) time tensor -> the (B, ...) score
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TimeCoefficients(NamedTuple):
    """A validated time tensor ``t`` with alpha_t and sigma_t^2 of its shape (or, where a law prepared
    them, as ``(B, 1)`` columns)."""

    t: torch.Tensor
    alpha: torch.Tensor
    sigma2: torch.Tensor

    @property
    def sigma(self) -> torch.Tensor:
        return torch.sqrt(self.sigma2)


Times = Union[TimeLike, TimeCoefficients]


def coefficients(t: TimeLike, *, batch: int | None = None, allow_zero: bool = True, dtype=None,
                 device=None) -> TimeCoefficients:
    """Validate ``t`` once (``theory._validate.check_time``) and return it with alpha_t = exp(-t/2) and
    sigma_t^2 = -expm1(-t). With ``batch``, t must be a scalar or ``(batch,)``; without, any shape is
    elementwise. A tensor keeps its device and floating dtype unless ``dtype``/``device`` are given; a
    number becomes a float64 tensor."""
    if isinstance(t, torch.Tensor) and dtype is None:
        dtype = t.dtype if t.is_floating_point() else None
    if isinstance(t, torch.Tensor) and device is None:
        device = t.device
    tt = check_time(t, batch=batch, allow_zero=allow_zero, any_shape=batch is None, dtype=dtype or torch.float64,
                    device=device)
    return TimeCoefficients(tt, torch.exp(-0.5 * tt), -torch.expm1(-tt))


def _coefficients(t: Times, like: torch.Tensor | None = None, allow_zero: bool = True) -> TimeCoefficients:
    """``t`` as TimeCoefficients: passed through if it already is (checked where it was made), else
    validated (a tensor keeps its dtype and device, a number takes ``like``'s)."""
    if isinstance(t, TimeCoefficients):
        return t
    if isinstance(t, torch.Tensor) or like is None:
        return coefficients(t, allow_zero=allow_zero)
    return coefficients(t, allow_zero=allow_zero, dtype=like.dtype, device=like.device)


def alpha(t: Times) -> torch.Tensor:
    """alpha_t = exp(-t/2): the signal coefficient of X_t = alpha_t X_0 + sigma_t Z."""
    return _coefficients(t).alpha


def sigma2(t: Times) -> torch.Tensor:
    """sigma_t^2 = 1 - exp(-t), computed as -expm1(-t) (accurate to full relative precision as t -> 0)."""
    return _coefficients(t).sigma2


def sigma(t: Times) -> torch.Tensor:
    """sigma_t = sqrt(1 - exp(-t))."""
    return _coefficients(t).sigma


def _column(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a coefficient whose shape is a leading prefix of ``like``'s (a scalar, ``(B,)``,
    ``(E, B)``) against ``like``, in ``like``'s dtype."""
    if v.ndim == 0:
        return v.to(like.dtype)
    if v.ndim > like.ndim or tuple(v.shape) != tuple(like.shape[:v.ndim]):
        raise ValueError(f"t must be a scalar or have shape {tuple(like.shape[:v.ndim])} (a leading prefix "
                         f"of {tuple(like.shape)}), got {tuple(v.shape)}")
    return v.to(like.dtype).reshape(*v.shape, *([1] * (like.ndim - v.ndim)))


def add_noise(x0: torch.Tensor, t: Times, noise: torch.Tensor | None = None, *,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw X_t = alpha_t x0 + sigma_t z; returns ``(x_t, z)``. ``t`` is a scalar or of a leading prefix
    of x0's shape; pass ``noise`` to reuse the same z (common random numbers), else it is drawn from
    ``generator``."""
    if x0.ndim < 2:
        raise ValueError(f"x0 must have shape (B, ...), got {tuple(x0.shape)}")
    tc = _coefficients(t, x0)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    elif noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    return _column(tc.alpha, x0) * x0 + _column(tc.sigma, x0) * noise, noise


def dsm_target(x_t: torch.Tensor, x0: torch.Tensor, t: Times) -> torch.Tensor:
    """The denoising-score-matching regression target grad log N(x_t; alpha_t x0, sigma_t^2 I)
    = -(x_t - alpha_t x0) / sigma_t^2 (= -z / sigma_t for x_t = alpha_t x0 + sigma_t z)."""
    tc = _coefficients(t, x0, allow_zero=False)
    return -(x_t - _column(tc.alpha, x0) * x0) / _column(tc.sigma2, x0)


def dsm_loss(score: ScoreFn, x0: torch.Tensor, t: Times, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample DSM loss for one draw of the forward noise (Sec. 3, the loss l_t of Prop. 4.1):

        | -(X_t - alpha_t x0) / sigma_t^2 - s(X_t, t) |^2,   X_t = alpha_t x0 + sigma_t z.

    ``score(x, t)`` takes ``(B, d)`` points and the time tensor; ``noise`` is the ``(B, d)`` draw of z
    (pass the same draw to compare several score functions with common random numbers). Averaging over
    independent draws of ``noise`` gives l_t(x0, s) = E_z |...|^2. Returns ``(B,)``.
    """
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (B, d), got {tuple(x0.shape)}")
    tc = _coefficients(t, x0, allow_zero=False)
    x_t, _ = add_noise(x0, tc, noise)
    residual = dsm_target(x_t, x0, tc) - score(x_t, tc.t)
    return residual.pow(2).sum(dim=-1)


def marginal_variance(t: Times, data_variance: float) -> torch.Tensor:
    """Var X_t per coordinate for data of per-coordinate variance v: alpha_t^2 v + sigma_t^2, with
    alpha_t^2 = exp(-t) evaluated directly (the scale that networks divide their input by)."""
    tc = _coefficients(t)
    return torch.exp(-tc.t) * data_variance + tc.sigma2


# ---------------------------------------------------------------------------------- parametrisations
def score_from_eps(eps: torch.Tensor, t: Times) -> torch.Tensor:
    """s = -eps / sigma_t (the score of a noise predictor)."""
    return -eps / _column(_coefficients(t, eps).sigma, eps)


def eps_from_score(score: torch.Tensor, t: Times) -> torch.Tensor:
    """eps = -sigma_t s (the noise prediction of a score; sigma_t s is the normalised score, O(1) at every t)."""
    return -_column(_coefficients(t, score).sigma, score) * score


def score_from_denoiser(denoised: torch.Tensor, x: torch.Tensor, t: Times) -> torch.Tensor:
    """s = (alpha_t D - x) / sigma_t^2 (Tweedie: the score of a denoiser D(x) = E[X_0 | X_t = x])."""
    tc = _coefficients(t, x)
    return (_column(tc.alpha, x) * denoised - x) / _column(tc.sigma2, x)


def denoiser_from_score(score: torch.Tensor, x: torch.Tensor, t: Times) -> torch.Tensor:
    """D = (x + sigma_t^2 s) / alpha_t (Tweedie's denoised estimate E[X_0 | X_t = x])."""
    tc = _coefficients(t, x)
    return (x + _column(tc.sigma2, x) * score) / _column(tc.alpha, x)


def eps_from_denoiser(denoised: torch.Tensor, x: torch.Tensor, t: Times) -> torch.Tensor:
    """eps = (x - alpha_t D) / sigma_t (= -sigma_t s for the score s of D)."""
    tc = _coefficients(t, x)
    return (x - _column(tc.alpha, x) * denoised) / _column(tc.sigma, x)
