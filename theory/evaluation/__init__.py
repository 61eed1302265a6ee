"""Evaluating generated samples and learned scores.

neighbours     exact k-nearest neighbours by chunked matrix products
memorization   the nearest-neighbour ratio test of memorization (Sec. 6)
samplers       the reverse SDE and the probability-flow ODE, for any score function and sample shape
likelihood     the model's ODE log-likelihood and the memorization index
image_metrics  FID and improved precision / recall on features of a given network
"""
