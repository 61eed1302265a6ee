"""Estimators of the paper's quantities, each with its Monte-Carlo error where it is Monte Carlo.

estimate    Estimate(mean, stderr, n), streaming moments, the binomial estimate
lossgap     the Loss-Gap, DSM losses and Fisher divergences by Monte Carlo (Prop. 4.1, Thm 4.3)
quadrature  the same quantities by deterministic quadrature in d <= 2, to check the Monte Carlo
small_t     the expected Loss-Gap at small t: plateau d/sigma_t^2 - J(P_t) and the pair-collision expansion
lipschitz   Lipschitz constants of scores and their closed-form bounds (Sec. 5)
"""
