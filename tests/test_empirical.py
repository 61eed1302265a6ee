"""EmpiricalLaw: score and Hessian against autograd (data far from the origin included), the streamed
kernels against a dense B x n reference, independence from tile_size, duplicates, n = 1, the large-t
limit, Tweedie's formula and the moments of its samples."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal

from theory.laws.empirical import EmpiricalLaw
from theory.laws.mixture import GaussianMixture
from theory.evaluation.neighbours import nearest_neighbours

TIMES = [1e-4, 1e-2, 1.0, 5.0]


def _data(n, d, offset, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + offset


def _queries(law, m, t, seed):
    """m draws of P^_t, m points around the data at unit scale, and m points near the noised midpoints
    alpha_t (x_i + x_j)/2 of nearest-neighbour pairs, where the posterior is split between two points (so the posterior
    covariance term of the Hessian matters even at small t). They are shifted along the pair by
    sigma_t^2 (x_i - x_j) / (alpha_t |x_i - x_j|^2), which makes the posterior odds e : 1 and keeps the score
    away from the exact zero (at the midpoint itself) where a relative error means nothing."""
    g = torch.Generator().manual_seed(seed)
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    near = law.sample(m, t, g)
    around = law.samples[:m] + torch.randn(m, law.dim, generator=g, dtype=torch.float64)
    _, nearest = nearest_neighbours(law.samples, law.samples, 1, exclude_self=True)
    xi, xj = law.samples[:m], law.samples[nearest[:m, 0]]          # no third point is nearer their midpoint
    gap = xi - xj
    split = a * 0.5 * (xi + xj) + s2 * gap / (a * gap.pow(2).sum(1, keepdim=True))
    return torch.cat([near, around, split])


def dense_reference(data, x, t, weights=None):
    """Direct computation from the full (B, n) matrix of logits -|x - alpha_t x_i|^2/(2 sigma_t^2)
    (+ log weight): log p^_t, score, Hessian and posterior weights."""
    n, d = data.shape
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    logw = torch.full((n,), -math.log(n), dtype=data.dtype) if weights is None else weights.log()
    diff = x[:, None, :] - a * data[None, :, :]                       # (B, n, d)
    logits = -diff.pow(2).sum(-1) / (2 * s2) + logw                   # (B, n)
    log_prob = torch.logsumexp(logits, 1) - 0.5 * d * math.log(2 * math.pi * s2)
    w = torch.softmax(logits, 1)
    mean = w @ data
    score = (a * mean - x) / s2
    centred = data[None, :, :] - mean[:, None, :]
    cov = torch.einsum("bn,bnd,bne->bde", w, centred, centred)
    hess = a * a / s2 ** 2 * cov - torch.eye(d, dtype=data.dtype) / s2
    return log_prob, score, hess, w


@pytest.mark.parametrize("d", [1, 3, 16])
@pytest.mark.parametrize("t", TIMES)
def test_score_and_hessian_match_autograd(d, t, rel_err, autograd_score_hessian):
    law = EmpiricalLaw(_data(12, d, offset=10.0, seed=d))       # data far from the origin
    x = _queries(law, 3, t, seed=1)
    score, hess = autograd_score_hessian(law, x, t)
    assert rel_err(law.score(x, t), score) < 1e-8
    assert rel_err(law.hessian(x, t), hess) < 1e-8


@pytest.mark.parametrize("d", [1, 3, 16])
def test_score_and_hessian_with_per_sample_times(d, rel_err, autograd_score_hessian):
    law = EmpiricalLaw(_data(12, d, offset=10.0, seed=20 + d))
    x = _queries(law, 4, 0.01, seed=2)
    t = torch.tensor([TIMES[i % len(TIMES)] for i in range(x.shape[0])], dtype=torch.float64)
    score, hess = autograd_score_hessian(law, x, t)
    assert rel_err(law.score(x, t), score) < 1e-8
    assert rel_err(law.hessian(x, t), hess) < 1e-8
    for b in range(x.shape[0]):   # row b with its own scalar time
        assert rel_err(law.score(x[b:b + 1], float(t[b])), law.score(x, t)[b:b + 1]) < 1e-12


@pytest.mark.parametrize("t", [1e-3, 0.1, 2.0])
@pytest.mark.parametrize("tile_size", [1, 7, 1000, None])
def test_streamed_kernels_equal_dense_reference(t, tile_size, rel_err):
    data = _data(30, 4, offset=3.0, seed=3)
    law = EmpiricalLaw(data) if tile_size is None else EmpiricalLaw(data, tile_size=tile_size)
    x = _queries(law, 10, t, seed=4)
    log_prob, score, hess, w = dense_reference(data, x, t)
    assert float((law.log_prob(x, t) - log_prob).abs().max()) < 1e-10 * float(log_prob.abs().max())
    assert rel_err(law.score(x, t), score) < 1e-10
    assert rel_err(law.hessian(x, t), hess) < 1e-10
    assert rel_err(law.posterior_weights(x, t), w) < 1e-10
    assert rel_err(law.denoiser(x, t), w @ data) < 1e-10


@pytest.mark.parametrize("d", [2, 8, 64])
def test_buffered_pass_equals_the_differentiable_pass_and_the_dense_reference(d, rel_err):
    """The streamed pass without autograd (logits in one reused buffer, shift and exp in place) against the
    same pass with autograd's graph (new tensors per tile) and the dense reference, on 2,000 points in
    several tiles of 2^14 pairs at a small t (tolerance: 1e-10 relative, round-off of float64 sums)."""
    data = _data(2000, d, offset=2.0, seed=40 + d)
    law = EmpiricalLaw(data, tile_size=2 ** 14)
    x = _queries(law, 40, 1e-3, seed=41)
    log_prob, score, _, w = dense_reference(data, x, 1e-3)
    x_grad = x.clone().requires_grad_(True)
    differentiable = law.log_prob(x_grad, 1e-3)
    (autograd_score,) = torch.autograd.grad(differentiable.sum(), x_grad)
    buffered = law.log_prob(x, 1e-3)
    assert float((buffered - differentiable.detach()).abs().max()) < 1e-10 * float(log_prob.abs().max())
    assert float((buffered - log_prob).abs().max()) < 1e-10 * float(log_prob.abs().max())
    assert rel_err(law.score(x, 1e-3), score) < 1e-10
    assert rel_err(autograd_score, score) < 1e-8
    assert rel_err(law.denoiser(x, 1e-3), w @ data) < 1e-10


def test_tile_size_does_not_change_results():
    data = _data(50, 3, offset=-5.0, seed=5)
    x = _queries(EmpiricalLaw(data), 15, 0.05, seed=6)
    ref = EmpiricalLaw(data)
    for tile in [1, 7, 1000]:
        law = EmpiricalLaw(data, tile_size=tile)
        for method in ("log_prob", "score", "hessian"):
            torch.testing.assert_close(getattr(law, method)(x, 0.05), getattr(ref, method)(x, 0.05),
                                       rtol=1e-12, atol=1e-12)


def test_duplicates_equal_the_weighted_mixture(rel_err):
    """Data with x_0 three times and x_1 twice is the law with weights 3/n, 2/n, 1/n, ...; compared with
    a GaussianMixture whose components have a negligible covariance 1e-14 I (so that at t = 0.5 it differs
    from point masses by ~1e-14 relatively), and with the dense weighted reference."""
    base = _data(8, 3, offset=1.0, seed=7)
    data = torch.cat([base, base[:1], base[:1], base[1:2]])
    n = data.shape[0]
    weights = torch.tensor([3, 2, 1, 1, 1, 1, 1, 1], dtype=torch.float64) / n
    t = 0.5
    law = EmpiricalLaw(data)
    mix = GaussianMixture(weights, base, 1e-14 * torch.eye(3, dtype=torch.float64).expand(8, 3, 3))
    x = _queries(EmpiricalLaw(base), 8, t, seed=8)
    torch.testing.assert_close(law.log_prob(x, t), mix.log_prob(x, t), rtol=1e-10, atol=1e-10)
    assert rel_err(law.score(x, t), mix.score(x, t)) < 1e-10
    assert rel_err(law.hessian(x, t), mix.hessian(x, t)) < 1e-10
    log_prob, score, hess, _ = dense_reference(base, x, t, weights)
    torch.testing.assert_close(law.log_prob(x, t), log_prob, rtol=1e-10, atol=1e-10)
    assert rel_err(law.score(x, t), score) < 1e-10
    # ...and it is not the law of the distinct points with equal weights
    assert rel_err(EmpiricalLaw(base).score(x, t), score) > 1e-3


@pytest.mark.parametrize("t", [1e-4, 0.1, 3.0])
def test_single_point_is_a_gaussian(t):
    """n = 1: P^_t = N(alpha_t x_1, sigma_t^2 I) exactly."""
    x1 = torch.tensor([[10.0, -3.0, 0.5]], dtype=torch.float64)
    law = EmpiricalLaw(x1)
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    ref = MultivariateNormal(a * x1[0], covariance_matrix=s2 * torch.eye(3, dtype=torch.float64))
    x = ref.sample((8,))
    torch.testing.assert_close(law.log_prob(x, t), ref.log_prob(x), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(law.score(x, t), -(x - a * x1) / s2, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(law.hessian(x, t), (-torch.eye(3, dtype=torch.float64) / s2).expand(8, 3, 3),
                               rtol=1e-12, atol=0)
    torch.testing.assert_close(law.denoiser(x, t), x1.expand(8, 3), rtol=1e-14, atol=0)


def test_large_t_tends_to_standard_normal(assert_tends_to_standard_normal):
    assert_tends_to_standard_normal(EmpiricalLaw(_data(40, 3, offset=2.0, seed=9)))


@pytest.mark.parametrize("t", [1e-4, 0.3, 4.0])
def test_tweedie(t, rel_err):
    law = EmpiricalLaw(_data(25, 4, offset=10.0, seed=10))
    x = _queries(law, 10, t, seed=11)
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    assert rel_err(law.score(x, t), (a * law.denoiser(x, t) - x) / s2) < 1e-9


@pytest.mark.parametrize("t", [0.0, 0.05, 1.0])
def test_samples_have_the_data_moments(t):
    """P^_t has mean alpha_t xbar and covariance alpha_t^2 Cov_n(x) + sigma_t^2 I (Cov_n with 1/n).
    Each coordinate of the mean and each covariance entry within 5 standard errors."""
    data = _data(20, 3, offset=1.0, seed=12) * torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)
    law = EmpiricalLaw(data)
    m = 40_000
    samples = law.sample(m, t, torch.Generator().manual_seed(13))
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    centred = data - data.mean(0)
    mean = a * data.mean(0)
    cov = a * a * centred.T @ centred / data.shape[0] + s2 * torch.eye(3, dtype=torch.float64)
    assert bool(((samples.mean(0) - mean).abs() < 5 * samples.std(0) / math.sqrt(m)).all())
    c = samples - samples.mean(0)
    products = c[:, :, None] * c[:, None, :]
    assert bool(((products.mean(0) - cov).abs() < 5 * products.std(0) / math.sqrt(m)).all())
    if t == 0.0:   # t = 0 draws the training points themselves
        assert bool((samples[:, None, :] == data[None, :, :]).all(-1).any(1).all())
