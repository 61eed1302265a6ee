import torch

import theory
from theory.evaluation.likelihood import exact_divergence, memorization_index, ode_log_likelihood


def test_exact_divergence_matches_hessian_trace():
    truth = theory.paper_mixture(2, 3, separation=1.0, seed=0)
    x = truth.sample(10, 0.3, torch.Generator().manual_seed(0))
    _, div = exact_divergence(lambda y, t: truth.score(y, t), x, torch.full((10,), 0.3, dtype=torch.float64))
    assert torch.allclose(div, torch.diagonal(truth.hessian(x, 0.3), dim1=1, dim2=2).sum(1), atol=1e-10)


def test_ode_loglik_of_gaussian_with_exact_score_is_closed_form():
    g = theory.GaussianMixture.gaussian(torch.tensor([1.0, -0.5]), torch.tensor([[1.5, 0.3], [0.3, 0.6]]))
    x = g.sample(20, 0.0, torch.Generator().manual_seed(1))
    t0 = 1e-3
    ll = ode_log_likelihood(g.score, x, t0=t0, T=20.0, steps=400)
    assert (ll - g.log_prob(x, t0)).abs().max() < 1e-3


def test_memorization_index_extremes():
    truth = theory.paper_mixture(2, 2, separation=2.0, trace=0.5, seed=0)
    emp = theory.EmpiricalLaw(truth.sample(30, 0.0, torch.Generator().manual_seed(0)))
    on_emp = memorization_index(emp.score, emp, truth, 0.01, 200, torch.Generator().manual_seed(1))
    on_true = memorization_index(truth.score, emp, truth, 0.01, 200, torch.Generator().manual_seed(1))
    assert on_emp["index"] == 1.0 and on_true["index"] == 0.0
    assert on_emp["to_true"].mean > 0
