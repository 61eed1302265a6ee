"""Throughput of the streamed empirical score, next to this machine's matmul rate and a dense baseline.

    python benchmarks/empirical_score_throughput.py [--n 100000 --d 64 --batch 10000 --t 0.1 --csv PATH]

The empirical score at B query points costs about 4 d flops per (query, training point) pair: 2 d for the
logits <x, x_i> and 2 d for the weighted sum of the x_i, plus one exp. So the matmul-limited pair rate is
(matmul GFLOP/s) / (4 d). The script measures, on the machine it runs on and in the same run,

* EmpiricalLaw(data).score(x, t) in float64 and float32 (pairs per second; each score's error relative
  to the float64 one at the default tile is reported too), at theory.laws.empirical.DEFAULT_TILE and at the
  tile sizes given by --tile-sizes (default 2^20: a float64 tile of 2^22 pairs is 32 MiB, the largest
  block glibc's malloc recycles from its heap; larger blocks are mmap'd and page-faulted afresh on every
  allocation, which on the CPU costs about a factor 2);
* the float64 and float32 matmul rates, for a square product and for the kernel's own shape
  (a (rows, d) x (d, cols) product with cols = tile_size / rows), converted into pair rates;
* a plain dense implementation (all B x n logits at once, softmax, weighted sum), on a subset of the
  queries when the full matrix would exceed --dense-max-gb (stated in the table);
* peak extra resident memory of each variant: the peak RSS is reset through /proc/self/clear_refs
  (Linux) before each run and read back from VmHWM; where that is unavailable, the column is empty and
  the analytic size of the streamed kernel's live tiles is printed instead. RSS counts pages, so memory
  freed earlier and reused by the allocator is not counted again: the column is a lower bound.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from theory.laws.empirical import DEFAULT_TILE, MAX_QUERY_CHUNK, EmpiricalLaw  # noqa: E402
from theory.laws import forward  # noqa: E402


# ---------------------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn, repeats: int, warmup=None):
    """Run ``warmup`` (default: ``fn``) once, then ``fn`` ``repeats`` times; returns (best seconds, result,
    extra peak MB). The extra peak is VmHWM during the timed runs minus the RSS before them (None if not
    measurable)."""
    result = (warmup or fn)()
    can_reset = _reset_peak()
    rss0 = _status_kb("VmRSS")
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    peak = _status_kb("VmHWM")
    extra = max(0.0, (peak - rss0) / 1024) if (can_reset and peak is not None and rss0 is not None) else None
    return best, result, extra


# ---------------------------------------------------------------------------------------- kernels
def dense_score(data: torch.Tensor, x: torch.Tensor, t: float) -> torch.Tensor:
    """The plain implementation: all (B, n) logits -|x - a x_i|^2/(2 s2) = (a <x, x_i> - a^2|x_i|^2/2)/s2
    + const(x) at once (data centred first, as the streamed kernel does), softmax, weighted sum."""
    a, s2 = math.exp(-t / 2), -math.expm1(-t)
    centre = data.mean(0)
    c = data - centre
    xq = x - a * centre
    logits = (xq @ c.T) * (a / s2) - (a * a / (2 * s2)) * c.pow(2).sum(1)
    w = torch.softmax(logits, dim=1)
    return (a * (w @ c) - xq) / s2


def matmul_gflops(rows: int, inner: int, cols: int, dtype, repeats: int) -> float:
    g = torch.Generator().manual_seed(0)
    A = torch.randn(rows, inner, generator=g, dtype=dtype)
    B = torch.randn(inner, cols, generator=g, dtype=dtype)
    seconds, _, _ = measure(lambda: A @ B, repeats)
    return 2.0 * rows * inner * cols / seconds / 1e9


# ---------------------------------------------------------------------------------------- main
def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="training points")
    p.add_argument("--d", type=int, default=64, help="dimension")
    p.add_argument("--batch", type=int, default=10_000, help="query points B")
    p.add_argument("--t", type=float, default=1.0,
                   help="diffusion time (throughput does not depend on it; at t = 1 the posterior is spread, so the float32 error is informative)")
    p.add_argument("--repeats", type=int, default=1,
                   help="timed runs after a warm-up on a few queries (the best is kept)")
    p.add_argument("--dense-max-gb", type=float, default=1.0,
                   help="largest (B, n) logits matrix the dense baseline may build; beyond it a query subset")
    p.add_argument("--tile-sizes", type=int, nargs="*", default=[2 ** 20],
                   help="tile sizes to time besides theory.laws.empirical.DEFAULT_TILE")
    p.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = p.parse_args(argv)

    n, d, B, t = args.n, args.d, args.batch, args.t
    print(f"# empirical score throughput: n={n}, d={d}, B={B}, t={t}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f} "
          f"at start", flush=True)
    g = torch.Generator().manual_seed(0)
    data64 = torch.randn(n, d, generator=g, dtype=torch.float64) + 3.0
    law64 = EmpiricalLaw(data64)
    x64 = law64.sample(B, t, g)
    x32 = x64.float()
    pairs = float(n) * B
    rows_out: list[dict] = []

    def add(variant, dtype, seconds, n_pairs, extra_mb, note="", rel_err=None):
        rows_out.append({"variant": variant, "dtype": str(dtype).replace("torch.", ""), "n": n, "d": d,
                         "B": B, "pairs": int(n_pairs), "seconds": seconds,
                         "pairs_per_s": n_pairs / seconds if seconds else float("nan"),
                         "gflops_equiv": 4 * d * n_pairs / seconds / 1e9 if seconds else float("nan"),
                         "peak_extra_mb": extra_mb, "rel_err_vs_f64": rel_err, "note": note,
                         "loadavg_1min": os.getloadavg()[0]})
        print(f"  {variant:<40} {rows_out[-1]['dtype']:<8} {rows_out[-1]['pairs_per_s']:.3e} pairs/s", flush=True)

    # 1) the streamed kernel, at its default tile size and at the others asked for
    score64 = None
    for tile in [DEFAULT_TILE] + [s for s in args.tile_sizes if s != DEFAULT_TILE]:
        label = "streamed EmpiricalLaw.score" + ("" if tile == DEFAULT_TILE else f" tile=2^{math.log2(tile):g}")
        note = f"tile_size={tile}" + (" (default)" if tile == DEFAULT_TILE else "")
        for dtype in (torch.float64, torch.float32):
            law = EmpiricalLaw(data64.to(dtype), tile_size=tile, dtype=dtype)
            x = x64.to(dtype)
            sec, score, mem = measure(lambda: law.score(x, t), args.repeats, lambda: law.score(x[:256], t))
            if score64 is None:
                score64 = score
            err = float(((score.double() - score64).norm(dim=1) / score64.norm(dim=1)).max())
            add(label, dtype, sec, pairs, mem, note, err)
            del law, score

    # 2) this machine's matmul rate, as a pair rate (4 d flops per pair)
    q_rows = min(B, MAX_QUERY_CHUNK, DEFAULT_TILE)
    k_cols = max(1, DEFAULT_TILE // q_rows)
    for dtype in (torch.float64, torch.float32):
        for label, shape in [("matmul square 2048^3", (2048, 2048, 2048)),
                             (f"matmul kernel shape ({q_rows}x{d})@({d}x{k_cols})", (q_rows, d, k_cols))]:
            gf = matmul_gflops(*shape, dtype, max(args.repeats, 3))
            rate = gf * 1e9 / (4 * d)
            rows_out.append({"variant": label, "dtype": str(dtype).replace("torch.", ""), "n": n, "d": d, "B": B,
                             "pairs": None, "seconds": None, "pairs_per_s": rate, "gflops_equiv": gf,
                             "peak_extra_mb": None, "rel_err_vs_f64": None,
                             "note": "matmul-limited pair rate = GFLOP/s / (4 d)",
                             "loadavg_1min": os.getloadavg()[0]})
            print(f"  {label:<28} {str(dtype).replace('torch.', ''):<8} {gf:.1f} GFLOP/s -> {rate:.3e} pairs/s",
                  flush=True)

    # 3) the dense baseline (whole (B_sub, n) logits matrix at once)
    for dtype, data, x, ref in [(torch.float64, data64, x64, score64), (torch.float32, data64.float(), x32, score64)]:
        itemsize = torch.finfo(dtype).bits // 8
        b_sub = max(1, min(B, int(args.dense_max_gb * 2 ** 30 / (n * itemsize))))
        note = "all B queries" if b_sub == B else f"on {b_sub} of the {B} queries (logits capped at {args.dense_max_gb} GB)"
        sec, out, mem = measure(lambda: dense_score(data, x[:b_sub], t), args.repeats,
                                lambda: dense_score(data, x[:16], t))
        err = float(((out.double() - ref[:b_sub]).norm(dim=1) / ref[:b_sub].norm(dim=1)).max())
        add("dense (B x n logits)", dtype, sec, float(n) * b_sub, mem, note, err)

    tile_mb = DEFAULT_TILE * 8 / 2 ** 20
    print(f"# streamed kernel, analytic: tiles of {DEFAULT_TILE} pairs ({tile_mb:.0f} MB of float64 logits each; "
          f"3 to 4 live at once: the matmul output, the logits, logits - max, their exp), so ~{4 * tile_mb:.0f} MB "
          f"beyond the O((B + n) d) "
          f"inputs/outputs ({(B + n) * d * 8 / 2 ** 20:.0f} MB in float64)")
    print(f"{'variant':<48} {'dtype':<8} {'pairs/s':>10} {'GFLOP/s eq':>10} {'seconds':>8} {'peak+MB':>8} "
          f"{'relerr':>8}  note")
    for r in rows_out:
        sec = f"{r['seconds']:.2f}" if r["seconds"] else "-"
        mem = f"{r['peak_extra_mb']:.0f}" if r["peak_extra_mb"] is not None else "-"
        err = f"{r['rel_err_vs_f64']:.1e}" if r["rel_err_vs_f64"] is not None else "-"
        print(f"{r['variant']:<48} {r['dtype']:<8} {r['pairs_per_s']:>10.3e} {r['gflops_equiv']:>10.1f} {sec:>8} "
              f"{mem:>8} {err:>8}  {r['note']}")
    if args.csv:
        path = Path(args.csv)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows_out[0]))
            writer.writeheader()
            writer.writerows(rows_out)
        print(f"# wrote {path}")
    return rows_out


if __name__ == "__main__":
    main()
