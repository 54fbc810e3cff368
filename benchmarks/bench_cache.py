"""The persistent compilation cache: the second run of ``bayes-qse run online_regret``
(CI-sized default config, a fresh ``--out`` each time, the same cache directory) against the
first (an empty cache), measured in the same run.

Each run is a fresh process (``python -m`` style call of :func:`bayes_qse.cli.main`), so
nothing is shared between them but the cache directory (``BAYES_QSE_CACHE_DIR``, a new
temporary one).  Target (issue 14): the second run at least 3x faster.

    python benchmarks/bench_cache.py            # updates docs/benchmarks.md
    python benchmarks/bench_cache.py --no-write
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

SECTION = "## Compilation cache: a warm start (`bench_cache.py`)"
CLI = "import sys; from bayes_qse.cli import main; sys.exit(main())"


def one_run(cache: str, out: Path, experiment: str) -> float:
    env = {**os.environ, "BAYES_QSE_CACHE_DIR": cache}
    env.pop("BAYES_QSE_CACHE", None)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", CLI, "run", experiment, "--out", str(out), "--no-progress"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="online_regret")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    command = "python benchmarks/bench_cache.py" + (" " + " ".join(argv) if argv else "")
    with tempfile.TemporaryDirectory(prefix="bq_cache_bench_") as tmp:
        cache = str(Path(tmp) / "jax")
        cold = one_run(cache, Path(tmp) / "out1", args.experiment)
        load = os.getloadavg()[0]
        warm = one_run(cache, Path(tmp) / "out2", args.experiment)
        n_files = sum(1 for p in Path(cache).rglob("*") if p.is_file())
    ratio = cold / warm
    status = "met" if ratio >= 3 else "**not met**"
    text = "\n".join(
        [
            SECTION,
            "",
            f"`bayes-qse run {args.experiment}` with its CI-sized default config, twice, each in a "
            "fresh process with a fresh `--out`, sharing one new cache directory "
            f"(`BAYES_QSE_CACHE_DIR`; {n_files} cache files after the runs). Machine: "
            f"{platform.machine()}, {os.cpu_count()} CPU cores, shared (1-min load average "
            f"{load:.1f} between the runs: read the ratio, not the absolute times).",
            "",
            "| run | wall (s) | vs first |",
            "|---|---:|---:|",
            f"| first (empty cache: compiles) | {cold:.1f} | 1.0x |",
            f"| second (warm cache) | {warm:.1f} | {ratio:.1f}x faster |",
            "",
            f"Target (issue 14): the second run >= 3x faster: {status}.",
            "",
            f"Command: `{command}`",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _report import write_section

        write_section(SECTION, text)


if __name__ == "__main__":
    main(sys.argv[1:])
