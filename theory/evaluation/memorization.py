"""Memorization of generated samples by the nearest-neighbour ratio test (Sec. 6 of the paper).

A generated sample x is *memorized* when its nearest training point is much closer than the second
nearest:

    d_1(x) / d_2(x) < 1/3,

with d_1, d_2 the Euclidean distances to the nearest and second-nearest *distinct* training points
(exact duplicates in the training set count once). The paper writes the rule on squared distances,
d_1^2 / d_2^2 <= 1/9: the same rule (up to the boundary case of equality). Distances are exact
(``theory.neighbours``); images are compared as flattened pixel vectors.

The raw fraction means little alone: samples of the true law itself pass the test at a rate that depends
on d and on the training set (for n points of a homogeneous Poisson process, (d_1/d_2)^d is Uniform(0, 1),
so the rate is 3^-d). ``calibrated_memorization`` reads it against that null rate and against the anchor
of a perfect memorizer; ``sample_quality`` says whether the generated samples fit the true law at all.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._validate import as_tensor, check_finite, check_flag, check_number, check_points
from ..estimators.estimate import (Estimate, Interval, RunningMoments, binomial_estimate,
                                  proportion_difference_interval, wilson_interval)
from ..laws.law import NoisedLaw
from .neighbours import DEFAULT_TILE, nearest_neighbours

DEFAULT_THRESHOLD = 1.0 / 3.0


def _flat(x, name: str, dtype=None, device=None) -> torch.Tensor:
    """A set of points (N, ...) (a tensor, array or list; non-empty, finite) flattened to (N, D); integers
    become float64 (or ``dtype``), never truncated."""
    x = as_tensor(x, name, dtype=dtype, device=device)
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (N, ...) with at least 2 dims, got {tuple(x.shape)}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): need at least one point")
    return check_finite(x.reshape(x.shape[0], -1), name)


def _sets(samples, train, name: str = "samples") -> tuple[torch.Tensor, torch.Tensor]:
    """Checked, flattened ``samples`` and ``train`` of one feature size; ``train`` in the samples' floating
    dtype (integer samples are float64 first, so integer data is never truncated)."""
    s = _flat(samples, name)
    tr = _flat(train, "train", dtype=s.dtype, device=s.device)
    if s.shape[1] != tr.shape[1]:
        raise ValueError(f"{name} and train must have the same size per point, got {tuple(s.shape[1:])} and "
                         f"{tuple(tr.shape[1:])} features")
    return s, tr


def _threshold(threshold) -> float:
    return check_number(threshold, "threshold", low=0.0, high=1.0, low_open=True)


def neighbour_distances(samples, train, *, distinct: bool = True,
                        tile_size: int = DEFAULT_TILE) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(d_1, d_2, index of the nearest training point) for each sample, each (B,). With ``distinct``,
    exact duplicates in ``train`` are merged first and the index points into the original ``train``.
    ``samples`` (B, ...) and ``train`` (n, ...): tensors, arrays or lists, non-empty and finite, of one
    size per point; ``train`` is compared in the samples' floating dtype (integers become float64)."""
    s, tr = _sets(samples, train)
    return _neighbour_distances(s, tr, check_flag(distinct, "distinct"), tile_size)


def _neighbour_distances(s: torch.Tensor, tr: torch.Tensor, distinct: bool, tile_size: int):
    if distinct:
        atoms, inverse = torch.unique(tr, dim=0, return_inverse=True)
        first = torch.full((atoms.shape[0],), tr.shape[0], dtype=torch.long, device=tr.device)
        first.scatter_reduce_(0, inverse, torch.arange(tr.shape[0], device=tr.device), reduce="amin")
    else:
        atoms, first = tr, torch.arange(tr.shape[0], device=tr.device)
    if atoms.shape[0] < 2:
        raise ValueError("train must contain at least two distinct points")
    dist, idx = nearest_neighbours(s, atoms, k=2, tile_size=tile_size)
    return dist[:, 0], dist[:, 1], first[idx[:, 0]]


def memorized(samples, train, *, threshold: float = DEFAULT_THRESHOLD,
              tile_size: int = DEFAULT_TILE, distinct: bool = True) -> torch.Tensor:
    """Boolean (B,): d_1 / d_2 < threshold (written as d_1 < threshold * d_2, so d_2 = 0 never divides);
    threshold in (0, 1]. Inputs as for ``neighbour_distances``. ``distinct=False`` skips merging duplicates
    of ``train`` (for a caller that streams many batches of samples against a training set it has already
    made distinct, e.g. with ``torch.unique(train, dim=0)``)."""
    threshold = _threshold(threshold)
    s, tr = _sets(samples, train)
    return _memorized(s, tr, threshold, tile_size, check_flag(distinct, "distinct"))


def _memorized(s: torch.Tensor, tr: torch.Tensor, threshold: float, tile_size: int,
               distinct: bool = True) -> torch.Tensor:
    d1, d2, _ = _neighbour_distances(s, tr, distinct, tile_size)
    return d1 < threshold * d2


def memorization_fraction(samples, train, *, threshold: float = DEFAULT_THRESHOLD,
                          tile_size: int = DEFAULT_TILE) -> Estimate:
    """Fraction of memorized samples with its binomial standard error sqrt(p (1 - p) / B) (B >= 2
    samples: one sample has no standard error)."""
    threshold = _threshold(threshold)
    s, tr = _sets(samples, train)
    if s.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 points for a standard error, got {s.shape[0]}")
    flags = _memorized(s, tr, threshold, tile_size)
    return binomial_estimate(int(flags.sum()), flags.numel())


class CalibratedMemorization(NamedTuple):
    """Counts and intervals of ``calibrated_memorization``; the baselines are None where not given."""

    count: int                       # memorized generated samples
    n: int                           # generated samples
    fraction: Interval               # count / n, Wilson interval
    null_count: int | None
    n_null: int | None
    null: Interval | None            # the same test on null samples (true-law draws or held-out data), Wilson
    anchor_count: int | None
    n_anchor: int | None
    anchor: Interval | None          # the same test on the perfect memorizer's samples, Wilson
    excess: Interval | None          # fraction - null, Newcombe hybrid score interval
    normalized: Interval | None      # (fraction - null) / (anchor - null), Bonferroni box (see below)


def normalized_index_interval(count: int, n: int, null_count: int, n_null: int, anchor_count: int,
                              n_anchor: int, level: float = 0.95) -> Interval:
    """The normalized memorization index I = (m - q) / (a - q) of a memorization fraction m, its null rate q
    and its memorizer anchor a (I = 0: memorizes no more than true draws; I = 1: as much as the exact
    empirical score), from three independent binomial counts.

    Interval: each of m, q, a gets a Wilson interval at level 1 - (1 - level) / 3, so the box they span holds
    (m, q, a) with probability >= ``level`` (Bonferroni); I is linear-fractional, hence quasi-linear, on
    a > q, so its extremes over the box are at the box's corners. Where the box reaches a <= q (the anchor
    cannot be told from the null) the index is unbounded and the interval is (-inf, inf); its estimate is
    NaN when a^ <= q^."""
    per = 1.0 - (1.0 - level) / 3.0
    m, q, a = (wilson_interval(k, t, per) for k, t in ((count, n), (null_count, n_null), (anchor_count, n_anchor)))
    est = (m.estimate - q.estimate) / (a.estimate - q.estimate) if a.estimate > q.estimate else math.nan
    if a.lo <= q.hi:
        return Interval(est, -math.inf, math.inf, level, "bonferroni_wilson_box")
    corners = [(mm - qq) / (aa - qq) for mm in (m.lo, m.hi) for qq in (q.lo, q.hi) for aa in (a.lo, a.hi)]
    return Interval(est, min(corners), max(corners), level, "bonferroni_wilson_box")


def calibrated_memorization(generated: torch.Tensor, train: torch.Tensor, *, null: torch.Tensor | None = None,
                            anchor: torch.Tensor | None = None, threshold: float = DEFAULT_THRESHOLD,
                            level: float = 0.95, tile_size: int = DEFAULT_TILE) -> CalibratedMemorization:
    """The memorization fraction of ``generated`` against ``train`` (d_1/d_2 < threshold, distinct training
    points) read against its baselines:

    * null: the same test applied to ``null`` samples that memorize nothing by construction: exact draws of
      the true law at the sampler's final time t0 (or held-out data where no true law exists);
    * anchor: the same test applied to ``anchor`` samples, those of the same sampler driven by the exact
      empirical score grad log p^_t (a perfect memorizer);
    * excess = fraction - null, with Newcombe's interval for a difference of independent proportions;
    * normalized = (fraction - null) / (anchor - null) (``normalized_index_interval``).

    Every fraction carries a Wilson score interval at ``level`` (``theory.estimate.wilson_interval``).
    Each set is checked (and named) as in ``neighbour_distances``."""
    threshold = _threshold(threshold)
    level = check_number(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    atoms: dict = {}          # the distinct training points, merged once per dtype (not once per set)

    def count(samples, name):
        s, tr = _sets(samples, train, name)
        if tr.dtype not in atoms:
            atoms[tr.dtype] = torch.unique(tr, dim=0)
        flags = _memorized(s, atoms[tr.dtype], threshold, tile_size, distinct=False)
        return int(flags.sum()), int(flags.numel())

    k, n = count(generated, "generated")
    kq, nq = count(null, "null") if null is not None else (None, None)
    ka, na = count(anchor, "anchor") if anchor is not None else (None, None)
    return calibrated_from_counts(k, n, null_count=kq, n_null=nq, anchor_count=ka, n_anchor=na, level=level)


def calibrated_from_counts(count: int, n: int, *, null_count: int | None = None, n_null: int | None = None,
                           anchor_count: int | None = None, n_anchor: int | None = None,
                           level: float = 0.95) -> CalibratedMemorization:
    """``calibrated_memorization`` from the counts of memorized samples (generated, null, anchor), for callers
    that count in batches (``memorized`` batch by batch): the same intervals from the same counts."""
    null_iv = anchor_iv = excess = normalized = None
    if null_count is not None:
        null_iv = wilson_interval(null_count, n_null, level)
        excess = proportion_difference_interval(count, n, null_count, n_null, level)
    if anchor_count is not None:
        anchor_iv = wilson_interval(anchor_count, n_anchor, level)
        if null_count is not None:
            normalized = normalized_index_interval(count, n, null_count, n_null, anchor_count, n_anchor, level)
    return CalibratedMemorization(count, n, wilson_interval(count, n, level), null_count, n_null, null_iv,
                                  anchor_count, n_anchor, anchor_iv, excess, normalized)


class SampleQuality(NamedTuple):
    """Mean log-density of generated samples and of reference draws under the true law, and their gap."""

    generated: Estimate              # mean log p_t(generated) with its standard error
    reference: Estimate              # mean log p_t(reference draws of the true law)
    gap: Estimate                    # generated - reference (independent sets: standard errors in quadrature)


def sample_quality(generated: torch.Tensor, law, reference: torch.Tensor, t: float = 0.0) -> SampleQuality:
    """Sample quality against the true law: E log p_t(X_gen) - E log p_t(X_ref), each mean over its set with
    its standard error, where X_ref are exact draws of the law (``law.sample``) and ``law`` is any
    ``theory.NoisedLaw``. A sampler that fits the law has gap ~ 0 (a perfect memorizer too: its samples are
    training points, themselves draws of the law); an underfit one has gap << 0. ``generated`` and
    ``reference``: (B, d) points of the law's dimension, at least 2 each (for the standard errors);
    log-densities that overflow raise (``law.log_prob``)."""
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    generated = check_points(generated, "generated", law.dim, dtype=law.dtype, device=law.device, min_rows=2)
    reference = check_points(reference, "reference", law.dim, dtype=law.dtype, device=law.device, min_rows=2)
    gen = RunningMoments().update(law.log_prob(generated, t)).estimate()
    ref = RunningMoments().update(law.log_prob(reference, t)).estimate()
    return SampleQuality(gen, ref, gen - ref)
