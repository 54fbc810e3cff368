"""Speed-up of the sweep's process pool over one process (``bayes-qse sweep --workers N``).

A grid of four units (the ``linear`` game of ``online_regret``'s CI-sized config; learners
``greedy``, ``thompson``, ``bayes-optimistic``, ``mle-optimistic``; ``T`` episodes; 4 seeds
``vmap``-ped inside each unit) runs through the ``bayes-qse sweep`` command, as a user runs it:
once with ``--workers 1`` (the baseline: one process, units one after another) and once with
``--workers 2`` (a process pool of two), each in a fresh output directory and a fresh process
(import, compilation and all; the persistent compilation cache is turned off with
``BAYES_QSE_CACHE=0`` so that neither run profits from the other).  The two results must be
equal bit for bit (checked).

    python benchmarks/bench_sweep.py            # updates docs/benchmarks.md
    python benchmarks/bench_sweep.py --quick    # a smoke test, no docs update

Target (issue 15): report the speed-up of the process pool over one process on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _report import write_section

import bayes_qse

SECTION = "## Sweeps: process pool against one process (`bench_sweep.py`)"
ROOT = Path(__file__).resolve().parents[1]
LEARNERS = ["greedy", "thompson", "bayes-optimistic", "mle-optimistic"]


def spec_text(T: int, chunk: int, learners: list[str]) -> str:
    names = ", ".join(f'"{n}"' for n in learners)
    return (
        f'name = "bench"\nchunk = {chunk}\n[grid]\ngame = ["linear"]\nlearner = [{names}]\n'
        f"T = [{T}]\nseeds = {{start = 0, count = 4}}\n"
    )


def run(spec: Path, out: Path, workers: int) -> float:
    """Wall seconds of one ``bayes-qse sweep`` process."""
    env = {**os.environ, "BAYES_QSE_CACHE": "0", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "bayes_qse.cli", "sweep", str(spec), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run([*cmd, "--workers", str(workers), "--no-progress"], env=env, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny grid, no docs update")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    T, chunk = (10, 5) if args.quick else (200, 50)
    learners = ["uniform", "oracle"] if args.quick else LEARNERS
    import xarray as xr

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "bench.toml"
        spec.write_text(spec_text(T, chunk, learners))
        one = run(spec, Path(tmp) / "one", 1)
        pool = run(spec, Path(tmp) / "pool", args.workers)
        with (
            xr.open_dataset(Path(tmp) / "one" / "results.nc", engine="h5netcdf") as a,
            xr.open_dataset(Path(tmp) / "pool" / "results.nc", engine="h5netcdf") as b,
        ):
            same = all(np.array_equal(a[v].values, b[v].values, equal_nan=True) for v in a)
    load = os.getloadavg()[0]
    rows = [
        "| executor | processes | wall (s) | speed-up | results |",
        "|---|---:|---:|---:|---|",
        f"| local, one process (baseline) | 1 | {one:.1f} | 1.0x | - |",
        f"| local, process pool | {args.workers} | {pool:.1f} | {one / pool:.2f}x | "
        f"{'identical' if same else 'DIFFER'} |",
    ]
    text = "\n".join(
        [
            SECTION,
            "",
            f"Grid: `linear` game (online_regret CI config), learners {', '.join(learners)}; "
            f"T={T}, chunk {chunk}, 4 seeds vmapped per unit: {len(learners)} units.  "
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other "
            f"jobs while measured, load average {load:.1f} at the end), bayes_qse "
            f"{bayes_qse.__version__}.  Each row is one fresh `bayes-qse sweep` process "
            "(import, compilation, running, gathering), compilation cache off, same run.",
            "",
            *rows,
            "",
            "Command: `python benchmarks/bench_sweep.py`",
            "",
            "Compilation dominates a unit this size (each process compiles its own units), so "
            "the pool's gain is what two cores give two independent units; the results of "
            "the two executors are compared bit for bit in the same run.",
        ]
    )
    cores = os.cpu_count() or 1
    if load > cores:
        text += (
            f"\n\nThe machine was oversubscribed while measured (load average {load:.1f} on "
            f"{cores} cores): the pool could not get a core of its own, so this ratio says how "
            "the machine was shared, not what the pool gains on idle cores; rerun the command "
            "on an idle machine for that."
        )
    print(text)
    if not same:
        return 1
    if not args.quick:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
