"""Exact k-nearest neighbours in Euclidean distance, by chunked matrix products.

Candidates are ranked with |x|^2 + |y|^2 - 2 <x, y> on tiles of (query, reference) pairs (a matmul per
tile, memory bounded by ``tile_size``), and the distances of the k chosen are then recomputed directly as
|x - y| so that they carry no cancellation error (an exact copy has distance exactly 0).
"""

from __future__ import annotations

import torch

from .._validate import as_tensor, check_finite, check_flag, check_positive_int

DEFAULT_TILE = 2 ** 20  # (query, point) distances per tile (see theory.laws.empirical.DEFAULT_TILE)


def nearest_neighbours(queries, references, k: int = 2, *, exclude_self: bool = False,
                       tile_size: int = DEFAULT_TILE) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances (B, k) and indices (B, k) of the k nearest ``references`` (n, d) to each of the
    ``queries`` (B, d), nearest first.

    ``exclude_self``: the queries are the references themselves (B == n) and reference i is not a
    neighbour of query i (used for nearest-pair distances within a data set).

    ``queries`` and ``references``: tensors, arrays or lists, finite and non-empty; integers become float64,
    a floating tensor keeps its dtype (references take the queries' dtype).
    """
    q = check_finite(as_tensor(queries, "queries"), "queries")
    r = check_finite(as_tensor(references, "references", dtype=q.dtype, device=q.device), "references")
    if q.ndim != 2 or r.ndim != 2 or q.shape[1] != r.shape[1]:
        raise ValueError(f"queries (B, d) and references (n, d) must share d, got {tuple(q.shape)} "
                         f"and {tuple(r.shape)}")
    for x, name in ((q, "queries"), (r, "references")):
        if x.numel() == 0:
            raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): need at least one point")
    exclude_self = check_flag(exclude_self, "exclude_self")
    k = check_positive_int(k, "k")
    n_avail = r.shape[0] - (1 if exclude_self else 0)
    if k > n_avail:
        raise ValueError(f"k = {k} exceeds the {n_avail} available references")
    if exclude_self and q.shape[0] != r.shape[0]:
        raise ValueError("exclude_self needs queries and references of the same length")
    tile_size = check_positive_int(tile_size, "tile_size")
    shift = r.mean(dim=0)                       # centring keeps the expansion well conditioned
    qc, rc = q - shift, r - shift
    r_sq = rc.pow(2).sum(1)
    B, n = q.shape[0], r.shape[0]
    q_step = max(1, min(B, 4096, tile_size))
    r_step = max(k, tile_size // q_step)
    best_d = torch.empty(B, k, dtype=q.dtype, device=q.device)
    best_i = torch.empty(B, k, dtype=torch.long, device=q.device)
    for b0 in range(0, B, q_step):
        b1 = min(B, b0 + q_step)
        cand_d = torch.full((b1 - b0, k), torch.inf, dtype=q.dtype, device=q.device)
        cand_i = torch.zeros(b1 - b0, k, dtype=torch.long, device=q.device)
        q_sq = qc[b0:b1].pow(2).sum(1, keepdim=True)
        for j0 in range(0, n, r_step):
            j1 = min(n, j0 + r_step)
            d2 = q_sq + r_sq[j0:j1] - 2.0 * qc[b0:b1] @ rc[j0:j1].T
            if exclude_self:
                rows = torch.arange(b0, b1, device=q.device)
                inside = (rows >= j0) & (rows < j1)
                d2[inside.nonzero().squeeze(1), rows[inside] - j0] = torch.inf
            kk = min(k, j1 - j0)
            tile_d, tile_i = torch.topk(d2, kk, dim=1, largest=False)
            merged_d = torch.cat([cand_d, tile_d], dim=1)
            merged_i = torch.cat([cand_i, tile_i + j0], dim=1)
            cand_d, order = torch.topk(merged_d, k, dim=1, largest=False)
            cand_i = torch.gather(merged_i, 1, order)
        exact = (q[b0:b1, None, :] - r[cand_i]).norm(dim=-1)
        exact, order = torch.sort(exact, dim=1)
        best_d[b0:b1], best_i[b0:b1] = exact, torch.gather(cand_i, 1, order)
    return best_d, best_i
