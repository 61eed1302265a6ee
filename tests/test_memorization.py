import torch

import theory


def test_copies_flagged_fresh_draws_not():
    truth = theory.paper_mixture(4, 8, separation=3.0, seed=0)
    g = torch.Generator().manual_seed(0)
    train = truth.sample(50, 0.0, g)
    copies = train[torch.randint(50, (100,), generator=g)]
    assert theory.memorization_fraction(copies, train).mean == 1.0
    fresh = theory.memorization_fraction(truth.sample(400, 0.0, g), train)
    assert fresh.mean < 0.05
    assert abs(fresh.stderr - (fresh.mean * (1 - fresh.mean) / 400) ** 0.5) < 1e-12


def test_chunked_neighbours_equal_brute_force():
    g = torch.Generator().manual_seed(3)
    q, r = torch.randn(37, 5, generator=g, dtype=torch.float64), torch.randn(101, 5, generator=g, dtype=torch.float64)
    d, i = theory.nearest_neighbours(q, r, k=2, tile_size=64)
    full = torch.cdist(q, r)
    bd, bi = torch.topk(full, 2, largest=False)
    assert torch.equal(i, bi) and torch.allclose(d, bd, atol=1e-12)
