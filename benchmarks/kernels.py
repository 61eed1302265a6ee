"""memsep's kernels against this machine's matmul rate and against minimal plain-PyTorch versions.

    OMP_NUM_THREADS=1 python benchmarks/kernels.py [--quick] [--only NAME,...] [--skip NAME,...]
                                                   [--repeats R] [--csv FILE] [--markdown [FILE]]

For every kernel the script times, in one run on the machine it runs on, three variants of one computation:

* ``memsep``: the library's own call (``theory.training.dsm.train``, ``theory.evaluation.samplers.
  probability_flow``, ``theory.training.image.train_denoiser`` on a ``theory.networks.dit.DiT``,
  ``theory.laws.empirical.EmpiricalLaw.score``, ``theory.evaluation.neighbours.nearest_neighbours``,
  ``theory.evaluation.image_metrics.extract_features``);
* ``minimal``: the shortest honest plain-PyTorch version of the same computation, written below (a
  hand-written forward and AdamW loop over the same weights and the same random draws; a hand-written
  ODE loop; dense logsumexp-softmax per block of queries; ``torch.cdist`` + ``topk``; a plain batch
  loop around the same feature network). Before the table the script checks that ``memsep`` and
  ``minimal`` computed the same numbers (same seeds) and prints each check; a failed check makes the
  exit status 1;
* ``floor``: the time of just the dense matrix products the computation must do, at its shapes, as
  plain ``torch.mm`` / ``torch.bmm`` into preallocated outputs. For the networks these products are
  recorded from the memsep call itself (every mm / addmm / bmm / baddbmm, forward and backward; a
  convolution as its im2col product (N H_out W_out, C_in k^2) x (C_in k^2, C_out); an attention as its
  two products forward and four backward), rows chunked to at most 2^22 elements per operand. For the
  empirical score they are the (m x d) @ (d x n) logits and the (m x n) @ (n x d) weighted sum, for the
  neighbour search the (B x d) @ (d x n) inner products, in blocks of query rows.

Repeats are interleaved (memsep, minimal, floor, memsep, ...) after one warm-up of each, so a drift of the
machine's load affects all three alike; every variant is prepared (nets copied, buffers allocated) outside
the timed region. Per kernel and variant the table gives the median, min and max seconds of one call (the
``work`` column says what one call is), the ratios to ``minimal`` and to ``floor``, the FLOPs
(``torch.utils.flop_counter.FlopCounterMode`` on the memsep call, analytic for the empirical score and the
neighbours), and the fraction of this machine's square-matmul rate (a 1024 x 1024 float32 mm, and a
float64 one for the float64 kernels, at this thread count, measured before and after). The load average
(1-min) is noted before, after and per kernel: on a loaded machine every variant slows, the ratios less.

``--quick`` uses small shapes (seconds in all) to test the script. The default shapes are memsep's: the
cpu mixture ensembles (36 and 3 members), 1M- and 4M-parameter single nets in d = 16, probability-flow
sampling of an 18-member ensemble (500 samples each, 60 steps), the cpu preset's DiT and DiT-S/2 at 32x32,
the empirical score at d = 8, 64, 512 (n = 20,000 points, 2,000 queries, float64), the neighbour search
at 10,000 x 5,000 x 3,072 and 50,000 x 50,000 x 3,072 (uint8 images as float64, as memsep's memorization
check) and Inception-v3 features of 64 CIFAR-size images. The 50,000 x 50,000 search costs ~15 TFLOP per
call (one repeat by default; tens of minutes on one core): ``--skip neighbours_50k`` leaves it out.
Inception needs the offline TorchScript weights (``verify._io.load_inception``: ``$MEMSEP_DATA``, else
``../shared/data`` beside the repository); without them that kernel is skipped with a one-line reason.
Names in ``--only`` / ``--skip`` may be shell patterns (``train_*``). Nothing is written but the files asked
for.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import fnmatch
import gc
import math
import os
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

aten = torch.ops.aten
CHUNK = 2 ** 22          # elements per operand of a replayed product (larger ones are split by rows)
BLOCK = 2 ** 20          # (query, point) pairs per block of the minimal empirical score (as the library's tile)


# ============================================================================================== machine
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def square_gflops(dtype=torch.float32, size: int = 1024, reps: int = 10) -> float:
    """GFLOP/s of a size x size x size mm (median of ``reps``) on this thread count."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g, dtype=dtype)
    b = torch.randn(size, size, generator=g, dtype=dtype)
    out = torch.empty(size, size, dtype=dtype)
    torch.mm(a, b, out=out)
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - start)
    return 2.0 * size ** 3 / statistics.median(times) / 1e9


def load1() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


# ============================================================================================== harness
@dataclasses.dataclass
class Variant:
    """``prepare()`` (untimed) makes the state one timed ``run(state)`` consumes; ``warm`` (default ``run``)
    is the warm-up call."""

    prepare: Callable[[], Any]
    run: Callable[[Any], Any]
    warm: Callable[[Any], Any] | None = None


@dataclasses.dataclass
class Kernel:
    name: str
    shape: str                       # the problem's shapes, in words
    dtype: torch.dtype
    work: str                        # what one timed call does
    memsep: Variant
    minimal: Variant
    check: Callable[[Any, Any], tuple[bool, str]]
    floor: Variant | None = None     # None: recorded from the memsep warm-up (networks)
    gflop: float | None = None       # None: FlopCounterMode on the memsep warm-up
    floor_gflop: float | None = None
    max_repeats: int | None = None   # cap when --repeats is not given
    note: str = ""


def _steps(steps: int) -> str:
    return f"{steps} step{'s' if steps != 1 else ''}"


def _timed(fn, state):
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        out = fn(state)
        return time.perf_counter() - start, out
    finally:
        gc.enable()


def bench(k: Kernel, repeats: int, square: dict) -> tuple[list[dict], bool]:
    """Warm up, time the interleaved repeats, check memsep == minimal; one row per variant."""
    state = k.memsep.prepare()
    if k.floor is None:
        with FlopCounterMode(display=False) as fc, MatmulRecorder() as rec:
            (k.memsep.warm or k.memsep.run)(state)
        k.gflop = fc.get_total_flops() / 1e9 if k.gflop is None else k.gflop
        k.floor, k.floor_gflop = replay_variant(rec.ops)
    else:
        (k.memsep.warm or k.memsep.run)(state)
    del state
    variants = {"memsep": k.memsep, "minimal": k.minimal, "floor": k.floor}
    for name in ("minimal", "floor"):
        v = variants[name]
        (v.warm or v.run)(v.prepare())
    times = {name: [] for name in variants}
    outs: dict = {}
    for _ in range(repeats):
        for name, v in variants.items():
            state = v.prepare()
            seconds, out = _timed(v.run, state)
            times[name].append(seconds)
            outs[name] = out if name != "floor" else None
            del state, out
    ok, message = k.check(outs["memsep"], outs["minimal"])
    print(f"  check {k.name}: {'ok' if ok else 'FAILED'}: {message}", flush=True)
    load = load1()
    med = {name: statistics.median(ts) for name, ts in times.items()}
    rows = []
    for name, ts in times.items():
        flop = k.floor_gflop if name == "floor" else k.gflop
        rate = flop / med[name] if flop else math.nan
        rows.append({
            "kernel": k.name, "variant": name, "shape": k.shape, "dtype": str(k.dtype).replace("torch.", ""),
            "work": k.work, "repeats": len(ts), "median_s": med[name], "min_s": min(ts), "max_s": max(ts),
            "x_minimal": med[name] / med["minimal"], "x_floor": med[name] / med["floor"],
            "gflop": flop, "gflops": rate, "frac_square_f32": rate / square["float32"],
            "frac_square_dtype": rate / square[str(k.dtype).replace("torch.", "")],
            "load1": load, "check": ("ok" if ok else "FAILED") if name != "floor" else "", "note": k.note})
    return rows, ok


# ============================================================================================== the matmul floor
class MatmulRecorder(TorchDispatchMode):
    """Records the dense products of everything run under it, as ('mm', M, K, N, dtype) and
    ('bmm', batch, M, K, N, dtype) entries (module docstring: convolutions as im2col products, attention as
    its bmm's)."""

    def __init__(self):
        super().__init__()
        self.ops: list[tuple] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            self._record(func._overloadpacket, args, out)
        except Exception as err:  # noqa: BLE001 - a shape we do not model must not break the kernel
            print(f"  (floor: {func} not recorded: {err})")
        return out

    def _record(self, op, args, out) -> None:
        add = self.ops.append
        if op in (aten.mm, aten.addmm):
            a, b = (args[0], args[1]) if op is aten.mm else (args[1], args[2])
            add(("mm", a.shape[0], a.shape[1], b.shape[1], a.dtype))
        elif op in (aten.bmm, aten.baddbmm):
            a, b = (args[0], args[1]) if op is aten.bmm else (args[1], args[2])
            add(("bmm", a.shape[0], a.shape[1], a.shape[2], b.shape[2], a.dtype))
        elif op in (aten.convolution, aten._convolution):
            x, w, groups = args[0], args[1], int(args[8])
            y = out
            rows = y.shape[0] * math.prod(y.shape[2:])
            inner = w.shape[1] * math.prod(w.shape[2:])
            for _ in range(groups):
                add(("mm", rows, inner, w.shape[0] // groups, x.dtype))
        elif op is aten.convolution_backward:
            grad, w, groups, mask = args[0], args[2], int(args[9]), args[10]
            rows = grad.shape[0] * math.prod(grad.shape[2:])
            inner, cout = w.shape[1] * math.prod(w.shape[2:]), w.shape[0] // groups
            for _ in range(groups):
                if mask[0]:
                    add(("mm", rows, cout, inner, grad.dtype))
                if mask[1]:
                    add(("mm", inner, rows, cout, grad.dtype))
        elif op is aten._scaled_dot_product_flash_attention_for_cpu:
            q, k, v = args[:3]
            self._attention(q, k, v, backward=False)
        elif op is aten._scaled_dot_product_flash_attention_for_cpu_backward:
            q, k, v = args[1:4]
            self._attention(q, k, v, backward=True)

    def _attention(self, q, k, v, backward: bool) -> None:
        bh, L, E = math.prod(q.shape[:-2]), q.shape[-2], q.shape[-1]
        S, Ev = k.shape[-2], v.shape[-1]
        if not backward:                       # Q K^T, P V
            self.ops += [("bmm", bh, L, E, S, q.dtype), ("bmm", bh, L, S, Ev, q.dtype)]
        else:                                  # dV = P^T dO, dP = dO V^T, dQ = dS K, dK = dS^T Q
            self.ops += [("bmm", bh, S, L, Ev, q.dtype), ("bmm", bh, L, Ev, S, q.dtype),
                         ("bmm", bh, L, S, E, q.dtype), ("bmm", bh, S, L, E, q.dtype)]


def _pieces(op: tuple) -> list[tuple]:
    """An op as (count, kind, dims) pieces with every operand at most CHUNK elements (split by rows / batch)."""
    if op[0] == "bmm":
        _, b, M, K, N, _ = op
        per = M * max(K, N)
        if per <= CHUNK:
            step = max(1, CHUNK // per)
            out = [(b // step, "bmm", (step, M, K, N))] if b >= step else []
            return out + ([(1, "bmm", (b % step, M, K, N))] if b % step else [])
        return [(b * c, kind, dims) for c, kind, dims in _pieces(("mm", M, K, N, op[-1]))]
    _, M, K, N, _ = op
    r = max(1, min(M, CHUNK // max(K, N)))
    out = [(M // r, "mm", (r, K, N))]
    return out + ([(1, "mm", (M % r, K, N))] if M % r else [])


def replay_variant(ops: list[tuple]) -> tuple[Variant, float]:
    """The floor: the recorded products replayed as plain mm / bmm into preallocated outputs."""
    plan = Counter()
    for op in ops:
        for count, kind, dims in _pieces(op):
            plan[(kind, dims, op[-1])] += count
    flop = sum(2.0 * math.prod(dims) * count for (kind, dims, _), count in plan.items()) / 1e9
    cache: list = []

    def prepare():
        if not cache:
            g = torch.Generator().manual_seed(0)
            for (kind, dims, dtype), count in plan.items():
                if kind == "mm":
                    M, K, N = dims
                    a, b, c = (torch.randn(M, K, generator=g, dtype=dtype), torch.randn(K, N, generator=g, dtype=dtype),
                               torch.empty(M, N, dtype=dtype))
                    cache.append((torch.mm, a, b, c, count))
                else:
                    B, M, K, N = dims
                    a, b, c = (torch.randn(B, M, K, generator=g, dtype=dtype),
                               torch.randn(B, K, N, generator=g, dtype=dtype), torch.empty(B, M, N, dtype=dtype))
                    cache.append((torch.bmm, a, b, c, count))
        return cache

    def run(items):
        for fn, a, b, c, count in items:
            for _ in range(count):
                fn(a, b, out=c)

    return Variant(prepare, run), flop


# ============================================================================================== checks
def _max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def check_close(rtol: float, what: str):
    """max |a - b| <= rtol max |a| (for outputs that are one tensor)."""
    def check(a, b):
        diff, scale = _max_abs(a, b), float(a.double().abs().max())
        return diff <= rtol * scale, f"max |{what} memsep - minimal| = {diff:.2e} (max |{what}| {scale:.3g}, " \
                                     f"tolerance {rtol:g} x that)"
    return check


def check_training(initial: list[torch.Tensor], rtol: float):
    """Trained weights (and losses, where given) of memsep and minimal agree: max |w_a - w_b| <= rtol x the
    largest weight change max |w_a - w_0| (round-off of two AdamW implementations; the weights are the
    same draws and the same forward)."""
    def check(a, b):
        wa, wb = a["weights"], b["weights"]
        diff = max(_max_abs(x, y) for x, y in zip(wa, wb))
        moved = max(_max_abs(x, w0) for x, w0 in zip(wa, initial))
        ok = moved > 0 and diff <= rtol * moved
        msg = f"max |w memsep - w minimal| = {diff:.2e} after max |w - w_0| = {moved:.3g} (tolerance {rtol:g} x that)"
        if a.get("losses") is not None:
            la, lb = a["losses"].double(), b["losses"].double()
            rel = float(((la - lb).abs() / la.abs().clamp_min(1e-30)).max())
            ok = ok and rel <= 1e-4
            msg += f"; losses: max relative difference {rel:.1e} (tolerance 1e-4)"
        return ok, msg
    return check


# ============================================================================================== mixture nets
def _score_net_params(net) -> list[torch.Tensor]:
    """The net's weights in the order of ``plain_eps``: inp, (first, second) per block, out."""
    layers = [net.inp] + [lin for block in net.blocks for lin in block] + [net.out]
    return [t for lin in layers for t in (lin.weight, lin.bias)]


def plain_eps(weights: list[torch.Tensor], omega: torch.Tensor, v: float, x: torch.Tensor,
              t: torch.Tensor) -> torch.Tensor:
    """The ScoreNet residual MLP (theory.networks.score_net) in plain torch: x (E, B, d), t (E, B)."""
    x_in = x * torch.rsqrt(torch.exp(-t) * v - torch.expm1(-t))[..., None]
    phase = torch.log(t)[..., None] * omega
    h = torch.baddbmm(weights[1], torch.cat([x_in, torch.sin(phase), torch.cos(phase)], dim=-1), weights[0])
    for i in range(2, len(weights) - 2, 4):
        w1, b1, w2, b2 = weights[i:i + 4]
        h = h + torch.baddbmm(b2, F.silu(torch.baddbmm(b1, F.silu(h), w1)), w2)
    return torch.baddbmm(weights[-1], F.silu(h), weights[-2])


def plain_dsm_train(net, data: torch.Tensor, *, steps: int, batch: int, lr: float, warmup: int, final: float,
                    weight_decay: float, clip: float, ema_decay: float, t0: float, T: float,
                    betas=(0.9, 0.999), eps: float = 1e-8) -> dict:
    """DSM training of the ensemble's weights by a hand-written loop: each member's minibatch, times and
    noise from its own generator (seeded as theory.training.dsm does), eps-loss, per-member clipping,
    decoupled decay, AdamW, EMA."""
    E, d, n = net.members, net.dim, data.shape[0]
    weights = _score_net_params(net)
    omega, v = net.omega, net.data_variance
    gens = [torch.Generator().manual_seed(1_000_003 + int(s)) for s in net.seeds]
    m1 = [torch.zeros_like(w) for w in weights]
    m2 = [torch.zeros_like(w) for w in weights]
    ema = [w.detach().clone() for w in weights]
    b1, b2 = betas
    losses = torch.zeros(steps, E, dtype=torch.float64)
    for k in range(steps):
        idx, ts, zs = [], [], []
        for g in gens:
            idx.append((torch.rand(batch, generator=g, dtype=torch.float64) * n).long().clamp_max(n - 1))
            u = torch.rand(batch, generator=g, dtype=torch.float64)
            ts.append((t0 * torch.exp(u * math.log(T / t0))).float())
            zs.append(torch.randn(batch, d, generator=g))
        x0, t, z = data[torch.stack(idx)], torch.stack(ts), torch.stack(zs)
        x_t = torch.exp(-0.5 * t)[..., None] * x0 + torch.sqrt(-torch.expm1(-t))[..., None] * z
        loss = (plain_eps(weights, omega, v, x_t, t) - z).pow(2).sum(-1).mean(1)
        for w in weights:
            w.grad = None
        loss.sum().backward()
        if k < warmup:
            lr_k = lr * (k + 1) / warmup
        else:
            lr_k = lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * min(1.0, (k - warmup) / max(1, steps - warmup)))))
        with torch.no_grad():
            sq = sum(w.grad.pow(2).reshape(E, -1).sum(1) for w in weights)
            scale = (clip / (sq.sqrt() + 1e-6)).clamp(max=1.0)
            decay = min(ema_decay, (1 + k) / (10 + k))
            for w, a, b, e in zip(weights, m1, m2, ema):
                g = w.grad * scale.reshape(E, 1, 1)
                w.mul_(1 - lr_k * weight_decay)
                a.lerp_(g, 1 - b1)
                b.mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (b.sqrt() / math.sqrt(1 - b2 ** (k + 1))).add_(eps)
                w.addcdiv_(a, denom, value=-lr_k / (1 - b1 ** (k + 1)))
                e.lerp_(w, 1 - decay)
        losses[k] = loss.detach().double()
    return {"weights": [w.detach().clone() for w in weights], "losses": losses, "ema": ema}


def k_train(name: str, *, dim: int, members: int, batch: int, steps: int, width: int | None = None,
            budget: int | None = None, n: int = 1024, note: str = "") -> Kernel:
    from theory.networks.score_net import ScoreNet, build_score_net
    from theory.training.dsm import ScoreTrainConfig, train

    seeds = list(range(members))
    if budget is not None:
        net0, params = build_score_net(dim, budget, seeds=seeds, data_variance=2.0)
    else:
        net0 = ScoreNet(dim, width, 2, seeds=seeds, data_variance=2.0)
        params = net0.parameters_per_member
    data = torch.randn(n, dim, generator=torch.Generator().manual_seed(11)) * 1.4
    cfg = ScoreTrainConfig(steps=steps, batch_size=batch, lr=5e-3, warmup=100, t0=1e-4, T=10.0)
    wd = 0.1
    initial = [w.detach().clone() for w in _score_net_params(net0)]

    def memsep(net):
        result = train(net, data, cfg, weight_decay=wd)
        return {"weights": [w.detach().clone() for w in _score_net_params(net)], "losses": result.losses}

    def minimal(net):
        return plain_dsm_train(net, data, steps=steps, batch=batch, lr=cfg.lr, warmup=cfg.warmup,
                               final=cfg.final_lr_fraction, weight_decay=wd, clip=cfg.grad_clip,
                               ema_decay=cfg.ema_decay, t0=cfg.t0, T=cfg.T, betas=cfg.betas)

    fresh = lambda: copy.deepcopy(net0)  # noqa: E731
    shape = (f"E={members} x {params:,} params (d={dim}, width={net0.width}, depth 2), batch {batch}, "
             f"n={n}")
    return Kernel(name, shape, torch.float32, _steps(steps), Variant(fresh, memsep), Variant(fresh, minimal),
                  check_training(initial, 1e-3), note=note)


# ---------------------------------------------------------------------------------------------- sampling
def plain_probability_flow(score, x_T: torch.Tensor, *, T: float, t0: float, steps: int) -> torch.Tensor:
    """Exponential integrator with a Heun correction on a geometric grid (as theory.evaluation.samplers)."""
    grid = torch.logspace(math.log10(T), math.log10(t0), steps + 1, dtype=torch.float64)
    y = x_T.clone()
    for k in range(steps):
        h = float(grid[k] - grid[k + 1])
        grow, gain = math.exp(h / 2), math.expm1(h / 2)
        s = score(y, grid[k])
        s_next = score(grow * y + gain * s, grid[k + 1])
        y = grow * y + gain * 0.5 * (s + s_next)
    return y


def k_sampling(name: str, *, dim: int, width: int, members: int, per_member: int, steps: int) -> Kernel:
    from theory.evaluation.samplers import prior_sample, probability_flow
    from theory.networks.score_net import ScoreNet

    g = torch.Generator().manual_seed(5)
    net = ScoreNet(dim, width, 2, seeds=list(range(members)), data_variance=2.0).eval()
    with torch.no_grad():                           # a non-zero output layer, so that the check means something
        net.out.weight.copy_(torch.randn(net.out.weight.shape, generator=g) * (0.5 / math.sqrt(width)))
        net.out.bias.copy_(torch.randn(net.out.bias.shape, generator=g) * 0.1)
    x_T = prior_sample((members * per_member, dim), generator=g)
    T, t0 = 10.0, 1e-3
    weights = [w.detach() for w in _score_net_params(net)]

    def plain_score(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = y.float().reshape(members, per_member, dim)
        tt = t.float().expand(members, per_member)
        eps = plain_eps(weights, net.omega, net.data_variance, x, tt)
        return (-eps / torch.sqrt(-torch.expm1(-tt))[..., None]).reshape(-1, dim).double()

    def memsep(_):
        return probability_flow(net.flat_score(), x_T, T=T, t0=t0, steps=steps)

    @torch.no_grad()
    def minimal(_):
        return plain_probability_flow(plain_score, x_T, T=T, t0=t0, steps=steps)

    shape = (f"E={members} x {net.parameters_per_member:,} params (d={dim}, width={width}), "
             f"{per_member} samples each, {steps} Heun steps")
    none = lambda: None  # noqa: E731
    return Kernel(name, shape, torch.float32, "1 call", Variant(none, memsep), Variant(none, minimal),
                  check_close(1e-5, "x_t0"), note="float32 net, float64 ODE state")


# ---------------------------------------------------------------------------------------------- DiT
def plain_dit_train(model, ema, images: torch.Tensor, *, steps: int, batch: int, lr: float, warmup: int,
                    weight_decay: float, clip: float, ema_decay: float, t0: float, T: float, seed: int,
                    betas=(0.9, 0.999), eps: float = 1e-8) -> None:
    """The denoiser loop of theory.training.image by hand: minibatch, VP times, noise from one generator;
    eps-loss; global-norm clipping; AdamW; EMA."""
    gen = torch.Generator().manual_seed(seed)
    weights = list(model.parameters())
    m1 = [torch.zeros_like(w) for w in weights]
    m2 = [torch.zeros_like(w) for w in weights]
    b1, b2 = betas
    lo, hi = 0.1, 20.0
    model.train()
    for k in range(steps):
        x0 = images[torch.randint(images.shape[0], (batch,), generator=gen)]
        u = torch.rand(batch, generator=gen, dtype=torch.float64)
        t = t0 + (T - t0) * ((lo * u + 0.5 * (hi - lo) * u * u) / (lo + 0.5 * (hi - lo)))
        noise = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
        lr_k = lr * (k + 1) / warmup if k < warmup else lr
        a = torch.exp(-0.5 * t).to(x0.dtype).view(-1, 1, 1, 1)
        s = torch.sqrt(-torch.expm1(-t)).to(x0.dtype).view(-1, 1, 1, 1)
        loss = (model(a * x0 + s * noise, t) - noise).pow(2).flatten(1).mean(1).mean()
        for w in weights:
            w.grad = None
        loss.backward()
        with torch.no_grad():
            norm = float(torch.sqrt(sum(w.grad.pow(2).sum() for w in weights)))
            scale = min(1.0, clip / (norm + 1e-6))
            for w, ma, mb in zip(weights, m1, m2):
                g = w.grad * scale
                w.mul_(1 - lr_k * weight_decay)
                ma.lerp_(g, 1 - b1)
                mb.mul_(b2).addcmul_(g, g, value=1 - b2)
                w.addcdiv_(ma, (mb.sqrt() / math.sqrt(1 - b2 ** (k + 1))).add_(eps), value=-lr_k / (1 - b1 ** (k + 1)))
            for we, w in zip(ema.parameters(), weights):
                we.lerp_(w, 1 - ema_decay)


def k_dit(name: str, *, model_cfg, batch: int, steps: int, lr: float, ema_decay: float, n_images: int = 64,
          note: str = "") -> Kernel:
    from theory.networks.dit import DiT, dit_parameter_count
    from theory.training.image import ImageTrainConfig, train_denoiser

    model0 = DiT(model_cfg, generator=torch.Generator().manual_seed(0))
    s = model_cfg.image_size
    images = torch.rand(n_images, model_cfg.channels, s, s, generator=torch.Generator().manual_seed(1)) * 2 - 1
    cfg = ImageTrainConfig(steps=steps, batch_size=batch, lr=lr, ema_decay=ema_decay, warmup=100, t0=1e-3, T=10.0,
                           fused=True)
    initial = [w.detach().clone() for w in model0.parameters()]

    def prepare():
        return copy.deepcopy(model0), copy.deepcopy(model0).requires_grad_(False)

    def memsep(state):
        model, ema = state
        train_denoiser(model, images, cfg, seed=0, ema=ema, amp=False)
        return {"weights": [w.detach().clone() for w in model.parameters()]}

    def minimal(state):
        model, ema = state
        plain_dit_train(model, ema, images, steps=steps, batch=batch, lr=lr, warmup=cfg.warmup,
                        weight_decay=cfg.weight_decay, clip=cfg.grad_clip, ema_decay=ema_decay, t0=cfg.t0, T=cfg.T,
                        seed=0)
        return {"weights": [w.detach().clone() for w in model.parameters()]}

    c = model_cfg
    shape = (f"{dit_parameter_count(c):,} params ({c.image_size}x{c.image_size}, patch {c.patch}, width {c.width}, "
             f"depth {c.depth}, heads {c.heads}, {c.tokens} tokens), batch {batch}")
    return Kernel(name, shape, torch.float32, _steps(steps), Variant(prepare, memsep), Variant(prepare, minimal),
                  check_training(initial, 1e-3), note=note or "fused AdamW (memsep) vs hand-written AdamW")


# ---------------------------------------------------------------------------------------------- empirical score
def plain_empirical_score(data: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
    """grad log p^_t(x) = (alpha_t sum_i w_i x_i - x) / sigma_t^2, w = softmax of the logits
    (alpha_t <x, x_i> - alpha_t^2 |x_i|^2 / 2) / sigma_t^2, dense per block of queries (logsumexp)."""
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    sq = data.pow(2).sum(1)
    rows = max(1, BLOCK // data.shape[0])
    out = torch.empty_like(x)
    for b0 in range(0, x.shape[0], rows):
        xb = x[b0:b0 + rows]
        logits = (xb @ data.T) * (a / s2) - (a * a / (2 * s2)) * sq
        w = torch.exp(logits - torch.logsumexp(logits, dim=1, keepdim=True))
        out[b0:b0 + rows] = (a * (w @ data) - xb) / s2
    return out


def k_empirical(name: str, *, dim: int, n: int, m: int, t: float = 0.1) -> Kernel:
    from theory.laws.empirical import EmpiricalLaw

    g = torch.Generator().manual_seed(2)
    data = torch.randn(n, dim, generator=g, dtype=torch.float64)
    law = EmpiricalLaw(data)
    x = law.sample(m, t, g)
    rows = max(1, min(m, BLOCK // n))

    def floor_prepare():
        return torch.empty(rows, n, dtype=torch.float64), torch.empty(rows, dim, dtype=torch.float64)

    def floor(bufs):
        logits, out = bufs
        for b0 in range(0, m, rows):
            xb = x[b0:b0 + rows]
            nb = xb.shape[0]
            torch.mm(xb, data.T, out=logits[:nb])
            torch.mm(logits[:nb], data, out=out[:nb])

    none = lambda: None  # noqa: E731
    flop = 4.0 * m * n * dim / 1e9
    return Kernel(name, f"{m:,} queries x {n:,} points x d={dim}, t={t:g}", torch.float64, "1 call",
                  Variant(none, lambda _: law.score(x, t)), Variant(none, lambda _: plain_empirical_score(data, x, t)),
                  check_abs(1e-9, "score"), floor=Variant(floor_prepare, floor), gflop=flop, floor_gflop=flop,
                  note=f"minimal and floor in blocks of {rows} queries")


def check_abs(tol: float, what: str):
    def check(a, b):
        diff = _max_abs(a, b)
        return diff < tol, f"max |{what} memsep - minimal| = {diff:.2e} (< {tol:g} needed; max |{what}| " \
                           f"{float(a.abs().max()):.3g})"
    return check


# ---------------------------------------------------------------------------------------------- neighbours
def plain_neighbours(q: torch.Tensor, r: torch.Tensor, k: int, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """k nearest references per query: torch.cdist per block of queries, then topk."""
    dist = torch.empty(q.shape[0], k, dtype=q.dtype)
    idx = torch.empty(q.shape[0], k, dtype=torch.long)
    for b0 in range(0, q.shape[0], rows):
        dist[b0:b0 + rows], idx[b0:b0 + rows] = torch.cdist(q[b0:b0 + rows], r).topk(k, dim=1, largest=False)
    return dist, idx


def k_neighbours(name: str, *, B: int, n: int, d: int, k: int = 2, max_repeats: int | None = None,
                 warm_queries: int | None = None) -> Kernel:
    from theory.evaluation.neighbours import nearest_neighbours

    g = torch.Generator().manual_seed(3)
    q = torch.randint(0, 256, (B, d), generator=g, dtype=torch.uint8).double()   # flattened uint8 images
    r = torch.randint(0, 256, (n, d), generator=g, dtype=torch.uint8).double()
    rows = max(1, min(B, 1024))

    def floor_prepare():
        return torch.empty(rows, n, dtype=torch.float64)

    def floor(buf):
        for b0 in range(0, B, rows):
            qb = q[b0:b0 + rows]
            torch.mm(qb, r.T, out=buf[:qb.shape[0]])

    def check(a, b):
        (da, ia), (db, ib) = a, b
        differ = (ia != ib).any(dim=1)
        ties = 0
        if bool(differ.any()):                # a different order is fine only where the distances tie exactly
            rows_ = differ.nonzero().squeeze(1)
            exact_b = (q[rows_, None, :] - r[ib[rows_]]).norm(dim=-1)
            ties = int(((exact_b.sort(dim=1).values - da[rows_]).abs() <= 1e-9 * da[rows_].abs()).all(dim=1).sum())
        rel = float(((da - db).abs() / da.abs().clamp_min(1e-300)).max())
        n_diff = int(differ.sum())
        ok = n_diff == ties and rel < 1e-6
        return ok, (f"indices identical for {B - n_diff:,} of {B:,} queries"
                    + (f" ({ties} others: exact distance ties)" if n_diff else "")
                    + f"; max relative distance difference {rel:.1e} (< 1e-6 needed; cdist is not recomputed exactly)")

    none = lambda: None  # noqa: E731
    warm = None
    if warm_queries is not None:
        warm = lambda _: nearest_neighbours(q[:warm_queries], r, k=k)  # noqa: E731
        warm_min = lambda _: plain_neighbours(q[:warm_queries], r, k, rows)  # noqa: E731
    flop = 2.0 * B * n * d / 1e9
    return Kernel(name, f"{B:,} queries x {n:,} references x d={d:,}, k={k}", torch.float64, "1 call",
                  Variant(none, lambda _: nearest_neighbours(q, r, k=k), warm),
                  Variant(none, lambda _: plain_neighbours(q, r, k, rows), warm_min if warm else None),
                  check, floor=Variant(floor_prepare, floor, (lambda buf: torch.mm(q[:rows], r.T, out=buf))
                                       if warm else None),
                  gflop=flop, floor_gflop=flop, max_repeats=max_repeats,
                  note=f"uint8 images as float64; minimal and floor in blocks of {rows} queries"
                       + (f"; warm-up on {warm_queries} queries" if warm else ""))


# ---------------------------------------------------------------------------------------------- Inception
def k_inception(name: str, *, n_images: int, batch: int) -> Kernel | str:
    from theory.evaluation.image_metrics import INCEPTION_SIZE, extract_features
    from verify import _io

    try:
        _io.require_inception()
    except _io.MissingDataError as err:
        return str(err).splitlines()[0]
    network = _io.load_inception()
    images = torch.randint(0, 256, (n_images, 32, 32, 3), generator=torch.Generator().manual_seed(4),
                           dtype=torch.uint8)

    @torch.no_grad()
    def minimal(_):
        out = []
        for i in range(0, n_images, batch):
            x = images[i:i + batch].permute(0, 3, 1, 2).float()
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
            out.append(network((x - 128.0) / 128.0).reshape(x.shape[0], -1).double())
        return torch.cat(out)

    none = lambda: None  # noqa: E731
    return Kernel(name, f"{n_images} images 32x32 -> {INCEPTION_SIZE}x{INCEPTION_SIZE}, batch {batch}, 2048 features",
                  torch.float32, "1 call", Variant(none, lambda _: extract_features(images, network, batch_size=batch)),
                  Variant(none, minimal), check_close(1e-6, "features"),
                  note=f"TorchScript {_io.INCEPTION}; floor: convolutions as im2col GEMMs")


# ============================================================================================== the kernel list
def kernels(quick: bool) -> dict[str, Callable[[], Kernel | str]]:
    """name -> factory (built only when selected)."""
    from theory.networks.dit import DiTConfig

    if quick:
        dit_cpu = DiTConfig(image_size=8, patch=4, width=32, depth=2, heads=4, freq_dim=32, precondition="gaussian")
        dit_s2 = DiTConfig(image_size=8, patch=2, width=48, depth=2, heads=2, freq_dim=32)
        return {
            "train_ens36": lambda: k_train("train_ens36", dim=8, width=32, members=4, batch=32, steps=3),
            "train_ens3": lambda: k_train("train_ens3", dim=8, width=32, members=3, batch=32, steps=3),
            "train_1M": lambda: k_train("train_1M", dim=16, budget=20_000, members=1, batch=32, steps=3),
            "train_4M": lambda: k_train("train_4M", dim=16, budget=80_000, members=1, batch=32, steps=2),
            "pf_sampling": lambda: k_sampling("pf_sampling", dim=8, width=32, members=2, per_member=50, steps=5),
            "dit_cpu": lambda: k_dit("dit_cpu", model_cfg=dit_cpu, batch=4, steps=2, lr=4e-3, ema_decay=0.99),
            "dit_s2": lambda: k_dit("dit_s2", model_cfg=dit_s2, batch=2, steps=2, lr=1e-4, ema_decay=0.9999),
            "empirical_d8": lambda: k_empirical("empirical_d8", dim=8, n=2000, m=200),
            "empirical_d64": lambda: k_empirical("empirical_d64", dim=64, n=2000, m=200),
            "empirical_d512": lambda: k_empirical("empirical_d512", dim=512, n=2000, m=200),
            "neighbours_10k": lambda: k_neighbours("neighbours_10k", B=500, n=300, d=3072),
            "neighbours_50k": lambda: k_neighbours("neighbours_50k", B=1000, n=1000, d=3072, warm_queries=64),
            "inception": lambda: k_inception("inception", n_images=2, batch=2),
        }
    dit_cpu = DiTConfig(image_size=16, patch=4, width=64, depth=4, heads=4, freq_dim=64, precondition="gaussian")
    dit_s2 = DiTConfig(patch=2, width=384, depth=12, heads=6, freq_dim=256)
    return {
        "train_ens36": lambda: k_train("train_ens36", dim=8, width=128, members=36, batch=128, steps=20,
                                       note="weight_decay_grid cpu ensemble"),
        "train_ens3": lambda: k_train("train_ens3", dim=32, width=256, members=3, batch=128, steps=20,
                                      note="dim_sweep cpu ensemble"),
        "train_1M": lambda: k_train("train_1M", dim=16, budget=1_000_000, members=1, batch=256, steps=10),
        "train_4M": lambda: k_train("train_4M", dim=16, budget=4_000_000, members=1, batch=256, steps=5),
        "pf_sampling": lambda: k_sampling("pf_sampling", dim=8, width=128, members=18, per_member=500, steps=60),
        "dit_cpu": lambda: k_dit("dit_cpu", model_cfg=dit_cpu, batch=32, steps=10, lr=4e-3, ema_decay=0.99,
                                 note="cifar_pruning cpu preset; fused AdamW vs hand-written"),
        "dit_s2": lambda: k_dit("dit_s2", model_cfg=dit_s2, batch=8, steps=1, lr=1e-4, ema_decay=0.9999,
                                note="DiT-S/2 of the paper preset at batch 8 (128 there)"),
        "empirical_d8": lambda: k_empirical("empirical_d8", dim=8, n=20_000, m=2_000),
        "empirical_d64": lambda: k_empirical("empirical_d64", dim=64, n=20_000, m=2_000),
        "empirical_d512": lambda: k_empirical("empirical_d512", dim=512, n=20_000, m=2_000),
        "neighbours_10k": lambda: k_neighbours("neighbours_10k", B=10_000, n=5_000, d=3072),
        "neighbours_50k": lambda: k_neighbours("neighbours_50k", B=50_000, n=50_000, d=3072, max_repeats=1,
                                               warm_queries=64),
        "inception": lambda: k_inception("inception", n_images=64, batch=32),
    }


def _select(names: list[str], only: str | None, skip: str | None) -> list[str]:
    def patterns(text):
        return [p.strip() for p in (text or "").split(",") if p.strip()]
    chosen = names
    if only:
        pats = patterns(only)
        unknown = [p for p in pats if not any(fnmatch.fnmatch(n, p) for n in names)]
        if unknown:
            raise SystemExit(f"--only: no kernel named {', '.join(unknown)}; the kernels are {', '.join(names)}")
        chosen = [n for n in names if any(fnmatch.fnmatch(n, p) for p in pats)]
    return [n for n in chosen if not any(fnmatch.fnmatch(n, p) for p in patterns(skip))]


# ============================================================================================== output
def markdown(table: pd.DataFrame, header: str) -> str:
    """One line per kernel: seconds of the three variants, the two ratios, the fraction of the square rate."""
    lines = [header, "",
             "| kernel | shapes | work | memsep (s) | minimal (s) | floor (s) | memsep / minimal | memsep / floor "
             "| memsep GFLOP/s | of square f32 | check |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in table.groupby("kernel", sort=False):
        by = {r["variant"]: r for _, r in rows.iterrows()}
        if "memsep" not in by:
            lines.append(f"| `{name}` | skipped: {rows.iloc[0]['note']} | | | | | | | | | |")
            continue
        a, b, c = by["memsep"], by["minimal"], by["floor"]
        lines.append(f"| `{name}` | {a['shape']} ({a['dtype']}) | {a['work']} | {a['median_s']:.3g} | "
                     f"{b['median_s']:.3g} | {c['median_s']:.3g} | {a['x_minimal']:.2f} | {a['x_floor']:.2f} | "
                     f"{a['gflops']:.3g} | {a['frac_square_f32']:.0%} | {a['check']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small shapes (seconds in all), to test the script")
    p.add_argument("--only", default=None, help="comma-separated kernel names or patterns to run")
    p.add_argument("--skip", default=None, help="comma-separated kernel names or patterns to leave out")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per variant (default 5, --quick 3; kernels with a cap use it unless given)")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    p.add_argument("--markdown", nargs="?", const="-", default=None,
                   help="also write a one-line-per-kernel markdown table (for README) to FILE, or print it")
    p.add_argument("--list", action="store_true", help="list the kernels and exit")
    args = p.parse_args(argv)

    factories = kernels(args.quick)
    if args.list:
        print("\n".join(factories))
        return 0
    names = _select(list(factories), args.only, args.skip)
    if args.repeats is not None and args.repeats < 1:
        raise SystemExit("--repeats must be >= 1")
    default_repeats = 3 if args.quick else 5

    threads = torch.get_num_threads()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    square = {"float32": square_gflops(torch.float32), "float64": square_gflops(torch.float64)}
    header = (f"memsep kernels{' (--quick shapes)' if args.quick else ''}: torch {torch.__version__}, {threads} "
              f"thread{'s' if threads != 1 else ''} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), "
              f"{os.cpu_count()} cpus, {cpu_name()}")
    print(f"# {header}")
    print(f"# load average before: {' '.join(f'{v:.2f}' for v in load_before)}")
    print(f"# square 1024^3 mm: {square['float32']:.1f} GFLOP/s float32, {square['float64']:.1f} GFLOP/s float64",
          flush=True)

    rows, all_ok = [], True
    for name in names:
        start = time.perf_counter()
        print(f"{name} ...", flush=True)
        kernel = factories[name]()
        if isinstance(kernel, str):
            print(f"  skipped {name}: {kernel}", flush=True)
            rows.append({"kernel": name, "variant": "skipped", "note": kernel})
            continue
        repeats = args.repeats or min(default_repeats, kernel.max_repeats or default_repeats)
        kernel_rows, ok = bench(kernel, repeats, square)
        all_ok &= ok
        rows += kernel_rows
        a = kernel_rows[0]
        print(f"  {a['median_s']:.4g} s per call ({kernel.work}); memsep / minimal {a['x_minimal']:.2f}, "
              f"memsep / floor {a['x_floor']:.2f}; {time.perf_counter() - start:.1f} s in all", flush=True)
        del kernel
        gc.collect()

    load_after = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    square_after = square_gflops(torch.float32)
    print(f"# load average after: {' '.join(f'{v:.2f}' for v in load_after)}; square float32 mm after: "
          f"{square_after:.1f} GFLOP/s (before {square['float32']:.1f})")
    table = pd.DataFrame(rows)
    for name, group in table.groupby("kernel", sort=False):
        first = group.iloc[0]
        what = first["note"] if first["variant"] == "skipped" else "; ".join(
            str(v) for v in (first["shape"], first["note"]) if v)
        print(f"# {name}: {what}")
    shown = table.drop(columns=[c for c in ("shape", "note") if c in table], errors="ignore")
    with pd.option_context("display.width", 250, "display.max_columns", None, "display.max_colwidth", 40,
                           "display.float_format", "{:.4g}".format):
        print(shown.to_string(index=False))
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, index=False)
        print(f"# wrote {path}")
    if args.markdown:
        text = markdown(table, f"{header}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
                               f"square 1024^3 float32 mm {square['float32']:.1f} GFLOP/s.")
        if args.markdown == "-":
            print(text)
        else:
            Path(args.markdown).write_text(text)
            print(f"# wrote {args.markdown}")
    if not all_ok:
        print("# some memsep / minimal checks FAILED (see above)")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
