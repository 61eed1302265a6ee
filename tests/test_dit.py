"""The DiT: shapes, exact parameter count, patchify round trip, score parametrisation, resumable training."""

import pytest
import torch

from theory.dit import DiT, DiTConfig, dit_parameter_count
from theory.forward import sigma
from theory.image_training import TrainConfig, normalised_to_time, train_denoiser

TINY = DiTConfig(image_size=16, patch=4, width=32, depth=2, heads=4, freq_dim=16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _randomised(cfg, seed=0):
    """A DiT whose zero-initialised layers are made non-zero, so every path affects the output."""
    model = DiT(cfg, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("cfg", [TINY, DiTConfig(patch=2, width=48, depth=3, heads=3, freq_dim=32, mlp_ratio=2),
                                 DiTConfig()])
def test_parameter_count_matches_hand_formula(cfg):
    model = DiT(cfg)
    assert sum(p.numel() for p in model.parameters()) == dit_parameter_count(cfg)


def test_dit_s2_size():
    # DiT-S/2 (Peebles & Xie: 33M parameters at 256^2 latents) on 32x32 RGB pixels
    assert 32e6 < dit_parameter_count(DiTConfig()) < 34e6


def test_forward_shape_and_zero_init():
    model = DiT(TINY, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 3, 16, 16)
    out = model(x, torch.full((5,), 0.3))
    assert out.shape == x.shape
    assert torch.count_nonzero(out) == 0          # adaLN-Zero: the output layer starts at zero
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.randn(2, 3, 8, 8), torch.ones(2))


def test_patchify_roundtrip_and_locality():
    model = DiT(TINY)
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model.unpatchify(model.patchify(x)), x)
    tokens = model.patchify(x)
    # token 1 is the patch in row 0, columns 4..7; its features are that patch's pixels
    assert torch.equal(tokens[0, 1].sort().values, x[0, :, 0:4, 4:8].reshape(-1).sort().values)


def test_score_is_minus_eps_over_sigma():
    model = _randomised(TINY)
    x, t = torch.randn(3, 3, 16, 16), torch.tensor([1e-3, 0.5, 5.0])
    expected = -model(x, t) / sigma(t.double()).float().view(-1, 1, 1, 1)
    torch.testing.assert_close(model.score(x, t), expected)


def test_config_validation():
    with pytest.raises(ValueError, match="patch"):
        DiTConfig(image_size=32, patch=3)
    with pytest.raises(ValueError, match="heads"):
        DiTConfig(width=30, heads=4)


def test_vp_time_change_endpoints_and_monotone():
    u = torch.linspace(0, 1, 101, dtype=torch.float64)
    t = normalised_to_time(u, 1e-3, 10.0)
    assert float(t[0]) == pytest.approx(1e-3) and float(t[-1]) == pytest.approx(10.0)
    assert bool((t.diff() > 0).all())
    # DDPM's linear beta schedule: int_0^u beta = 0.1 u + 9.95 u^2 (in OU time, up to the rescaling)
    torch.testing.assert_close(t[50], torch.tensor(1e-3 + (10 - 1e-3) * (0.05 + 9.95 * 0.25) / 10.05,
                                                   dtype=torch.float64))


def test_training_resumes_exactly(tmp_path):
    images = torch.rand(16, 3, 16, 16) * 2 - 1
    cfg = TrainConfig(steps=6, batch_size=4, lr=1e-3, warmup=2, ema_decay=0.9, checkpoint_every=3)
    full, info = train_denoiser(DiT(TINY, generator=torch.Generator().manual_seed(0)), images, cfg, seed=5)
    model = DiT(TINY, generator=torch.Generator().manual_seed(0))
    ck = tmp_path / "ck.pt"
    _, part = train_denoiser(model, images, cfg, seed=5, checkpoint=ck, max_steps_this_call=3)
    assert part["step"] == 3
    fresh = DiT(TINY, generator=torch.Generator().manual_seed(99))       # weights replaced from the checkpoint
    resumed, info2 = train_denoiser(fresh, images, cfg, seed=5, checkpoint=ck)
    assert info["step"] == info2["step"] == 6
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any(torch.count_nonzero(p) for p in (full.final.weight, full.final.bias))   # it did train
