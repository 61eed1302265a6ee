"""Input checks shared by the theory modules.

Every public function validates what it is given and raises a ``ValueError`` (or ``TypeError``) whose
message names the offending argument, so a wrong shape or a NaN fails loudly at the call, not three
frames down inside a matmul.
"""

from __future__ import annotations

import math
from typing import Union

import torch

TimeLike = Union[float, int, torch.Tensor]

DEFAULT_DTYPE = torch.float64


def as_tensor(value, name: str, *, dtype=None, device=None) -> torch.Tensor:
    """``value`` as a floating tensor on ``device`` with ``dtype``; a tensor already on another device is
    an error (we never move data between devices silently)."""
    if isinstance(value, torch.Tensor):
        if device is not None and value.device != torch.device(device):
            raise ValueError(f"{name} is on {value.device}, expected {torch.device(device)}; move it explicitly")
        out = value
    else:
        # never let torch's float32 default touch a Python number or list: go straight to float64
        out = torch.as_tensor(value, dtype=dtype or DEFAULT_DTYPE, device=device)
    if not (out.is_floating_point() or out.dtype in (torch.int32, torch.int64, torch.int16, torch.uint8)):
        raise TypeError(f"{name} must be real-valued, got dtype {out.dtype}")
    return out.to(dtype or (out.dtype if out.is_floating_point() else DEFAULT_DTYPE))


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return x


def check_points(x, name: str, d: int, *, dtype, device) -> torch.Tensor:
    """A batch of points: a ``(B, d)`` finite tensor (a single ``(d,)`` point is not accepted, to keep
    shapes unambiguous)."""
    x = as_tensor(x, name, dtype=dtype, device=device)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{name} must have shape (B, {d}), got {tuple(x.shape)}")
    return check_finite(x, name)


def check_time(t: TimeLike, name: str = "t", *, batch: int | None = None, allow_zero: bool = False,
               any_shape: bool = False, dtype=DEFAULT_DTYPE, device=None) -> torch.Tensor:
    """Diffusion time(s) as a tensor of shape ``()`` or ``(batch,)`` (any shape with ``any_shape``, for
    elementwise use); each must be finite and > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(t, (float, int)) and not isinstance(t, bool):
        if not math.isfinite(t):
            raise ValueError(f"{name} must be finite, got {t}")
    tt = as_tensor(t, name, dtype=dtype, device=device)
    if not any_shape and (tt.ndim > 1 or (tt.ndim == 1 and batch is not None and tt.shape[0] != batch)):
        raise ValueError(f"{name} must be a scalar or have shape ({batch},), got {tuple(tt.shape)}")
    check_finite(tt, name)
    bad = tt < 0 if allow_zero else tt <= 0
    if bool(bad.any()):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got min {float(tt.min())}")
    return tt


def check_positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_spd(cov: torch.Tensor, name: str) -> torch.Tensor:
    """``cov`` of shape ``(..., d, d)`` must be symmetric (to round-off) and positive definite."""
    check_finite(cov, name)
    scale = cov.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(cov.dtype).tiny)
    asym = ((cov - cov.transpose(-2, -1)).abs() / scale).amax()
    tol = 1e-10 if cov.dtype == torch.float64 else 1e-5
    if float(asym) > tol:
        raise ValueError(f"{name} must be symmetric (max relative asymmetry {float(asym):.3g})")
    _, info = torch.linalg.cholesky_ex(0.5 * (cov + cov.transpose(-2, -1)))
    if bool((info != 0).any()):
        raise ValueError(f"{name} must be positive definite (Cholesky failed)")
    return cov
