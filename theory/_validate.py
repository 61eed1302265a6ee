"""The input policy of theory's public API: the one owner of argument checks.

Every public function of theory checks what it is given once, where it enters, with the helpers below (the
inner loops and the private ``_kernels`` behind a boundary trust what the boundary checked), and raises a
one-line error whose message names the argument (it starts with the argument's name where it can):

Arrays. Where a tensor is expected, a ``torch.Tensor``, a numpy array, a (nested) list or tuple of numbers,
or a number is accepted and converted once (``as_tensor``). A floating tensor keeps its dtype unless the
function computes in a fixed one (the laws: theirs, float64 by default); integer data (int64, uint8, ...;
Python ints; integer arrays) is converted to float64 (exactly, below 2^53), never truncated; a function with
a fixed dtype converts it to that. Anything else is a ``TypeError``: strings, None, booleans (arrays of
True/False), complex numbers, ragged lists, objects. A tensor on another device than the function works
on is a ``ValueError``: theory never moves data between devices silently.

Values. Empty sets, NaN or infinite entries, wrong shapes (the message gives the expected shape, e.g.
"x must have shape (B, 3), got (4,)"), non-symmetric, indefinite or singular covariances where a positive
definite one is needed (``check_spd``), indefinite ones where a semi-definite one is (``check_psd``),
and counts out of range are a ``ValueError``. Probability vectors must be non-negative and sum to 1 within
sqrt(eps) of the dtype they were given in (1.5e-8 in float64, 3.5e-4 in float32), so float32 weights of
1/3 each pass (``check_probability_vector``). Counts (m, n_draws, steps, k, ...) are Python or numpy
integers, not booleans (a ``ValueError`` otherwise); other numbers (levels, tolerances, variances) are
real numbers, not booleans or strings (``check_number``: ``TypeError`` for the type, ``ValueError`` for the
value). Generators are ``torch.Generator``s on the data's device type, or None.

Standard errors. An estimate's standard error needs at least two draws: ``RunningMoments.estimate`` and
the estimators built on it refuse fewer (``check_positive_int(..., minimum=2)`` at their boundary).

Times. A time ``t`` is a real number or a real tensor/array/list of them (``check_time``): booleans,
strings, None and complex numbers are a ``TypeError``; NaN, infinite and negative times a ``ValueError``.
The valid range is 0 <= t < inf where the law has a density at t = 0 (a Gaussian mixture with positive
definite covariances; alpha_t, sigma_t and the functions of ``theory.laws.forward`` that do not divide by
sigma_t), and 0 < t < inf everywhere else. Small t: sigma_t^2 = -expm1(-t) keeps full relative precision
down to the smallest positive float64, 5e-324, so the coefficients are exact there; what is computed from
them may not be representable: the empirical score grows like |x - alpha_t x_i| / sigma_t^2 and its
logits like |x|^2 / sigma_t^2, so in float64 they overflow below t ~ 1e-300 for data of unit scale (the
Hessian below t ~ 1e-150: 1/sigma_t^4). Such a result is never returned: every public function whose
result can overflow checks it (``check_result``) and raises a one-line ``ValueError`` naming t (and x),
e.g. "EmpiricalLaw.score is not finite in float64 at t = 1e-320 ...". Which functions are finite for
every valid t, and which can raise there, is said in their docstrings; the Gaussian mixture's closed forms
are finite for every t >= 0 (its covariances alpha_t^2 Sigma_k + sigma_t^2 I stay >= lambda_min).

Callbacks. A score function (or feature network, or integrand) that theory calls is checked where its
output is used: a tensor of the expected shape (and, in the samplers, of the sample's dtype) with finite
entries (``check_output``), the message naming the argument and, in an integrator, the step and time.
"""

from __future__ import annotations

import math
import numbers
from typing import Union

import numpy as np
import torch

TimeLike = Union[float, int, torch.Tensor]

DEFAULT_DTYPE = torch.float64

_ARRAY_TYPES = "a tensor, a numpy array or a (nested) list of numbers"


def _kind(value) -> str:
    return type(value).__name__


def to_tensor(value, name: str, device=None) -> torch.Tensor:
    """A numpy array, nested list or number as a tensor of its own kind (float64 for Python floats, the
    array's dtype for arrays, int64 for Python ints, bool for booleans, which ``as_tensor`` refuses);
    TypeError for anything else. For arguments that are not converted to float (uint8 images)."""
    if isinstance(value, (str, bytes)) or value is None or isinstance(value, (dict, set)):
        raise TypeError(f"{name} must be {_ARRAY_TYPES}, got {_kind(value)}")
    if isinstance(value, np.ndarray):
        arr = value
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError):                 # ragged lists, lists of odd objects
            raise TypeError(f"{name} must be {_ARRAY_TYPES} of a rectangular shape, got a ragged or "
                            f"unreadable {_kind(value)}") from None
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} must be real-valued, got complex numbers")
    if arr.dtype.kind not in "biuf":
        what = "strings" if arr.dtype.kind in "US" else f"{_kind(value)} (numpy dtype {arr.dtype})"
        raise TypeError(f"{name} must be {_ARRAY_TYPES}, got {what}")
    if not arr.flags.writeable or not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="), copy=True)
    if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:    # uint16/32/64: torch's support is partial
        arr = arr.astype(np.int64) if arr.dtype.itemsize < 8 else arr.astype(np.float64)
    return torch.as_tensor(arr, device=device)


def as_tensor(value, name: str, *, dtype=None, device=None) -> torch.Tensor:
    """``value`` as a real floating tensor (module docstring, "Arrays"): a tensor keeps its floating dtype
    unless ``dtype`` is given; integer data becomes ``dtype`` or float64 (never truncated); a tensor on a
    device other than ``device`` is an error (never moved). TypeError for booleans, complex numbers,
    strings and objects."""
    if isinstance(value, torch.Tensor):
        if device is not None and value.device != torch.device(device):
            raise ValueError(f"{name} is on {value.device}, expected {torch.device(device)}; move it explicitly")
        out = value
    elif isinstance(value, float) and not isinstance(value, bool):
        # never let torch's float32 default touch a Python float: go straight to float64 (or dtype)
        out = torch.tensor(value, dtype=dtype or DEFAULT_DTYPE, device=device)
    else:
        out = to_tensor(value, name, device)
    if out.dtype == torch.bool:
        raise TypeError(f"{name} must be real numbers, got booleans")
    if out.is_complex():
        raise TypeError(f"{name} must be real-valued, got dtype {out.dtype}")
    if not out.is_floating_point() and out.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"{name} must be real-valued, got dtype {out.dtype}")
    return out.to(dtype or (out.dtype if out.is_floating_point() else DEFAULT_DTYPE))


_INTEGER_DTYPES = {torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64}


def check_finite(x: torch.Tensor, name: str) -> torch.Tensor:
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return x


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_array(value, name: str, shape=None, *, min_ndim: int | None = None, dtype=None, device=None,
                finite: bool = True, nonempty: bool = True) -> torch.Tensor:
    """``value`` as a floating tensor (``as_tensor``) of the given ``shape`` (a tuple of ints, which must
    match, and names such as ``"B"``, which match any size), or with at least ``min_ndim`` dimensions;
    non-empty and finite unless told otherwise. The message gives the expected shape."""
    x = as_tensor(value, name, dtype=dtype, device=device)
    if shape is not None:
        if x.ndim != len(shape) or any(isinstance(s, int) and x.shape[i] != s for i, s in enumerate(shape)):
            raise ValueError(f"{name} must have shape {_shape_text(shape)}, got {tuple(x.shape)}")
    elif min_ndim is not None and x.ndim < min_ndim:
        dims = "dimension" if min_ndim == 1 else "dimensions"
        raise ValueError(f"{name} must have shape (B, ...) (at least {min_ndim} {dims}), got {tuple(x.shape)}")
    if nonempty and x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): need at least one entry")
    return check_finite(x, name) if finite else x


def check_points(x, name: str, d: int, *, dtype, device, min_rows: int = 1) -> torch.Tensor:
    """A batch of points: a ``(B, d)`` finite tensor with B >= ``min_rows`` (a single ``(d,)`` point is not
    accepted, to keep shapes unambiguous)."""
    x = as_tensor(x, name, dtype=dtype, device=device)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"{name} must have shape (B, {d}), got {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        what = "is empty" if x.shape[0] == 0 else f"has {x.shape[0]} point"
        raise ValueError(f"{name} {what}: need at least {min_rows} point{'s' if min_rows > 1 else ''} (B, {d})")
    return check_finite(x, name)


def check_time_type(t, name: str = "t"):
    """Refuse what is not a time (module docstring, "Times"): TypeError for booleans (and boolean or complex
    tensors), strings, None and complex numbers. Checks the type only (no conversion, no device sync): for
    networks that convert ``t`` themselves. Returns ``t``."""
    if isinstance(t, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number or a tensor of times, not a bool ({t!r})")
    if isinstance(t, (str, bytes)) or t is None:
        raise TypeError(f"{name} must be a number or a tensor of times, got {_kind(t)}")
    if isinstance(t, complex):
        raise TypeError(f"{name} must be real, got the complex number {t!r}")
    if isinstance(t, torch.Tensor) and (t.dtype == torch.bool or t.is_complex()):
        raise TypeError(f"{name} must be real numbers, got a tensor of dtype {t.dtype}")
    return t


def as_time(t, name: str = "t", *, dtype=DEFAULT_DTYPE, device=None) -> torch.Tensor:
    """``t`` as a floating tensor of times, refusing what is not a time (``check_time_type``; arrays and
    lists are converted as by ``as_tensor``). No value is checked (no device sync)."""
    check_time_type(t, name)
    if isinstance(t, numbers.Real) and not isinstance(t, torch.Tensor):
        return torch.tensor(float(t), dtype=dtype, device=device)
    tt = as_tensor(t, name, device=device)
    return tt if tt.dtype == dtype else tt.to(dtype)


def check_time(t: TimeLike, name: str = "t", *, batch: int | None = None, allow_zero: bool = False,
               any_shape: bool = False, dtype=DEFAULT_DTYPE, device=None) -> torch.Tensor:
    """Diffusion time(s) as a tensor of shape ``()`` or ``(batch,)`` (any shape with ``any_shape``, for
    elementwise use); each must be finite and > 0 (or >= 0 with ``allow_zero``). One device sync."""
    tt = as_time(t, name, dtype=dtype, device=device)
    if not any_shape and (tt.ndim > 1 or (tt.ndim == 1 and batch is not None and tt.shape[0] != batch)):
        raise ValueError(f"{name} must be a scalar or have shape ({batch},), got {tuple(tt.shape)}")
    good = torch.isfinite(tt) & ((tt >= 0) if allow_zero else (tt > 0))
    if not bool(good.all()):
        if not bool(torch.isfinite(tt).all()):
            raise ValueError(f"{name} must be finite; it contains NaN or infinite entries")
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got min {float(tt.min())}")
    return tt


def check_time_span(t0, T, names: tuple[str, str] = ("t0", "T")) -> tuple[float, float]:
    """A span of times [t0, T] of a sampler or a trainer: real numbers (not booleans) with 0 < t0 < T < inf."""
    t0 = check_number(t0, names[0], low=0.0, low_open=True)
    T = check_number(T, names[1], low=0.0, low_open=True)
    if not t0 < T:
        raise ValueError(f"need 0 < {names[0]} < {names[1]} < inf, got {names[0]}={t0}, {names[1]}={T}")
    return t0, T


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """A count: a Python or numpy integer (not a bool) >= ``minimum``; returned as an int. ValueError
    otherwise (e.g. "n_draws must be an integer >= 2: a standard error needs two draws, got 1")."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < minimum:
        if minimum == 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        why = ": a standard error needs at least two draws" if minimum == 2 else ""
        raise ValueError(f"{name} must be an integer >= {minimum}{why}, got {value!r}")
    return int(value)


def check_int(value, name: str) -> int:
    """Any integer (a seed): a Python or numpy integer, an integral float (3.0) or a 1-element integral
    tensor; not a bool. TypeError otherwise."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_number(value, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, finite: bool = True) -> float:
    """A real number (Python, numpy, or a 1-element real tensor; not a bool or a string) as a float, within
    [low, high] (open ends with ``low_open``/``high_open``) and finite unless ``finite=False``.
    TypeError for the type, ValueError for the value."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must be a real number, got a tensor of shape {tuple(value.shape)} "
                            f"and dtype {value.dtype}")
        value = value.item()
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    lo_ok = low is None or (v > low if low_open else v >= low)
    hi_ok = high is None or (v < high if high_open else v <= high)
    if math.isnan(v) or (finite and not math.isfinite(v)) or not (lo_ok and hi_ok):
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"{'<' if high_open else '<='} {high:g}")
        need = (" and ".join(parts)) if parts else "not NaN"
        raise ValueError(f"{name} must be a {'finite ' if finite else ''}number {need}, got {v!r}")
    return v


def check_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """A floating ``torch.dtype``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"{name} must be a floating torch.dtype such as torch.float64, got {dtype!r}")
    return dtype


def check_device(device, name: str = "device") -> torch.device | None:
    """None, a ``torch.device`` or a device string such as ``"cpu"`` or ``"cuda:0"``."""
    if device is None:
        return None
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, (str, int)) or isinstance(device, bool):
        raise TypeError(f"{name} must be a torch.device, a device string or None, got {device!r}")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"{name} {device!r} is not a device ({str(err).splitlines()[0]})") from None


def check_generator(generator, name: str = "generator", device=None):
    """None or a ``torch.Generator`` whose device type matches the data's ``device`` (if given)."""
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"{name} must be a torch.Generator or None, got {_kind(generator)}")
    if device is not None and generator.device.type != torch.device(device).type:
        raise ValueError(f"{name} is on {generator.device}, the data on {torch.device(device)}; use a generator "
                         f"of the data's device")
    return generator


def check_tensor(x, name: str, ndim: int | None = None, shape_text: str = "") -> torch.Tensor:
    """A network's input must be a ``torch.Tensor`` (networks do not convert: they run in their own dtype);
    TypeError otherwise. Checks the type (and ``ndim``) only: free in a training loop."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor{' ' + shape_text if shape_text else ''}, got {_kind(x)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have shape {shape_text or ndim}, got {tuple(x.shape)}")
    return x


def check_callable(fn, name: str):
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {_kind(fn)}")
    return fn


def check_choice(value, name: str, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def check_flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_symmetric(m: torch.Tensor, name: str) -> torch.Tensor:
    """``m`` of shape ``(..., d, d)`` symmetric to round-off (relative 1e-10 in float64, 1e-5 below)."""
    scale = m.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(m.dtype).tiny)
    asym = ((m - m.transpose(-2, -1)).abs() / scale).amax()
    tol = 1e-10 if m.dtype == torch.float64 else 1e-5
    if float(asym) > tol:
        raise ValueError(f"{name} must be symmetric (max relative asymmetry {float(asym):.3g})")
    return m


def check_spd(cov: torch.Tensor, name: str) -> torch.Tensor:
    """``cov`` of shape ``(..., d, d)`` must be finite, symmetric (to round-off) and positive definite."""
    check_finite(cov, name)
    check_symmetric(cov, name)
    _, info = torch.linalg.cholesky_ex(0.5 * (cov + cov.transpose(-2, -1)))
    if bool((info != 0).any()):
        raise ValueError(f"{name} must be positive definite (Cholesky failed)")
    return cov


def check_psd(cov: torch.Tensor, name: str, *, jitter: float = 1e-8) -> torch.Tensor:
    """``cov`` of shape ``(..., d, d)`` must be finite, symmetric and positive semi-definite: its Cholesky
    factorisation must succeed after adding ``jitter`` times its largest diagonal entry to the diagonal
    (a singular covariance, e.g. of N <= d samples, passes; a negative eigenvalue beyond round-off fails)."""
    check_finite(cov, name)
    check_symmetric(cov, name)
    sym = 0.5 * (cov + cov.transpose(-2, -1))
    diag = torch.diagonal(sym, dim1=-2, dim2=-1)
    if bool((diag < 0).any()):
        raise ValueError(f"{name} must be positive semi-definite (a covariance): it has a negative diagonal entry")
    scale = diag.amax(dim=-1, keepdim=True).clamp_min(torch.finfo(cov.dtype).tiny)
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    _, info = torch.linalg.cholesky_ex(sym + jitter * scale[..., None] * eye)
    if bool((info != 0).any()):
        raise ValueError(f"{name} must be positive semi-definite (a covariance); it has a negative eigenvalue "
                         f"beyond round-off")
    return cov


def probability_tolerance(dtype: torch.dtype) -> float:
    """sqrt(eps) of ``dtype``: how far from 1 the sum of a probability vector given in that dtype may be."""
    return math.sqrt(torch.finfo(dtype if dtype.is_floating_point else DEFAULT_DTYPE).eps)


def check_probability_vector(w: torch.Tensor, name: str, given_dtype: torch.dtype) -> torch.Tensor:
    """``w`` (already converted) must be non-negative and sum to 1 within ``probability_tolerance`` of the
    dtype it was given in. Weights given below float64 are renormalised (w / sum w) in ``w``'s dtype, so
    float32 weights of 1/3 each become 1/3 to float64 precision; float64 weights are returned unchanged."""
    total = float(w.sum())
    tol = probability_tolerance(given_dtype)
    if bool((w < 0).any()) or abs(total - 1.0) > tol:
        raise ValueError(f"{name} must be a probability vector (non-negative, summing to 1 within {tol:.2g} in "
                         f"{given_dtype}), got sum {total:.10g} and min {float(w.min()):.3g}")
    if given_dtype != torch.float64 and total != 1.0:
        w = w / w.sum()
    return w


def check_output(value, name: str, shape, *, dtype=None, where="", finite: bool = True) -> torch.Tensor:
    """The output of a callback (a score function, a feature network, an integrand): a tensor of ``shape``
    (and ``dtype`` if given) with finite entries. ``where`` says when it was called ("at step 3 (t =
    0.01)"; a string, or a function returning one, called only to write the message, which names the
    callback's argument ``name``). One reduction and one device sync per call."""
    if (isinstance(value, torch.Tensor) and tuple(value.shape) == tuple(shape)
            and (value.dtype == dtype if dtype is not None else value.is_floating_point())
            and (not finite or bool(torch.isfinite(value).all()))):
        return value
    where = where() if callable(where) else where
    at = f" {where}" if where else ""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} returned a {_kind(value)}{at}, expected a tensor of shape {tuple(shape)}")
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} returned shape {tuple(value.shape)}{at}, expected {tuple(shape)}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} returned {value.dtype}{at}, expected {dtype} (the dtype of its input)")
    if not (value.is_floating_point() or dtype is not None):
        raise TypeError(f"{name} returned dtype {value.dtype}{at}, expected a floating tensor")
    if finite and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} returned NaN or infinite values{at}")
    return value


def call_with_context(fn, name: str, where, *args):
    """``fn(*args)``; a ValueError or TypeError it raises is raised again, of the same type, with ``name``
    and ``where`` (a string or a function returning one, e.g. "at step 3 (t = 0.01)") in front of its
    message, so that an error inside a callback says which argument it came from and when."""
    try:
        return fn(*args)
    except (ValueError, TypeError) as err:
        where = where() if callable(where) else where
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise type(err)(f"{name} raised {type(err).__name__}{' ' + where if where else ''}: {first}") from err


def check_result(out: torch.Tensor, what: str, t=None, x: torch.Tensor | None = None) -> torch.Tensor:
    """``out`` if it is finite; else a one-line ValueError saying that ``what`` overflowed its dtype at the
    smallest time ``t`` given (and the largest |x|), for results that grow like 1/sigma_t^2 or with |x|
    (module docstring, "Small t"). A cheap reduction over the result, at the boundary only."""
    if bool(torch.isfinite(out).all()):
        return out
    parts = []
    if t is not None:
        tt = torch.as_tensor(t)
        parts.append(f"t = {float(tt.min()) if tt.numel() else math.nan:.3g}")
    if x is not None and x.numel():
        parts.append(f"x up to |x| = {float(x.abs().max()):.3g}")
    at = (" at " + ", ".join(parts)) if parts else ""
    raise ValueError(f"{what} is not finite in {str(out.dtype).replace('torch.', '')}{at}: the result overflows "
                     f"(it grows like 1/sigma_t^2 as t -> 0, and with |x|); use a larger t or smaller x")
