"""The true law: a Gaussian mixture, closed under the forward process.

    P_0 = sum_k pi_k N(mu_k, Sigma_k)   =>   P_t = sum_k pi_k N(alpha_t mu_k, C_k(t)),
    C_k(t) = alpha_t^2 Sigma_k + sigma_t^2 I.

Each Sigma_k is diagonalised once, Sigma_k = U_k diag(lambda_k) U_k^T, so that C_k(t) = U_k diag(alpha_t^2
lambda_k + sigma_t^2) U_k^T for every t at no further cost; log-densities, scores and Hessians are then
exact closed forms evaluated with log-sum-exp over components (a per-sample t costs nothing extra).
"""

from __future__ import annotations

import math

import torch

from .._validate import (DEFAULT_DTYPE, TimeLike, as_tensor, check_array, check_device, check_dtype, check_finite,
                         check_int, check_number, check_positive_int, check_probability_vector, check_spd)
from .law import GaussianComponents, NoisedLaw


class GaussianMixture(NoisedLaw):
    """sum_k pi_k N(mu_k, Sigma_k) on R^d with full covariances, noised to any t >= 0.

    Parameters
    ----------
    weights : (K,) probability vector pi (summing to 1 within sqrt(eps) of the dtype it is given in:
        float32 weights of 1/3 each pass and are renormalised in float64).
    means : (K, d) component means mu_k.
    covariances : (K, d, d) symmetric positive-definite Sigma_k.

    Each may be a tensor, a numpy array or a nested list. Every method is finite for every t >= 0,
    down to the smallest positive float64 (C_k(t) = alpha_t^2 Sigma_k + sigma_t^2 I >= lambda_min(Sigma_k));
    only |x| beyond ~1e150, where |x|^2 overflows, raises a ValueError naming x.
    """

    has_density_at_zero = True

    def __init__(self, weights, means, covariances, *, dtype: torch.dtype = DEFAULT_DTYPE, device=None):
        self.dtype = check_dtype(dtype)
        device = check_device(device)
        self.device = device if device is not None else (
            means.device if isinstance(means, torch.Tensor) else torch.device("cpu"))
        given = as_tensor(weights, "weights", device=self.device)
        w = check_finite(given.to(dtype), "weights")
        mu = check_finite(as_tensor(means, "means", dtype=dtype, device=self.device), "means")
        cov = as_tensor(covariances, "covariances", dtype=dtype, device=self.device)
        if mu.ndim != 2 or mu.shape[0] == 0 or mu.shape[1] == 0:
            raise ValueError(f"means must have shape (K, d) with K, d >= 1, got {tuple(mu.shape)}")
        K, d = mu.shape
        if w.shape != (K,):
            raise ValueError(f"weights must have shape ({K},) to match means, got {tuple(w.shape)}")
        w = check_probability_vector(w, "weights", given.dtype)
        if cov.shape != (K, d, d):
            raise ValueError(f"covariances must have shape ({K}, {d}, {d}), got {tuple(cov.shape)}")
        check_spd(cov, "covariances")
        cov = 0.5 * (cov + cov.transpose(-2, -1))
        self.weights, self.means, self.covariances = w, mu, cov
        self.dim, self.n_components = d, K
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(cov)  # (K, d), (K, d, d)
        self._log_weights = torch.log(w)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def gaussian(cls, mean, covariance, **kwargs) -> "GaussianMixture":
        """A single Gaussian N(mean, covariance) as a one-component mixture: ``mean`` (d,), ``covariance``
        (d, d) symmetric positive definite."""
        mean = check_array(mean, "mean", ("d",))
        cov = check_array(covariance, "covariance", (mean.shape[0], mean.shape[0]), device=mean.device)
        check_spd(cov, "covariance")
        return cls(torch.ones(1, dtype=torch.float64), mean[None], cov[None], **kwargs)

    # ------------------------------------------------------------------ per-component terms
    def _components(self, x: torch.Tensor, a: torch.Tensor, s2: torch.Tensor):
        """For each point and component: log N(x; a mu_k, C_k) (B, K), the component score
        g_k = -C_k^{-1}(x - a mu_k) (B, K, d), the eigen-coordinates of x - a mu_k and the variances
        c = a^2 lambda + s2 ((K, d) for a scalar t, (B, K, d) for per-sample t)."""
        a_ = a.reshape(-1, 1, 1) if a.ndim else a
        s2_ = s2.reshape(-1, 1, 1) if s2.ndim else s2
        diff = x[:, None, :] - a_ * self.means[None]                              # (B, K, d)
        proj = torch.einsum("bkd,kde->bke", diff, self.eigenvectors)             # U_k^T (x - a mu_k)
        c = a_ ** 2 * self.eigenvalues + s2_                                      # variances along U_k
        maha = (proj.pow(2) / c).sum(-1)
        logdet = torch.log(c).sum(-1)
        log_normal = -0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))
        g = -torch.einsum("kde,bke->bkd", self.eigenvectors, proj / c)
        return log_normal, g, proj, c

    def _log_joint(self, x, a, s2):
        log_normal, g, proj, c = self._components(x, a, s2)
        return self._log_weights + log_normal, g, proj, c

    # ------------------------------------------------------------------ interface
    def log_prob(self, x, t: TimeLike) -> torch.Tensor:
        """log p_t(x) = logsumexp_k [log pi_k + log N(x; alpha_t mu_k, alpha_t^2 Sigma_k + sigma_t^2 I)]."""
        x, tc = self._inputs(x, t)
        log_joint, *_ = self._log_joint(x, tc.alpha, tc.sigma2)
        return self._checked(torch.logsumexp(log_joint, dim=1), "log_prob", tc, x)

    def responsibilities(self, x, t: TimeLike) -> torch.Tensor:
        """Posterior component probabilities r_k(x) = P(component k | X_t = x), (B, K)."""
        x, tc = self._inputs(x, t)
        log_joint, *_ = self._log_joint(x, tc.alpha, tc.sigma2)
        return self._checked(torch.softmax(log_joint, dim=1), "responsibilities", tc, x)

    def score(self, x, t: TimeLike) -> torch.Tensor:
        """grad log p_t(x) = sum_k r_k(x) g_k(x),  g_k = -C_k(t)^{-1} (x - alpha_t mu_k)."""
        x, tc = self._inputs(x, t)
        log_joint, g, _, _ = self._log_joint(x, tc.alpha, tc.sigma2)
        r = torch.softmax(log_joint, dim=1)
        return self._checked(torch.einsum("bk,bkd->bd", r, g), "score", tc, x)

    def hessian(self, x, t: TimeLike) -> torch.Tensor:
        """grad^2 log p_t(x) = -sum_k r_k C_k^{-1} + sum_k r_k (g_k - s)(g_k - s)^T  (s = the score):
        the law of total variance applied to the component scores, with no cancellation."""
        x, tc = self._inputs(x, t)
        log_joint, g, _, c = self._log_joint(x, tc.alpha, tc.sigma2)
        r = torch.softmax(log_joint, dim=1)
        s = torch.einsum("bk,bkd->bd", r, g)
        centred = g - s[:, None, :]
        cov_g = torch.einsum("bk,bkd,bke->bde", r, centred, centred)
        U = self.eigenvectors
        if c.ndim == 2:  # one t for the batch: precision matrices once, (K, d, d)
            precision = torch.einsum("kde,ke,kfe->kdf", U, 1.0 / c, U)
            mean_precision = torch.einsum("bk,kdf->bdf", r, precision)
        else:
            mean_precision = torch.einsum("kde,bke,kfe->bdf", U, r[..., None] / c, U)
        return self._checked(cov_g - mean_precision, "hessian", tc, x)

    def score_and_laplacian(self, x, t: TimeLike) -> tuple[torch.Tensor, torch.Tensor]:
        """(grad log p_t(x) (B, d), Delta log p_t(x) (B,)): the trace of ``hessian``,

            Delta log p_t(x) = sum_k r_k |g_k - s|^2 - sum_k r_k tr C_k(t)^{-1},   tr C_k^{-1} = sum_j 1/(alpha_t^2 lambda_kj + sigma_t^2),

        without forming the (B, d, d) matrices (for one Gaussian it is the constant -tr C(t)^{-1})."""
        x, tc = self._inputs(x, t)
        log_joint, g, _, c = self._log_joint(x, tc.alpha, tc.sigma2)
        r = torch.softmax(log_joint, dim=1)
        s = torch.einsum("bk,bkd->bd", r, g)
        spread = torch.einsum("bk,bk->b", r, (g - s[:, None, :]).pow(2).sum(-1))
        inv_trace = (1.0 / c).sum(-1)                       # (K,) for one t, (B, K) per sample
        mean_inv = r @ inv_trace if inv_trace.ndim == 1 else (r * inv_trace).sum(-1)
        return s, spread - mean_inv

    def denoiser(self, x, t: TimeLike) -> torch.Tensor:
        """E[X_0 | X_t = x] = sum_k r_k [mu_k + alpha_t Sigma_k C_k^{-1} (x - alpha_t mu_k)] (computed
        from the component posteriors, independently of ``score``; Tweedie's formula links the two)."""
        x, tc = self._inputs(x, t)
        log_joint, _, proj, c = self._log_joint(x, tc.alpha, tc.sigma2)
        r = torch.softmax(log_joint, dim=1)
        a_ = tc.alpha.reshape(-1, 1, 1) if tc.alpha.ndim else tc.alpha
        shrunk = torch.einsum("kde,bke->bkd", self.eigenvectors, a_ * self.eigenvalues * proj / c)
        return self._checked(torch.einsum("bk,bkd->bd", r, self.means[None] + shrunk), "denoiser", tc, x)

    def sample(self, m: int, t: TimeLike = 0.0, generator: torch.Generator | None = None) -> torch.Tensor:
        """m draws from P_t: a component k ~ pi, X_0 = mu_k + U_k diag(lambda_k)^{1/2} z, then
        X_t = alpha_t X_0 + sigma_t Z (exactly N(alpha_t mu_k, C_k(t)) given k)."""
        m, tc = self._sample_time(m, t, generator)
        k = torch.multinomial(self.weights, m, replacement=True, generator=generator)
        z = torch.randn(m, self.dim, generator=generator, dtype=self.dtype, device=self.device)
        # per component (not a gathered (m, d, d) stack of eigenvectors, which costs m d^2 memory)
        x0 = self.means[k]
        for j in range(self.n_components):
            sel = k == j
            if bool(sel.any()):
                x0[sel] += (z[sel] * self.eigenvalues[j].sqrt()) @ self.eigenvectors[j].T
        return self._noise(x0, tc, generator)

    def components(self, t: TimeLike = 0.0) -> GaussianComponents:
        """P_t = sum_k pi_k N(alpha_t mu_k, F_k F_k^T) with F_k = U_k diag(alpha_t^2 lambda_k + sigma_t^2)^(1/2)."""
        tc = self._scalar_time(t, "components")
        scale = torch.sqrt(tc.alpha * tc.alpha * self.eigenvalues + tc.sigma2)          # (K, d)
        return GaussianComponents(self.weights, tc.alpha * self.means, self.eigenvectors * scale[:, None, :])

    def moments(self, t: TimeLike = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (d,) and covariance (d, d) of P_t in closed form:
        E X_t = alpha_t sum pi_k mu_k, Cov X_t = sum pi_k (C_k(t) + alpha_t^2 mu_k mu_k^T) - E X_t E X_t^T."""
        a, s2 = self._scalar_time(t, "moments")[1:]
        mean = a * (self.weights @ self.means)
        second = torch.einsum("k,kde->de", self.weights,
                              a ** 2 * (self.covariances + torch.einsum("kd,ke->kde", self.means, self.means)))
        eye = torch.eye(self.dim, dtype=self.dtype, device=self.device)
        return mean, second + s2 * eye - torch.outer(mean, mean)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, dtype={self.dtype}, device={self.device})"


def _random_rotation(d: int, generator: torch.Generator, dtype) -> torch.Tensor:
    """A Haar-random orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=dtype))
    return q * torch.sign(torch.diagonal(r))


def paper_mixture(n_components: int, dim: int, *, separation: float = 1.0, trace: float | None = None,
                  anisotropy: float = 1.0, seed: int = 0, dtype: torch.dtype = DEFAULT_DTYPE,
                  device=None) -> GaussianMixture:
    """The paper's setting (Sec. 4, Thm 4.3): K equal-weight components in R^d whose means have minimum
    pairwise distance exactly Delta_min = separation * sqrt(d), with covariances of trace ``trace``
    (default d, i.e. Sigma = I when isotropic).

    ``anisotropy`` = lambda_max / lambda_min of each Sigma_k: 1 gives isotropic Sigma_k = (trace/d) I;
    > 1 gives eigenvalues spaced geometrically between the two, normalised to the trace, in a random
    basis per component. Means are Gaussian directions rescaled so the closest pair sits at Delta_min.
    Everything is drawn from ``seed`` on the CPU in float64, then moved, so the law is reproducible.
    """
    K, d = check_positive_int(n_components, "n_components"), check_positive_int(dim, "dim")
    separation = check_number(separation, "separation", low=0.0, low_open=True)
    anisotropy = check_number(anisotropy, "anisotropy", low=1.0)
    trace = float(d) if trace is None else check_number(trace, "trace", low=0.0, low_open=True)
    g = torch.Generator().manual_seed(check_int(seed, "seed"))
    means = torch.randn(K, d, generator=g, dtype=torch.float64)
    if K > 1:
        dist = torch.cdist(means, means) + torch.diag(torch.full((K,), math.inf, dtype=torch.float64))
        means = means * (separation * math.sqrt(d) / dist.min())
    else:
        means.zero_()
    spectrum = torch.logspace(0.0, -math.log10(anisotropy), d, dtype=torch.float64) if d > 1 else torch.ones(1, dtype=torch.float64)
    spectrum = spectrum * (trace / spectrum.sum())
    covs = []
    for _ in range(K):
        if anisotropy == 1.0:
            covs.append(torch.diag(spectrum))
        else:
            q = _random_rotation(d, g, torch.float64)
            covs.append(q @ torch.diag(spectrum) @ q.T)
    return GaussianMixture(torch.full((K,), 1.0 / K, dtype=torch.float64), means, torch.stack(covs),
                           dtype=dtype, device=device)
