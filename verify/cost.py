"""Costing grid points before they run: ``python -m verify NAME --preset P --dry-run``.

A point is costed by running it for real at full model size, with a few configuration fields (step counts,
sample counts, batch sizes) reduced, and extrapolating. A module says how, in order of precedence:

* ``cost(point, config, device) -> PointCost``: its own function;
* ``COST_MODEL = {"reduced": {field: small value}, "terms": [(field, ...), ...], "first_point_only": [...]}``
  (the last optional: terms that only the first grid point pays, e.g. a model the others reuse): the point's cost is
  modelled as c0 + sum_k a_k prod_{f in term k} f (each term a loop nest over those fields, e.g.
  ("training.steps", "training.batch_size") or ("n_generated", "sample_steps")); fields are dotted paths
  into the (nested) configuration dataclass. ``measure`` runs the point at the reduced values and once more
  per term with that term's fields enlarged (until the run is measurably longer), and solves for c0 and the
  a_k, separately for FLOPs (``torch.utils.flop_counter.FlopCounterMode``, which counts matrix products,
  convolutions and attention, not elementwise work) and for seconds on this device; the cost at the preset's
  values follows. Exact for FLOPs where the model holds; an upper bound where a point stops early (a width
  fit reaching its target). ``DECLARED`` below holds the models of modules that do not declare their own;
* otherwise the point is run once as it is (cheap presets), or, where the module's ``ESTIMATED_RUNTIME``
  per point exceeds ``FULL_RUN_LIMIT_S``, its declared estimate is used (no FLOPs).

Points differing only in their seed cost the same and are measured once. Costing runs with checkpoints in
a temporary folder (nothing is resumed or left behind). The projection is the makespan of the points on the
chosen number of workers (longest first; a module with ``SHARED_FIRST_POINT`` runs its first point alone).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import tempfile
import time

import numpy as np
import torch

from . import _io
from .preflight import fmt_seconds

FULL_RUN_LIMIT_S = 120.0
MIN_EXTRA_S = 0.25          # a term's run must exceed the base run by this much (or reach the preset's value)

_GMM = {"reduced": {"train.steps": 2, "protocol.n_generated": 8, "protocol.n_anchor": 4, "protocol.n_test": 4,
                    "protocol.sample_steps": 2, "protocol.loglik_steps": 2, "protocol.index_samples": 8},
        "terms": [("train.steps",), ("protocol.n_generated", "protocol.sample_steps"),
                  ("protocol.n_anchor", "protocol.sample_steps"), ("protocol.n_test", "protocol.loglik_steps"),
                  ("protocol.index_samples",), ("protocol.n_generated",), ("protocol.n_test",)]}
_WIDTH = {"reduced": {"steps": 4, "batch_size": 8, "eval_points": 16},
          "terms": [("steps", "batch_size"), ("eval_points",)]}
#: cost models of modules that do not (yet) declare their own ``COST_MODEL``; a module's own wins
DECLARED = {
    **{name: _GMM for name in ("phase_2d", "scale_sweep", "sample_sweep", "dim_sweep", "weight_decay_grid",
                               "duplication_memorization")},
    "width_vs_n": _WIDTH,
    "duplication": _WIDTH,
    "lossgap_identity": {"reduced": {"n_times": 2, "n_draws": 32}, "terms": [("n_times", "n_draws"), ("n_times",)]},
    "lossgap_bound": {"reduced": {"n_draws": 16, "n_neighbour_queries": 16},
                      "terms": [("n_draws",), ("n_neighbour_queries",)]},
    "lossgap_rate": {"reduced": {"n_draws": 16, "n_neighbour_queries": 16},
                     "terms": [("n_draws",), ("n_neighbour_queries",)]},
    "lipschitz_vs_t": {"reduced": {"n_cloud": 16}, "terms": [("n_cloud",)]},
    "cifar_pruning": {
        "reduced": {"training.steps": 2, "training.batch_size": 2, "pruning.finetune_steps": 2,
                    "pruning.importance_draws": 1, "pruning.importance_batch": 2, "sampling.n_generated": 4,
                    "sampling.steps": 2, "evaluation.n_reference": 4},
        "terms": [("training.steps", "training.batch_size"), ("pruning.finetune_steps", "training.batch_size"),
                  ("pruning.importance_draws", "pruning.importance_batch"), ("sampling.n_generated", "sampling.steps"),
                  ("sampling.n_generated",), ("evaluation.n_reference",)],
        "first_point_only": [("training.steps", "training.batch_size")]},   # the shared original model
}


@dataclasses.dataclass
class Term:
    fields: tuple
    units: float             # prod of the fields at the preset's values
    flops: float             # per unit
    seconds: float           # per unit


@dataclasses.dataclass
class PointCost:
    flops: float             # nan: not counted
    seconds: float
    how: str                 # "model", "full run", "declared estimate", or the module's own words
    terms: list = dataclasses.field(default_factory=list)
    fixed_flops: float = 0.0
    fixed_seconds: float = 0.0
    costing_s: float = 0.0   # how long measuring took
    peak_rss_mb: float = math.nan


# ------------------------------------------------------------------------------------------ configuration
def get_field(cfg, path: str):
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def with_fields(cfg, values: dict):
    """``cfg`` (a possibly nested frozen dataclass) with the dotted fields of ``values`` replaced."""
    nested: dict = {}
    for path, v in values.items():
        head, _, rest = path.partition(".")
        nested.setdefault(head, {})
        if rest:
            nested[head][rest] = v
        else:
            nested[head] = v
    changes = {k: (with_fields(getattr(cfg, k), v) if isinstance(v, dict) else v) for k, v in nested.items()}
    return dataclasses.replace(cfg, **changes)


def cost_model(module) -> dict | None:
    model = getattr(module, "COST_MODEL", None)
    if model is None:
        model = DECLARED.get(getattr(module, "NAME", ""))
    if model is None:
        return None
    return model if isinstance(model, dict) else dataclasses.asdict(model)


def check_model(model: dict, cfg) -> None:
    """Every field of the model names an integer field of the configuration; the terms tell apart."""
    for path in set(model["reduced"]) | {f for term in model["terms"] for f in term}:
        try:
            value = get_field(cfg, path)
        except AttributeError:
            raise ValueError(f"cost model names {path!r}, which the configuration has not") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"cost model field {path!r} is {value!r}, not an integer count")
        if path not in model["reduced"]:
            raise ValueError(f"cost model term field {path!r} has no reduced value")


# --------------------------------------------------------------------------------------------- measuring
@contextlib.contextmanager
def _isolated():
    """Checkpoints in a temporary folder, none resumed; global generators seeded."""
    from .executor import seeded_globals

    old = os.environ.get("MEMSEP_CHECKPOINTS")
    with tempfile.TemporaryDirectory(prefix="memsep-cost-") as tmp:
        os.environ["MEMSEP_CHECKPOINTS"] = tmp
        try:
            with seeded_globals(0), _io.checkpoint_policy(_io.CheckpointPolicy(code="costing")):
                yield
        finally:
            if old is None:
                os.environ.pop("MEMSEP_CHECKPOINTS", None)
            else:
                os.environ["MEMSEP_CHECKPOINTS"] = old


def run_counted(module, point: dict, cfg, device: str) -> tuple[float, float]:
    """(FLOPs, seconds) of one call of ``module.run_point``."""
    from torch.utils.flop_counter import FlopCounterMode

    with _isolated():
        counter = FlopCounterMode(display=False)
        _sync(device)
        start = time.perf_counter()
        with counter:
            module.run_point(dict(point), cfg, device)
        _sync(device)
        return float(counter.get_total_flops()), time.perf_counter() - start


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def measure(module, point: dict, cfg, device: str, model: dict, warm_up: bool = True) -> PointCost:
    """Fit the cost model of one point (see the module docstring). ``warm_up``: run the base configuration
    once, unmeasured, first (lazy initialisation, caches, allocations)."""
    check_model(model, cfg)
    t_start = time.perf_counter()
    full = {f: get_field(cfg, f) for f in model["reduced"]}
    base = {f: min(v, full[f]) for f, v in model["reduced"].items()}
    terms = [tuple(t) for t in model["terms"]]
    run_point = lambda values: run_counted(module, point, with_fields(cfg, values), device)  # noqa: E731
    if warm_up:
        run_point(base)
    runs = [(dict(base), *run_point(base))]
    base_s = runs[0][2]
    for term in terms:
        factor = 2
        while True:       # enlarge the term until its extra time is measurable, within a time budget
            values = {**base, **{f: min(full[f], base[f] * factor) for f in term}}
            flops, seconds = run_point(values)
            at_full = all(values[f] == full[f] for f in term)
            if seconds - base_s >= MIN_EXTRA_S or at_full or seconds > max(2 * base_s, 5.0) or factor >= 4 ** 6:
                break
            factor *= 4
        runs.append((values, flops, seconds))
    matrix = np.array([[1.0] + [math.prod(v[f] for f in t) for t in terms] for v, _, _ in runs])
    flops = np.linalg.lstsq(matrix, np.array([r[1] for r in runs]), rcond=None)[0]
    secs = np.linalg.lstsq(matrix, np.array([r[2] for r in runs]), rcond=None)[0]
    flops, secs = np.maximum(flops, 0.0), np.maximum(secs, 0.0)
    out = []
    for k, term in enumerate(terms, 1):
        out.append(Term(term, float(math.prod(full[f] for f in term)), float(flops[k]), float(secs[k])))
    total_f = float(flops[0] + sum(t.units * t.flops for t in out))
    total_s = float(secs[0] + sum(t.units * t.seconds for t in out))
    return PointCost(total_f, total_s, f"model ({len(runs) + warm_up} runs)", out, float(flops[0]), float(secs[0]),
                     time.perf_counter() - t_start)


def point_cost(module, point: dict, cfg, device: str, preset: str = "", warm_up: bool = True) -> PointCost:
    """The cost of one point by the module's hook, its cost model, or a full run (module docstring)."""
    hook = getattr(module, "cost", None)
    if callable(hook):
        return hook(point, cfg, device)
    model = cost_model(module)
    if model is not None:
        return measure(module, point, cfg, device, model, warm_up)
    points = max(1, len(module.grid(cfg)))
    declared = getattr(module, "ESTIMATED_RUNTIME", {}).get(preset)
    if declared is not None and declared / points > FULL_RUN_LIMIT_S:
        return PointCost(math.nan, declared / points, "declared estimate")
    start = time.perf_counter()
    flops, seconds = run_counted(module, point, cfg, device)
    return PointCost(flops, seconds, "full run", costing_s=time.perf_counter() - start)


def without_terms(c: PointCost, fields: set) -> PointCost:
    """The cost less the terms over ``fields`` (tuples of field names)."""
    gone = [t for t in c.terms if t.fields in fields]
    return dataclasses.replace(c, terms=[t for t in c.terms if t.fields not in fields],
                               flops=c.flops - sum(t.units * t.flops for t in gone),
                               seconds=c.seconds - sum(t.units * t.seconds for t in gone),
                               how=c.how + ", shared work left out")


def cost_key(point: dict) -> str:
    from .runner import point_key

    return point_key({k: v for k, v in point.items() if k != "seed"})


# -------------------------------------------------------------------------------------------- projection
def makespan(seconds: list[float], workers: int, first_alone: bool = False) -> float:
    """Wall time of independent points on ``workers`` (longest first onto the least loaded worker)."""
    if not seconds:
        return 0.0
    head = 0.0
    if first_alone:
        head, seconds = seconds[0], seconds[1:]
    loads = [0.0] * max(1, workers)
    for s in sorted(seconds, reverse=True):
        i = loads.index(min(loads))
        loads[i] += s
    return head + max(loads)


@dataclasses.dataclass
class ModuleCost:
    name: str
    preset: str
    device: str
    points: list             # (point key, PointCost)
    workers: int
    wall_s: float
    first_alone: bool

    @property
    def flops(self) -> float:
        return float(sum(c.flops for _, c in self.points))

    @property
    def seconds(self) -> float:
        return float(sum(c.seconds for _, c in self.points))


def module_cost(module, preset: str, device: str, workers: int = 1, say=None) -> ModuleCost:
    """Every point's cost (one measurement per point up to its seed) and the projected wall time."""
    from .executor import resolve_device
    from .runner import point_key

    device = resolve_device(device)
    cfg = module.PRESETS[preset]
    points = list(module.grid(cfg))
    memo: dict = {}
    out = []
    shared = {tuple(t) for t in (cost_model(module) or {}).get("first_point_only", [])}
    for i, p in enumerate(points):
        key = cost_key(p)
        if key not in memo:
            if say is not None:
                say(f"[dry-run] {module.NAME}: costing point {i + 1}/{len(points)} {point_key(p)}")
            memo[key] = point_cost(module, p, cfg, device, preset, warm_up=not memo)
        c = memo[key]
        if i > 0 and shared:          # work the first point does for all (a shared model): not paid again
            c = without_terms(c, shared)
        out.append((point_key(p), c))
    first = bool(getattr(module, "SHARED_FIRST_POINT", False))
    wall = makespan([c.seconds for _, c in out], workers, first)
    return ModuleCost(module.NAME, preset, device, out, workers, wall, first)


def fmt_flops(f: float) -> str:
    return "?" if not math.isfinite(f) else f"{f:.3g}"


def describe(mc: ModuleCost, per_point: bool = True) -> str:
    """The dry-run's text for one module."""
    from .executor import device_name

    lines = [f"{mc.name} --preset {mc.preset}: {len(mc.points)} points, measured on {device_name(mc.device)} "
             f"with {torch.get_num_threads()} torch thread(s)"]
    if per_point:
        width = max(len(k) for k, _ in mc.points) if mc.points else 5
        lines.append(f"  {'point':<{width}}  {'FLOPs':>9}  {'seconds':>10}  how; per unit of each term")
        for key, c in mc.points:
            terms = "; ".join(f"{'x'.join(f.split('.')[-1] for f in t.fields)}={t.units:.3g}: "
                              f"{t.flops:.3g} FLOP, {t.seconds:.3g} s" for t in c.terms)
            lines.append(f"  {key:<{width}}  {fmt_flops(c.flops):>9}  {c.seconds:>10.4g}  {c.how}"
                         + (f"; {terms}" if terms else ""))
    lines.append(f"  total {fmt_flops(mc.flops)} FLOP, {fmt_seconds(mc.seconds)} of computing; projected wall time "
                 f"on {mc.workers} worker(s): {fmt_seconds(mc.wall_s)}"
                 + (" (the first point alone first: the others reuse its work)" if mc.first_alone else ""))
    return "\n".join(lines)


def dry_run(modules, preset: str, *, device: str | None = "auto", workers: int | None = None,
            scheduler: str | None = None, out=None) -> list[ModuleCost]:
    """Print the grid, each point's cost and the projected wall time of each module (and all together)."""
    out = sys.stdout if out is None else out
    n = workers or (_cluster_workers(scheduler) if scheduler else 1)
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    print(f"[dry-run] reference: a 1024 x 1024 float32 matmul takes {reference_matmul_s() * 1e3:.1f} ms on one thread "
          f"here (load average {os.getloadavg()[0]:.1f}); seconds below scale with it", file=out, flush=True)
    costs = []
    for module in modules:
        mc = module_cost(module, preset, device or "auto", n, say)
        print(describe(mc), file=out, flush=True)
        costs.append(mc)
    if len(costs) > 1:
        total = sum(c.wall_s for c in costs)
        print(f"all {len(costs)} modules (one after another, points in parallel): {fmt_flops(sum(c.flops for c in costs))} "
              f"FLOP, projected wall time on {n} worker(s): {fmt_seconds(total)}", file=out, flush=True)
    return costs


def reference_matmul_s(reps: int = 10) -> float:
    """Seconds per 1024 x 1024 float32 matmul on one thread: a fixed reference to rescale timings by."""
    a = torch.randn(1024, 1024, generator=torch.Generator().manual_seed(0))
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a @ a
        start = time.perf_counter()
        for _ in range(reps):
            a @ a
        return (time.perf_counter() - start) / reps
    finally:
        torch.set_num_threads(old)


def _cluster_workers(address: str) -> int:
    from distributed import Client

    from .executor import cluster_workers

    with Client(address, timeout="30s") as client:
        return cluster_workers(client)
