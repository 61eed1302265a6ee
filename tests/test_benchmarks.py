"""The kernel benchmark (benchmarks/kernels.py) runs, and its memsep and minimal versions agree: at quick
shapes for the two cheapest kernels (the equality checks are the script's own; a failed one exits 1)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_kernel_benchmark_quick_runs_and_its_checks_pass(tmp_path):
    csv = tmp_path / "kernels.csv"
    done = subprocess.run([sys.executable, "benchmarks/kernels.py", "--quick", "--repeats", "1", "--only",
                           "empirical_d8,neighbours_10k", "--csv", str(csv)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin",
                                                       "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    import pandas as pd

    table = pd.read_csv(csv)
    assert set(table["kernel"]) == {"empirical_d8", "neighbours_10k"}
    assert set(table["variant"]) == {"memsep", "minimal", "floor"}
    checked = table[table["variant"] != "floor"]                 # the floor is matmuls alone: nothing to check
    assert (checked["check"] == "ok").all() and (table["median_s"] > 0).all()
