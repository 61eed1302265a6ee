"""A 1-D two-component mixture derived symbolically with sympy: p_t by integrating the forward kernel
against P_0 (completing the square, then sympy's Gaussian integrals), its score, d^2/dx^2 log p_t and
E[X_0 | X_t = x], in the symbols a = alpha_t, s2 = sigma_t^2; then checked against GaussianMixture to
1e-10, and Tweedie's formula checked symbolically (one component) and at 50 digits (the mixture)."""

import mpmath
import pytest
import sympy as sp
import torch

from theory.laws.mixture import GaussianMixture

x, x0 = sp.symbols("x x0", real=True)
mu = sp.Symbol("mu", real=True)
v = sp.Symbol("v", positive=True)
pi_, mu1, mu2 = sp.symbols("pi mu1 mu2", real=True)
v1, v2 = sp.symbols("v1 v2", positive=True)
a_, s2_ = sp.symbols("a s2", positive=True)


def _normal(z, mean, var):
    return sp.exp(-(z - mean) ** 2 / (2 * var)) / sp.sqrt(2 * sp.pi * var)


@pytest.fixture(scope="module")
def component_integrals():
    """For one component N(mu, v): Z = int N(x0; mu, v) N(x; a x0, s2) dx0 and
    M = int x0 N(x0; mu, v) N(x; a x0, s2) dx0. The exponent is a quadratic A x0^2 + B x0 + C; completing
    the square (checked by sympy) leaves int exp(-P u^2) du and int u exp(-P u^2) du, which sympy
    integrates."""
    u = sp.Symbol("u", real=True)
    P = sp.Symbol("P", positive=True)
    G0 = sp.integrate(sp.exp(-P * u ** 2), (u, -sp.oo, sp.oo))
    G1 = sp.integrate(u * sp.exp(-P * u ** 2), (u, -sp.oo, sp.oo))
    quad = sp.expand(-(x0 - mu) ** 2 / (2 * v) - (x - a_ * x0) ** 2 / (2 * s2_))
    A, B, C = quad.coeff(x0, 2), quad.coeff(x0, 1), quad.coeff(x0, 0)
    centre = -B / (2 * A)
    assert sp.simplify(sp.expand(A * (x0 - centre) ** 2 + C - B ** 2 / (4 * A) - quad)) == 0
    scale = sp.exp(C - B ** 2 / (4 * A)) / (2 * sp.pi * sp.sqrt(v * s2_))
    Z = scale * G0.subs(P, -A)
    M = scale * (centre * G0.subs(P, -A) + G1.subs(P, -A))
    return Z, M


PARAMS = {pi_: sp.Rational(3, 10), mu1: sp.Rational(-3, 2), mu2: 2, v1: sp.Rational(1, 2), v2: 2}


@pytest.fixture(scope="module")
def mixture_functions(component_integrals):
    """log p_t, its first and second x-derivatives and E[X_0 | X_t = x] of pi N(mu1, v1) + (1 - pi) N(mu2, v2)
    (parameters PARAMS), as mpmath functions of (x, alpha_t, sigma_t^2)."""
    Z, M = component_integrals

    def mix(expr):
        return (pi_ * expr.subs({mu: mu1, v: v1}) + (1 - pi_) * expr.subs({mu: mu2, v: v2})).subs(PARAMS)

    p_t, numer = mix(Z), mix(M)
    log_p = sp.log(p_t)
    exprs = {"log_prob": log_p, "score": sp.diff(log_p, x), "hessian": sp.diff(log_p, x, 2),
             "denoiser": numer / p_t}
    return {k: sp.lambdify((x, a_, s2_), e, modules="mpmath") for k, e in exprs.items()}


def _coefficients(t_val):
    t_mp = mpmath.mpf(t_val)
    return mpmath.exp(-t_mp / 2), -mpmath.expm1(-t_mp)


def test_sympy_integral_is_the_gaussian_convolution(component_integrals):
    """Sanity of the derivation: Z is the density of N(a mu, a^2 v + s2)."""
    Z, M = component_integrals
    assert sp.simplify(Z / _normal(x, a_ * mu, a_ ** 2 * v + s2_)) == 1
    assert sp.simplify(M / Z - (mu + a_ * v * (x - a_ * mu) / (a_ ** 2 * v + s2_))) == 0


def test_tweedie_symbolically_for_one_component(component_integrals):
    Z, M = component_integrals
    score = sp.diff(sp.log(Z), x)
    assert sp.simplify(score - (a_ * M / Z - x) / s2_) == 0


@pytest.mark.parametrize("t_val", [1e-3, 0.1, 1.0, 4.0])
def test_mixture_matches_symbolic_derivation(mixture_functions, t_val):
    law = GaussianMixture([0.3, 0.7], [[-1.5], [2.0]], [[[0.5]], [[2.0]]])
    xs = torch.tensor([[-3.0], [-1.0], [0.2], [1.1], [2.5], [6.0]], dtype=torch.float64)
    ours = {"log_prob": law.log_prob(xs, t_val), "score": law.score(xs, t_val)[:, 0],
            "hessian": law.hessian(xs, t_val)[:, 0, 0], "denoiser": law.denoiser(xs, t_val)[:, 0]}
    mpmath.mp.dps = 30
    a, s2 = _coefficients(t_val)
    for name, f in mixture_functions.items():
        for b, xv in enumerate(xs[:, 0].tolist()):
            exact = float(f(mpmath.mpf(xv), a, s2))
            got = float(ours[name][b])
            assert abs(got - exact) <= 1e-10 * max(1.0, abs(exact)), (name, xv, t_val, got, exact)


def test_tweedie_for_the_mixture_at_high_precision(mixture_functions):
    mpmath.mp.dps = 50
    score, denoiser = mixture_functions["score"], mixture_functions["denoiser"]
    for xv in ["-3", "0.2", "5"]:
        for tv in ["1e-3", "0.5", "3"]:
            a, s2 = _coefficients(tv)
            xm = mpmath.mpf(xv)
            assert abs(score(xm, a, s2) - (a * denoiser(xm, a, s2) - xm) / s2) < mpmath.mpf(10) ** -40
