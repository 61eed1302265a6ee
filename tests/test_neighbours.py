"""nearest_neighbours against brute force (all pairwise distances, then sort)."""

import math

import pytest
import torch

from theory.evaluation.neighbours import nearest_neighbours


def brute_force(queries, references, k, exclude_self=False):
    dist = torch.cdist(queries, references, compute_mode="donot_use_mm_for_euclid_dist")
    if exclude_self:
        dist.fill_diagonal_(math.inf)
    d, i = torch.sort(dist, dim=1)
    return d[:, :k], i[:, :k]


@pytest.mark.parametrize("tile_size", [1, 5, 64, None])
@pytest.mark.parametrize("k", [1, 2, 5])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_matches_brute_force(tile_size, k, exclude_self):
    g = torch.Generator().manual_seed(k)
    refs = torch.randn(25, 4, generator=g, dtype=torch.float64) + 100.0    # far from the origin
    queries = refs if exclude_self else torch.randn(15, 4, generator=g, dtype=torch.float64) + 100.0
    kwargs = {} if tile_size is None else {"tile_size": tile_size}
    dist, idx = nearest_neighbours(queries, refs, k, exclude_self=exclude_self, **kwargs)
    ref_d, ref_i = brute_force(queries, refs, k, exclude_self)
    assert dist.shape == idx.shape == (queries.shape[0], k)
    assert torch.equal(idx, ref_i)
    torch.testing.assert_close(dist, ref_d, rtol=1e-13, atol=1e-13)


def test_exact_copy_has_distance_zero_and_self_is_excluded():
    g = torch.Generator().manual_seed(0)
    refs = torch.randn(10, 3, generator=g, dtype=torch.float64) * 1e3 + 1e4
    refs[7] = refs[2]
    dist, idx = nearest_neighbours(refs[[2]], refs, 2)
    assert dist[0].tolist() == [0.0, 0.0] and set(idx[0].tolist()) == {2, 7}
    dist, idx = nearest_neighbours(refs, refs, 1, exclude_self=True, tile_size=3)
    assert float(dist[2, 0]) == 0.0 and int(idx[2, 0]) == 7 and int(idx[7, 0]) == 2
    assert bool((idx[:, 0] != torch.arange(10)).all())


def test_bad_arguments():
    refs = torch.randn(5, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="k = 6"):
        nearest_neighbours(refs, refs, 6)
    with pytest.raises(ValueError, match="k = 5"):
        nearest_neighbours(refs, refs, 5, exclude_self=True)
    with pytest.raises(ValueError, match="exclude_self"):
        nearest_neighbours(refs[:3], refs, 1, exclude_self=True)
    with pytest.raises(ValueError, match="share d"):
        nearest_neighbours(torch.zeros(3, 3, dtype=torch.float64), refs, 1)
    with pytest.raises(ValueError, match="k must"):
        nearest_neighbours(refs, refs, 0)
    with pytest.raises(ValueError, match="tile_size"):
        nearest_neighbours(refs, refs, 1, tile_size=0)
    bad = refs.clone()
    bad[1, 1] = math.nan
    with pytest.raises(ValueError, match="queries"):
        nearest_neighbours(bad, refs, 1)
    with pytest.raises(ValueError, match="references"):
        nearest_neighbours(refs, bad, 1)
