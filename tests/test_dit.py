"""The DiT: shapes, exact parameter count, patchify round trip, score parametrisation, resumable training."""

import dataclasses
import math

import pytest
import torch

from theory.networks.dit import DiT, DiTConfig, dit_parameter_count, preconditioning
from theory.laws.forward import alpha, sigma, sigma2
from theory.evaluation.samplers import probability_flow
from theory.training.image import ImageTrainConfig, normalised_to_time, train_denoiser
from verify._io import Checkpoint

TINY = DiTConfig(image_size=16, patch=4, width=32, depth=2, heads=4, freq_dim=16)
TINY_PRE = dataclasses.replace(TINY, precondition="gaussian", data_std=0.5)


pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_preconditioned_init_is_the_gaussian_noise_predictor():
    # F starts at zero, so eps = c_skip x = sigma_t x / (alpha_t^2 v + sigma_t^2) = E[z | X_t = x] for N(0, v I)
    model = DiT(TINY_PRE, generator=torch.Generator().manual_seed(0)).double()
    x, t = torch.randn(3, 3, 16, 16, dtype=torch.float64), torch.tensor([1e-3, 0.5, 10.0], dtype=torch.float64)
    r = alpha(t) ** 2 * 0.25 + sigma2(t)
    torch.testing.assert_close(model(x, t), (sigma(t) / r).view(-1, 1, 1, 1) * x)
    # and F's target z - c_skip X_t has unit variance for such data: c_out^2 = alpha^2 v / r
    _, c_out, c_in = preconditioning(t, "gaussian", 0.5)
    torch.testing.assert_close(c_out ** 2, alpha(t) ** 2 * 0.25 / r)
    torch.testing.assert_close(c_in, r.rsqrt())


@pytest.mark.parametrize("precondition, bound", [("gaussian", 0.5), ("none", None)])
def test_output_error_moves_the_denoised_image_at_most_data_std_times(precondition, bound):
    """The cause of noise-like samples: the sampler's denoised image x0 = (x - sigma_t eps) / alpha_t moves
    by sigma_t c_out e / alpha_t for an error e in the network's last layer; preconditioned that is
    <= data_std e at every t, plain it is e^{t/2} e (~150 e at t = T = 10)."""
    cfg = dataclasses.replace(TINY, precondition=precondition)
    model = _randomised(cfg).double()
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    for t in (1e-3, 0.3, 3.0, 10.0):
        tt = torch.full((2,), t, dtype=torch.float64)
        denoised = lambda: (x - sigma(tt).view(-1, 1, 1, 1) * model(x, tt)) / alpha(tt).view(-1, 1, 1, 1)
        before = denoised()
        with torch.no_grad():
            model.final.bias.add_(0.1)                   # an error of 0.1 in every output of F
        moved = (denoised() - before).abs().max().item()
        with torch.no_grad():
            model.final.bias.sub_(0.1)
        expected = 0.1 * math.sqrt(math.expm1(t)) * (1 if bound is None else float(preconditioning(tt, precondition, 0.5)[1][0]))
        assert moved == pytest.approx(expected, rel=1e-6)
        if bound is not None:
            assert moved <= bound * 0.1 * (1 + 1e-9)
    if bound is None:
        assert moved > 10                                 # t = 10: the error is amplified ~150 times


def test_untrained_preconditioned_dit_samples_the_gaussian():
    """End to end: the zero-initialised preconditioned DiT is the exact score of N(0, v I), whose PF ODE is
    linear, x_t = sqrt(r_t / r_T) x_T (r_t = alpha_t^2 v + sigma_t^2), and whose Tweedie step at t0 gives
    x0 = alpha v x / r; the sampler (64 Heun steps, T = 10 -> t0 = 1e-3) reproduces that map (its
    second-order error is -7.6% at 16 steps, -1.5% at 32, -0.34% at 64)."""
    model = DiT(TINY_PRE, generator=torch.Generator().manual_seed(0)).double()
    x_T = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    T, t0 = 10.0, 1e-3
    x = probability_flow(model.score, x_T, T=T, t0=t0, steps=64)
    x0 = (x + float(sigma2(t0)) * model.score(x, torch.full((4,), t0, dtype=torch.float64))) / float(alpha(t0))
    r = lambda t: float(alpha(t)) ** 2 * 0.25 + float(sigma2(t))
    gain = math.sqrt(r(t0) / r(T)) * float(alpha(t0)) * 0.25 / r(t0)
    torch.testing.assert_close(x0, gain * x_T, rtol=5e-3, atol=0)
    assert abs(gain - 0.5) < 0.01                         # samples have the data's scale, not noise's


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
    with pytest.raises(ValueError, match="precondition"):
        DiTConfig(precondition="edm")
    with pytest.raises(ValueError, match="data_std"):
        DiTConfig(data_std=0.0)


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
    cfg = ImageTrainConfig(steps=6, batch_size=4, lr=1e-3, warmup=2, ema_decay=0.9, checkpoint_every=3)
    full, info = train_denoiser(DiT(TINY, generator=torch.Generator().manual_seed(0)), images, cfg, seed=5)
    model = DiT(TINY, generator=torch.Generator().manual_seed(0))
    ck = Checkpoint(tmp_path / "ck.pt")
    _, part = train_denoiser(model, images, cfg, seed=5, on_checkpoint=ck.save, max_steps_this_call=3)
    assert part["step"] == 3 and ck.load()["step"] == 3
    fresh = DiT(TINY, generator=torch.Generator().manual_seed(99))       # weights replaced from the checkpoint
    resumed, info2 = train_denoiser(fresh, images, cfg, seed=5, resume=ck.load(), on_checkpoint=ck.save)
    assert info["step"] == info2["step"] == 6
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert any(torch.count_nonzero(p) for p in (full.final.weight, full.final.bias))   # it did train
