"""Denoising training of an image noise predictor (the DiT) under the forward OU process, with EMA,
mixed precision on GPU, seeded data and noise, and checkpoints that resume mid-run.

Time axis. Training and the pruning scores draw a *normalised* time u in [0, 1] and map it to OU time by
the variance-preserving (DDPM) time change of Song et al. (2021), rescaled to [t0, T]:

    t(u) = t0 + (T - t0) (beta_min u + (beta_max - beta_min) u^2 / 2) / (beta_min + (beta_max - beta_min) / 2),

(beta_min, beta_max) = (0.1, 20): with T ~ 10 this is the usual DDPM noise schedule written in the OU time
of theory.forward (alpha_t^2 = exp(-t)). u ~ U(0, 1) for training (uniform over DDPM time steps); u ~
Beta(a, b) for the small-t importance of Algorithm 1.

Loss. With X_t = alpha_t x0 + sigma_t z, the network eps predicts z and the per-sample loss is

    l(x0, t, z) = mean_pixels (eps(X_t, t) - z)^2 = sigma_t^2 / D | s(X_t, t) + (X_t - alpha_t x0) / sigma_t^2 |^2,

the DSM loss of theory.forward.dsm_loss weighted by sigma_t^2 / D (D pixels), s = -eps / sigma_t.

This image trainer is separate from the vector score-net training of the mixture experiments because it
needs what those do not: NCHW batches, EMA weights, bf16 autocast, and resumable checkpoints of model,
EMA, optimiser and random state.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..laws.forward import alpha, sigma

VP_BETA = (0.1, 20.0)


def normalised_to_time(u: torch.Tensor, t0: float, T: float, *, schedule: str = "vp") -> torch.Tensor:
    """Map normalised times u in [0, 1] to OU times in [t0, T]: ``vp`` is the DDPM time change (module
    docstring), ``linear`` is t0 + (T - t0) u."""
    if not 0 < t0 < T:
        raise ValueError(f"need 0 < t0 < T, got t0={t0}, T={T}")
    if bool(((u < 0) | (u > 1)).any()):
        raise ValueError("u must lie in [0, 1]")
    if schedule == "linear":
        frac = u
    elif schedule == "vp":
        b0, b1 = VP_BETA
        frac = (b0 * u + 0.5 * (b1 - b0) * u * u) / (b0 + 0.5 * (b1 - b0))
    else:
        raise ValueError(f"schedule must be 'vp' or 'linear', got {schedule!r}")
    return t0 + (T - t0) * frac


def sample_times(n: int, t0: float, T: float, generator: torch.Generator, *, beta: tuple | None = None,
                 schedule: str = "vp", device=None) -> torch.Tensor:
    """n OU times: u ~ U(0, 1) (``beta=None``) or u ~ Beta(a, b) (``beta=(a, b)``), mapped by
    ``normalised_to_time``. Beta draws use a NumPy generator seeded from ``generator`` (reproducible)."""
    device = device or generator.device
    if beta is None:
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=generator.device)
    else:
        a, b = beta
        if not (a > 0 and b > 0):
            raise ValueError(f"beta parameters must be positive, got {beta}")
        seed = int(torch.randint(2 ** 62, (1,), generator=generator, device=generator.device))
        u = torch.from_numpy(np.random.default_rng(seed).beta(a, b, n))
    return normalised_to_time(u.to(device=device, dtype=torch.float64), t0, T, schedule=schedule)


def denoising_loss(model: nn.Module, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Per-sample noise-prediction loss mean((eps(alpha_t x0 + sigma_t z, t) - z)^2), (B,), at least float32
    (module docstring: sigma_t^2 / D times the DSM loss). Pass the same ``t`` and ``noise`` to compare
    models or masks with common random numbers."""
    if x0.shape != noise.shape or t.shape != (x0.shape[0],):
        raise ValueError(f"x0 {tuple(x0.shape)}, noise {tuple(noise.shape)} and t {tuple(t.shape)} disagree")
    shape = (-1,) + (1,) * (x0.ndim - 1)
    x_t = alpha(t).to(x0.dtype).view(shape) * x0 + sigma(t).to(x0.dtype).view(shape) * noise
    eps = model(x_t, t)
    dtype = torch.promote_types(eps.dtype, torch.float32)          # bf16 under autocast -> float32
    return (eps.to(dtype) - noise.to(dtype)).pow(2).flatten(1).mean(1)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (AdamW, linear warm-up then constant learning rate, gradient clipping)."""

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


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay ema + (1 - decay) model, parameter by parameter; buffers (head gates) are copied."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def _save(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model: nn.Module, ema: nn.Module | None = None) -> int:
    """Load model (and EMA) weights from a checkpoint written by ``train_denoiser``; returns its step."""
    state = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    model.load_state_dict(state["model"])
    if ema is not None:
        ema.load_state_dict(state["ema"])
    return int(state["step"])


def train_denoiser(model: nn.Module, images: torch.Tensor, cfg: TrainConfig, *, seed: int,
                   checkpoint: str | os.PathLike | None = None, ema: nn.Module | None = None,
                   amp: bool | None = None, max_steps_this_call: int | None = None,
                   log_every: int = 0) -> tuple[nn.Module, dict]:
    """Train ``model`` (an eps-predictor) on ``images`` (N, C, H, W) in [-1, 1] for ``cfg.steps`` steps
    in all, resuming from ``checkpoint`` if it exists (model, EMA, optimiser, step and random state) and
    saving to it every ``cfg.checkpoint_every`` steps and at the end. ``max_steps_this_call`` stops early
    (e.g. to keep each call under a time limit); call again to continue. ``amp``: bf16 autocast (default:
    on for CUDA). Returns the EMA model (a copy of ``model`` unless ``ema`` is given) and
    ``{"step", "loss"}`` (the mean loss over the last <= 100 steps run; from the checkpoint if none ran now)."""
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be float (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    device = next(model.parameters()).device
    images = images.to(device)
    amp = (device.type == "cuda") if amp is None else amp
    ema = ema if ema is not None else copy.deepcopy(model)
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator(device=device).manual_seed(seed)
    step, last_loss = 0, math.nan
    path = Path(checkpoint) if checkpoint else None
    if path is not None and path.exists():
        state = torch.load(path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"].cpu())
        step = int(state["step"])
        last_loss = float(state.get("loss", math.nan))

    def save():
        if path is not None:
            _save(path, {"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                         "gen": gen.get_state(), "step": step, "config": dataclasses.asdict(cfg),
                         "loss": float(np.mean(recent)) if recent else last_loss})

    stop = cfg.steps if max_steps_this_call is None else min(cfg.steps, step + max_steps_this_call)
    recent: list[float] = []
    model.train()
    while step < stop:
        idx = torch.randint(images.shape[0], (cfg.batch_size,), generator=gen, device=device)
        x0 = images[idx]
        t = sample_times(cfg.batch_size, cfg.t0, cfg.T, gen)
        noise = torch.randn(x0.shape, generator=gen, device=device, dtype=x0.dtype)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * min(1.0, (step + 1) / max(cfg.warmup, 1))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = denoising_loss(model, x0, t, noise).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ema_update(ema, model, cfg.ema_decay)
        step += 1
        recent = (recent + [float(loss.detach())])[-100:]
        if log_every and step % log_every == 0:
            print(f"[train] step {step}/{cfg.steps} loss {np.mean(recent):.4f}", flush=True)
        if path is not None and step % cfg.checkpoint_every == 0:
            save()
    save()
    model.eval()
    ema.eval()
    return ema, {"step": step, "loss": float(np.mean(recent)) if recent else last_loss}
