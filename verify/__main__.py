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
from .runner import SweepError, run_module

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
    return p


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
    failed = []
    start = time.perf_counter()
    for i, name in enumerate(names, 1):
        if len(names) > 1:
            print(f"[verify all] module {i}/{len(names)}: {name} ({time.perf_counter() - start:.0f} s elapsed)",
                  file=sys.stderr)
        try:
            run_module(get(name), args.preset, out=args.out, device=args.device, fresh=args.fresh,
                       plot_only=args.plot_only)
        except SweepError as exc:
            print(f"[verify] {exc}", file=sys.stderr)
            failed.append(name)
    if args.target == "all":
        print(f"[verify all] {len(names) - len(failed)} of {len(names)} modules finished in "
              f"{time.perf_counter() - start:.0f} s; report: {write_report(args.preset, args.out)}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
