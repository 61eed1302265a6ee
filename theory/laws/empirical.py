"""The empirical law of the training set, noised by the forward process.

    P^_t = (1/n) sum_i N(alpha_t x_i, sigma_t^2 I),

    log p^_t(x)  = logsumexp_i l_i(x) - |x - alpha_t c|^2/(2 sigma_t^2) - log n - (d/2) log(2 pi sigma_t^2),
    l_i(x)       = [alpha_t <x - alpha_t c, x_i - c> - alpha_t^2 |x_i - c|^2 / 2] / sigma_t^2,
    w_i(x)       = softmax_i l_i(x)                    (posterior P(X_0 = x_i | X_t = x)),
    E[X_0 | x]   = sum_i w_i(x) x_i,                   score = (alpha_t E[X_0 | x] - x) / sigma_t^2 (Tweedie),
    Hessian      = -I/sigma_t^2 + alpha_t^2/sigma_t^4 Cov_w[X_0 | X_t = x].

The posterior mean is one attention layer: queries x, keys alpha_t x_i / sigma_t^2 with a per-key bias
-alpha_t^2 |x_i|^2 / (2 sigma_t^2), values x_i. It is evaluated here by an explicit online softmax over
tiles of (query, training point) pairs, which keeps memory at O((B + n) d) plus one tile and returns the
log-normaliser log p^_t along with the mean (fused attention kernels do not expose it).

All products use the data centred at their mean c (exact: the posterior is translation-equivariant), so
the logits do not lose digits by cancellation when the data sit away from the origin.
"""

from __future__ import annotations

import math

import torch

from .._validate import DEFAULT_DTYPE, TimeLike, as_tensor, check_device, check_dtype, check_finite, check_positive_int
from .forward import TimeCoefficients
from .law import GaussianComponents, NoisedLaw

# (query, training point) pairs per tile: 8 MiB of float64 logits, in one buffer reused by every tile of a
# pass. Measured before the buffer (a new tensor per tile): tiles of 32 MiB and more crossed glibc's mmap
# threshold and were page-faulted afresh, 2^22 running 3.6x slower than 2^20 (n = 2e4, d = 64, float64;
# benchmarks/empirical_score_throughput.py). With the buffer, 2^17-2^20 time alike at d = 8 (0.18-0.21 s
# for 2,000 x 20,000 pairs) and 2^21 is 2x slower (the tile leaves the cache).
DEFAULT_TILE = 2 ** 20
MAX_QUERY_CHUNK = 4096


class EmpiricalLaw(NoisedLaw):
    """The empirical law of ``samples`` (n, d) noised to time t > 0; exact duplicates are allowed (they
    simply carry weight 2/n, 3/n, ...).

    ``tile_size`` bounds the number of (query, training point) pairs held at once; results do not
    depend on it beyond round-off. ``samples`` may be a tensor, array or nested list (integers become
    ``dtype``).

    Small t (theory._validate, "Times"): the score grows like |x - alpha_t x_i| / sigma_t^2 and the logits
    like |x|^2 / sigma_t^2, so every method returns finite values for t down to ~1e-300 at unit scale
    (the Hessian and posterior covariance, ~1/sigma_t^4, down to ~1e-150), and below that, where float64
    overflows (t = 1e-320, 5e-324), raises a one-line ValueError naming t instead of returning inf or NaN.
    """

    has_density_at_zero = False

    def __init__(self, samples, *, tile_size: int = DEFAULT_TILE, dtype: torch.dtype = DEFAULT_DTYPE,
                 device=None):
        self.dtype = check_dtype(dtype)
        device = check_device(device)
        self.device = device if device is not None else (
            samples.device if isinstance(samples, torch.Tensor) else torch.device("cpu"))
        x = as_tensor(samples, "samples", dtype=dtype, device=self.device)
        if x.ndim != 2 or x.shape[1] == 0:
            raise ValueError(f"samples must have shape (n, d) with d >= 1, got {tuple(x.shape)}")
        if x.shape[0] == 0:
            raise ValueError("samples is empty: the empirical law needs at least one training point")
        check_finite(x, "samples")
        self.tile_size = check_positive_int(tile_size, "tile_size")
        self.samples = x
        self.n, self.dim = x.shape
        self.centre = x.mean(dim=0)
        self._centred = x - self.centre
        self._sq_norms = self._centred.pow(2).sum(dim=1)
        ones = torch.ones_like(self._sq_norms)
        self._keys = torch.cat([self._centred, self._sq_norms[:, None]], dim=1)                # (n, d + 1)
        self._values_t = torch.stack([*self._centred.T, ones, self._sq_norms]).contiguous()    # (d + 2, n)

    # ------------------------------------------------------------------ streaming kernels
    def _queries(self, xq: torch.Tensor, a: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """The augmented queries q = [xq alpha/sigma^2, -alpha^2/(2 sigma^2)] (B, d + 1), so that the logits
        of the centred queries xq are one product, l_i(x) = <q, [x_i - c, |x_i - c|^2]> (the x-only term
        dropped)."""
        bias = (-(a * a) / (2 * s2)).expand(xq.shape[0], 1)
        return torch.cat([xq * (a / s2), bias], dim=1)

    def _logits(self, q: torch.Tensor, j0: int, j1: int, out: torch.Tensor | None = None) -> torch.Tensor:
        """l_i(x) for the training points j0:j1 and augmented queries q (``_queries``), (B, j1 - j0); into the
        buffer ``out`` where given (not differentiable), else a new tensor."""
        keys = self._keys[j0:j1].T
        if out is None:
            return q @ keys
        return torch.mm(q, keys, out=out.view(-1)[:q.shape[0] * (j1 - j0)].view(q.shape[0], j1 - j0))

    def _pass_mean(self, xq, a, s2, second: bool = False):
        """Online softmax over the data: returns logsumexp_i l_i (B,) and the centred posterior mean (B, d),
        and with ``second`` also the posterior second moment E_w |x_i - c|^2 (B,) of the centred points.

        Per tile of training points: one product for the logits (into a reused buffer unless autograd
        needs the graph), the running maximum (a constant shift: logsumexp does not depend on it, so it is
        taken without gradient), exp in place, and one product of the values [x_i - c, 1, |x_i - c|^2]
        with the weights that accumulates the weighted sum, the normaliser and the second moment at once,
        transposed ((d + 2, B): the faster layout for few columns)."""
        B, d = xq.shape[0], self.dim
        q = self._queries(xq, a, s2)
        cols = d + 2 if second else d + 1
        step = max(1, self.tile_size // B)
        buf = None if q.requires_grad else torch.empty(B * min(step, self.n), dtype=self.dtype, device=self.device)
        running_max = torch.full((B,), -math.inf, dtype=self.dtype, device=self.device)
        acc = torch.zeros(cols, B, dtype=self.dtype, device=self.device)
        for j0 in range(0, self.n, step):
            j1 = min(self.n, j0 + step)
            logits = self._logits(q, j0, j1, buf)
            new_max = torch.maximum(running_max, logits.detach().amax(dim=1))
            probs = logits.sub_(new_max[:, None]).exp_()
            acc = torch.addmm(acc * torch.exp(running_max - new_max), self._values_t[:cols, j0:j1], probs.T)
            running_max = new_max
        total = acc[d]
        lse, mean = running_max + torch.log(total), (acc[:d] / total).T
        return (lse, mean, acc[d + 1] / total) if second else (lse, mean)

    def _pass_cov(self, xq, a, s2, lse, mean) -> torch.Tensor:
        """Second pass: Cov_w[X_0 | x] = sum_i w_i (x_i - m)(x_i - m)^T with exact weights exp(l_i - lse),
        accumulated around the posterior mean (no E[XX^T] - mm^T cancellation)."""
        B = xq.shape[0]
        q = self._queries(xq, a, s2)
        step = max(1, self.tile_size // (B * self.dim))
        cov = torch.zeros(B, self.dim, self.dim, dtype=self.dtype, device=self.device)
        for j0 in range(0, self.n, step):
            j1 = min(self.n, j0 + step)
            w = torch.exp(self._logits(q, j0, j1) - lse[:, None])                  # (B, m)
            diff = self._centred[j0:j1][None, :, :] - mean[:, None, :]             # (B, m, d)
            cov = torch.baddbmm(cov, (diff * w[..., None]).transpose(1, 2), diff)
        return cov

    def _chunks(self, x: torch.Tensor, tc: TimeCoefficients, size: int):
        """Yield (slice, centred queries, alpha, sigma^2) for query chunks of at most ``size`` rows."""
        for b0 in range(0, x.shape[0], size):
            b1 = min(x.shape[0], b0 + size)
            a = tc.alpha[b0:b1] if tc.alpha.ndim else tc.alpha
            s2 = tc.sigma2[b0:b1] if tc.sigma2.ndim else tc.sigma2
            yield slice(b0, b1), x[b0:b1] - a * self.centre, a, s2

    def _query_chunk(self) -> int:
        return max(1, min(MAX_QUERY_CHUNK, self.tile_size))

    def _hessian_chunk(self) -> int:
        return max(1, min(256, self.tile_size // self.dim))

    # ------------------------------------------------------------------ interface
    def log_prob(self, x, t: TimeLike) -> torch.Tensor:
        """log p^_t(x), (B,)."""
        x, tc = self._inputs(x, t)
        out = torch.empty(x.shape[0], dtype=self.dtype, device=self.device)
        for sl, xq, a, s2 in self._chunks(x, tc, self._query_chunk()):
            lse, _ = self._pass_mean(xq, a, s2)
            s2v = s2.reshape(-1)
            out[sl] = (lse - xq.pow(2).sum(1) / (2 * s2v) - math.log(self.n)
                       - 0.5 * self.dim * torch.log(2 * math.pi * s2v))
        return self._checked(out, "log_prob", tc, x)

    def denoiser(self, x, t: TimeLike) -> torch.Tensor:
        """E[X_0 | X_t = x] = sum_i w_i(x) x_i, (B, d)."""
        x, tc = self._inputs(x, t)
        out = torch.empty_like(x)
        for sl, xq, a, s2 in self._chunks(x, tc, self._query_chunk()):
            out[sl] = self._pass_mean(xq, a, s2)[1] + self.centre
        return self._checked(out, "denoiser", tc, x)

    def score(self, x, t: TimeLike) -> torch.Tensor:
        """grad log p^_t(x) = (alpha_t E[X_0 | X_t = x] - x) / sigma_t^2, (B, d)."""
        x, tc = self._inputs(x, t)
        out = torch.empty_like(x)
        for sl, xq, a, s2 in self._chunks(x, tc, self._query_chunk()):
            mean = self._pass_mean(xq, a, s2)[1]
            out[sl] = (a * mean - xq) / s2
        return self._checked(out, "score", tc, x)

    def score_and_laplacian(self, x, t: TimeLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(grad log p^_t(x) (B, d), Delta log p^_t(x) (B,)) in one pass over the data, with

            Delta log p^_t(x) = -d/sigma_t^2 + (alpha_t^2/sigma_t^4) tr Cov_w[X_0 | X_t = x],
            tr Cov_w = E_w |x_i - c|^2 - |E_w[x_i] - c|^2        (c: the data's mean; clamped at 0),

        the trace of ``hessian`` without the (B, d, d) matrices. Round-off: the difference of the two
        moments loses about eps * E_w|x_i - c|^2 in absolute terms, i.e. about 2e-16 alpha_t^2/sigma_t^4
        E_w|x_i - c|^2 in the Laplacian (1e-5 at sigma_t^2 = 1e-5 for |x_i - c|^2 ~ 10): far below the
        d/sigma_t^2 it corrects and below the O(1) terms the Loss-Gap estimators resolve."""
        x, tc = self._inputs(x, t)
        score = torch.empty_like(x)
        lap = torch.empty(x.shape[0], dtype=self.dtype, device=self.device)
        for sl, xq, a, s2 in self._chunks(x, tc, self._query_chunk()):
            _, mean, moment = self._pass_mean(xq, a, s2, second=True)
            score[sl] = (a * mean - xq) / s2
            s2v, av = s2.reshape(-1), a.reshape(-1)
            var = (moment - mean.pow(2).sum(1)).clamp_min(0.0)
            lap[sl] = (av * av / (s2v * s2v)) * var - self.dim / s2v
        return score, lap

    def posterior_cov(self, x, t: TimeLike) -> torch.Tensor:
        """Cov[X_0 | X_t = x] under the posterior weights, (B, d, d)."""
        x, tc = self._inputs(x, t)
        return self._checked(self._posterior_cov(x, tc), "posterior_cov", tc, x)

    def _posterior_cov(self, x: torch.Tensor, tc: TimeCoefficients) -> torch.Tensor:
        out = torch.empty(x.shape[0], self.dim, self.dim, dtype=self.dtype, device=self.device)
        for sl, xq, a, s2 in self._chunks(x, tc, self._hessian_chunk()):
            lse, mean = self._pass_mean(xq, a, s2)
            out[sl] = self._pass_cov(xq, a, s2, lse, mean)
        return out

    def hessian(self, x, t: TimeLike) -> torch.Tensor:
        """grad^2 log p^_t(x) = -I/sigma_t^2 + alpha_t^2/sigma_t^4 Cov_w[X_0 | X_t = x], (B, d, d)."""
        x, tc = self._inputs(x, t)
        cov = self._posterior_cov(x, tc)
        a2 = (tc.alpha ** 2).reshape(-1, 1, 1) if tc.alpha.ndim else tc.alpha ** 2
        s2 = tc.sigma2.reshape(-1, 1, 1) if tc.sigma2.ndim else tc.sigma2
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return self._checked(cov * (a2 / s2 ** 2) - eye / s2, "hessian", tc, x)

    def posterior_weights(self, x, t: TimeLike) -> torch.Tensor:
        """The posterior over training points w_i(x) = P(X_0 = x_i | X_t = x), dense (B, n): for small
        problems and tests; the streamed methods above never build this matrix."""
        x, tc = self._inputs(x, t)
        out = torch.empty(x.shape[0], self.n, dtype=self.dtype, device=self.device)
        for sl, xq, a, s2 in self._chunks(x, tc, self._query_chunk()):
            out[sl] = torch.softmax(self._logits(self._queries(xq, a, s2), 0, self.n), dim=1)
        return self._checked(out, "posterior_weights", tc, x)

    def sample(self, m: int, t: TimeLike = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """m draws from P^_t: a training point chosen uniformly, then noised (t = 0: the points)."""
        m, tc = self._sample_time(m, t, generator)
        idx = torch.randint(self.n, (m,), generator=generator, device=self.device)
        return self._noise(self.samples[idx], tc, generator)

    def components(self, t: TimeLike = 0.0) -> GaussianComponents:
        """P^_t = sum_i (1/n) N(alpha_t x_i, sigma_t^2 I): factors sigma_t I (a broadcast view, no n d^2 memory)."""
        tc = self._scalar_time(t, "components")
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        weights = torch.full((self.n,), 1.0 / self.n, dtype=self.dtype, device=self.device)
        return GaussianComponents(weights, tc.alpha * self.samples, (eye * tc.sigma).expand(self.n, -1, -1))

    def __repr__(self) -> str:
        return f"EmpiricalLaw(n={self.n}, d={self.dim}, dtype={self.dtype}, device={self.device})"


def as_points(data, name: str = "data") -> torch.Tensor:
    """The training points of ``data``, an ``EmpiricalLaw`` (its samples) or an ``(n, d)`` array (checked
    finite, n, d >= 1; a tensor keeps its dtype)."""
    if isinstance(data, EmpiricalLaw):
        return data.samples
    x = check_finite(as_tensor(data, name), name)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n, d >= 1, got {tuple(x.shape)}")
    return x


def as_empirical(data) -> EmpiricalLaw:
    """``data`` itself if it is an ``EmpiricalLaw``, else the (float64) empirical law of the points."""
    return data if isinstance(data, EmpiricalLaw) else EmpiricalLaw(as_points(data))
