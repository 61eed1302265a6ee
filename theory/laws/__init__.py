"""The laws of the paper and the forward process that noises them.

forward    the OU forward process: alpha_t, sigma_t, noising, the DSM target and loss, and every conversion
           between the noise, score and denoiser parametrisations
law        the interface every noised law implements (log_prob, score, hessian, denoiser, sample, components)
mixture    the true law: a Gaussian mixture, closed under the forward process (paper_mixture: the paper's setting)
empirical  the empirical law of a training set, streamed over its points
"""
