"""Command line: ``python -m verify {list | all | report | memorization | NAME} [options]``.

    python -m verify list                                  modules, their presets and estimated times
    python -m verify NAME [--preset P] [--set K=V ...] [--config FILE] [--out DIR] [--device D] [--fresh]
    python -m verify NAME --help                           the module, and every setting with each preset's value
    python -m verify all [--preset P] [--out DIR] ...      every module (finished points are skipped), then REPORT
    python -m verify report [--preset P] [--out DIR]       REPORT.md / REPORT.csv from the saved tables
    python -m verify memorization --train T --generated G  the plug-in memorization check (--help for its options)

``all`` runs every module and then writes the report; ``report`` only rewrites it from the saved tables:
figures/REPORT.md and REPORT.csv over every committed preset (cpu, paper) whose tables exist, or, with
``--out``, a report of that folder. Mistakes (an unknown module or setting, a bad value, a device this
machine cannot use, a folder that cannot be written, a missing data file, ``--plot-only`` without a table)
are one line on stderr and exit status 2, found before anything is computed; a grid point that fails exits
with 1 (its row carries the error); ``--debug`` shows tracebacks. ``list`` and ``--help`` import no torch.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import COMMANDS, catalog
from .config import MissingInputError, SetupError
from .preflight import OneLineParser

PRESETS = ("smoke", "cpu", "paper")
EXIT_FAILED, EXIT_SETUP = 1, 2


def _epilog() -> str:
    names = list(catalog())
    return ("modules: " + ", ".join(names) + "\n\n"
            "examples:\n"
            "  python -m verify list\n"
            "  python -m verify lipschitz_vs_t --preset smoke\n"
            "  python -m verify lipschitz_vs_t --help               # its settings, with each preset's value\n"
            "  python -m verify lipschitz_vs_t --set n=200 --set seeds=0,1   # own settings: own folder\n"
            "  python -m verify cifar_pruning --config my.toml --device cuda\n"
            "  python -m verify all --preset cpu                    # compute missing points, redraw, REPORT\n"
            "  python -m verify memorization --train train.npy --generated samples/ --heldout test.npy\n\n"
            "exit status: 0 done; 1 a grid point failed (its row has an 'error' column); 2 a mistake in the "
            "command, found before anything ran.")


def _parser(description: str | None = None, epilog: str | None = None, add_help: bool = True):
    p = OneLineParser(prog="python -m verify", description=description or "Run memsep's checks of the paper's claims.",
                epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=add_help)
    p.add_argument("target", nargs=None if add_help else "?",
                   help="'list', 'all' (every module, then REPORT.md), 'report' (REPORT.md from the saved tables), "
                        "'memorization' (the plug-in check of your own samples), or a module name")
    p.add_argument("--preset", default=None, choices=PRESETS,
                   help="smoke: seconds (tests); cpu (the default for running): minutes on 2 cores; paper: the "
                        "paper's scale (GPU). 'report' without --preset covers every committed preset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one setting of the preset (repeatable; nested ones as model.width=64; "
                        "tuples as 1,2,3); NAME --help lists them. The run goes to its own folder "
                        "data/runs/NAME-PRESET-<hash>/ unless --out is given")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="settings from a JSON or TOML file (same keys as --set, nested or dotted; a saved "
                        "NAME.config.json works); --set is applied after it")
    p.add_argument("--out", default=None,
                   help="folder for the table, its configuration and the figure (default: data/results/PRESET/ "
                        "and figures/PRESET/ of the repository; a fresh temporary folder for smoke)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--fresh", action="store_true",
                   help="recompute every point, ignoring finished rows (cpu preset of every module: about 75-90 min "
                        "on 2 cores)")
    p.add_argument("--plot-only", action="store_true", help="redraw the figure from the saved table")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
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
    from .preflight import fmt_seconds

    rows = []
    for name, info in catalog().items():
        est = info.estimated_runtime
        times = ", ".join(f"{p} ~{fmt_seconds(est[p])}" if p in est else p for p in info.presets)
        rows.append((name, times, info.claim))
    width = max((len(r[0]) for r in rows), default=4)
    for name, times, claim in rows:
        print(f"{name:<{width}}  {claim}\n{'':<{width}}  presets: {times}")
    print(f"{'memorization':<{width}}  the plug-in check: memorization of your own samples against your "
          f"training set (python -m verify memorization --help)")


def _say(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def _module_help(name: str) -> tuple[str, str]:
    """The module's docstring and settings table, from its light view (no torch import: verify._view), or
    from the module itself where the view cannot build the presets."""
    from types import SimpleNamespace

    from . import _view, catalog, get
    from .config import describe

    info = catalog().get(name)
    try:
        view = _view.config_view(info.module)
        module = SimpleNamespace(PRESETS=_view.presets(info.module), __doc__=view.__doc__)
    except (_view.ViewError, AttributeError):
        module = get(name)
    doc = (module.__doc__ or "").strip()
    epilog = ("settings (--set KEY=VALUE, or --config FILE with the same keys; tuples as 1,2,3), with each "
              "preset's value:\n" + describe(module))
    return doc, epilog


def _target(argv: list[str]) -> str | None:
    pre = _parser(add_help=False)
    try:
        known, _ = pre.parse_known_args(argv)
    except SetupError:
        return None
    return known.target


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        return _main(argv)
    except SetupError as exc:
        if debug:
            raise
        _say(f"verify: error: {_one_line(exc)}")
        return EXIT_SETUP
    except KeyboardInterrupt:
        _say("verify: interrupted; finished points are kept (rerun the same command to resume)")
        return 130
    except Exception as exc:  # anything else: one line, the traceback with --debug
        if debug:
            raise
        _say(f"verify: error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)")
        return EXIT_FAILED


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _main(argv: list[str]) -> int:
    target = _target(argv)
    if target == "memorization":
        from .plugin_memorization import main as memorization_main

        rest = list(argv)
        rest.remove("memorization")
        return memorization_main(rest)
    description = epilog = None
    wants_help = any(a in ("-h", "--help") for a in argv)
    if target in (None, *COMMANDS) or target not in catalog():
        epilog = _epilog()
        if target is not None and target not in COMMANDS and not wants_help:
            from . import unknown_module_message

            raise SetupError(unknown_module_message(target))
    elif wants_help:
        description, epilog = _module_help(target)
    args = _parser(description, epilog).parse_args(argv)
    if args.target == "list":
        _list()
        return 0
    if args.target == "report":
        return _report(args)
    if args.dry_run:
        return _dry_run(args)
    from ._io import OutputError
    from .store import LockedError, TableError

    try:
        return _all(args) if args.target == "all" else _one(args)
    except (LockedError, OutputError, TableError) as exc:   # one line, no traceback
        _say(f"verify: error: {_one_line(getattr(exc, 'strerror', None) or exc)}")
        return EXIT_SETUP


def _dry_run(args) -> int:
    from . import get
    from .cost import dry_run

    names = list(catalog()) if args.target == "all" else [args.target]
    dry_run([get(n) for n in names], args.preset or "cpu", device=args.device, workers=args.workers,
            scheduler=args.scheduler)
    return 0


def _report(args) -> int:
    from .preflight import check_writable
    from .report import write_report
    from .runner import COMMITTED_PRESETS, FIGURES

    if args.set or args.config:
        raise SetupError("--set and --config apply to running one module, not to 'report'")
    if args.out is None and args.preset not in (None, *COMMITTED_PRESETS):
        raise SetupError(f"{args.preset} output lives in the temporary folder its run printed: give it with --out")
    check_writable(args.out or FIGURES, "report folder")
    print(write_report(args.preset, args.out))
    return 0


def _one(args) -> int:
    from . import preflight
    from .runner import SweepError, run_module

    preset = args.preset or "cpu"
    plan = preflight.prepare(args.target, preset, out=args.out, device=args.device, plot_only=args.plot_only,
                             file=args.config, sets=args.set)
    if preset == "paper" and not args.plot_only:
        warning = preflight.paper_warning([plan.module.NAME], plan.device, args.workers or 1)
        if warning:
            _say(warning)
    if plan.out is not None and args.out is None:
        from .runner import COMMITTED_PRESETS

        why = "a smoke run" if preset not in COMMITTED_PRESETS else "settings that differ from the preset"
        _say(f"[verify] {why}: writing to {plan.out}")
    from .executor import executor

    try:
        with executor(args.workers, args.scheduler) as ex:
            table = run_module(plan.module, plan.preset, out=plan.out, device=plan.device, fresh=args.fresh,
                               plot_only=args.plot_only, config=plan.config, overrides=plan.overrides,
                               reuse_stale=args.reuse_stale, executor=ex, warn_paper=False)
    except SweepError as exc:
        _say(f"[verify] {exc}")
        return EXIT_FAILED
    for key, finding in preflight.verdicts(plan.module, table).items():
        _say(f"[verify] claim {key}: {finding.verdict}; {finding.summary}")
    return 0


def _all(args) -> int:
    from . import preflight
    from .report import write_report
    from .runner import COMMITTED_PRESETS, SweepError, run_module

    if args.set or args.config:
        raise SetupError("--set and --config apply to one module (python -m verify NAME --set KEY=VALUE), "
                         "not to 'all'")
    preset = args.preset or "cpu"
    device = preflight.check_device(args.device)
    out = args.out
    if out is None and preset not in COMMITTED_PRESETS:
        out = preflight.fresh_temporary_folder()
        _say(f"[verify all] {preset} output goes to {out}")
    plans, skipped = [], []
    for name in catalog():
        try:
            plans.append(preflight.prepare(name, preset, out=out, device=device, plot_only=args.plot_only))
        except MissingInputError as exc:
            skipped.append(name)
            _say(f"[verify all] skipping {exc}")
    if preset == "paper" and not args.plot_only:
        warning = preflight.paper_warning([p.module.NAME for p in plans], device, args.workers or 1)
        if warning:
            _say(warning)
    from .executor import executor

    failed = []
    start = time.perf_counter()
    with executor(args.workers, args.scheduler) as ex:
        for i, plan in enumerate(plans, 1):
            _say(f"[verify all] module {i}/{len(plans)}: {plan.module.NAME} "
                 f"({preflight.fmt_seconds(time.perf_counter() - start)} elapsed)")
            try:
                run_module(plan.module, preset, out=plan.out, device=device, fresh=args.fresh,
                           plot_only=args.plot_only, config=plan.config, reuse_stale=args.reuse_stale, executor=ex,
                           warn_paper=False)
            except SweepError as exc:
                _say(f"[verify] {exc}")
                failed.append(plan.module.NAME)
    report = write_report(preset, out)
    done = len(plans) - len(failed)
    _say(f"[verify all] {done} of {len(plans) + len(skipped)} modules finished in "
         f"{preflight.fmt_seconds(time.perf_counter() - start)}"
         + (f"; failed: {', '.join(failed)}" if failed else "")
         + (f"; skipped (missing inputs): {', '.join(skipped)}" if skipped else "") + f"; report: {report}")
    return EXIT_FAILED if failed else 0


if __name__ == "__main__":
    sys.exit(main())
