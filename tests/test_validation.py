"""Bad input raises ValueError (or TypeError) whose message names the argument."""

import math

import pytest
import torch

from theory.laws.empirical import EmpiricalLaw
from theory.estimators.lipschitz import gaussian_lipschitz
from theory.laws.mixture import GaussianMixture, paper_mixture

D = 3


@pytest.fixture
def mixture():
    return paper_mixture(2, D, seed=0)


@pytest.fixture
def empirical():
    return EmpiricalLaw(torch.randn(10, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64))


@pytest.fixture(params=["mixture", "empirical"])
def law(request, mixture, empirical):
    return mixture if request.param == "mixture" else empirical


METHODS = ["log_prob", "score", "hessian", "denoiser"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", [(4, D + 1), (D,), (4, D, 1), (4, D - 1)])
def test_wrong_point_shape_names_x(law, method, shape):
    with pytest.raises(ValueError, match=r"^x must have shape \(B, 3\)"):
        getattr(law, method)(torch.zeros(shape, dtype=torch.float64), 0.5)


@pytest.mark.parametrize("method", METHODS)
def test_nan_in_x_names_x(law, method):
    x = torch.zeros(4, D, dtype=torch.float64)
    x[2, 1] = math.nan
    with pytest.raises(ValueError, match=r"^x contains NaN"):
        getattr(law, method)(x, 0.5)
    x[2, 1] = math.inf
    with pytest.raises(ValueError, match=r"^x contains NaN or infinite"):
        getattr(law, method)(x, 0.5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("t", [-1.0, math.nan, math.inf, -math.inf])
def test_bad_time_names_t(law, method, t):
    with pytest.raises(ValueError, match=r"^t must"):
        getattr(law, method)(torch.zeros(2, D, dtype=torch.float64), t)
    with pytest.raises(ValueError, match=r"^t "):
        getattr(law, method)(torch.zeros(2, D, dtype=torch.float64), torch.tensor([0.5, t], dtype=torch.float64))


@pytest.mark.parametrize("method", METHODS)
def test_time_zero_allowed_only_where_there_is_a_density(mixture, empirical, method):
    x = torch.zeros(2, D, dtype=torch.float64)
    assert bool(torch.isfinite(getattr(mixture, method)(x, 0.0)).all())
    with pytest.raises(ValueError, match=r"^t must be > 0"):
        getattr(empirical, method)(x, 0.0)
    with pytest.raises(ValueError, match=r"^t must be > 0"):
        getattr(empirical, method)(x, torch.tensor([0.5, 0.0], dtype=torch.float64))


def test_per_sample_time_of_wrong_length_names_t(law):
    with pytest.raises(ValueError, match=r"^t must be a scalar or have shape \(4,\)"):
        law.score(torch.zeros(4, D, dtype=torch.float64), torch.ones(3, dtype=torch.float64))


def test_sample_arguments(law):
    assert law.sample(5, 0.0, torch.Generator().manual_seed(0)).shape == (5, D)   # t = 0 is allowed
    for m in [0, -1, 2.5, True]:
        with pytest.raises(ValueError, match=r"^m must be a positive integer"):
            law.sample(m, 0.1)
    for t in [-0.1, math.nan, math.inf]:
        with pytest.raises(ValueError, match=r"^t must"):
            law.sample(3, t)
    with pytest.raises(ValueError, match=r"^t must be a scalar for sample"):
        law.sample(3, torch.ones(3, dtype=torch.float64))


def _mixture_args():
    return torch.tensor([0.5, 0.5]), torch.zeros(2, D), torch.eye(D).expand(2, D, D).clone()


def test_mixture_constructor_checks():
    w, mu, cov = _mixture_args()
    GaussianMixture(w, mu, cov)                       # the valid baseline constructs
    with pytest.raises(ValueError, match=r"^covariances must have shape \(2, 3, 3\)"):
        GaussianMixture(w, mu, torch.zeros(2, D, D + 1))
    with pytest.raises(ValueError, match=r"^means must have shape \(K, d\)"):
        GaussianMixture(w, torch.zeros(2 * D), cov)
    with pytest.raises(ValueError, match=r"^weights must have shape \(2,\)"):
        GaussianMixture(torch.ones(3) / 3, mu, cov)
    with pytest.raises(ValueError, match=r"^weights must be a probability vector"):
        GaussianMixture(torch.tensor([1.2, -0.2]), mu, cov)
    with pytest.raises(ValueError, match=r"^weights must be a probability vector"):
        GaussianMixture(torch.tensor([0.5, 0.6]), mu, cov)
    asym = cov.clone()
    asym[1, 0, 2] = 0.3
    with pytest.raises(ValueError, match=r"^covariances must be symmetric"):
        GaussianMixture(w, mu, asym)
    indefinite = cov.clone()
    indefinite[0, 1, 1] = -1.0
    with pytest.raises(ValueError, match=r"^covariances must be positive definite"):
        GaussianMixture(w, mu, indefinite)
    with pytest.raises(ValueError, match=r"^covariances must be positive definite"):
        GaussianMixture(w, mu, torch.zeros(2, D, D))
    bad = mu.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"^means contains NaN"):
        GaussianMixture(w, bad, cov)
    with pytest.raises(TypeError, match=r"^means must be real-valued"):
        GaussianMixture(w, mu.to(torch.complex128), cov)


def test_empirical_constructor_checks():
    with pytest.raises(ValueError, match=r"^samples is empty"):
        EmpiricalLaw(torch.zeros(0, D))
    with pytest.raises(ValueError, match=r"^samples must have shape \(n, d\)"):
        EmpiricalLaw(torch.zeros(D))
    with pytest.raises(ValueError, match=r"^samples must have shape \(n, d\)"):
        EmpiricalLaw(torch.zeros(4, 0))
    bad = torch.zeros(4, D)
    bad[3, 2] = math.nan
    with pytest.raises(ValueError, match=r"^samples contains NaN"):
        EmpiricalLaw(bad)
    for tile in [0, -3, 1.5]:
        with pytest.raises(ValueError, match=r"^tile_size must be a positive integer"):
            EmpiricalLaw(torch.zeros(4, D), tile_size=tile)


def test_gaussian_lipschitz_checks():
    with pytest.raises(ValueError, match=r"^covariance must have shape \(d, d\)"):
        gaussian_lipschitz(torch.eye(3)[:, :2], 0.1)
    with pytest.raises(ValueError, match=r"^covariance must be positive definite"):
        gaussian_lipschitz(-torch.eye(3), 0.1)
    with pytest.raises(ValueError, match=r"^t must"):
        gaussian_lipschitz(torch.eye(3), -0.1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensor_on_another_device_is_not_moved(law):
    x = torch.zeros(2, D, dtype=torch.float64, device="cuda")
    with pytest.raises(ValueError, match=r"^x is on cuda"):
        law.score(x, 0.5)
    with pytest.raises(ValueError, match=r"^t is on cuda"):
        law.score(torch.zeros(2, D, dtype=torch.float64), torch.ones(2, dtype=torch.float64, device="cuda"))
