"""Duplicates and memorization (Sec. 5, after Thm 5.1): a model trained on n points of which m are exact copies
memorizes like one trained on its n - m distinct points, not like one trained on n distinct points.

For each seed, one stream of mixture draws (``verify._gmm.member_training_set``) gives nested sets: the
first k points ("k distinct"), the first n points ("n distinct", the control with as many points), and the
duplicated set: the first k points plus m = n - k exact copies of them chosen at random ("k + m copies",
n points, k distinct). All sets of all seeds train as one ensemble of DSM score nets (``verify._gmm``), and
memorization is measured against each set's distinct points with its baselines (null rate of exact
true-law draws, anchor of the exact empirical-score sampler of that set, with its unequal atom weights),
sample quality and the fit check. The cpu preset runs in d = 8, where the null is negligible (~1e-4) and
the two controls memorize very differently (width 128: about 0.7 at k = 32, 0.25 at n = 128), so the
position of a duplicated set between them can be read.

The width side of the same corollary (W* of the empirical score of a duplicated set) is ``verify.duplication``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import _gmm, _memorization, stats
from ._gmm import Config
from .verdicts import Claim, conjunction, decide_above, finding, inconclusive

NAME = "duplication_memorization"
CLAIM = ("n training points with m exact copies memorize like the n - m distinct points, not like n distinct "
         "ones (Sec. 5, corollary of Thm 5.1)")
ORDER = 42


@dataclasses.dataclass(frozen=True)
class DupConfig(Config):
    """``Config`` (d, K, width, seeds, training, protocol; its ns and weight_decays unused) plus the data
    sets: for every k in ``n_distinct`` and factor f in ``copies_factor``, the set of k distinct points plus
    m = f k copies (n = k + m points), and the distinct controls of k and of k + m points."""

    n_distinct: tuple = (8,)
    copies_factor: tuple = (1,)


PRESETS = {
    "smoke": DupConfig(dims=(2,), n_components=4, widths=(16,), seeds=(0,), n_distinct=(8,), copies_factor=(1,),
                       train=_gmm.SMOKE_TRAIN, protocol=_gmm.SMOKE_PROTOCOL),
    # k = 32 + 96 copies and k = 64 + 64 copies (n = 128 both), against 32, 64 and 128 distinct points
    "cpu": DupConfig(dims=(8,), n_components=8, widths=(128,), seeds=(0, 1, 2), n_distinct=(32, 64),
                     copies_factor=(3, 1), train=_gmm.CPU_TRAIN, protocol=_gmm.CPU_PROTOCOL),
    "paper": DupConfig(dims=(16,), n_components=8, widths=(1024,), seeds=(0, 1, 2), n_distinct=(1000, 3200),
                       copies_factor=(1, 3),
                       train=_gmm.PAPER_TRAIN, protocol=_gmm.PAPER_PROTOCOL),
}
ESTIMATED_RUNTIME = {"smoke": 5, "cpu": 200, "paper": 4 * 3600}
COLUMNS = _gmm.COLUMNS + ("data",)


def data_sets(cfg: DupConfig) -> list[dict]:
    """The (n, copies) pairs: distinct sets of every size k and k + m, then the duplicated sets."""
    dup = [(k, f * k) for k in cfg.n_distinct for f in cfg.copies_factor]
    sizes = sorted({k for k, _ in dup} | {k + m for k, m in dup})
    return [{"n": s, "copies": 0} for s in sizes] + [{"n": k + m, "copies": m} for k, m in dup]


def grid(cfg: DupConfig) -> list[dict]:
    """One point per (d, width): every data set of every seed trains as one ensemble."""
    return [{"d": d, "width": w, "seed": 0} for d in cfg.dims for w in cfg.widths]


def run_point(point: dict, cfg: DupConfig, device: str) -> list[dict]:
    members = [{"seed": s, **ds} for ds in data_sets(cfg) for s in cfg.seeds]
    rows = _gmm.run_members(point, members, cfg, device, kind=NAME)
    for r in rows:
        r["data"] = "duplicated" if r["copies"] else "distinct"
    return rows


# --------------------------------------------------------------------------------------------- claims
def positions(fit) -> list[dict]:
    """Per duplicated set among the rows ``fit`` (models that pass the fit check): its label, k and m, the
    seeds where the set and both controls exist, the mean excess memorization of the three sets, the
    controls' difference E_k - E_n and the position P = (E_dup - E_n) / (E_k - E_n), each with the bootstrap
    interval over seeds and samples (the three sets of one seed resampled together)."""
    out = []
    for (k, m), dup in fit[fit["copies"] > 0].groupby(["n_distinct", "copies"]):
        sets = [dup, fit[(fit["copies"] == 0) & (fit["n"] == k)], fit[(fit["copies"] == 0) & (fit["n"] == k + m)]]
        seeds = sorted(set.intersection(*(set(g["seed"]) for g in sets)))
        item = {"label": f"{int(k)} distinct + {int(m)} copies", "k": int(k), "m": int(m), "seeds": seeds}
        if seeds:
            per = [_memorization._counts(g.set_index("seed").loc[seeds].reset_index()) for g in sets]
            counts = (np.concatenate([c for c, _ in per], axis=1), np.concatenate([n for _, n in per], axis=1))
            # columns: dup mem, dup null, k mem, k null, n mem, n null; one row per seed (paired)
            exc = lambda p, i: (p["g"][..., 2 * i] - p["g"][..., 2 * i + 1]).mean(-1)
            boot = lambda f: stats.bootstrap_counts({"g": counts}, f)
            with np.errstate(divide="ignore", invalid="ignore"):   # controls alike in a resample: P = +-inf
                item.update(excess=[boot(lambda p, i=i: exc(p, i)) for i in range(3)],
                            controls=boot(lambda p: exc(p, 1) - exc(p, 2)),
                            position=boot(lambda p: (exc(p, 0) - exc(p, 2)) / (exc(p, 1) - exc(p, 2))))
        out.append(item)
    return out


def judge_duplicates(table, *, min_effect=0.05, quality_tolerance=0.25):
    """Rule: for every duplicated set (k distinct points + m copies, n = k + m), the position of its excess
    memorization between its two controls, P = (E_dup - E_n) / (E_k - E_n) (E: mean over seeds of memorized
    fraction minus its null rate; E_k: the k distinct points, E_n: n distinct points; P = 1: like its k
    distinct points, P = 0: like n distinct), has its bootstrap interval over seeds and samples (the three
    sets of one seed resampled together: they share the seed's stream) above 1/2 (closer to k distinct);
    does not hold if some set's interval lies at or below 1/2. A set whose controls differ by no more than
    min_effect (the bootstrap interval of E_k - E_n not above it) cannot discriminate and is not judged;
    models failing the fit check are not counted; a table without the null/anchor/quality columns cannot
    decide."""
    rows, confounds = _memorization.summary_rows(table)
    stat = "position P of a duplicated set's excess memorization between its controls (1: like its n - m distinct)"
    if rows.empty or "copies" not in rows.columns:
        return inconclusive(stat, "no memorization rows", confounds=confounds)
    rng = _memorization.range_of(rows, cols=("n", "n_distinct", "copies", "width", "d"))
    missing = _memorization.missing_baselines(rows)
    if missing:
        return inconclusive(stat, _memorization.describe_raw(rows.assign(set=rows["n_distinct"].astype(str) + "+"
                                                                         + rows["copies"].astype(str)), "set"),
                            confounds=confounds + [_memorization.baseline_confound(missing)], range_tested=rng)
    ok, fit_confounds = _memorization.fit_check(rows, quality_tolerance)
    confounds += fit_confounds
    parts, verdicts, worst = [], [], None
    for item in positions(rows[ok]):
        label = item["label"]
        if not item["seeds"]:
            confounds.append(f"{label} not judged: a control is missing or failed the fit check")
            continue
        ctrl, pos = item["controls"], item["position"]
        e = ", ".join(f"{name} {stats.fmt_interval(*iv[:3], 2)}" for name, iv in
                      zip(("duplicated", f"{item['k']} distinct", f"{item['k'] + item['m']} distinct"), item["excess"]))
        if not ctrl.lo > min_effect:
            parts.append(f"{label}: controls' excess difference {stats.fmt_interval(*ctrl[:3], 2)} (not judged)")
            confounds.append(f"{label} not judged: its controls' excess memorization differs by no more than "
                             f"{min_effect:g}")
            continue
        verdicts.append(decide_above(pos.lo, pos.hi, 0.5))
        parts.append(f"{label} ({len(item['seeds'])} seeds): P {stats.fmt_interval(*pos[:3], 2)}; excess {e}")
        if worst is None or pos.lo < worst.lo:
            worst = pos
    if not verdicts:
        return inconclusive(stat, "no duplicated set with distinguishable controls; " + "; ".join(parts),
                            confounds=confounds, range_tested=rng)
    return finding(stat, worst, conjunction(verdicts), "; ".join(parts), confounds=confounds, range_tested=rng)


CLAIMS = [
    Claim("duplicates_memorize_like_distinct", "Duplicates shrink the effective n: a model trained on n points with "
          "m exact copies memorizes like one trained on the n - m distinct points", "Sec. 5, after Thm 5.1",
          "n samples of which m are exact copies", "theory.evaluation.memorization.calibrated_memorization",
          judge_duplicates, (_memorization.MIN_EFFECT, _memorization.QUALITY_TOLERANCE)),
]


# --------------------------------------------------------------------------------------------- figure
def plot(table, cfg: DupConfig):
    """(a) excess memorization against the number of distinct points: distinct sets as a line, duplicated
    sets as markers at their distinct count (on the line: they memorize like their distinct points) with the
    null and anchor; (b) the position P of each duplicated set with its interval; (c) sample quality."""
    import matplotlib.pyplot as plt

    summ = _gmm.summaries(table)
    fig, axes = plt.subplots(1, 3, figsize=(17, 6.4))
    handles = {}
    ax = axes[0]
    dist = summ[summ["copies"] == 0]
    ks = np.array(sorted(dist["n"].unique()), float)
    for col, n_col, colour, label, marker, ls in (
            (None, None, "k", "n distinct points (no copies): excess memorization", "s", "-"),
            ("null_count", "n_null", "0.5", "null: exact true-law draws (reference, raw rate)", "v", ":"),
            ("anchor_count", "n_anchor", "C3", "anchor: exact empirical-score sampler (reference, raw rate)", "^", ":")):
        ivs = [_memorization.mean_excess(dist[dist["n"] == k]) if col is None else
               _memorization.mean_rate(dist[dist["n"] == k], col, n_col) for k in ks]
        est = np.array([iv.estimate for iv in ivs])
        h = ax.errorbar(ks, est, yerr=[est - [iv.lo for iv in ivs], [iv.hi for iv in ivs] - est], fmt=marker + ls,
                        color=colour, capsize=3)
        handles.setdefault(label, h)
    dup = summ[summ["copies"] > 0]
    for i, ((k, m), g) in enumerate(dup.groupby(["n_distinct", "copies"])):
        iv = _memorization.mean_excess(g)
        h = ax.errorbar([k * (1.04 + 0.03 * i)], [iv.estimate], yerr=[[iv.estimate - iv.lo], [iv.hi - iv.estimate]],
                        fmt="o", color=f"C{i}", capsize=3, ms=8)
        handles.setdefault(f"{int(k)} distinct + {int(m)} copies (n = {int(k + m)}): excess memorization", h)
    ax.set_xscale("log", base=2)
    low = min([0.0] + [float(np.nanmin(line.get_ydata())) for line in ax.get_lines() if len(line.get_ydata())])
    ax.set_ylim(min(-0.03, low - 0.05), 1.05)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xlabel("number of distinct training points")
    ax.set_ylabel("fraction memorized (excess over the null; references: raw)")
    ax.set_title("(a) memorization against the number of distinct points", fontsize=10)
    # (b) position of each duplicated set, with its interval
    ax = axes[1]
    rows, _ = _memorization.summary_rows(table)
    items = [i for i in positions(rows[_gmm.fit_ok(rows)]) if i["seeds"]]
    for j, item in enumerate(items):
        iv = item["position"]
        lo, hi = (max(iv.lo, -1.0), min(iv.hi, 2.0)) if np.isfinite(iv.estimate) else (np.nan, np.nan)
        ax.errorbar([j], [iv.estimate], yerr=[[iv.estimate - lo], [hi - iv.estimate]], fmt="o", color=f"C{j}",
                    capsize=4, ms=8)
    ax.set_xticks(range(len(items)), [i["label"].replace(" + ", "\n+ ") for i in items])
    ax.set_xlim(-0.6, len(items) - 0.4)
    h = ax.axhline(0.5, color="k", ls="--")
    handles.setdefault("P = 1/2: the rule's boundary (P = 1: like its n - m distinct points, 0: like n distinct)", h)
    ax.axhline(1.0, color="0.5", lw=0.8)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_ylabel("position P = (E_dup - E_n) / (E_(n-m) - E_n)")
    ax.set_title("(b) position of each duplicated set between its controls", fontsize=10)
    # (c) quality
    ax = axes[2]
    q = _gmm.per_dim(summ, "quality_gap")
    xlab = [f"{int(r.n_distinct)}" + (f"+{int(r.copies)}" if r.copies else "") for r in summ.itertuples()]
    order = sorted(set(xlab), key=lambda s: (("+" in s), *(int(v) for v in s.split("+"))))
    xpos = [order.index(v) for v in xlab]
    h = ax.plot(xpos, q, "o", color="C4")[0]
    handles.setdefault("sample quality: mean log p of samples - of true draws, per dim (one dot per seed)", h)
    h = ax.axhline(-_memorization.QUALITY_TOLERANCE.default, color="C1", ls="--")
    handles.setdefault(f"fit check threshold -{_memorization.QUALITY_TOLERANCE.default:g} nats/dim", h)
    ax.axhline(0, color="0.4", lw=0.8)
    if np.nanmin(q) < -3:
        ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xticks(range(len(order)), order)
    ax.set_xlabel("training set (distinct + copies)")
    ax.set_ylabel(_gmm.QUALITY_LABEL)
    ax.set_title("(c) sample quality and the fit check", fontsize=10)
    for a in axes:
        a.grid(alpha=0.3, which="both")
    d, w = int(summ["d"].iloc[0]), int(summ["width"].iloc[0])
    fig.suptitle(f"Duplicates and memorization (d = {d}, K = {cfg.n_components}, width {w}; memsep's nets and "
                 "training); intervals: 95% bootstrap over seeds and samples of the mean over seeds")
    fig.legend(list(handles.values()), list(handles.keys()), loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.2, 1, 0.95))
    return fig
