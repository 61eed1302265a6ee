import torch

import theory


def test_exact_true_score_reproduces_mixture_moments():
    truth = theory.paper_mixture(3, 2, separation=1.5, trace=1.0, seed=0)
    g = torch.Generator().manual_seed(0)
    x = theory.reverse_sde(truth.score, theory.prior_sample((4000, 2), generator=g), T=10.0, t0=1e-3,
                           steps=150, generator=g)
    mean, cov = truth.moments(0.0)
    se = (torch.diagonal(cov) / 4000).sqrt()
    assert ((x.mean(0) - mean).abs() < 5 * se).all()        # 5 standard errors
    assert torch.allclose(torch.cov(x.T), cov, atol=0.12 * float(cov.abs().max()))


def test_exact_empirical_score_with_small_t0_reproduces_training_points():
    data = theory.paper_mixture(4, 2, separation=2.0, trace=0.5, seed=1).sample(20, 0.0, torch.Generator().manual_seed(1))
    emp = theory.EmpiricalLaw(data)
    x = theory.probability_flow(emp.score, theory.prior_sample((300, 2), generator=torch.Generator().manual_seed(2)),
                                T=10.0, t0=1e-5, steps=80)
    assert theory.memorization_fraction(x, data).mean > 0.95
