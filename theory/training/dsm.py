"""Denoising score matching (DSM) training of a ``theory.score_net.ScoreNet`` ensemble.

Loss and its weighting (memsep's parameterisation). The paper's DSM loss at time t is

    l_t(s) = E_{x0, z} | s(X_t, t) + z / sigma_t |^2,   X_t = alpha_t x0 + sigma_t z.

The network predicts eps^ and s = -eps^ / sigma_t, and we minimise

    L(eps^) = E_{t ~ LogUniform[t0, T]} E_{x0, z} | eps^(X_t, t) - z |^2
            = E_t [ sigma_t^2 l_t(s) ].

The per-t weight sigma_t^2 > 0 (times the log-uniform density of t) keeps every t's term O(1) (raw
l_t grows like d / sigma_t^2 as t -> 0). A positive weight per t does not move the minimiser: for every
t the integrand is minimised pointwise by s(x, t) = grad log p^_t(x) (the empirical score, for the
training set), so the weighted and unweighted losses share their minimiser; only the optimisation path
differs. ``eps_loss`` equals ``sigma_t^2 * theory.dsm_loss`` exactly (tested).

Optimiser (memsep's choices, in ``TrainConfig``): AdamW with decoupled weight decay (one value per
ensemble member, so a weight-decay grid trains as one ensemble), linear warm-up then cosine decay of
the learning rate, per-member gradient-norm clipping, and an exponential moving average (EMA) of the
weights, which is what gets sampled and evaluated.

Ensembles stay independent: each member draws its minibatch indices, times and noise from its own
generator, its loss enters the total as a sum, clipping is per member, and Adam is element-wise, so
member e follows exactly the trajectory it would follow alone (to round-off).

Checkpoints (optional) are written atomically (temporary file + rename) with the model, optimiser, EMA,
step, loss history and every generator's state, so an interrupted run resumes to the same result.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from .._validate import check_positive_int
from ..networks.score_net import ScoreNet


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """DSM training hyper-parameters. These are memsep's choices (the paper publishes none)."""

    steps: int = 4000
    batch_size: int = 256           # per member
    lr: float = 2e-3                # peak learning rate
    warmup: int = 100               # linear warm-up steps
    final_lr_fraction: float = 0.05  # cosine decay ends at lr * final_lr_fraction
    weight_decay: float = 0.0       # AdamW decoupled weight decay (overridable per member)
    betas: tuple = (0.9, 0.999)
    grad_clip: float = 1.0          # per-member gradient-norm clip (0 disables)
    ema_decay: float = 0.999        # EMA of weights (warmed up as min(decay, (1 + k) / (10 + k)))
    t0: float = 1e-4                # smallest training time
    T: float = 10.0                 # largest training time
    checkpoint_every: int = 500     # steps between checkpoints (when a checkpoint path is given)

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        if not 0 < self.t0 < self.T:
            raise ValueError(f"need 0 < t0 < T, got t0={self.t0}, T={self.T}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")


class TrainResult(NamedTuple):
    """``losses``: (steps, E) mean eps-loss of each member's minibatch per step; ``ema``: the EMA
    weights (name -> tensor), to load with ``load_ema``."""

    losses: torch.Tensor
    ema: dict


def learning_rate(step: int, cfg: TrainConfig) -> float:
    """lr_k = lr (k + 1) / warmup during warm-up, then lr [f + (1 - f)(1 + cos(pi u)) / 2] with
    u = (k - warmup) / (steps - warmup) the fraction of the decay phase done, f = final_lr_fraction."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    u = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    f = cfg.final_lr_fraction
    return cfg.lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * min(u, 1.0))))


def sample_times(shape: tuple, t0: float, T: float, generator: torch.Generator | None = None, *,
                 dtype=torch.float32, device=None) -> torch.Tensor:
    """Log-uniform draws on [t0, T]: t = t0 (T / t0)^u, u ~ U(0, 1)."""
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    return (t0 * torch.exp(u * math.log(T / t0))).to(dtype)


def eps_loss(net: ScoreNet, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """|eps^(X_t, t) - z|^2 per sample, (E, B), for X_t = alpha_t x0 + sigma_t z with x0, noise of shape
    (E, B, d) and t (E, B). Equals sigma_t^2 | s(X_t, t) + z / sigma_t |^2 = sigma_t^2 x (the paper's
    per-sample DSM loss) for s = -eps^ / sigma_t."""
    a, s = torch.exp(-0.5 * t)[..., None], torch.sqrt(-torch.expm1(-t))[..., None]  # any shape of t
    x_t = a * x0 + s * noise
    return (net(x_t, t) - noise).pow(2).sum(-1)


def _per_member(value, E: int, name: str, *, dtype, device) -> torch.Tensor:
    v = torch.as_tensor(value, dtype=dtype, device=device)
    if v.ndim == 0:
        v = v.expand(E)
    if v.shape != (E,):
        raise ValueError(f"{name} must be a scalar or have shape ({E},), got {tuple(v.shape)}")
    return v.clone()


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_ema(net: ScoreNet, ema: dict) -> ScoreNet:
    """Copy the EMA weights into ``net`` (in place) and return it."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(ema[name])
    return net


def train(net: ScoreNet, data: torch.Tensor, cfg: TrainConfig, *, n_per_member: Sequence[int] | None = None,
          weight_decay=None, data_seeds: Sequence[int] | None = None, checkpoint: str | os.PathLike | None = None,
          stop_after: int | None = None, progress=None) -> TrainResult:
    """Train every member of ``net`` by DSM (module docstring) and return the loss history and EMA.

    data : (n, d) shared by all members, or (E, n, d) one training set per member.
    n_per_member : member e trains on the first n_e rows of its set only (default: all n), so members
        with different training-set sizes train as one ensemble.
    weight_decay : AdamW decay per member, a scalar or (E,) (default ``cfg.weight_decay``).
    data_seeds : seeds of the per-member generators of minibatch indices, times and noise (default:
        the net's seeds).
    checkpoint : a path; if it holds a checkpoint of this run, training resumes from it, and a new one
        is written every ``cfg.checkpoint_every`` steps and at the end.
    stop_after : stop after this many steps in total (to simulate an interruption in tests).
    progress : a callable ``progress(step, losses)`` called every 100 steps, or None.
    """
    E, d = net.members, net.dim
    param = next(net.parameters())
    device, dtype = param.device, param.dtype
    if data.ndim == 2:
        data = data[None].expand(E, *data.shape)
    if data.ndim != 3 or data.shape[0] != E or data.shape[2] != d:
        raise ValueError(f"data must have shape (n, {d}) or ({E}, n, {d}), got {tuple(data.shape)}")
    if data.device != device:
        raise ValueError(f"data is on {data.device}, the net on {device}; move it explicitly")
    data = data.to(dtype)
    n_max = data.shape[1]
    n_e = _per_member(n_max if n_per_member is None else list(n_per_member), E, "n_per_member",
                      dtype=torch.long, device=device)
    if bool((n_e < 1).any()) or bool((n_e > n_max).any()):
        raise ValueError(f"n_per_member must lie in [1, {n_max}], got {n_e.tolist()}")
    wd = _per_member(cfg.weight_decay if weight_decay is None else weight_decay, E, "weight_decay",
                     dtype=dtype, device=device)
    if bool((wd < 0).any()):
        raise ValueError("weight_decay must be >= 0")
    seeds = list(net.seeds if data_seeds is None else data_seeds)
    if len(seeds) != E:
        raise ValueError(f"data_seeds must have {E} entries, got {len(seeds)}")
    gens = [torch.Generator(device=device).manual_seed(1_000_003 + int(s)) for s in seeds]
    params = list(net.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=0.0, foreach=True)
    ema = {name: p.detach().clone() for name, p in net.named_parameters()}
    losses = torch.zeros(cfg.steps, E, dtype=torch.float64)
    step = 0
    path = Path(checkpoint) if checkpoint is not None else None
    config_key = dataclasses.asdict(cfg)
    if path is not None and path.exists():
        state = torch.load(path, map_location=device, weights_only=False)
        if state["config"] != config_key or state["members"] != E:
            raise ValueError(f"checkpoint {path} belongs to another configuration")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        ema = state["ema"]
        step = state["step"]
        losses[:step] = state["losses"][:step]
        for g, s in zip(gens, state["rng"]):
            g.set_state(s)

    def save():
        if path is not None:
            _atomic_save({"config": config_key, "members": E, "model": net.state_dict(),
                          "optimizer": opt.state_dict(), "ema": ema, "step": step, "losses": losses[:step],
                          "rng": [g.get_state() for g in gens]}, path)

    rows = torch.arange(E, device=device)[:, None]
    B = cfg.batch_size
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    net.train()
    while step < end:
        idx, t, z = [], [], []
        for e, g in enumerate(gens):
            u = torch.rand(B, generator=g, dtype=torch.float64, device=device)
            idx.append((u * int(n_e[e])).long().clamp_max(int(n_e[e]) - 1))
            t.append(sample_times((B,), cfg.t0, cfg.T, g, dtype=dtype, device=device))
            z.append(torch.randn(B, d, generator=g, dtype=dtype, device=device))
        x0 = data[rows, torch.stack(idx)]
        per_sample = eps_loss(net, x0, torch.stack(t), torch.stack(z))
        member_loss = per_sample.mean(dim=1)
        opt.zero_grad(set_to_none=True)
        member_loss.sum().backward()
        lr = learning_rate(step, cfg)
        with torch.no_grad():
            if cfg.grad_clip > 0:
                sq = sum(p.grad.pow(2).reshape(E, -1).sum(1) for p in params)
                scale = (cfg.grad_clip / (sq.sqrt() + 1e-6)).clamp(max=1.0)
                for p in params:
                    p.grad.mul_(scale.reshape(E, *([1] * (p.ndim - 1))))
            for p in params:  # decoupled decay, per member: p <- p (1 - lr wd_e)
                p.mul_((1 - lr * wd).reshape(E, *([1] * (p.ndim - 1))))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (1 + step) / (10 + step))
            for name, p in net.named_parameters():
                ema[name].lerp_(p.detach(), 1 - decay)
        losses[step] = member_loss.detach().to(torch.float64).cpu()
        step += 1
        if progress is not None and step % 100 == 0:
            progress(step, losses[:step])
        if path is not None and cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0:
            save()
    save()
    return TrainResult(losses[:step], ema)
