"""Command line: ``python -m verify {list | all | report | NAME} [--preset P] [--out DIR] [--device D] ...``.

``all`` runs every module (finished points are skipped) and then writes the report; ``report`` only
rewrites it from the saved tables: figures/REPORT.md and REPORT.csv over every committed preset (cpu, paper)
whose tables exist, or, with ``--out`` (or for smoke), a report of that folder.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import get, modules
from .report import write_report
from ._io import OutputError
from .executor import executor
from .runner import SweepError, run_module
from .store import LockedError, TableError

PRESETS = ("smoke", "cpu", "paper")


def _parser(description: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verify", description=description or "Run memsep's checks of the paper's claims.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="'list', 'all' (every module, then REPORT.md), 'report' (REPORT.md from "
                                  "the saved tables), or a module name (see 'list')")
    p.add_argument("--preset", default=None, choices=PRESETS,
                   help="smoke: seconds (tests); cpu (the default for running): minutes on 2 cores; paper: the "
                        "paper's scale (GPU). 'report' without --preset covers every committed preset")
    p.add_argument("--out", default=None,
                   help="folder for the table, its configuration and the figure (default: data/results/PRESET/ "
                        "and figures/PRESET/ of the repository; a fresh temporary folder for smoke)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--fresh", action="store_true", help="ignore finished points and recompute everything")
    p.add_argument("--plot-only", action="store_true", help="redraw the figure from the saved table")
    _add_execution_arguments(p)
    return p


def _add_execution_arguments(p: argparse.ArgumentParser) -> None:
    """Where points run, what may be reused, and the cost preview (verify.executor, verify.store, verify.cost)."""
    g = p.add_argument_group("execution")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="run points on a local Dask cluster of N worker processes (cores/N torch threads each; one "
                        "GPU each where there are GPUs); default: one after another in this process")
    g.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="run points on the existing Dask cluster at ADDR (tcp://host:port); see README")
    g.add_argument("--reuse-stale", action="store_true",
                   help="reuse rows and checkpoints made by other code (a changed theory/ or module) instead of "
                        "recomputing them; the run says which")
    g.add_argument("--dry-run", action="store_true",
                   help="print the grid, each point's cost (FLOPs and seconds measured on this device over a few "
                        "steps) and the projected wall time on the chosen workers; compute nothing")


def _list() -> None:
    rows = []
    for name, mod in modules().items():
        est = getattr(mod, "ESTIMATED_RUNTIME", {})
        times = ", ".join(f"{p} ~{_fmt(est[p])}" if p in est else p for p in mod.PRESETS)
        rows.append((name, times, getattr(mod, "CLAIM", "")))
    width = max((len(r[0]) for r in rows), default=4)
    for name, times, claim in rows:
        print(f"{name:<{width}}  {claim}\n{'':<{width}}  presets: {times}")


def _fmt(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    description = None
    if first not in (None, "list", "all", "report") and first in modules():
        description = get(first).__doc__
    args = _parser(description).parse_args(argv)
    if args.target == "list":
        _list()
        return 0
    if args.target == "report":
        print(write_report(args.preset, args.out))
        return 0
    args.preset = args.preset or "cpu"
    names = list(modules()) if args.target == "all" else [get(args.target).NAME]
    if args.dry_run:
        from .cost import dry_run

        dry_run([get(n) for n in names], args.preset, device=args.device, workers=args.workers,
                scheduler=args.scheduler)
        return 0
    failed = []
    start = time.perf_counter()
    try:
        with executor(args.workers, args.scheduler) as ex:
            for i, name in enumerate(names, 1):
                if len(names) > 1:
                    print(f"[verify all] module {i}/{len(names)}: {name} ({time.perf_counter() - start:.0f} s "
                          "elapsed)", file=sys.stderr)
                try:
                    run_module(get(name), args.preset, out=args.out, device=args.device, fresh=args.fresh,
                               plot_only=args.plot_only, reuse_stale=args.reuse_stale, executor=ex)
                except SweepError as exc:
                    print(f"[verify] {exc}", file=sys.stderr)
                    failed.append(name)
    except (LockedError, OutputError, TableError) as exc:   # one line, no traceback
        print(f"[verify] error: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 2
    if args.target == "all":
        print(f"[verify all] {len(names) - len(failed)} of {len(names)} modules finished in "
              f"{time.perf_counter() - start:.0f} s; report: {write_report(args.preset, args.out)}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
