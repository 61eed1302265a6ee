"""The common interface of a law noised by the forward process to time t.

Both the true law (``GaussianMixture``) and the empirical law of the training set (``EmpiricalLaw``)
implement it, so every estimator in ``theory`` works on either:

    law.log_prob(x, t)   (B,)       log p_t(x)
    law.score(x, t)      (B, d)     grad log p_t(x)
    law.hessian(x, t)    (B, d, d)  grad^2 log p_t(x) = -I/sigma_t^2 + alpha_t^2/sigma_t^4 Cov[X_0 | X_t = x]
    law.laplacian(x, t)  (B,)       Delta log p_t(x) = tr grad^2 log p_t(x)  (score_and_laplacian: both at once)
    law.denoiser(x, t)   (B, d)     E[X_0 | X_t = x]   (Tweedie: score = (alpha_t E[X_0|X_t] - x)/sigma_t^2)
    law.sample(m, t, generator)     m draws from P_t (t = 0: the law itself)
    law.components(t)               P_t as a finite Gaussian mixture sum_j w_j N(m_j, F_j F_j^T)

``x`` is ``(B, d)`` (a tensor, array or nested list; B >= 1, finite; integers become the law's dtype); ``t``
is a number or a ``(B,)`` tensor (theory._validate, "Times": booleans and strings are refused). Computation
is in the law's dtype (float64 by default) on the law's device; inputs on another device raise instead of
being moved. Every method checks its result: where float64 cannot represent it (the empirical law at t
below ~1e-300, |x| beyond ~1e150) a one-line ValueError names t and x instead of returning inf or NaN.
"""

from __future__ import annotations

from typing import NamedTuple, Union

import torch

from . import forward
from .forward import ScoreFn, TimeCoefficients
from .._validate import TimeLike, check_generator, check_points, check_positive_int, check_result


class GaussianComponents(NamedTuple):
    """A law as a finite Gaussian mixture P = sum_j w_j N(m_j, F_j F_j^T): ``weights`` (J,), ``means``
    (J, d), ``factors`` (J, d, d) (any square roots of the covariances; zero for point masses)."""

    weights: torch.Tensor
    means: torch.Tensor
    factors: torch.Tensor


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
        """Validated points and times: alpha_t, sigma_t^2 as scalars ``()`` or columns ``(B, 1)`` ready
        to broadcast against ``(B, d)``."""
        x = check_points(x, name, self.dim, dtype=self.dtype, device=self.device)
        tc = forward.coefficients(t, batch=x.shape[0], allow_zero=self.has_density_at_zero,
                                  dtype=self.dtype, device=self.device)
        if tc.t.ndim == 1:
            tc = TimeCoefficients(tc.t, tc.alpha[:, None], tc.sigma2[:, None])
        return x, tc

    def _checked(self, out: torch.Tensor, what: str, tc: TimeCoefficients, x: torch.Tensor) -> torch.Tensor:
        """``out`` if finite, else the one-line overflow error naming t and x (theory._validate.check_result)."""
        return check_result(out, f"{type(self).__name__}.{what}", tc.t, x)

    def _scalar_time(self, t: TimeLike, what: str) -> TimeCoefficients:
        tc = forward.coefficients(t, allow_zero=True, dtype=self.dtype, device=self.device)
        if tc.t.ndim != 0:
            raise ValueError(f"t must be a scalar for {what}, got shape {tuple(tc.t.shape)}")
        return tc

    def _sample_time(self, m: int, t: TimeLike, generator: torch.Generator | None) -> tuple[int, TimeCoefficients]:
        m = check_positive_int(m, "m")
        check_generator(generator, "generator", self.device)
        return m, self._scalar_time(t, "sample")

    @staticmethod
    def _noise(x0: torch.Tensor, tc: TimeCoefficients, generator: torch.Generator | None) -> torch.Tensor:
        """X_t = alpha_t x0 + sigma_t Z for a scalar t (t = 0 returns x0)."""
        if float(tc.t) == 0.0:
            return x0
        z = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return forward._add_noise(x0, tc, z)

    def log_prob(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def score(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def hessian(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def laplacian(self, x, t: TimeLike) -> torch.Tensor:
        """Delta log p_t(x) = tr grad^2 log p_t(x), (B,). By integration by parts the Fisher information is
        J(P_t) = E|grad log p_t|^2 = -E Delta log p_t (``theory.estimators.lossgap.fisher_information``)."""
        return self.score_and_laplacian(x, t)[1]

    def score_and_laplacian(self, x, t: TimeLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(score (B, d), Laplacian of log p_t (B,)) in one evaluation. This default takes the trace of
        ``hessian``; the laws override it with a pass that never forms the (B, d, d) Hessians."""
        return self.score(x, t), torch.diagonal(self.hessian(x, t), dim1=-2, dim2=-1).sum(-1)

    def denoiser(self, x, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, m: int, t: TimeLike = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def components(self, t: TimeLike = 0.0) -> GaussianComponents:
        """P_t as a finite Gaussian mixture (t a scalar >= 0)."""
        raise NotImplementedError


#: a score: a law (its ``score`` is used) or a score function s(x, t)
ScoreLike = Union[NoisedLaw, ScoreFn]


def score_function(score: ScoreLike, name: str = "score") -> ScoreFn:
    """The score function of ``score``: a law's ``score`` method, or ``score`` itself if it is callable."""
    if isinstance(score, NoisedLaw):
        return score.score
    if callable(score):
        return score
    raise ValueError(f"{name} must be a NoisedLaw or a callable score(x, t), got {type(score).__name__}")
