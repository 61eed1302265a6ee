"""The common interface of a law noised by the forward process to time t (see DESIGN.md).

Both the true law (``GaussianMixture``) and the empirical law of the training set (``EmpiricalLaw``)
implement it, so every estimator in ``theory`` works on either:

    law.log_prob(x, t)   (B,)       log p_t(x)
    law.score(x, t)      (B, d)     grad log p_t(x)
    law.hessian(x, t)    (B, d, d)  grad^2 log p_t(x) = -I/sigma_t^2 + alpha_t^2/sigma_t^4 Cov[X_0 | X_t = x]
    law.denoiser(x, t)   (B, d)     E[X_0 | X_t = x]   (Tweedie: score = (alpha_t E[X_0|X_t] - x)/sigma_t^2)
    law.sample(m, t, generator)     m draws from P_t (t = 0: the law itself)

``x`` is ``(B, d)``; ``t`` is a number or a ``(B,)`` tensor. Computation is in the law's dtype (float64
by default) on the law's device; inputs on another device raise instead of being moved.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import forward
from .._validate import TimeLike, check_points, check_positive_int, check_time


class TimeCoefficients(NamedTuple):
    """alpha_t, sigma_t^2 as scalars ``()`` or columns ``(B, 1)`` ready to broadcast against ``(B, d)``."""

    t: torch.Tensor
    alpha: torch.Tensor
    sigma2: torch.Tensor


class NoisedLaw:
    """Base class: a law on R^d pushed through the forward process. Subclasses set ``dim``, ``dtype``
    and ``device`` and implement the methods below."""

    dim: int
    dtype: torch.dtype
    device: torch.device
    #: whether P_0 itself has a density (true for a mixture with positive-definite covariances, false
    #: for the empirical law, whose P_0 is a sum of point masses)
    has_density_at_zero: bool = False

    def _inputs(self, x, t: TimeLike, name: str = "x") -> tuple[torch.Tensor, TimeCoefficients]:
        x = check_points(x, name, self.dim, dtype=self.dtype, device=self.device)
        tt = check_time(t, batch=x.shape[0], allow_zero=self.has_density_at_zero,
                        dtype=self.dtype, device=self.device)
        a, s2 = forward.alpha(tt), forward.sigma2(tt)
        if tt.ndim == 1:
            a, s2 = a[:, None], s2[:, None]
        return x, TimeCoefficients(tt, a, s2)

    def _sample_time(self, m: int, t: TimeLike) -> torch.Tensor:
        check_positive_int(m, "m")
        tt = check_time(t, allow_zero=True, dtype=self.dtype, device=self.device)
        if tt.ndim != 0:
            raise ValueError(f"t must be a scalar for sample, got shape {tuple(tt.shape)}")
        return tt

    @staticmethod
    def _noise(x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """X_t = alpha_t x0 + sigma_t Z for a scalar t (t = 0 returns x0)."""
        if float(t) == 0.0:
            return x0
        return forward.add_noise(x0, t, generator=generator)[0]

    def log_prob(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def score(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def hessian(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def denoiser(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, m: int, t: TimeLike = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError
