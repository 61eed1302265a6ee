"""GaussianMixture: score and Hessian against autograd, one component against an independent Gaussian
closed form, the t -> infinity limit, Tweedie's formula, and the moments of its samples."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from theory.laws.mixture import GaussianMixture, paper_mixture

TIMES = [1e-4, 1e-2, 1.0, 5.0]


def _points(law, m, t, seed):
    """m draws of P_t, m Gaussian points around the component means, and the noised midpoints of
    consecutive means (where the responsibilities are split)."""
    g = torch.Generator().manual_seed(seed)
    around = law.means[torch.arange(m) % law.n_components] + 2.0 * torch.randn(m, law.dim, generator=g,
                                                                                dtype=torch.float64)
    mids = math.exp(-t / 2) * 0.5 * (law.means + law.means.roll(1, 0))
    return torch.cat([law.sample(m, t, g), around, mids])


@pytest.mark.parametrize("d", [1, 3, 16])
@pytest.mark.parametrize("t", TIMES)
def test_score_and_hessian_match_autograd(d, t, rel_err, autograd_score_hessian):
    law = paper_mixture(3, d, separation=1.0, anisotropy=5.0, seed=d)
    x = _points(law, 3, t, seed=1)
    score, hess = autograd_score_hessian(law, x, t)
    assert rel_err(law.score(x, t), score) < 1e-8
    assert rel_err(law.hessian(x, t), hess) < 1e-8


@pytest.mark.parametrize("d", [1, 3, 16])
def test_score_and_hessian_with_per_sample_times(d, rel_err, autograd_score_hessian):
    law = paper_mixture(3, d, separation=1.0, anisotropy=5.0, seed=10 + d)
    x = _points(law, 4, 0.1, seed=2)
    t = torch.tensor([TIMES[i % len(TIMES)] for i in range(x.shape[0])], dtype=torch.float64)
    score, hess = autograd_score_hessian(law, x, t)
    assert rel_err(law.score(x, t), score) < 1e-8
    assert rel_err(law.hessian(x, t), hess) < 1e-8
    # a per-sample t gives, row by row, what a scalar t gives
    for b in range(x.shape[0]):
        torch.testing.assert_close(law.hessian(x[b:b + 1], t[b]), law.hessian(x, t)[b:b + 1], rtol=1e-12,
                                   atol=1e-12)
        torch.testing.assert_close(law.log_prob(x[b:b + 1], float(t[b])), law.log_prob(x, t)[b:b + 1])


@pytest.mark.parametrize("t", [0.0, 1e-3, 0.5, 3.0])
def test_one_component_is_the_gaussian_closed_form(t):
    g = torch.Generator().manual_seed(7)
    d = 4
    A = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = A @ A.T + 0.1 * torch.eye(d, dtype=torch.float64)
    mu = torch.randn(d, generator=g, dtype=torch.float64) + 3.0
    law = GaussianMixture.gaussian(mu, cov)
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    C = a * a * cov + s2 * torch.eye(d, dtype=torch.float64)
    ref = MultivariateNormal(a * mu, covariance_matrix=C)
    x = ref.sample((16,))
    torch.testing.assert_close(law.log_prob(x, t), ref.log_prob(x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(law.score(x, t), -torch.linalg.solve(C, (x - a * mu).T).T, rtol=1e-10,
                               atol=1e-12)
    torch.testing.assert_close(law.hessian(x, t), -torch.linalg.inv(C).expand(16, d, d), rtol=1e-10,
                               atol=1e-12)
    # the posterior mean of X_0 given X_t = x: mu + a Sigma C^{-1} (x - a mu)
    torch.testing.assert_close(law.denoiser(x, t), mu + a * (cov @ torch.linalg.solve(C, (x - a * mu).T)).T,
                               rtol=1e-10, atol=1e-12)


def test_large_t_tends_to_standard_normal(assert_tends_to_standard_normal):
    assert_tends_to_standard_normal(paper_mixture(4, 3, separation=2.0, anisotropy=3.0, seed=0))


@pytest.mark.parametrize("t", [1e-3, 0.3, 4.0])
def test_tweedie(t, rel_err):
    law = paper_mixture(3, 5, separation=1.0, anisotropy=4.0, seed=3)
    x = _points(law, 20, t, seed=4)
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    assert rel_err(law.score(x, t), (a * law.denoiser(x, t) - x) / s2) < 1e-9


def test_responsibilities_are_a_posterior():
    law = paper_mixture(3, 2, separation=1.0, seed=5)
    x = _points(law, 10, 0.2, seed=6)
    r = law.responsibilities(x, 0.2)
    torch.testing.assert_close(r.sum(1), torch.ones(x.shape[0], dtype=torch.float64))
    # Bayes: r_k = pi_k N_k(x) / p(x)
    comps = [GaussianMixture.gaussian(law.means[k], law.covariances[k]).log_prob(x, 0.2) for k in range(3)]
    ref = torch.softmax(torch.stack(comps, 1) + law.weights.log(), dim=1)
    torch.testing.assert_close(r, ref, rtol=1e-12, atol=1e-14)


def _check_moments(samples, mean, cov, n_se=5.0):
    """Each mean coordinate and each covariance entry within n_se standard errors of the closed form
    (standard errors estimated from the samples themselves)."""
    m = samples.shape[0]
    se_mean = samples.std(0) / math.sqrt(m)
    assert bool(((samples.mean(0) - mean).abs() < n_se * se_mean).all()), (samples.mean(0), mean)
    c = samples - samples.mean(0)
    products = c[:, :, None] * c[:, None, :]
    se_cov = products.std(0) / math.sqrt(m)
    assert bool(((products.mean(0) - cov).abs() < n_se * se_cov).all()), (products.mean(0), cov)


@pytest.mark.parametrize("t", [0.0, 0.05, 1.0])
def test_samples_have_the_closed_form_moments(t):
    law = paper_mixture(3, 3, separation=1.5, anisotropy=4.0, seed=8)
    samples = law.sample(40_000, t, torch.Generator().manual_seed(9))
    mean, cov = law.moments(t)
    _check_moments(samples, mean, cov)
    # power: a law with shifted means is rejected by the same check
    with pytest.raises(AssertionError):
        _check_moments(samples + 0.05, mean, cov)
