"""memsep.theory: exact scores, Hessians and estimators for the true and the empirical noised laws."""
from .forward import alpha, sigma, sigma2, add_noise, dsm_target, dsm_loss
from .estimate import Estimate, RunningMoments, binomial_estimate
from .law import NoisedLaw
from .mixture import GaussianMixture, paper_mixture
from .empirical import EmpiricalLaw
from .neighbours import nearest_neighbours
from .lipschitz import (spectral_norm, local_lipschitz, nearest_pair, neighbour_midpoints, lipschitz_cloud,
                        empirical_lipschitz_lower_bound, gaussian_lipschitz)
from .memorization import neighbour_distances, memorized, memorization_fraction
from .samplers import time_grid, prior_sample, reverse_sde, probability_flow
from . import ensemble
