"""A pixel-space, unconditional Diffusion Transformer (DiT, Peebles & Xie 2023) with a gate on every
attention head.

Architecture (for images (B, C, S, S), patch p, width W, depth L, heads H, MLP ratio r):

* patchify: non-overlapping p x p patches, flattened (C p^2) and mapped linearly to W; N = (S/p)^2 tokens
  plus a fixed 2-D sine-cosine position embedding (no parameters);
* time embedding: c = MLP(sincos(100 log t)) in R^W (frequency dimension F), SiLU-Linear-SiLU style as DiT;
* L adaLN-Zero blocks:  (shift, scale, gate) x 2 = Linear(SiLU(c)) (zero-initialised), then
      x <- x + gate_1 * Attn(LN(x) (1 + scale_1) + shift_1),
      x <- x + gate_2 * MLP (LN(x) (1 + scale_2) + shift_2);
  the attention output of head h is multiplied by ``head_gate[h]`` (a buffer, 1 by default) before the
  output projection: setting it to 0 removes the head exactly, with no copy of the model;
* final layer: adaLN (shift, scale), Linear W -> p^2 C (zero-initialised), unpatchify.

The network predicts the noise z of X_t = alpha_t X_0 + sigma_t z (theory.laws.forward), so the score is
s(x, t) = -eps(x, t) / sigma_t (``DiT.score``). Parameter count: ``dit_parameter_count``.

Preconditioning (``precondition="gaussian"``, EDM's c_skip / c_out / c_in written for eps-prediction).
With r_t = alpha_t^2 v + sigma_t^2 (v = ``data_std``^2, the per-pixel data variance) the output is

    eps(x, t) = c_skip x + c_out F(c_in x, t),   c_skip = sigma_t / r_t,  c_out = alpha_t sqrt(v / r_t),
    c_in = r_t^{-1/2},

F the transformer above. c_skip x = E[z | X_t = x] is the exact noise predictor for data N(0, v I), and
c_out^2 = Var(z - c_skip X_t) for such data, so F's target has unit scale at every t. Why it matters: the
sampler's denoised image is x0 = (x - sigma_t eps) / alpha_t, so an error e in eps moves it by
sigma_t e / alpha_t (e^{T/2} ~ 150 at T = 10); preconditioned, that error is sigma_t c_out e / alpha_t
<= sqrt(v) e at every t. ``"none"`` is the plain DiT (c_skip = 0, c_out = c_in = 1): its zero-initialised
output predicts eps = 0, and a net trained briefly keeps eps errors of ~0.1 at t ~ T that the
probability-flow ODE amplifies into saturated noise.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_tensor, check_time_type
from ..laws import forward


@dataclasses.dataclass(frozen=True)
class DiTConfig:
    """Size of a DiT. DiT-S/2 at 32x32: width 384, depth 12, heads 6, patch 2 (~33M parameters)."""

    image_size: int = 32
    channels: int = 3
    patch: int = 2
    width: int = 384
    depth: int = 12
    heads: int = 6
    mlp_ratio: int = 4
    freq_dim: int = 256
    precondition: str = "none"       # "none" (plain DiT) or "gaussian" (module docstring)
    data_std: float = 0.5            # sqrt(v) of the preconditioning (CIFAR-10 in [-1, 1]: ~0.49)

    def __post_init__(self):
        for name in ("image_size", "channels", "patch", "width", "depth", "heads", "mlp_ratio", "freq_dim"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.image_size % self.patch:
            raise ValueError(f"patch = {self.patch} must divide image_size = {self.image_size}")
        if self.width % self.heads:
            raise ValueError(f"heads = {self.heads} must divide width = {self.width}")
        if self.width % 4 or self.freq_dim % 2:
            raise ValueError("width must be a multiple of 4 and freq_dim even (sine-cosine embeddings)")
        if self.precondition not in ("none", "gaussian"):
            raise ValueError(f"precondition must be 'none' or 'gaussian', got {self.precondition!r}")
        if not (isinstance(self.data_std, (int, float)) and math.isfinite(self.data_std) and self.data_std > 0):
            raise ValueError(f"data_std must be a positive number, got {self.data_std!r}")

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2


def dit_parameter_count(cfg: DiTConfig) -> int:
    """Exact number of parameters of ``DiT(cfg)``, counted by hand (W width, L depth, r MLP ratio,
    P = C p^2 patch size, F frequency dim):

        patch embed P W + W;  time MLP F W + W + W^2 + W;
        per block: adaLN 6W^2 + 6W, qkv 3W^2 + 3W, out proj W^2 + W, MLP 2 r W^2 + r W + W;
        final: adaLN 2W^2 + 2W, linear W P + P.
    """
    W, L, r, F_ = cfg.width, cfg.depth, cfg.mlp_ratio, cfg.freq_dim
    P = cfg.channels * cfg.patch ** 2
    block = (6 + 3 + 1 + 2 * r) * W * W + (6 + 3 + 1 + r + 1) * W
    return (P * W + W) + (F_ * W + 2 * W + W * W) + L * block + (2 * W * W + 2 * W) + (W * P + P)


def time_features(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sine-cosine features of c = 100 log t (B,) -> (B, dim): [cos(c w_k), sin(c w_k)],
    w_k = max_period^(-k / (dim/2)). log t spreads t in [1e-4, 10] over c in [-920, 230]."""
    c = 100.0 * torch.log(t.to(torch.float32))
    half = dim // 2
    w = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    arg = c[:, None] * w[None]
    return torch.cat([torch.cos(arg), torch.sin(arg)], dim=1)


def preconditioning(t: torch.Tensor, precondition: str, data_std: float) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in), each (B,) float64, for times t (B,) (module docstring):
    r = alpha_t^2 v + sigma_t^2, c_skip = sigma_t / r, c_out = alpha_t sqrt(v / r), c_in = r^{-1/2};
    (0, 1, 1) for ``precondition="none"``."""
    tc = forward.coefficients(t.to(torch.float64), allow_zero=False)
    if precondition == "none":
        return torch.zeros_like(tc.t), torch.ones_like(tc.t), torch.ones_like(tc.t)
    v = data_std ** 2
    r = forward.marginal_variance(tc, v)
    return tc.sigma / r, tc.alpha * torch.sqrt(v / r), torch.rsqrt(r)


def _sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    w = 1.0 / 10_000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))
    arg = pos.to(torch.float64)[:, None] * w[None]
    return torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)


def position_embedding(width: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embedding (grid^2, width): half the channels encode the row,
    half the column (as DiT/MAE)."""
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    emb = torch.cat([_sincos_1d(width // 2, rows.reshape(-1)), _sincos_1d(width // 2, cols.reshape(-1))], 1)
    return emb.to(torch.float32)


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class GatedAttention(nn.Module):
    """Multi-head self-attention whose head h output is multiplied by ``head_gate[h]`` before the output
    projection: Attn(x) = sum_h g_h softmax(Q_h K_h^T / sqrt(d_h)) V_h W_O^h + b_O."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.register_buffer("head_gate", torch.ones(heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, W = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v)                       # (B, H, N, d_h)
        o = o * self.head_gate.to(o.dtype).view(1, self.heads, 1, 1)
        return self.proj(o.transpose(1, 2).reshape(B, N, W))


class DiTBlock(nn.Module):
    """adaLN-Zero transformer block (module docstring)."""

    def __init__(self, width: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = GatedAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, mlp_ratio * width), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=1)
        x = x + g1[:, None] * self.attn(_modulate(self.norm1(x), sh1, sc1))
        return x + g2[:, None] * self.mlp(_modulate(self.norm2(x), sh2, sc2))


class DiT(nn.Module):
    """Unconditional pixel-space DiT predicting the noise eps(x_t, t); ``score`` gives -eps / sigma_t.

    ``generator`` seeds the initialisation (Xavier-uniform linears, N(0, 0.02^2) time MLP, zeros for
    every adaLN modulation and the output layer: the adaLN-Zero initialisation)."""

    def __init__(self, cfg: DiTConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.cfg = cfg
        W, P = cfg.width, cfg.channels * cfg.patch ** 2
        self.patch_embed = nn.Linear(P, W)
        self.register_buffer("pos_embed", position_embedding(W, cfg.image_size // cfg.patch), persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(cfg.freq_dim, W), nn.SiLU(), nn.Linear(W, W))
        self.blocks = nn.ModuleList(DiTBlock(W, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(W, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(W, 2 * W))
        self.final = nn.Linear(W, P)
        self._init(generator)

    @torch.no_grad()
    def _init(self, generator):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight, generator=generator)
                nn.init.zeros_(m.bias)
        for lin in (self.time_mlp[0], self.time_mlp[2]):
            nn.init.normal_(lin.weight, std=0.02, generator=generator)
        for blk in self.blocks:
            nn.init.zeros_(blk.ada[1].weight), nn.init.zeros_(blk.ada[1].bias)
        for lin in (self.final_ada[1], self.final):
            nn.init.zeros_(lin.weight), nn.init.zeros_(lin.bias)

    @property
    def head_shape(self) -> tuple[int, int]:
        """(depth, heads): the shape of a head mask."""
        return self.cfg.depth, self.cfg.heads

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        B, C, S, _ = x.shape
        p, g = self.cfg.patch, S // self.cfg.patch
        return x.reshape(B, C, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(B, g * g, p * p * C)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        B, C, p = tokens.shape[0], self.cfg.channels, self.cfg.patch
        g = self.cfg.image_size // p
        return tokens.reshape(B, g, g, p, p, C).permute(0, 5, 1, 3, 2, 4).reshape(B, C, g * p, g * p)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """eps(x, t): x (B, C, S, S), t (B,) or scalar (> 0) -> (B, C, S, S)."""
        cfg = self.cfg
        check_tensor(x, "x", shape_text=f"(B, {cfg.channels}, {cfg.image_size}, {cfg.image_size})")
        if x.ndim != 4 or tuple(x.shape[1:]) != (cfg.channels, cfg.image_size, cfg.image_size):
            raise ValueError(f"x must have shape (B, {cfg.channels}, {cfg.image_size}, {cfg.image_size}), "
                             f"got {tuple(x.shape)}")
        t = self._times(t, x)
        dtype = self.patch_embed.weight.dtype
        c_skip, c_out, c_in = (c.to(dtype).view(-1, 1, 1, 1)
                               for c in preconditioning(t, cfg.precondition, cfg.data_std))
        x = x.to(dtype)
        h = self.patch_embed(self.patchify(c_in * x)) + self.pos_embed.to(dtype)
        c = self.time_mlp(time_features(t, cfg.freq_dim).to(dtype))
        for blk in self.blocks:
            h = blk(h, c)
        shift, scale = self.final_ada(c).chunk(2, dim=1)
        return c_skip * x + c_out * self.unpatchify(self.final(_modulate(self.final_norm(h), shift, scale)))

    def score(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """s(x, t) = -eps(x, t) / sigma_t, in the dtype of ``x`` (a score_fn for theory.evaluation.samplers)."""
        check_tensor(x, "x", shape_text=f"(B, {self.cfg.channels}, {self.cfg.image_size}, {self.cfg.image_size})")
        t = self._times(t, x)
        eps = self(x, t).to(x.dtype)
        return forward._score_from_eps(eps, forward.coefficients(t.to(torch.float64), allow_zero=False))

    @staticmethod
    def _times(t, x: torch.Tensor) -> torch.Tensor:
        """t (a number, or a scalar or (B,) tensor on x's device; its values are checked where the
        coefficients are made) as a (B,) tensor, keeping a tensor's dtype."""
        check_time_type(t)
        if isinstance(t, torch.Tensor) and t.device != x.device:
            raise ValueError(f"t is on {t.device}, x on {x.device}; move it explicitly")
        t = torch.as_tensor(t, device=x.device).reshape(-1)
        if t.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(t.shape)}")
        return t.expand(x.shape[0])
