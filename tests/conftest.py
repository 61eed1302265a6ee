"""Shared helpers for the tests: a row-wise relative error and autograd references for a law.

(setup.cfg's ``pythonpath = .`` puts the repository root on sys.path, so a bare ``pytest`` finds
``theory`` and ``verify``.)"""

import os

import pytest
import torch
from torch.distributions import MultivariateNormal


@pytest.fixture(autouse=True, scope="session")
def _checkpoints_in_a_temporary_folder(tmp_path_factory):
    """Tests never write checkpoints into the repository: $MEMSEP_CHECKPOINTS points at a temporary folder
    for the whole session (a test may point it elsewhere with monkeypatch)."""
    old = os.environ.get("MEMSEP_CHECKPOINTS")
    os.environ["MEMSEP_CHECKPOINTS"] = str(tmp_path_factory.mktemp("checkpoints"))
    yield
    if old is None:
        os.environ.pop("MEMSEP_CHECKPOINTS", None)
    else:
        os.environ["MEMSEP_CHECKPOINTS"] = old


@pytest.fixture
def quick_plot(monkeypatch):
    """lipschitz_vs_t (the module the command-line tests run) draws a bare one-line figure instead of its
    own: drawing dominates a smoke run's time, and those tests are about everything but the figure."""
    from verify import lipschitz_vs_t

    def plot(table, cfg):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(1, 1))
        ax.plot(table["t"], table["t"])
        ax.set_axis_off()
        return fig

    monkeypatch.setattr(lipschitz_vs_t, "plot", plot)


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


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and do not oversubscribe a shared machine); a test module
    opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _assert_tends_to_standard_normal(law) -> None:
    """P_t -> N(0, I) as t grows: log density and score match N(0, I) to 1e-4 at t = 30 (alpha_30 = e^-15,
    so the deviation is of order alpha_t |x_i| |x|), and visibly not yet at t = 1 (the check can tell)."""
    d = law.dim
    x = torch.randn(50, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2
    std = MultivariateNormal(torch.zeros(d, dtype=torch.float64), torch.eye(d, dtype=torch.float64))
    assert float((law.log_prob(x, 30.0) - std.log_prob(x)).abs().max()) < 1e-4
    assert float((law.score(x, 30.0) + x).abs().max()) < 1e-4
    assert float((law.log_prob(x, 1.0) - std.log_prob(x)).abs().max()) > 1e-2


@pytest.fixture
def assert_tends_to_standard_normal():
    return _assert_tends_to_standard_normal
