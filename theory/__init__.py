"""memsep.theory: exact scores, Hessians and estimators for the true and the empirical noised laws."""
from .laws.forward import alpha, sigma, sigma2, add_noise, dsm_target, dsm_loss
from .estimators.estimate import Estimate, RunningMoments, binomial_estimate
from .laws.law import NoisedLaw
from .laws.mixture import GaussianMixture, paper_mixture
from .laws.empirical import EmpiricalLaw
from .evaluation.neighbours import nearest_neighbours
from .estimators.lipschitz import (spectral_norm, local_lipschitz, nearest_pair, neighbour_midpoints, lipschitz_cloud,
                                   empirical_lipschitz_lower_bound, gaussian_lipschitz)
from .evaluation.memorization import neighbour_distances, memorized, memorization_fraction
from .evaluation.samplers import time_grid, prior_sample, reverse_sde, probability_flow
from .networks import ensemble
from .estimators import lossgap, quadrature
