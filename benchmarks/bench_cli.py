"""The front door: CPU time of ``bayes-qse --help`` (and each subcommand's ``--help``) against
an empty Python, in the same run; optionally (``--demo``) the demo's wall time with a cold and
a warm compile cache.

Each measurement is a fresh process; CPU time is the child's user + system time
(``resource.getrusage(RUSAGE_CHILDREN)`` deltas), the median of ``--repeat`` runs -- CPU, not
wall, because the machine is shared.  Target (issue 23): ``bayes-qse --help`` under 0.5 s CPU.

    python benchmarks/bench_cli.py                # updates docs/benchmarks.md
    python benchmarks/bench_cli.py --demo         # also times the demo (minutes)
    python benchmarks/bench_cli.py --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECTION = "## Command line: help without JAX, the demo (`bench_cli.py`)"
REPO = Path(__file__).resolve().parents[1]


def cpu_seconds(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """``(CPU, wall)`` seconds of one run of ``cmd`` (a fresh process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def median_cpu(cmd: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    runs = [cpu_seconds(cmd, env) for _ in range(repeat)]
    return statistics.median(c for c, _ in runs), statistics.median(w for _, w in runs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--demo", action="store_true", help="also time the demo, cold and warm")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = "python benchmarks/bench_cli.py" + (" " + " ".join(given) if given else "")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    rows = []
    empty, empty_wall = median_cpu([py, "-c", "pass"], env, args.repeat)
    rows.append(("`python -c pass` (empty Python)", empty, empty_wall))
    from bayes_qse.cli import COMMANDS

    for sub in (None, *COMMANDS):
        argv_ = ["--help"] if sub is None else [sub, "--help"]
        cpu, wall = median_cpu([py, "-m", "bayes_qse.cli", *argv_], env, args.repeat)
        rows.append((f"`bayes-qse {' '.join(argv_)}`", cpu, wall))
    help_cpu = rows[1][1]
    load = os.getloadavg()[0]
    lines = [
        SECTION,
        "",
        f"CPU time (user + system, median of {args.repeat} fresh processes) of each help "
        "against an empty Python, measured in the same run. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores, shared (1-min load average "
        f"{load:.1f}; wall times are inflated by the load, CPU times much less).",
        "",
        "| command | CPU (s) | vs empty Python | wall (s) |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {cpu:.3f} | {cpu / empty:.1f}x | {wall:.2f} |" for name, cpu, wall in rows),
        "",
        f"Target (issue 23): `bayes-qse --help` under 0.5 s CPU: "
        f"{'met' if help_cpu < 0.5 else '**not met**'} ({help_cpu:.3f} s).",
        "",
    ]
    if args.demo:
        with tempfile.TemporaryDirectory(prefix="bq_demo_bench_") as tmp:
            denv = {**env, "BAYES_QSE_CACHE_DIR": str(Path(tmp) / "jax")}
            denv.pop("BAYES_QSE_CACHE", None)
            demo = [py, "-m", "bayes_qse.cli", "demo", "--no-progress", "--out"]
            cold = cpu_seconds([*demo, str(Path(tmp) / "d1")], denv)[1]
            warm = cpu_seconds([*demo, str(Path(tmp) / "d2")], denv)[1]
        lines += [
            f"`bayes-qse demo`, wall time: {cold:.0f} s with an empty compile cache, "
            f"{warm:.0f} s with the cache it left (1-min load average "
            f"{os.getloadavg()[0]:.1f} after).",
            "",
        ]
    lines += [f"Command: `{command}`", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _report import write_section

        write_section(SECTION, text)


if __name__ == "__main__":
    main()
