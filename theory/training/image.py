"""Denoising training of an image noise predictor (the DiT) under the forward OU process, with EMA,
mixed precision on GPU, seeded data and noise, and checkpoints that resume mid-run.

Time axis. Training and the pruning scores draw a *normalised* time u in [0, 1] and map it to OU time by
the variance-preserving (DDPM) time change of Song et al. (2021), rescaled to [t0, T]:

    t(u) = t0 + (T - t0) (beta_min u + (beta_max - beta_min) u^2 / 2) / (beta_min + (beta_max - beta_min) / 2),

(beta_min, beta_max) = (0.1, 20): with T ~ 10 this is the usual DDPM noise schedule written in the OU time
of theory.laws.forward (alpha_t^2 = exp(-t)). u ~ U(0, 1) for training (uniform over DDPM time steps); u ~
Beta(a, b) for the small-t importance of Algorithm 1.

Loss. With X_t = alpha_t x0 + sigma_t z, the network eps predicts z and the per-sample loss is

    l(x0, t, z) = mean_pixels (eps(X_t, t) - z)^2 = sigma_t^2 / D | s(X_t, t) + (X_t - alpha_t x0) / sigma_t^2 |^2,

the DSM loss of theory.laws.forward.dsm_loss weighted by sigma_t^2 / D (D pixels), s = -eps / sigma_t.

This image trainer is separate from the vector score-net training of the mixture experiments
(theory.training.dsm) because it needs what those do not: NCHW batches, one model rather than an
ensemble, and bf16 autocast. Like it, it writes no files and prints nothing: it resumes from a state
(model, EMA, optimiser, step and random state), hands such states to an optional checkpoint callback,
and reports progress through an optional callback.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Callable

import numpy as np
import torch
from torch import nn

from .._validate import (as_tensor, check_array, check_finite, check_int, check_number, check_positive_int,
                         check_time_span)
from ..laws import forward
from .schedule import learning_rate

VP_BETA = (0.1, 20.0)


def normalised_to_time(u: torch.Tensor, t0: float, T: float, *, schedule: str = "vp") -> torch.Tensor:
    """Map normalised times u in [0, 1] to OU times in [t0, T]: ``vp`` is the DDPM time change (module
    docstring), ``linear`` is t0 + (T - t0) u. ``u``: a tensor, array or list in [0, 1]; 0 < t0 < T finite."""
    t0, T = check_time_span(t0, T)
    u = as_tensor(u, "u")
    if not bool(((u >= 0) & (u <= 1)).all()):          # NaN fails both comparisons
        raise ValueError("u must lie in [0, 1] (finite)")
    if schedule == "linear":
        frac = u
    elif schedule == "vp":
        b0, b1 = VP_BETA
        frac = (b0 * u + 0.5 * (b1 - b0) * u * u) / (b0 + 0.5 * (b1 - b0))
    else:
        raise ValueError(f"schedule must be 'vp' or 'linear', got {schedule!r}")
    return t0 + (T - t0) * frac


def normalised_times(n: int, t0: float, T: float, generator: torch.Generator, *, beta: tuple | None = None,
                     schedule: str = "vp", device=None) -> torch.Tensor:
    """n OU times: u ~ U(0, 1) (``beta=None``) or u ~ Beta(a, b) (``beta=(a, b)``), mapped by
    ``normalised_to_time``. Beta draws use a NumPy generator seeded from ``generator`` (reproducible)."""
    check_positive_int(n, "n")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    device = device or generator.device
    if beta is None:
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device)
    else:
        if not isinstance(beta, (tuple, list)) or len(beta) != 2:
            raise ValueError(f"beta must be a pair (a, b) of positive numbers, got {beta!r}")
        a = check_number(beta[0], "beta", low=0.0, low_open=True)
        b = check_number(beta[1], "beta", low=0.0, low_open=True)
        seed = int(torch.randint(2 ** 62, (1,), generator=generator, device=generator.device))
        u = torch.from_numpy(np.random.default_rng(seed).beta(a, b, n))
    return normalised_to_time(u.to(device=device, dtype=torch.float64), t0, T, schedule=schedule)


def denoising_loss(model: nn.Module, x0, t, noise) -> torch.Tensor:
    """Per-sample noise-prediction loss mean((eps(alpha_t x0 + sigma_t z, t) - z)^2), (B,), at least float32
    (module docstring: sigma_t^2 / D times the DSM loss). Pass the same ``t`` and ``noise`` to compare
    models or masks with common random numbers. ``x0`` and ``noise`` (B, C, H, W), ``t`` (B,) > 0: finite."""
    x0 = check_array(x0, "x0", min_ndim=2)
    noise = check_array(noise, "noise", min_ndim=2, device=x0.device)
    t = as_tensor(t, "t", device=x0.device)
    if x0.shape != noise.shape or t.shape != (x0.shape[0],):
        raise ValueError(f"x0 {tuple(x0.shape)}, noise {tuple(noise.shape)} and t {tuple(t.shape)} disagree: "
                         f"x0 and noise must have one shape (B, ...), t shape (B,)")
    return _denoising_loss(model, x0, t, noise)


def _denoising_loss(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The loss of ``denoising_loss`` for checked tensors (the training and pruning loops)."""
    x_t = forward._add_noise(x0, t, noise)
    eps = model(x_t, t)
    dtype = torch.promote_types(eps.dtype, torch.float32)          # bf16 under autocast -> float32
    return (eps.to(dtype) - noise.to(dtype)).pow(2).flatten(1).mean(1)


@dataclasses.dataclass(frozen=True)
class ImageTrainConfig:
    """Optimisation settings (AdamW, linear warm-up then constant learning rate, gradient clipping, EMA)."""

    steps: int
    batch_size: int = 128
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    t0: float = 1e-3
    T: float = 10.0
    checkpoint_every: int = 1000
    fused: bool = False          # torch's fused AdamW kernel: the same update up to round-off, ~3x faster
                                 # optimiser step on a CPU (~8% of a 16-token DiT step)

    def __post_init__(self):
        for name in ("steps", "batch_size", "checkpoint_every"):
            check_positive_int(getattr(self, name), name)
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise ValueError(f"warmup must be an integer >= 0, got {self.warmup!r}")
        check_number(self.lr, "lr", low=0.0, low_open=True)
        check_number(self.weight_decay, "weight_decay", low=0.0)
        check_number(self.grad_clip, "grad_clip", low=0.0)
        check_number(self.ema_decay, "ema_decay", low=0.0, high=1.0, high_open=True)
        check_time_span(self.t0, self.T)


def _check_images(images) -> torch.Tensor:
    """Training images: a float tensor (N, C, H, W), N >= 1, finite (checked once, before training)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        what = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be float (N, C, H, W), got {what}")
    if images.shape[0] == 0:
        raise ValueError(f"images is empty (shape {tuple(images.shape)}): need at least one image")
    return check_finite(images, "images")


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay ema + (1 - decay) model, parameter by parameter; buffers (head gates) are copied."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


class _Run:
    """Model, EMA, optimiser, generator, step and recent losses of one image training run."""

    def __init__(self, model: nn.Module, ema: nn.Module, cfg: ImageTrainConfig, seed: int, resume: dict | None):
        self.model, self.ema, self.cfg = model, ema, cfg
        self.device = next(model.parameters()).device
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                     **({"fused": True} if cfg.fused else {}))
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.step, self.last_loss, self.recent = 0, math.nan, []
        if resume is not None:
            model.load_state_dict(resume["model"])
            ema.load_state_dict(resume["ema"])
            self.opt.load_state_dict(resume["opt"])
            self.gen.set_state(resume["gen"].cpu())
            self.step = int(resume["step"])
            self.last_loss = float(resume.get("loss", math.nan))

    def loss(self) -> float:
        """Mean loss over the last <= 100 steps run in this call (the resumed state's if none ran)."""
        return float(np.mean(self.recent)) if self.recent else self.last_loss

    def state(self) -> dict:
        """The checkpoint state (live tensors: serialise or copy it before training continues)."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict(), "opt": self.opt.state_dict(),
                "gen": self.gen.get_state(), "step": self.step, "config": dataclasses.asdict(self.cfg),
                "loss": self.loss()}

    def advance(self, images: torch.Tensor, amp: bool) -> None:
        """One optimiser step on a minibatch drawn from the run's generator."""
        cfg, gen, device = self.cfg, self.gen, self.device
        idx = torch.randint(images.shape[0], (cfg.batch_size,), generator=gen, device=device)
        x0 = images[idx]
        t = normalised_times(cfg.batch_size, cfg.t0, cfg.T, gen)
        noise = torch.randn(x0.shape, generator=gen, device=device, dtype=x0.dtype)
        lr = learning_rate(self.step, lr=cfg.lr, steps=cfg.steps, warmup=cfg.warmup, final_fraction=1.0)
        for group in self.opt.param_groups:
            group["lr"] = lr
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = _denoising_loss(self.model, x0, t, noise).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        ema_update(self.ema, self.model, cfg.ema_decay)
        self.step += 1
        self.recent = (self.recent + [float(loss.detach())])[-100:]


def train_denoiser(model: nn.Module, images: torch.Tensor, cfg: ImageTrainConfig, *, seed: int,
                   resume: dict | None = None, on_checkpoint: Callable[[dict], None] | None = None,
                   ema: nn.Module | None = None, amp: bool | None = None, max_steps_this_call: int | None = None,
                   progress: Callable[[int, float], None] | None = None) -> tuple[nn.Module, dict]:
    """Train ``model`` (an eps-predictor) on ``images`` (N, C, H, W) in [-1, 1] for ``cfg.steps`` steps
    in all, continuing from ``resume`` (a state an earlier call gave ``on_checkpoint``: model, EMA,
    optimiser, step and random state) and handing the state to ``on_checkpoint`` every
    ``cfg.checkpoint_every`` steps and at the end. ``max_steps_this_call`` stops early (e.g. to keep each
    call under a time limit); call again with the last state to continue. ``amp``: bf16 autocast
    (default: on for CUDA). ``progress(step, loss)`` is called every 100 steps. Returns the EMA model (a
    copy of ``model`` unless ``ema`` is given) and ``{"step", "loss"}`` (the mean loss over the last <= 100
    steps run; from the resume state if none ran now)."""
    images = _check_images(images)
    if not isinstance(cfg, ImageTrainConfig):
        raise TypeError(f"cfg must be an ImageTrainConfig, got {type(cfg).__name__}")
    seed = check_int(seed, "seed")
    if max_steps_this_call is not None:
        max_steps_this_call = check_positive_int(max_steps_this_call, "max_steps_this_call", minimum=0)
    device = next(model.parameters()).device
    images = images.to(device)
    amp = (device.type == "cuda") if amp is None else amp
    ema = ema if ema is not None else copy.deepcopy(model)
    ema.requires_grad_(False)
    run = _Run(model, ema, cfg, seed, resume)
    stop = cfg.steps if max_steps_this_call is None else min(cfg.steps, run.step + max_steps_this_call)
    model.train()
    while run.step < stop:
        run.advance(images, amp)
        if progress is not None and run.step % 100 == 0:
            progress(run.step, run.loss())
        if on_checkpoint is not None and run.step % cfg.checkpoint_every == 0:
            on_checkpoint(run.state())
    if on_checkpoint is not None:
        on_checkpoint(run.state())
    model.eval()
    ema.eval()
    return ema, {"step": run.step, "loss": run.loss()}
