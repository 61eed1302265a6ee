"""Networks: ensembles of small nets, ReLU MLPs, score networks, an explicit construction and the DiT.

ensemble      StackedLinear (E nets of one shape as one batched model) and the per-member helpers
relu_mlp      ReLU MLPs F(W, L) as masked ensembles with exact parameter counts (Thm 5.1)
score_net     the time-conditioned residual-MLP score network for vectors
construction  an explicit ReLU network of width O(n) for the empirical score (Thm 5.1, upper bound)
dit           a pixel-space Diffusion Transformer with a gate on every attention head
heads         head gates and masks, Algorithm 1's head importance and pruning masks
"""
