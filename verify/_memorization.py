"""Memorization read against its baselines: the one row-builder every memorization sweep uses, the
perfect-memorizer anchor sampler, and the rules that judge memorization trends from such rows.

Row-builder (``memorization_row``): from a model's generated samples, the anchor samples (the same sampler
driven by the exact empirical score of the training set), the training set, the true law (or held-out
data where there is none) it returns every column of ``MEMORIZATION_COLUMNS``: the memorization fraction
with its Wilson interval, the null rate of exact true-law draws at t0 (or of held-out data), the anchor,
the excess over the null and the normalized index with their intervals (``theory.memorization``), sample
quality against true draws, and the held-out log-likelihoods. A sweep row carries all of them.

Rules (``judge_trend`` and the fit check): a trend in memorization is judged on EXCESS memorization over
the null, from models that pass the fit check (sample quality within ``quality_tolerance`` nats per
dimension of true draws); models that fail it are confounds, never support; a table without the baseline
columns cannot decide ("inconclusive", the missing columns named).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd
import torch

import theory
from theory.evaluation.memorization import (DEFAULT_THRESHOLD, calibrated_memorization, normalized_index_interval,
                                 sample_quality)

from . import stats
from .verdicts import Constant, Finding, all_of, decide_above, finding, inconclusive

# --------------------------------------------------------------------------------------------- columns
MEMORIZATION_COLUMNS = (
    # the model's samples: d1/d2 < threshold against the distinct training points (non-finite samples, e.g.
    # an exploded ODE trajectory, are counted as generated and not memorized, and named in n_nonfinite)
    "n_generated", "n_nonfinite", "mem_count", "mem_fraction", "mem_fraction_se", "mem_fraction_lo",
    "mem_fraction_hi",
    # null: the same test on exact true-law draws at t0 (null_kind "true_law") or held-out data ("held_out")
    "null_kind", "n_null", "null_count", "mem_null", "mem_null_lo", "mem_null_hi",
    # anchor: the same sampler driven by the exact empirical score (a perfect memorizer)
    "n_anchor", "anchor_count", "mem_anchor", "mem_anchor_lo", "mem_anchor_hi",
    # excess = fraction - null (Newcombe); normalized = (fraction - null) / (anchor - null) (Bonferroni box)
    "mem_excess", "mem_excess_lo", "mem_excess_hi", "mem_normalized", "mem_normalized_lo", "mem_normalized_hi",
    # sample quality: mean (and median) true log p_0 of the samples and of as many exact draws, and their gap
    # (-inf where a sample is non-finite); the fit check reads quality_gap / d
    "sample_logp_true", "sample_logp_true_se", "ref_logp_true", "ref_logp_true_se", "quality_gap",
    "quality_gap_se", "sample_logp_true_median", "ref_logp_true_median", "quality_gap_median",
    # held-out points: the model's log-likelihood (given by the pipeline; mean over its finite values, median,
    # number of non-finite values, and whether it collapsed: LOGLIK_COLLAPSE), the true and the empirical law's
    "n_test", "test_loglik", "test_loglik_se", "test_loglik_median", "test_loglik_nonfinite", "test_loglik_collapsed",
    "test_loglik_true", "test_loglik_true_se", "test_loglik_true_median", "test_loglik_empirical",
    # protocol
    "d", "threshold", "interval_level", "mem_interval",
)
REQUIRED = ("mem_count", "n_generated", "null_count", "n_null", "anchor_count", "n_anchor", "quality_gap", "d")
LOGLIK_COLLAPSE = 10.0   # nats per dimension: a held-out median this far below the true one (or non-finite) has
#                          collapsed (the ODE of a memorizing net carries held-out points off the data region)


def _log_density(law, x: torch.Tensor) -> torch.Tensor:
    """log p_0 of each row, -inf for a non-finite row (never NaN)."""
    out = torch.full((x.shape[0],), -math.inf, dtype=torch.float64, device=x.device)
    ok = torch.isfinite(x).all(1)
    if bool(ok.any()):
        out[ok] = law.log_prob(x[ok].to(law.dtype), 0.0).to(torch.float64)
    return torch.nan_to_num(out, nan=-math.inf, posinf=-math.inf)


def _mean_se_median(v: torch.Tensor) -> tuple[float, float, float]:
    """mean, standard error and median of v; mean -inf (se NaN) if any value is -inf."""
    if not bool(torch.isfinite(v).all()):
        return -math.inf, math.nan, float(v.median())
    e = theory.RunningMoments().update(v).estimate()
    return e.mean, e.stderr, float(v.median())


def memorization_row(generated: torch.Tensor, train: torch.Tensor, *, anchor: torch.Tensor,
                     truth=None, null: torch.Tensor | None = None, held_out: torch.Tensor | None = None,
                     held_out_loglik: torch.Tensor | None = None, t0: float, threshold: float = DEFAULT_THRESHOLD,
                     level: float = stats.LEVEL, generator: torch.Generator | None = None,
                     null_draws: int | None = None) -> dict:
    """Every memorization and quality column of a sweep row (``MEMORIZATION_COLUMNS``).

    generated: the model's samples (G, d); train: its training set (n, d); anchor: samples of the same
    sampler driven by the exact empirical score of ``train`` (``anchor_samples``); truth: the true law
    (a ``theory.NoisedLaw``) or None; null: null samples, or None to draw ``null_draws`` exact samples of
    ``truth`` at t0 (or, without a true law, to use ``held_out``); held_out: held-out points of the true law
    (m, d); held_out_loglik: the model's log-likelihood of ``held_out`` (m,), e.g. ``theory.likelihood.
    ode_log_likelihood`` (non-finite values are counted, not averaged); generator: for the true-law draws
    (null, then the quality reference); null_draws: how many true-law draws make the null (default: as many
    as generated samples; more of them shrink the null's share of the excess's interval).

    Non-finite generated samples (an exploded trajectory) count as generated and not memorized (they are
    replaced by a point far from every training point for the test), make the mean log-density -inf (so the
    model fails any fit check) and are counted in ``n_nonfinite``."""
    G, d = generated.shape[0], generated.shape[1]
    finite = torch.isfinite(generated).all(1)
    tested = generated
    if not bool(finite.all()):
        far = train.abs().max() * 1e6 + 1e6
        tested = torch.where(finite[:, None], generated, far.to(generated.dtype))
    null_kind = "given"
    if null is None:
        if truth is not None:
            null, null_kind = truth.sample(null_draws or G, t0, generator).to(generated.dtype), "true_law"
        elif held_out is not None:
            null, null_kind = held_out, "held_out"
        else:
            raise ValueError("need a null: null samples, a true law or held-out data")
    cal = calibrated_memorization(tested, train, null=null, anchor=anchor, threshold=threshold, level=level)
    nan = math.nan
    row = {
        "n_generated": cal.n, "n_nonfinite": int((~finite).sum()), "mem_count": cal.count,
        "mem_fraction": cal.fraction.estimate,
        "mem_fraction_se": math.sqrt(cal.fraction.estimate * (1 - cal.fraction.estimate) / cal.n),
        "mem_fraction_lo": cal.fraction.lo, "mem_fraction_hi": cal.fraction.hi,
        "null_kind": null_kind, "n_null": cal.n_null, "null_count": cal.null_count, "mem_null": cal.null.estimate,
        "mem_null_lo": cal.null.lo, "mem_null_hi": cal.null.hi,
        "n_anchor": cal.n_anchor, "anchor_count": cal.anchor_count, "mem_anchor": cal.anchor.estimate,
        "mem_anchor_lo": cal.anchor.lo, "mem_anchor_hi": cal.anchor.hi,
        "mem_excess": cal.excess.estimate, "mem_excess_lo": cal.excess.lo, "mem_excess_hi": cal.excess.hi,
        "mem_normalized": cal.normalized.estimate, "mem_normalized_lo": cal.normalized.lo,
        "mem_normalized_hi": cal.normalized.hi,
        "d": d, "threshold": threshold, "interval_level": level, "mem_interval": "wilson",
    }
    quality = {k: nan for k in ("sample_logp_true", "sample_logp_true_se", "ref_logp_true", "ref_logp_true_se",
                                "quality_gap", "quality_gap_se", "sample_logp_true_median", "ref_logp_true_median",
                                "quality_gap_median")}
    if truth is not None:
        reference = truth.sample(G, 0.0, generator)
        if bool(finite.all()):
            q = sample_quality(generated.to(reference.dtype), truth, reference, 0.0)
            gen_mean, gen_se, ref_mean, ref_se = q.generated.mean, q.generated.stderr, q.reference.mean, q.reference.stderr
        else:
            gen_mean, gen_se = -math.inf, nan
            ref = theory.RunningMoments().update(truth.log_prob(reference, 0.0)).estimate()
            ref_mean, ref_se = ref.mean, ref.stderr
        gen_median = float(_log_density(truth, generated).median())
        ref_median = float(truth.log_prob(reference, 0.0).median())
        quality = {"sample_logp_true": gen_mean, "sample_logp_true_se": gen_se,
                   "ref_logp_true": ref_mean, "ref_logp_true_se": ref_se,
                   "quality_gap": gen_mean - ref_mean, "quality_gap_se": math.hypot(gen_se, ref_se),
                   "sample_logp_true_median": gen_median, "ref_logp_true_median": ref_median,
                   "quality_gap_median": gen_median - ref_median}
    row.update(quality)
    held = {"n_test": 0, "test_loglik": nan, "test_loglik_se": nan, "test_loglik_median": nan,
            "test_loglik_nonfinite": 0, "test_loglik_collapsed": False, "test_loglik_true": nan,
            "test_loglik_true_se": nan, "test_loglik_true_median": nan, "test_loglik_empirical": nan}
    if held_out is not None:
        held["n_test"] = held_out.shape[0]
        if truth is not None:
            true_ll = truth.log_prob(held_out.to(truth.dtype), t0)
            tl = theory.RunningMoments().update(true_ll).estimate()
            held.update(test_loglik_true=tl.mean, test_loglik_true_se=tl.stderr,
                        test_loglik_true_median=float(true_ll.median()))
        if held_out_loglik is not None:
            ll = held_out_loglik.detach().to(torch.float64).reshape(-1)
            ok = torch.isfinite(ll)
            held["test_loglik_nonfinite"] = int((~ok).sum())
            if bool(ok.any()):
                e = theory.RunningMoments().update(ll[ok]).estimate()
                held.update(test_loglik=e.mean, test_loglik_se=e.stderr)
            med = float(torch.nan_to_num(ll, nan=-math.inf).median())
            held["test_loglik_median"] = med
            ref_med = held["test_loglik_true_median"]
            held["test_loglik_collapsed"] = bool(not math.isfinite(med) or (
                math.isfinite(ref_med) and med < ref_med - LOGLIK_COLLAPSE * d))
        emp = theory.EmpiricalLaw(train)
        held["test_loglik_empirical"] = float(emp.log_prob(held_out.to(emp.dtype), t0).mean())
    row.update(held)
    return {c: row[c] for c in MEMORIZATION_COLUMNS}


def tweedie_ode_sampler(x_T: torch.Tensor, *, T: float, t0: float, steps: int) -> Callable:
    """The sampler of the mixture sweeps as a function of the score: probability-flow ODE from ``x_T`` at T
    down to t0 (``theory.probability_flow``), then one Tweedie step x0 = (x + sigma_t0^2 s(x, t0)) / alpha_t0
    (``theory.tweedie_denoise``). Returns sample(score_fn) -> (G, d)."""
    def sample(score_fn):
        return theory.tweedie_denoise(score_fn, theory.probability_flow(score_fn, x_T, T=T, t0=t0, steps=steps), t0)
    return sample


def anchor_samples(sampler: Callable, train: torch.Tensor) -> torch.Tensor:
    """The perfect memorizer: ``sampler`` (a function of a score, e.g. ``tweedie_ode_sampler``) driven by the
    exact empirical score grad log p^_t of ``train`` (``theory.EmpiricalLaw.score``)."""
    return sampler(theory.EmpiricalLaw(train).score)


# --------------------------------------------------------------------------------------------- rules
QUALITY_TOLERANCE = Constant(
    "quality_tolerance", 0.25,
    "fit check: a model counts only if the mean true log-density of its samples is at most this many nats "
    "per dimension below that of as many exact draws (quality_gap / d >= -tolerance)")
MIN_EFFECT = Constant(
    "min_effect", 0.05,
    "smallest change in excess memorization (memorized fraction minus its null rate) that counts as a trend")


def summary_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The per-model rows of a memorization table (drops phase_2d's sample rows and error rows); the second
    value names the failed grid points as confounds."""
    t = table
    confounds = []
    if "error" in t.columns:
        bad = t[t["error"].notna()]
        if len(bad):
            confounds.append(f"{len(bad)} rows from failed grid points (error column) not used")
        t = t[t["error"].isna()]
    if "kind" in t.columns:
        t = t[t["kind"].isin(["summary", "memorization"])]
    return t, confounds


def missing_baselines(table: pd.DataFrame) -> list[str]:
    """The baseline columns (null, anchor, quality) a memorization rule needs and the table lacks (or has
    only as NaN)."""
    return [c for c in REQUIRED if c not in table.columns or table[c].isna().all()]


def baseline_confound(missing: list[str]) -> str:
    return ("table lacks the calibrated-memorization columns " + ", ".join(missing)
            + " (no null rate, anchor or fit check: raw fractions cannot be judged)")


def fit_check(rows: pd.DataFrame, quality_tolerance: float) -> tuple[pd.Series, list[str]]:
    """Boolean mask of the rows whose model passes the fit check (quality_gap / d >= -quality_tolerance)
    and a confound naming the rows that do not."""
    per_dim = rows["quality_gap"].astype(float) / rows["d"].astype(float)
    ok = per_dim >= -quality_tolerance
    confounds = []
    if (~ok).any():
        bad = rows[~ok]
        confounds.append(f"{int((~ok).sum())} of {len(rows)} models failed the fit check (quality gap per "
                         f"dimension < -{quality_tolerance:g} nats; not counted): "
                         + ", ".join(f"{_label(r)} gap/d {stats.fmt(g, 2)}" for r, g in
                                     zip(bad.to_dict("records"), per_dim[~ok])))
    return ok, confounds


def _label(r: dict) -> str:
    keys = [k for k in ("d", "n", "width", "params", "weight_decay", "n_distinct", "m", "seed") if k in r]
    return " ".join(f"{k}={_value(r[k])}" for k in keys)


def _counts(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(counts, trials) of shape (k, 2): memorized and null counts per model (seed)."""
    c = rows[["mem_count", "null_count"]].to_numpy(float)
    n = rows[["n_generated", "n_null"]].to_numpy(float)
    return c, n


def mean_excess(rows: pd.DataFrame, level: float = stats.LEVEL) -> stats.Interval:
    """Mean over models (seeds) of their excess memorization (fraction - null), with the percentile
    bootstrap over seeds and samples."""
    return stats.bootstrap_counts({"g": _counts(rows)}, lambda p: (p["g"][..., 0] - p["g"][..., 1]).mean(-1),
                                  level=level)


def mean_rate(rows: pd.DataFrame, count: str, trials: str, level: float = stats.LEVEL) -> stats.Interval:
    """Mean over models (seeds) of count / trials (e.g. mem_count / n_generated, null_count / n_null), with the
    percentile bootstrap over seeds and samples."""
    c, n = rows[[count]].to_numpy(float), rows[[trials]].to_numpy(float)
    return stats.bootstrap_counts({"g": (c, n)}, lambda p: p["g"][..., 0].mean(-1), level=level)


def excess_difference(high: pd.DataFrame, low: pd.DataFrame, level: float = stats.LEVEL) -> stats.Interval:
    """mean excess of the ``high`` models minus that of the ``low`` models (means over models, i.e. seeds),
    with the percentile bootstrap over seeds and samples."""
    def stat(p):
        return (p["high"][..., 0] - p["high"][..., 1]).mean(-1) - (p["low"][..., 0] - p["low"][..., 1]).mean(-1)
    return stats.bootstrap_counts({"high": _counts(high), "low": _counts(low)}, stat, level=level)


def describe_groups(rows: pd.DataFrame, x: str) -> str:
    """Per value of x: memorization and excess as means over the models (seeds) with the percentile
    bootstrap over seeds and samples (the seed-to-seed spread counts: a pooled Wilson interval would hide
    it), the null rate pooled over the models' true-law draws (Wilson: a bootstrap of zero counts would give
    [0, 0]) and the normalized index of the pooled counts (Bonferroni box)."""
    parts = []
    for v, g in rows.groupby(x):
        mem, exc = mean_rate(g, "mem_count", "n_generated"), mean_excess(g)
        null = stats.wilson_interval(int(g["null_count"].sum()), int(g["n_null"].sum()))  # all draws of one law
        norm = normalized_index_interval(
            int(g["mem_count"].sum()), int(g["n_generated"].sum()), int(g["null_count"].sum()),
            int(g["n_null"].sum()), int(g["anchor_count"].sum()), int(g["n_anchor"].sum()))
        parts.append(f"{x}={stats.fmt(float(v), 4)} ({len(g)} models): mem {stats.fmt_interval(*mem[:3], 2)}, "
                     f"null (pooled, Wilson) {stats.fmt_interval(*null[:3], 2)}, excess {stats.fmt_interval(*exc[:3], 2)}, "
                     f"normalized (pooled) {stats.fmt_interval(*norm[:3], 2)}")
    return "per value, means over models with 95% bootstrap over seeds and samples: " + "; ".join(parts)


def describe_raw(rows: pd.DataFrame, x: str) -> str:
    """Per value of x: the raw memorization fraction (mean over seeds), for tables without baselines."""
    if "mem_fraction" not in rows.columns or x not in rows.columns:
        return "no memorization column"
    s = stats.seed_mean(rows, x, "mem_fraction", "mem_fraction_se" if "mem_fraction_se" in rows else None)
    return ("raw memorization fraction, mean over seeds (no null, so not judged): "
            + ", ".join(f"{x}={_value(r[x])}: {r['mean']:.3f}" for _, r in s.iterrows()))


def _value(v) -> str:
    return stats.fmt(float(v), 4) if isinstance(v, (int, float, np.number)) else str(v)


def range_of(rows: pd.DataFrame, cols=("params", "n", "d", "width", "weight_decay")) -> str:
    """'params 1.4e+03-2.7e+05, n 64, d 2, 2 seeds, 300 samples each' from the rows."""
    parts = []
    for c in cols:
        if c in rows.columns and rows[c].notna().any():
            vals = sorted(rows[c].dropna().unique())
            parts.append(f"{c} {stats.fmt(float(vals[0]), 3)}" + (f"-{stats.fmt(float(vals[-1]), 3)}" if len(vals) > 1 else ""))
    if "seed" in rows.columns:
        k = rows["seed"].nunique()
        parts.append(f"{k} seed" + ("s" if k != 1 else ""))
    col = "n_generated" if "n_generated" in rows.columns else None
    if col and rows[col].notna().any():
        parts.append(f"{int(rows[col].median())} samples per model")
    return ", ".join(parts)


def judge_trend(table: pd.DataFrame, x: str, direction: int, *, min_effect: float,
                quality_tolerance: float) -> Finding:
    """Excess memorization against ``x``: direction * (mean excess at the largest x - at the smallest x),
    over the models that pass the fit check, with the bootstrap interval over seeds and samples; holds if
    the interval lies above ``min_effect``, does not hold if it lies at or below it."""
    rows, confounds = summary_rows(table)
    statistic = f"{'rise' if direction > 0 else 'fall'} of excess memorization from smallest to largest {x}"
    rng = range_of(rows)
    missing = missing_baselines(rows)
    if missing:
        return inconclusive(statistic, describe_raw(rows, x), confounds=confounds + [baseline_confound(missing)],
                            range_tested=rng)
    ok, fit_confounds = fit_check(rows, quality_tolerance)
    confounds += fit_confounds
    fit = rows[ok]
    values = sorted(fit[x].unique())
    if len(values) < 2:
        return inconclusive(statistic, f"fewer than 2 values of {x} with models that pass the fit check; "
                            + describe_groups(rows, x), confounds=confounds, range_tested=rng)
    low, high = fit[fit[x] == values[0]], fit[fit[x] == values[-1]]
    diff = excess_difference(high, low)
    iv = stats.Interval(direction * diff.estimate, *sorted((direction * diff.lo, direction * diff.hi)),
                        diff.level, diff.method)
    confounds += anchor_confounds(fit, x)
    text = describe_groups(fit, x)
    return finding(statistic, iv, decide_above(iv.lo, iv.hi, min_effect), text, confounds=confounds,
                   range_tested=rng)


def anchor_confounds(rows: pd.DataFrame, x: str) -> list[str]:
    """Values of x where the perfect memorizer's anchor cannot be told from the null (the test cannot see
    memorization there)."""
    blind = []
    for v, g in rows.groupby(x):
        d = stats.proportion_difference_interval(int(g["anchor_count"].sum()), int(g["n_anchor"].sum()),
                                                 int(g["null_count"].sum()), int(g["n_null"].sum()))
        if d.lo <= 0:
            blind.append(stats.fmt(float(v), 4))
    return [f"anchor not above the null at {x} = {', '.join(blind)}: the test cannot see memorization there"] if blind else []


def judge_loglik_peak(table: pd.DataFrame, x: str = "params") -> Finding:
    """Held-out log-likelihood highest at an intermediate x: min(LL_peak - LL_first, LL_peak - LL_last) with
    the peak the best interior value, each difference's normal interval at the Bonferroni level 1 - 0.05/2.
    LL of a model: the median over the held-out points of its ODE log-likelihood (the mean is dominated by
    the few points a memorizing net's ODE carries off), censored below at the collapse floor (the true
    median minus LOGLIK_COLLAPSE nats per dimension; non-finite medians too), so a collapsed model counts at
    that floor, a conservative bound; LL of a size: the mean over its models (seeds) with the seed-to-seed
    standard error."""
    rows, confounds = summary_rows(table)
    statistic = f"held-out log-likelihood (median) of the best intermediate {x} minus the better end"
    col = "test_loglik_median" if "test_loglik_median" in rows.columns else "test_loglik"
    if col not in rows.columns or rows[col].isna().all():
        return inconclusive(statistic, "no held-out log-likelihood column", confounds=confounds)
    v = rows[col].astype(float).replace(np.nan, -np.inf)
    if "test_loglik_true_median" in rows.columns and rows["test_loglik_true_median"].notna().all():
        floor = rows["test_loglik_true_median"].astype(float) - LOGLIK_COLLAPSE * rows["d"].astype(float)
        low = v < floor
        if low.any():
            confounds.append(f"{int(low.sum())} of {len(rows)} models' held-out log-likelihood collapsed (median "
                             f"below the true one by more than {LOGLIK_COLLAPSE:g} nats per dimension, or "
                             "non-finite): counted at that floor")
        v = np.maximum(v, floor)
    rows = rows.assign(_ll=v)
    s = stats.seed_mean(rows, x, "_ll")
    s = s.sort_values(x).reset_index(drop=True)
    if len(s) < 3 or not np.isfinite(s["mean"]).all():
        return inconclusive(statistic, f"need >= 3 values of {x} with finite held-out log-likelihoods",
                            confounds=confounds)
    peak = int(s["mean"].iloc[1:-1].idxmax())
    level = stats.bonferroni_level(2)
    se = s["se"].fillna(math.inf)
    ivs = [stats.normal_interval(s["mean"][peak] - s["mean"][end], math.hypot(se[peak], se[end]), level)
           for end in (0, len(s) - 1)]
    est = min(iv.estimate for iv in ivs)
    lo, hi = min(iv.lo for iv in ivs), min(iv.hi for iv in ivs)
    text = "held-out log-likelihood, median over points, mean over seeds: " + ", ".join(
        f"{x}={stats.fmt(float(r[x]), 4)}: {r['mean']:.2f}" for _, r in s.iterrows())
    return finding(statistic, (est, lo, hi), decide_above(lo, hi, 0.0), text, interval="bonferroni_normal",
                   confounds=confounds)


def judge_phases(table: pd.DataFrame, *, min_effect: float, quality_tolerance: float) -> Finding:
    """underfit -> generalize -> memorize: the excess-memorization trend with size (``judge_trend``) and an
    interior peak of the held-out log-likelihood (``judge_loglik_peak``), both required."""
    trend = judge_trend(table, "params", +1, min_effect=min_effect, quality_tolerance=quality_tolerance)
    peak = judge_loglik_peak(table, "params")
    return all_of([trend, peak], range_tested=trend.range_tested)
