"""Denoising score matching (DSM) training of a ``theory.networks.score_net.ScoreNet`` ensemble.

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

Optimiser (memsep's choices, in ``ScoreTrainConfig``): AdamW with decoupled weight decay (one value per
ensemble member, so a weight-decay grid trains as one ensemble), linear warm-up then cosine decay of
the learning rate (``theory.training.schedule``), per-member gradient-norm clipping, and an exponential
moving average (EMA) of the weights, which is what gets sampled and evaluated.

Ensembles stay independent: each member draws its minibatch indices, times and noise from its own
generator, its loss enters the total as a sum, clipping is per member, and Adam is element-wise, so
member e follows exactly the trajectory it would follow alone (to round-off).

Checkpoints. ``train`` writes nothing: every ``checkpoint_every`` steps and at the end it hands a state
(model, optimiser, EMA, step, loss history and every generator's state) to an optional ``on_checkpoint``
callback, and it resumes from such a state given as ``resume``, so an interrupted run resumes to the same
result. (verify._io.Checkpoint stores them atomically.)
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple, Sequence

import torch

from .._validate import as_tensor, check_array, check_finite, check_number, check_positive_int, check_time_span
from ..laws import forward
from ..networks.ensemble import per_member
from ..networks.score_net import ScoreNet
from .schedule import learning_rate


@dataclasses.dataclass(frozen=True)
class ScoreTrainConfig:
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
    checkpoint_every: int = 500     # steps between checkpoint states (when a callback is given)

    def __post_init__(self):
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_int(self.warmup, "warmup", minimum=0)
        check_positive_int(self.checkpoint_every, "checkpoint_every", minimum=0)
        check_time_span(self.t0, self.T)
        check_number(self.lr, "lr", low=0.0, low_open=True)
        check_number(self.final_lr_fraction, "final_lr_fraction", low=0.0)
        check_number(self.grad_clip, "grad_clip", low=0.0)
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        check_number(self.weight_decay, "weight_decay", low=0.0)


class TrainResult(NamedTuple):
    """``losses``: (steps, E) mean eps-loss of each member's minibatch per step; ``ema``: the EMA
    weights (name -> tensor), to load with ``load_ema``."""

    losses: torch.Tensor
    ema: dict


def log_uniform_times(shape: tuple, t0: float, T: float, generator: torch.Generator | None = None, *,
                      dtype=torch.float32, device=None) -> torch.Tensor:
    """Log-uniform draws on [t0, T]: t = t0 (T / t0)^u, u ~ U(0, 1); 0 < t0 < T finite."""
    t0, T = check_time_span(t0, T)
    return _log_uniform_times(shape, t0, T, generator, dtype, device)


def _log_uniform_times(shape, t0: float, T: float, generator, dtype, device) -> torch.Tensor:
    u = torch.rand(shape, generator=generator, dtype=torch.float64, device=device)
    return (t0 * torch.exp(u * math.log(T / t0))).to(dtype)


def eps_loss(net: ScoreNet, x0, t, noise) -> torch.Tensor:
    """|eps^(X_t, t) - z|^2 per sample, (E, B), for X_t = alpha_t x0 + sigma_t z with x0, noise of shape
    (E, B, d) (finite) and t (E, B) (> 0). Equals sigma_t^2 | s(X_t, t) + z / sigma_t |^2 = sigma_t^2 x
    (the paper's per-sample DSM loss) for s = -eps^ / sigma_t."""
    x0 = check_array(x0, "x0", ("E", "B", "d"))
    noise = check_array(noise, "noise", tuple(x0.shape), dtype=x0.dtype, device=x0.device)
    t = as_tensor(t, "t", device=x0.device)
    return _eps_loss(net, x0, t, noise)


def _eps_loss(net: ScoreNet, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The loss of ``eps_loss`` for checked tensors (the training loop)."""
    x_t = forward._add_noise(x0, t, noise)
    return (net(x_t, t) - noise).pow(2).sum(-1)


def load_ema(net: ScoreNet, ema: dict) -> ScoreNet:
    """Copy the EMA weights into ``net`` (in place) and return it."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.copy_(ema[name])
    return net


class _Run:
    """The mutable state of one training run: what a checkpoint holds."""

    def __init__(self, net: ScoreNet, cfg: ScoreTrainConfig, gens: list, resume: dict | None):
        self.net, self.cfg, self.gens = net, cfg, gens
        self.params = list(net.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=0.0,
                                     foreach=True)
        self.ema = {name: p.detach().clone() for name, p in net.named_parameters()}
        self.losses = torch.zeros(cfg.steps, net.members, dtype=torch.float64)
        self.step = 0
        if resume is not None:
            self.restore(resume)

    def key(self) -> dict:
        return {"config": dataclasses.asdict(self.cfg), "members": self.net.members}

    def restore(self, state: dict) -> None:
        if state["config"] != self.key()["config"] or state["members"] != self.net.members:
            raise ValueError("the resume state belongs to another configuration")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.ema = state["ema"]
        self.step = state["step"]
        self.losses[:self.step] = state["losses"][:self.step]
        for g, s in zip(self.gens, state["rng"]):
            g.set_state(s)

    def state(self) -> dict:
        """The checkpoint state. Its tensors are the live ones: serialise (or copy) it before training
        continues."""
        return {**self.key(), "model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                "ema": self.ema, "step": self.step, "losses": self.losses[:self.step],
                "rng": [g.get_state() for g in self.gens]}


def _member_setup(net: ScoreNet, data: torch.Tensor, cfg: ScoreTrainConfig, n_per_member, weight_decay,
                  data_seeds) -> tuple[torch.Tensor, list[int], torch.Tensor, list[torch.Generator]]:
    """Checked per-member inputs: the (E, n, d) data in the net's dtype, each member's n_e, its weight
    decay (E,) and its generator of minibatch indices, times and noise."""
    E, d = net.members, net.dim
    param = next(net.parameters())
    device, dtype = param.device, param.dtype
    if isinstance(data, torch.Tensor) and data.device != device:
        raise ValueError(f"data is on {data.device}, the net on {device}; move it explicitly")
    data = check_finite(as_tensor(data, "data", device=device), "data")
    if data.ndim == 2:
        data = data[None].expand(E, *data.shape)
    if data.ndim != 3 or data.shape[0] != E or data.shape[2] != d:
        raise ValueError(f"data must have shape (n, {d}) or ({E}, n, {d}), got {tuple(data.shape)}")
    if data.device != device:
        raise ValueError(f"data is on {data.device}, the net on {device}; move it explicitly")
    n_max = data.shape[1]
    if n_max == 0:
        raise ValueError(f"data is empty (shape {tuple(data.shape)}): need at least one training point")
    n_e = [int(v) for v in per_member(n_max if n_per_member is None else list(n_per_member), E, "n_per_member")]
    if any(not 1 <= v <= n_max for v in n_e):
        raise ValueError(f"n_per_member must lie in [1, {n_max}], got {n_e}")
    wd = torch.tensor([float(v) for v in per_member(cfg.weight_decay if weight_decay is None else weight_decay,
                                                    E, "weight_decay")], dtype=dtype, device=device)
    if bool((wd < 0).any()):
        raise ValueError("weight_decay must be >= 0")
    seeds = list(net.seeds if data_seeds is None else data_seeds)
    if len(seeds) != E:
        raise ValueError(f"data_seeds must have {E} entries, got {len(seeds)}")
    gens = [torch.Generator(device=device).manual_seed(1_000_003 + int(s)) for s in seeds]
    return data.to(dtype), n_e, wd, gens


def _minibatch(data: torch.Tensor, n_e: list[int], gens: list, cfg: ScoreTrainConfig):
    """Each member's (x0, t, z) from its own generator, stacked to (E, B, d), (E, B), (E, B, d)."""
    E, _, d = data.shape
    device, dtype, B = data.device, data.dtype, cfg.batch_size
    idx, t, z = [], [], []
    for e, g in enumerate(gens):
        u = torch.rand(B, generator=g, dtype=torch.float64, device=device)
        idx.append((u * n_e[e]).long().clamp_max(n_e[e] - 1))
        t.append(_log_uniform_times((B,), cfg.t0, cfg.T, g, dtype, device))
        z.append(torch.randn(B, d, generator=g, dtype=dtype, device=device))
    rows = torch.arange(E, device=device)[:, None]
    return data[rows, torch.stack(idx)], torch.stack(t), torch.stack(z)


def _optimiser_step(run: _Run, member_loss: torch.Tensor, wd: torch.Tensor) -> None:
    """Backward, per-member clipping and decoupled decay p <- p (1 - lr wd_e), AdamW, then the EMA."""
    cfg, E = run.cfg, run.net.members
    run.opt.zero_grad(set_to_none=True)
    member_loss.sum().backward()
    lr = learning_rate(run.step, lr=cfg.lr, steps=cfg.steps, warmup=cfg.warmup,
                       final_fraction=cfg.final_lr_fraction)
    with torch.no_grad():
        if cfg.grad_clip > 0:
            sq = sum(p.grad.pow(2).reshape(E, -1).sum(1) for p in run.params)
            scale = (cfg.grad_clip / (sq.sqrt() + 1e-6)).clamp(max=1.0)
            for p in run.params:
                p.grad.mul_(scale.reshape(E, *([1] * (p.ndim - 1))))
        for p in run.params:
            p.mul_((1 - lr * wd).reshape(E, *([1] * (p.ndim - 1))))
    for group in run.opt.param_groups:
        group["lr"] = lr
    run.opt.step()
    with torch.no_grad():
        decay = min(cfg.ema_decay, (1 + run.step) / (10 + run.step))
        for name, p in run.net.named_parameters():
            run.ema[name].lerp_(p.detach(), 1 - decay)


def train(net: ScoreNet, data: torch.Tensor, cfg: ScoreTrainConfig, *, n_per_member: Sequence[int] | None = None,
          weight_decay=None, data_seeds: Sequence[int] | None = None, resume: dict | None = None,
          on_checkpoint: Callable[[dict], None] | None = None, stop_after: int | None = None,
          progress: Callable[[int, torch.Tensor], None] | None = None) -> TrainResult:
    """Train every member of ``net`` by DSM (module docstring) and return the loss history and EMA.

    data : (n, d) shared by all members, or (E, n, d) one training set per member.
    n_per_member : member e trains on the first n_e rows of its set only (default: all n), so members
        with different training-set sizes train as one ensemble.
    weight_decay : AdamW decay per member, a scalar or (E,) (default ``cfg.weight_decay``).
    data_seeds : seeds of the per-member generators of minibatch indices, times and noise (default:
        the net's seeds).
    resume : a state given to ``on_checkpoint`` by an earlier run of this configuration: training
        continues from it (a state of another configuration raises).
    on_checkpoint : called with the run's state every ``cfg.checkpoint_every`` steps and at the end.
    stop_after : stop after this many steps in total (to simulate an interruption in tests).
    progress : a callable ``progress(step, losses)`` called every 100 steps, or None.
    """
    if not isinstance(net, ScoreNet):
        raise TypeError(f"net must be a ScoreNet, got {type(net).__name__}")
    if not isinstance(cfg, ScoreTrainConfig):
        raise TypeError(f"cfg must be a ScoreTrainConfig, got {type(cfg).__name__}")
    if stop_after is not None:
        stop_after = check_positive_int(stop_after, "stop_after", minimum=0)
    data, n_e, wd, gens = _member_setup(net, data, cfg, n_per_member, weight_decay, data_seeds)
    run = _Run(net, cfg, gens, resume)
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    net.train()
    while run.step < end:
        member_loss = _eps_loss(net, *_minibatch(data, n_e, gens, cfg)).mean(dim=1)
        _optimiser_step(run, member_loss, wd)
        run.losses[run.step] = member_loss.detach().to(torch.float64).cpu()
        run.step += 1
        if progress is not None and run.step % 100 == 0:
            progress(run.step, run.losses[:run.step])
        if on_checkpoint is not None and cfg.checkpoint_every > 0 and run.step % cfg.checkpoint_every == 0:
            on_checkpoint(run.state())
    if on_checkpoint is not None:
        on_checkpoint(run.state())
    return TrainResult(run.losses[:run.step], run.ema)
