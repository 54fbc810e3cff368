"""The large named games (issue 14) at full size: identifiability (Fisher rank at the true
``theta`` under varied leader policies, :func:`bayes_qse.inference.identified_directions` with
200 episodes) and the wall time and peak memory of the core on them: the QSE planner
(``solve_qse``), the MLE, the Laplace posterior and NUTS (100 warm-up + 100 draws), from 200
episodes of the uniform leader.  One subprocess per game (``--worker``), so that the peak RSS
is that game's alone.

    python benchmarks/bench_large_games.py            # updates docs/benchmarks.md
    python benchmarks/bench_large_games.py --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

SECTION = "## Large games: identifiability and the core at full size (`bench_large_games.py`)"

GAMES = [
    ("patrol-large", {}),
    ("patrol-large", {"n_sites": 100, "horizon": 10}),
    ("random-large", {}),
]


def worker(name: str, kwargs: dict, nuts: bool = True) -> dict:
    import resource

    import numpy as np

    import bayes_qse as bq
    from bayes_qse.data import simulate
    from bayes_qse.games import named_game
    from bayes_qse.inference import fit_mle, identified_directions, sample_posterior

    out: dict = {"game": name, "kwargs": kwargs}
    t0 = time.perf_counter()
    g = named_game(name, **kwargs)
    out.update(shape=list(g.shape), d=g.feature_dim, build_s=time.perf_counter() - t0)
    t0 = time.perf_counter()
    ident = identified_directions(g, n_episodes=200)
    out.update(rank=ident.rank, ident_s=time.perf_counter() - t0)
    t0 = time.perf_counter()
    bq.solve_qse(g)
    out["plan_s"] = time.perf_counter() - t0
    H, S, A, _ = g.shape
    data = simulate(g, np.full((H, S, A), 1 / A), 200, 1)
    t0 = time.perf_counter()
    fit = fit_mle(data, g)
    out["mle_s"] = time.perf_counter() - t0
    out["mle_err"] = float(np.linalg.norm(np.asarray(fit.theta) - np.asarray(g.theta)))
    t0 = time.perf_counter()
    sample_posterior(data, g, method="laplace", num_samples=200)
    out["laplace_s"] = time.perf_counter() - t0
    if nuts:
        t0 = time.perf_counter()
        sample_posterior(data, g, num_samples=100, num_warmup=100)
        out["nuts_s"] = time.perf_counter() - t0
    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--no-nuts", action="store_true", help="skip NUTS")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    if args.worker:
        name, kwargs = json.loads(args.worker)
        print(json.dumps(worker(name, kwargs, not args.no_nuts)))
        return
    command = "python benchmarks/bench_large_games.py" + (" " + " ".join(argv) if argv else "")
    rows = []
    for name, kwargs in GAMES:
        cmd = [sys.executable, __file__, "--worker", json.dumps([name, kwargs])]
        proc = subprocess.run(
            cmd + (["--no-nuts"] if args.no_nuts else []), capture_output=True, text=True
        )
        if proc.returncode:
            print(proc.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"{name} {kwargs}: failed")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    lines = [
        SECTION,
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared). Seconds, each "
        "including its compilation; MLE error: `||theta_hat - theta||` from 200 uniform-leader "
        "episodes.",
        "",
        "| game | (H, S, A, B) | d | Fisher rank | rank (s) | QSE plan (s) | MLE (s) | "
        "MLE error | Laplace (s) | NUTS (s) | peak RSS (MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        nuts = f"{r['nuts_s']:.1f}" if "nuts_s" in r else "-"
        label = r["game"] + (f" {r['kwargs']}" if r["kwargs"] else "")
        lines.append(
            f"| `{label}` | {tuple(r['shape'])} | {r['d']} | {r['rank']}/{r['d']} | "
            f"{r['ident_s']:.1f} | {r['plan_s']:.1f} | {r['mle_s']:.1f} | {r['mle_err']:.2f} | "
            f"{r['laplace_s']:.1f} | {nuts} | {r['maxrss_mb']:.0f} |"
        )
    lines += ["", f"Command: `{command}`", ""]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _report import write_section

        write_section(SECTION, text)


if __name__ == "__main__":
    main(sys.argv[1:])
