"""memsep.theory: exact scores, Hessians and estimators for the true and the empirical noised laws.

A pure library (tensors and numbers in, tensors out; no files, environment variables or printing), in
five subpackages:

    laws/         forward process and parametrisations, the law interface, the mixture, the empirical law
    estimators/   Estimate, Loss-Gap / DSM / Fisher by Monte Carlo and by quadrature, Lipschitz constants
    networks/     ensembles, ReLU MLPs, the score network, the explicit construction, the DiT and its heads
    training/     the LR schedule, DSM training, score regression, image denoiser training
    evaluation/   neighbours, memorization, samplers, likelihood, image metrics

The main names are importable from ``theory`` itself.
"""
from .laws.forward import (alpha, sigma, sigma2, add_noise, dsm_target, dsm_loss, ScoreFn, score_from_eps,
                           eps_from_score, score_from_denoiser, denoiser_from_score, eps_from_denoiser)
from .estimators.estimate import Estimate, RunningMoments, binomial_estimate
from .laws.law import GaussianComponents, NoisedLaw, score_function
from .laws.mixture import GaussianMixture, paper_mixture
from .laws.empirical import EmpiricalLaw
from .evaluation.neighbours import nearest_neighbours
from .estimators.lipschitz import (spectral_norm, local_lipschitz, nearest_pair, neighbour_midpoints, lipschitz_cloud,
                                   empirical_lipschitz_lower_bound, gaussian_lipschitz)
from .evaluation.memorization import neighbour_distances, memorized, memorization_fraction
from .evaluation.samplers import time_grid, prior_sample, reverse_sde, probability_flow, tweedie_denoise
from .networks import ensemble
from .estimators import lossgap, quadrature, small_t
