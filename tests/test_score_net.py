import pytest
import torch

from theory.networks.score_net import ScoreNet, build_score_net, score_net_parameter_count, width_for_budget


@pytest.mark.parametrize("dim,width,depth", [(2, 8, 1), (5, 33, 2), (16, 64, 3)])
def test_score_net_parameter_count_is_exact(dim, width, depth):
    net = ScoreNet(dim, width, depth, seeds=(0, 1))
    assert net.parameters_per_member == score_net_parameter_count(dim, width, depth)
    assert sum(p.numel() for p in net.parameters()) == 2 * score_net_parameter_count(dim, width, depth)


@pytest.mark.parametrize("budget", [24_000, 1_000_000, 44_000_000])
def test_width_for_budget_is_closest(budget):
    w = width_for_budget(16, budget)
    best = abs(score_net_parameter_count(16, w) - budget)
    assert best <= abs(score_net_parameter_count(16, w + 1) - budget) and best <= abs(score_net_parameter_count(16, w - 1) - budget)
    net, count = build_score_net(4, 5000, seeds=(0,))
    assert count == net.parameters_per_member == score_net_parameter_count(4, net.width)


def test_members_depend_only_on_their_seed_and_score_is_minus_eps_over_sigma():
    torch.manual_seed(0)
    big = ScoreNet(3, 16, seeds=(5, 7))
    alone = ScoreNet(3, 16, seeds=(7,))
    for p in list(big.parameters()) + list(alone.parameters()):  # non-zero outputs to compare
        torch.nn.init.normal_(p, std=0.3) if False else None
    with torch.no_grad():
        big.out.weight.normal_(generator=torch.Generator().manual_seed(1))
        alone.out.weight.copy_(big.out.weight[1:])
    x = torch.randn(2, 4, 3)
    t = torch.tensor([1e-3, 0.1, 1.0, 5.0])
    assert torch.allclose(big(x, t)[1], alone(x[1:], t)[0], atol=1e-6)
    sigma = torch.sqrt(-torch.expm1(-t))
    assert torch.allclose(big.score(x, t), -big(x, t) / sigma[None, :, None])
    flat = big.flat_score(dtype=torch.float64)(x.reshape(8, 3).double(), t.repeat(2).double())
    assert torch.allclose(flat.float().reshape(2, 4, 3), big.score(x, t), atol=1e-6)


def test_member_copy_evaluates_like_its_member_of_the_ensemble():
    big = ScoreNet(3, 8, seeds=(5, 7, 9), data_variance=2.0)
    with torch.no_grad():
        big.out.weight.normal_(generator=torch.Generator().manual_seed(1))    # non-zero outputs
    one = big.member(1)
    assert one.members == 1 and one.seeds == (7,) and one.data_variance == 2.0
    x = torch.randn(3, 5, 3, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([1e-3, 0.01, 0.1, 1.0, 5.0])
    assert torch.allclose(one.score(x[1:2], t)[0], big.score(x, t)[1], atol=1e-6)
    with torch.no_grad():                                                    # a copy, not a view
        one.out.weight.zero_()
    assert big.out.weight.abs().sum() > 0
    with pytest.raises(ValueError, match="member"):
        big.member(3)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="width"):
        ScoreNet(2, 0)
    net = ScoreNet(2, 4, seeds=(0,))
    with pytest.raises(ValueError, match="x"):
        net(torch.zeros(2, 3, 2), 0.1)
