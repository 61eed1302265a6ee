"""Shared helpers for the tests: a row-wise relative error and autograd references for a law.

(setup.cfg's ``pythonpath = .`` puts the repository root on sys.path, so a bare ``pytest`` finds
``theory`` and ``verify``.)"""

import pytest
import torch


def _rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max over the batch of |actual_b - expected_b| / |expected_b| (Frobenius norms per row)."""
    a = actual.reshape(actual.shape[0], -1).to(torch.float64)
    e = expected.reshape(expected.shape[0], -1).to(torch.float64)
    return float(((a - e).norm(dim=1) / e.norm(dim=1).clamp_min(1e-300)).max())


def _autograd_score_hessian(law, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
    """grad and Hessian of ``law.log_prob`` by autograd; rows are independent, so row k of every
    Hessian comes from one backward pass of sum_b score_b[k]."""
    x = x.detach().clone().requires_grad_(True)
    (score,) = torch.autograd.grad(law.log_prob(x, t).sum(), x, create_graph=True)
    rows = [torch.autograd.grad(score[:, k].sum(), x, retain_graph=True)[0] for k in range(x.shape[1])]
    return score.detach(), torch.stack(rows, dim=1).detach()


@pytest.fixture
def rel_err():
    return _rel_err


@pytest.fixture
def autograd_score_hessian():
    return _autograd_score_hessian
