"""An explicit ReLU network of width O(n * pieces) for the empirical score at a fixed t (Thm 5.1, upper
bound W_1 ~ n).

The empirical score is s(x) = (alpha_t m(x) - x) / sigma_t^2 with m(x) = sum_i softmax_i(l) x_i and logits

    l_i(x) = (alpha_t <x, x_i> - alpha_t^2 |x_i|^2 / 2) / sigma_t^2      (the x-only term cancels).

The network, layer by layer (every hidden unit is relu(affine)); a signed value v is carried through a
layer as the pair relu(v), relu(-v) (v = difference):

1. hidden layer 1: the n logits l_i (exact, linear) and x, each as a +/- pair      (2n + 2d units);
2. ceil(log2 n) layers of a ReLU max tree, max(a, b) = b + relu(a - b) with b carried (3 units per pair),
   carrying the logits and x along: M(x) = max_i l_i, exact;
3. one layer of the exponential: u_i = l_i - M in (-inf, 0], and exp on [-R, 0] replaced by its
   piecewise-linear interpolant g on ``pieces`` equal pieces (knots -R = u_0 < ... < u_P = 0), written as
   g(u) = e^{-R} + sum_k c_k relu(u - u_k) (P units per i); below -R, g = e^{-R};
4. a linear output layer giving N = sum_i g(u_i) x_i, Z = sum_i g(u_i) and x.

The score is read off as s~(x) = (alpha_t N / Z - x) / sigma_t^2: this final division is the one
operation that is not a ReLU layer (the paper realises the product/reciprocal with further ReLU
sub-networks of polylog(1/eps) size; we do not build those). Everything else is exact ReLU arithmetic.

Error bound (derived here). On [-R, 0] linear interpolation of exp with step h = R/P has relative error
|g(u)/e^u - 1| <= eta = h^2 e^h / 8; the max term has u = 0 and g(0) = 1 exactly. Writing p_i = e^{u_i},
q_i = g(u_i), P = sum p >= 1, Q = sum q: sum_i |q_i - p_i| <= eta P + n e^{-R} and Q >= (1 - eta) P, so
the weights w = p/P and w~ = q/Q satisfy sum_i |w~_i - w_i| <= 2 sum|q - p| / Q <= 2 (eta + n e^{-R}) / (1 - eta).
As sum_i (w~_i - w_i) = 0, m~ - m = sum_i (w~_i - w_i)(x_i - x_1), hence for every x

    |s~(x) - s(x)| <= (alpha_t / sigma_t^2) * D * 2 (eta + n e^{-R}) / (1 - eta),   D = max_i |x_i - x_1|.

``construction_parameters`` picks R and P so that this bound is at most a requested tolerance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..laws import forward
from .._validate import as_tensor, check_finite, check_number, check_positive_int, check_result


def _time(t) -> float:
    """One time t > 0 (a number or a 1-element tensor), validated (theory._validate.check_time)."""
    tt = forward.coefficients(t, allow_zero=False).t
    if tt.ndim != 0:
        raise ValueError(f"t must be a scalar time, got shape {tuple(tt.shape)}")
    return float(tt)


def interpolation_error(R: float, pieces: int) -> float:
    """eta = h^2 e^h / 8, h = R / pieces: the relative error of the piecewise-linear interpolant of exp on
    [-R, 0] (|f - g| <= h^2/8 max|f''| on each piece, and max_piece e^u <= e^h e^{u} for u in the piece)."""
    R = check_number(R, "R", low=0.0, low_open=True)
    h = R / check_positive_int(pieces, "pieces")
    return h * h * math.exp(h) / 8.0


def score_error_bound(n: int, diameter: float, t: float, R: float, pieces: int) -> float:
    """sup_x |s~(x) - s(x)| <= (alpha_t/sigma_t^2) D 2 (eta + n e^{-R}) / (1 - eta) (module docstring);
    n >= 1 points, diameter D >= 0, t > 0."""
    n = check_positive_int(n, "n")
    diameter = check_number(diameter, "diameter", low=0.0)
    t = _time(t)
    eta = interpolation_error(R, pieces)
    if eta >= 1:
        return math.inf
    a, s2 = float(forward.alpha(t)), float(forward.sigma2(t))
    return a / s2 * diameter * 2.0 * (eta + n * math.exp(-R)) / (1.0 - eta)


def construction_parameters(n: int, diameter: float, t: float, tolerance: float) -> tuple[float, int]:
    """(R, pieces) making ``score_error_bound`` <= tolerance: half the budget each to the clamp
    (n e^{-R}) and to the interpolation (eta); pieces grows like sqrt(D alpha_t/(sigma_t^2 tol)) * R.
    n >= 1, diameter >= 0, t > 0 and tolerance > 0: finite numbers."""
    tolerance = check_number(tolerance, "tolerance", low=0.0, low_open=True)
    n = check_positive_int(n, "n")
    diameter = check_number(diameter, "diameter", low=0.0)
    t = _time(t)
    if diameter == 0:
        return 1.0, 1
    a, s2 = float(forward.alpha(t)), float(forward.sigma2(t))
    budget = tolerance * s2 / (a * diameter * 2.0)          # need (eta + n e^{-R}) / (1 - eta) <= budget
    budget = min(budget, 0.5)
    R = math.log(2.0 * n / (budget / 2.0)) if budget > 0 else math.inf
    pieces = 1
    while interpolation_error(R, pieces) > budget / 4.0:
        pieces = int(math.ceil(pieces * 1.25)) if pieces > 8 else pieces + 1
    while score_error_bound(n, diameter, t, R, pieces) > tolerance:
        pieces += 1
    return R, pieces


def layer_widths(n: int, d: int, pieces: int) -> list[int]:
    """The hidden-layer widths of ``empirical_score_network`` for n points in R^d, without building it:
    layer 1 carries x and the n logits as +/- pairs (2d + 2n units); each of the ceil(log2 n) max-tree
    layers carries them again and pairs its m candidates (3 units per pair, 2 for an odd one out); the
    exponential layer has n * pieces units and x as a pair (2d + n pieces). The widest is n pieces + 2d once
    pieces >= 4 (the max tree's first layer has 2d + 3.5 n units at most)."""
    for value, name in [(n, "n"), (d, "d"), (pieces, "pieces")]:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    widths = [2 * d + 2 * n]
    m = n
    while m > 1:
        widths.append(2 * d + 2 * n + 3 * (m // 2) + 2 * (m % 2))
        m = (m + 1) // 2
    widths.append(2 * d + n * pieces)
    return widths


@dataclass
class ExplicitScoreNetwork:
    """A ReLU network (hidden layers ``layers``: list of (W, b), units relu(W h + b)), its linear output
    layer ``output`` = (W, b) giving (N, Z, x), and the readout s~ = (alpha_t N/Z - x)/sigma_t^2."""

    layers: list
    output: tuple
    t: float
    R: float
    pieces: int
    error_bound: float
    dim: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """s~(x), (B, d); ``x`` a tensor, array or list (finite)."""
        h = as_tensor(x, "x", dtype=self.output[0].dtype)
        if h.ndim != 2 or h.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(h.shape)}")
        check_finite(h, "x")
        for W, b in self.layers:
            h = torch.relu(h @ W.T + b)
        out = h @ self.output[0].T + self.output[1]
        d = self.dim
        num, den, xx = out[:, :d], out[:, d:d + 1], out[:, d + 1:]
        tc = forward.coefficients(self.t, allow_zero=False)
        return check_result(forward._score_from_denoiser(num / den, xx, tc), "ExplicitScoreNetwork", tc.t, xx)

    @property
    def widths(self) -> list[int]:
        """Number of ReLU units of each hidden layer."""
        return [W.shape[0] for W, _ in self.layers]

    def parameter_count(self) -> int:
        """All weights and biases of the dense layers (hidden and output)."""
        return sum(W.numel() + b.numel() for W, b in self.layers + [self.output])

    def nonzero_parameter_count(self) -> int:
        """Nonzero weights and biases (the N of F(W, L, N))."""
        return sum(int((W != 0).sum() + (b != 0).sum()) for W, b in self.layers + [self.output])


def _pairs(T: torch.Tensor, c: torch.Tensor):
    """Units relu(v), relu(-v) for values v = T h + c: returns rows, biases, and the read-out map."""
    q = T.shape[0]
    eye = torch.eye(q, dtype=T.dtype)
    return torch.cat([T, -T]), torch.cat([c, -c]), torch.cat([eye, -eye], dim=1)


def empirical_score_network(data, t: float, *, tolerance: float | None = None, R: float | None = None,
                            pieces: int | None = None) -> ExplicitScoreNetwork:
    """Build the explicit network for the empirical score of ``data`` (n, d) at time t (module docstring),
    either to a sup-norm ``tolerance`` (R and pieces from ``construction_parameters``) or with R and
    pieces given. Computed in float64. Width: max(2n + 2d, ~1.5n + 2n + 2d, n * pieces + 2d) = O(n pieces)."""
    X = check_finite(as_tensor(data, "data", dtype=torch.float64), "data")
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"data must have shape (n, d) with n >= 1, got {tuple(X.shape)}")
    t = _time(t)
    n, d = X.shape
    diameter = float((X - X[0]).norm(dim=1).max())
    if tolerance is not None:
        R, pieces = construction_parameters(n, diameter, t, tolerance)
    elif R is None or pieces is None:
        raise ValueError("give either tolerance, or both R and pieces")
    R = check_number(R, "R", low=0.0, low_open=True)
    pieces = check_positive_int(pieces, "pieces")
    layers, Rx, Rl = _logit_layer(X, float(forward.alpha(t)), float(forward.sigma2(t)))
    Rc = Rl.clone()                                        # candidates for the max: the logits
    while Rc.shape[0] > 1:
        layer, Rx, Rl, Rc = _max_tree_layer(Rx, Rl, Rc)
        layers.append(layer)
    layer, output = _exponential_and_output(X, Rx, Rl, Rc, R, pieces)
    layers.append(layer)
    bound = score_error_bound(n, diameter, t, R, pieces)
    return ExplicitScoreNetwork(layers, output, float(t), float(R), pieces, bound, d)


def _logit_layer(X: torch.Tensor, a: float, s2: float) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Hidden layer 1: x and the logits l_i as +/- pairs (tracked values are linear maps of the input
    h_0 = x). Returns the layer and the read-out maps from its units to x (d) and to the logits (n)."""
    n, d = X.shape
    dt = torch.float64
    T_x, c_x = torch.eye(d, dtype=dt), torch.zeros(d, dtype=dt)
    T_l, c_l = X * (a / s2), -(a * a / (2 * s2)) * X.pow(2).sum(1)
    Wx, bx, read_x = _pairs(T_x, c_x)
    Wl, bl, read_l = _pairs(T_l, c_l)
    ux, ul = 2 * d, 2 * n
    Rx = torch.cat([read_x, torch.zeros(d, ul, dtype=dt)], dim=1)
    Rl = torch.cat([torch.zeros(n, ux, dtype=dt), read_l], dim=1)
    return [(torch.cat([Wx, Wl]), torch.cat([bx, bl]))], Rx, Rl


def _max_tree_layer(Rx: torch.Tensor, Rl: torch.Tensor, Rc: torch.Tensor):
    """One layer of the ReLU max tree: x and the logits carried as +/- pairs, the m candidates paired as
    max(a, b) = relu(a - b) + relu(b) - relu(-b) (an odd one out carried as a pair). Returns the layer and
    the new read-out maps to x, the logits and the ceil(m / 2) candidates."""
    d, n, m = Rx.shape[0], Rl.shape[0], Rc.shape[0]
    dt = torch.float64
    Wx, bx, rx = _pairs(Rx, torch.zeros(d, dtype=dt))
    Wl, bl, rl = _pairs(Rl, torch.zeros(n, dtype=dt))
    offset = Wx.shape[0] + Wl.shape[0]
    cand_rows = [torch.stack([Rc[j] - Rc[j + 1], Rc[j + 1], -Rc[j + 1]]) for j in range(0, m - 1, 2)]
    if m % 2:
        cand_rows.append(torch.stack([Rc[-1], -Rc[-1]]))
    Wc = torch.cat(cand_rows)
    W = torch.cat([Wx, Wl, Wc])
    layer = (W, torch.cat([bx, bl, torch.zeros(Wc.shape[0], dtype=dt)]))
    units = W.shape[0]
    new_Rc = torch.zeros((m + 1) // 2, units, dtype=dt)
    pos = offset
    for j in range(m // 2):
        new_Rc[j, pos] += 1.0
        new_Rc[j, pos + 1] += 1.0
        new_Rc[j, pos + 2] -= 1.0
        pos += 3
    if m % 2:
        new_Rc[-1, pos] += 1.0
        new_Rc[-1, pos + 1] -= 1.0
    Rx = torch.cat([rx, torch.zeros(d, units - rx.shape[1], dtype=dt)], dim=1)
    Rl = torch.cat([torch.zeros(n, rx.shape[1], dtype=dt), rl,
                    torch.zeros(n, units - rx.shape[1] - rl.shape[1], dtype=dt)], dim=1)
    return layer, Rx, Rl, new_Rc


def _exponential_and_output(X: torch.Tensor, Rx: torch.Tensor, Rl: torch.Tensor, Rc: torch.Tensor, R: float,
                            pieces: int) -> tuple[tuple, tuple]:
    """The exponential layer (units relu(u_i - u_k), u_i = l_i - M, knots u_k = -R + k h, k < pieces; g(u)
    = e^{-R} + sum_k coef_k relu(u - u_k)) and the linear output N = sum_i g_i x_i, Z = sum_i g_i, x."""
    n, d = X.shape
    dt = torch.float64
    h = R / pieces
    knots = torch.tensor([-R + k * h for k in range(pieces + 1)], dtype=dt)
    values = torch.exp(knots)
    slopes = (values[1:] - values[:-1]) / h
    coef = torch.cat([slopes[:1], slopes[1:] - slopes[:-1]])
    U = (Rl - Rc).repeat_interleave(pieces, dim=0)             # (n * pieces, units): u_i for each knot
    Wu, bu = U, -knots[:-1].repeat(n)
    Wx, bx, rx = _pairs(Rx, torch.zeros(d, dtype=dt))
    units = Wx.shape[0] + Wu.shape[0]
    Wout = torch.zeros(2 * d + 1, units, dtype=dt)
    g_units = coef.repeat(n)                                    # coefficient of each exp unit
    owner = torch.arange(n).repeat_interleave(pieces)
    Wout[:d, Wx.shape[0]:] = (X[owner] * g_units[:, None]).T
    Wout[d, Wx.shape[0]:] = g_units
    Wout[d + 1:, :Wx.shape[0]] = rx
    floor = math.exp(-R)
    bout = torch.cat([floor * X.sum(0), torch.tensor([n * floor], dtype=dt), torch.zeros(d, dtype=dt)])
    return (torch.cat([Wx, Wu]), torch.cat([bx, bu])), (Wout, bout)
