"""Head gates and Algorithm 1: masking is exact and reversible, importance ranks a useless head last,
pruning masks exactly the requested count, the Taylor score is the derivative of the same loss."""

import pytest
import torch

from theory.networks.dit import DiT, DiTConfig
from theory.networks.heads import (get_head_mask, head_importance, masked_heads, prune_mask, pruned_count,
                                 random_prune_mask, set_head_mask, single_head_mask)
from theory.training.image import ImageTrainConfig, denoising_loss, normalised_times as sample_times, train_denoiser

CFG = DiTConfig(image_size=16, patch=4, width=32, depth=2, heads=4, freq_dim=16)


pytestmark = pytest.mark.usefixtures("one_thread")


def _randomised(seed=0):
    model = DiT(CFG, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def test_masking_changes_output_and_unmasking_restores_it_exactly():
    model = _randomised()
    x, t = torch.randn(3, 3, 16, 16), torch.full((3,), 0.2)
    with torch.no_grad():
        before = model(x, t)
        with masked_heads(model, single_head_mask((2, 4), 1, 2)):
            masked = model(x, t)
            assert float(get_head_mask(model)[1, 2]) == 0.0
        after = model(x, t)
    assert (masked - before).abs().max() > 1e-4
    assert torch.equal(before, after)
    assert torch.equal(get_head_mask(model), torch.ones(2, 4))


def test_masked_heads_composes_with_a_pruned_model_and_restores_on_error():
    model = _randomised()
    pruned = single_head_mask((2, 4), 0, 0)
    set_head_mask(model, pruned)
    with pytest.raises(RuntimeError):
        with masked_heads(model, single_head_mask((2, 4), 1, 1)):
            assert float(get_head_mask(model)[0, 0]) == 0.0 and float(get_head_mask(model)[1, 1]) == 0.0
            raise RuntimeError("boom")
    assert torch.equal(get_head_mask(model), pruned)
    with pytest.raises(ValueError, match="mask must have shape"):
        set_head_mask(model, torch.ones(3, 4))


def test_gate_equals_removing_the_heads_output_projection():
    """A zero gate is the same as zeroing that head's columns of the output projection."""
    model = _randomised()
    x, t = torch.randn(2, 3, 16, 16), torch.full((2,), 1.0)
    with torch.no_grad(), masked_heads(model, single_head_mask((2, 4), 0, 3)):
        gated = model(x, t)
    with torch.no_grad():
        model.blocks[0].attn.proj.weight[:, 24:32] = 0.0
        torch.testing.assert_close(model(x, t), gated, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def trained_without_head():
    """A tiny DiT trained with head (1, 0) masked, then unmasked with that head's output projection zeroed:
    the head computes but contributes nothing; the other heads are the ones the network learned to use."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(32, 3, 16, 16, generator=g) * 2 - 1
    model = DiT(CFG, generator=torch.Generator().manual_seed(0))
    set_head_mask(model, single_head_mask((2, 4), 1, 0))
    ema, _ = train_denoiser(model, images, ImageTrainConfig(steps=80, batch_size=16, lr=3e-3, warmup=10,
                                                       ema_decay=0.0), seed=1)
    set_head_mask(ema, torch.ones(2, 4))
    with torch.no_grad():
        ema.blocks[1].attn.proj.weight[:, 0:8] = 0.0
    return ema, images


def test_importance_ranks_a_zeroed_head_least(trained_without_head):
    model, images = trained_without_head
    imp = head_importance(model, images, draws=3, batch_size=16, t0=1e-3, T=10.0,
                          generator=torch.Generator().manual_seed(3))
    assert imp.mean.shape == (2, 4) and imp.n == 48
    assert float(imp.mean[1, 0]) == 0.0 and float(imp.stderr[1, 0]) == 0.0
    others = torch.cat([imp.mean.flatten()[:4], imp.mean.flatten()[5:]])
    assert bool((others > 0).all()), imp.mean
    mask = prune_mask(imp.mean, 1 / 8)
    assert torch.equal(mask, single_head_mask((2, 4), 1, 0))


def test_importance_uses_common_random_numbers(trained_without_head):
    """The score of a head equals the loss difference on the same draws, computed by hand."""
    model, images = trained_without_head
    imp = head_importance(model, images, draws=1, batch_size=8, t0=1e-3, T=10.0,
                          generator=torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(7)
    idx = torch.randint(32, (8,), generator=g)
    t = sample_times(8, 1e-3, 10.0, g, beta=(0.8, 2.0))
    z = torch.randn((8, 3, 16, 16), generator=g)
    with torch.no_grad():
        base = denoising_loss(model, images[idx], t, z).double()
        with masked_heads(model, single_head_mask((2, 4), 0, 2)):
            diff = denoising_loss(model, images[idx], t, z).double() - base
    torch.testing.assert_close(imp.mean[0, 2], diff.mean(), rtol=1e-6, atol=1e-9)


def test_taylor_score_is_minus_the_gate_derivative(trained_without_head):
    model, images = trained_without_head
    imp = head_importance(model, images, draws=1, batch_size=8, t0=1e-3, T=10.0,
                          generator=torch.Generator().manual_seed(7), method="taylor")
    g = torch.Generator().manual_seed(7)
    idx = torch.randint(32, (8,), generator=g)
    t = sample_times(8, 1e-3, 10.0, g, beta=(0.8, 2.0))
    z = torch.randn((8, 3, 16, 16), generator=g)
    model64 = model.double()
    h = 1e-3
    with torch.no_grad():
        losses = []
        for gate in (1 + h, 1 - h):
            mask = torch.ones(2, 4, dtype=torch.float64)
            mask[0, 1] = gate
            with masked_heads(model64, mask):
                losses.append(denoising_loss(model64, images[idx].double(), t, z.double()).mean())
    model.float()
    finite_difference = -(losses[0] - losses[1]) / (2 * h)
    torch.testing.assert_close(imp.mean[0, 1], finite_difference.double(), rtol=2e-3, atol=1e-7)


def test_beta_times_pile_up_at_small_t():
    t = sample_times(20_000, 1e-3, 10.0, torch.Generator().manual_seed(0), beta=(0.8, 2.0), schedule="linear")
    u = (t - 1e-3) / (10.0 - 1e-3)
    mean, var = 0.8 / 2.8, 0.8 * 2.0 / (2.8 ** 2 * 3.8)       # Beta(0.8, 2) moments
    assert abs(float(u.mean()) - mean) < 4 * (var / 20_000) ** 0.5
    assert float((u < 0.1).float().mean()) > 0.2


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.25, 0.5, 1.0])
def test_pruned_models_have_exactly_the_requested_count(ratio):
    importance = torch.randn(12, 6, generator=torch.Generator().manual_seed(0))
    count = pruned_count(72, ratio)
    least = prune_mask(importance, ratio)
    most = prune_mask(importance, ratio, which="most")
    rand = random_prune_mask((12, 6), ratio, torch.Generator().manual_seed(1))
    for mask in (least, most, rand):
        assert mask.shape == (12, 6) and int((mask == 0).sum()) == count
    if 0 < count < 72:
        assert float(importance[least == 0].max()) <= float(importance[least == 1].min())
        assert float(importance[most == 0].min()) >= float(importance[most == 1].max())
    assert pruned_count(72, 0.2) == 14


def test_prune_mask_never_counts_already_pruned_heads():
    importance = torch.arange(8.0).reshape(2, 4)
    keep = torch.ones(2, 4)
    keep[0, 0] = 0
    mask = prune_mask(importance, 0.3, keep=keep)           # round(0.3 * 7) = 2 more heads
    assert int((mask == 0).sum()) == 3 and float(mask[0, 1]) == 0 and float(mask[0, 2]) == 0
    with pytest.raises(ValueError, match="which"):
        prune_mask(importance, 0.2, which="middle")


def test_time_laws_put_their_mass_where_they_say():
    from theory.networks.heads import TIME_LAWS

    means = {}
    for name, beta in TIME_LAWS.items():
        t = sample_times(20_000, 1e-3, 10.0, torch.Generator().manual_seed(1), beta=beta, schedule="linear")
        means[name] = float(((t - 1e-3) / (10.0 - 1e-3)).mean())
    a, b = TIME_LAWS["large"]
    assert abs(means["large"] - a / (a + b)) < 0.01 and abs(means["uniform"] - 0.5) < 0.01
    assert means["small"] < means["uniform"] < means["large"]
    assert TIME_LAWS["large"] == TIME_LAWS["small"][::-1]                # the mirror image of the paper's law


def test_importance_gap_measures_the_boundary_in_standard_errors():
    from theory.networks.heads import HeadImportance, importance_gap

    mean = torch.tensor([[1.0, 5.0, 2.0, 9.0]], dtype=torch.float64)
    se = torch.tensor([[0.1, 0.3, 0.4, 0.2]], dtype=torch.float64)
    imp = HeadImportance(mean, se, 10)
    # least, 2 of 4 pruned: heads 1.0 and 2.0 go, 5.0 is the first kept: (5 - 2) / sqrt(0.4^2 + 0.3^2) = 6
    assert importance_gap(imp, 0.5) == pytest.approx(6.0)
    # most, 1 of 4: 9.0 goes, 5.0 kept: 4 / sqrt(0.2^2 + 0.3^2)
    assert importance_gap(imp, 0.25, which="most") == pytest.approx(4.0 / (0.13 ** 0.5))
    assert importance_gap(imp, 0.0) == float("inf") and importance_gap(imp, 1.0) == float("inf")
    tied = HeadImportance(torch.tensor([[1.0, 1.0, 3.0]]), torch.zeros(1, 3), 4)
    assert importance_gap(tied, 1 / 3) == 0.0
