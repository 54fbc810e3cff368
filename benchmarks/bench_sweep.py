"""Speed-up of the sweep's process pool over one process (``bayes-qse sweep --workers N``).

A grid of four units (the ``linear`` game of ``online_regret``'s CI-sized config; learners
``greedy``, ``thompson``, ``bayes-optimistic``, ``mle-optimistic``; ``T`` episodes; 4 seeds
``vmap``-ped inside each unit) runs through the ``bayes-qse sweep`` command, as a user runs it,
each run a fresh process into a fresh output directory, all sharing one private persistent
compilation cache (``BAYES_QSE_CACHE_DIR`` in a temporary directory):

1. cold: ``--workers 1`` then ``--workers N`` with an empty cache (each fills the cache with
   the programs it compiles: the pool's workers pin XLA to one thread each, which XLA counts
   as other compile options, so both settings are warmed);
2. warm: ``--workers 1`` (the baseline: one process, units one after another) and
   ``--workers N`` (a pool of N processes, each pinned to one core), the cache warm.

The results of all runs must be equal bit for bit (checked).

    python benchmarks/bench_sweep.py            # updates docs/benchmarks.md
    python benchmarks/bench_sweep.py --quick    # a smoke test, no docs update

Target (issue 24): the pool >= 1.6x one process on 2 cores with a warm cache.
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


def run(spec: Path, out: Path, workers: int, cache: Path) -> float:
    """Wall seconds of one ``bayes-qse sweep`` process (compilation cache in ``cache``)."""
    env = {
        **os.environ,
        "BAYES_QSE_CACHE": "1",
        "BAYES_QSE_CACHE_DIR": str(cache),
        "JAX_PLATFORMS": "cpu",
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "bayes_qse.cli", "sweep", str(spec), "--out", str(out)]
    start = time.perf_counter()
    subprocess.run([*cmd, "--workers", str(workers), "--no-progress"], env=env, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny grid, no docs update")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--T", type=int, default=200, help="episodes per unit (200)")
    args = parser.parse_args()
    T, chunk = (10, 5) if args.quick else (args.T, 50)
    learners = ["uniform", "oracle"] if args.quick else LEARNERS
    import xarray as xr

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec, cache = tmp / "bench.toml", tmp / "cache"
        spec.write_text(spec_text(T, chunk, learners))
        load_before = os.getloadavg()[0]
        cold_one = run(spec, tmp / "cold-one", 1, cache)
        cold_pool = run(spec, tmp / "cold-pool", args.workers, cache)
        one = run(spec, tmp / "one", 1, cache)
        pool = run(spec, tmp / "pool", args.workers, cache)
        ref = xr.open_dataset(tmp / "one" / "results.nc", engine="h5netcdf").load()
        same = True
        for name in ("cold-one", "cold-pool", "pool"):
            with xr.open_dataset(tmp / name / "results.nc", engine="h5netcdf") as b:
                same &= all(np.array_equal(ref[v].values, b[v].values, equal_nan=True) for v in ref)
    load = os.getloadavg()[0]
    rows = [
        "| cache | executor | processes | wall (s) | speed-up | results |",
        "|---|---|---:|---:|---:|---|",
        f"| cold | local, one process | 1 | {cold_one:.1f} | - | same as warm |",
        f"| cold | local, process pool | {args.workers} | {cold_pool:.1f} | - | same as warm |",
        f"| warm | local, one process (baseline) | 1 | {one:.1f} | 1.0x | - |",
        f"| warm | local, process pool | {args.workers} | {pool:.1f} | {one / pool:.2f}x | "
        f"{'identical' if same else 'DIFFER'} |",
    ]
    text = "\n".join(
        [
            SECTION,
            "",
            f"Grid: `linear` game (online_regret CI config), learners {', '.join(learners)}; "
            f"T={T}, chunk {chunk}, 4 seeds vmapped per unit: {len(learners)} units.  "
            f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other "
            f"jobs while measured: load average {load_before:.1f} before, {load:.1f} at the "
            f"end), bayes_qse {bayes_qse.__version__}.  Each row is one fresh `bayes-qse "
            "sweep` process (import, compilation or cache reads, running, gathering) into a "
            "fresh directory, in the order of the table, all sharing one compilation cache "
            "that starts empty; the pool's workers are pinned to one core and one XLA thread "
            "each.",
            "",
            *rows,
            "",
            f"Command: `python benchmarks/bench_sweep.py{'' if T == 200 else f' --T {T}'}`",
            "",
            "With the cache warm no process compiles: the pool's gain is what the cores give "
            "independent units, less each worker's start (importing JAX and bayes_qse).  The "
            "results of all four runs are compared bit for bit in the same run.",
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
