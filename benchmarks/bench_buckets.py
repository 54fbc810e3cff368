"""Where new shapes recompile, and whether padding shapes to a few buckets would pay (issue 14).

Counts the XLA compilations (``jax.monitoring``'s backend-compile events, with their
durations) that each call of a size sweep triggers, with the persistent compilation cache off
(``BAYES_QSE_CACHE=0``, set before bayes_qse is imported), as a first run on a new machine
would see them:

* **game sizes**: ``patrol-large`` with ``n_sites`` = 10, 20, ..., 100 (``A = n_sites``,
  ``B = n_sites + 1``): per size, :func:`bayes_qse.solve_qse`, :func:`bayes_qse.data.simulate`
  (``--episodes`` episodes), :func:`bayes_qse.fit_mle` and the Laplace posterior, each called
  twice (the second call is the run time without compilation);
* **dataset sizes**: the same calls on one game (``n_sites = 10``) with ``N`` = 100 ... 3200
  episodes.

"Bucket saving" is the compilation time a padding of ``A`` (and ``B``) to the next power of two
would avoid: the sizes' compile time minus that of one size per bucket (the largest size of
each bucket, whose shape the bucket would compile), an upper bound (padded shapes also run
slower).

    python benchmarks/bench_buckets.py            # updates docs/benchmarks.md
    python benchmarks/bench_buckets.py --quick --no-write
"""

from __future__ import annotations

import os

os.environ["BAYES_QSE_CACHE"] = "0"  # measure real compilations (before bayes_qse starts)

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _report import publish  # noqa: E402

import bayes_qse  # noqa: E402
from bayes_qse.data import simulate  # noqa: E402
from bayes_qse.games import patrol_large_game  # noqa: E402
from bayes_qse.inference import fit_mle, sample_posterior  # noqa: E402

SECTION = "## Shape buckets: recompilations in a size sweep (`bench_buckets.py`)"

_COMPILES: list[float] = []


def _listen(event: str, duration: float, **_: object) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES.append(duration)


jax.monitoring.register_event_duration_secs_listener(_listen)


def measured(fn):
    """``(wall_s, n_compiles, compile_s, result)`` of one call."""
    n0, s0 = len(_COMPILES), sum(_COMPILES)
    t0 = time.perf_counter()
    out = fn()
    jax.block_until_ready(jax.tree_util.tree_leaves(out) if out is not None else 0)
    return time.perf_counter() - t0, len(_COMPILES) - n0, sum(_COMPILES) - s0, out


def one_size(game, n_episodes: int, seed: int = 0) -> dict:
    """The calls of one size, each twice; compile counts and times of the first calls."""
    H, S, A, _ = game.shape
    uniform = np.full((H, S, A), 1.0 / A)
    calls = {
        "solve_qse": lambda: bayes_qse.solve_qse(game).policy,
        "simulate": lambda: simulate(game, uniform, n_episodes, seed).states,
    }
    first = {}
    for name, fn in calls.items():
        first[name] = measured(fn)
    data = simulate(game, uniform, n_episodes, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first["fit_mle"] = measured(lambda: fit_mle(data, game).theta)
        first["laplace"] = measured(
            lambda: sample_posterior(data, game, method="laplace", num_samples=200).theta
        )
        again = {
            "fit_mle": measured(lambda: fit_mle(data, game).theta),
            "laplace": measured(
                lambda: sample_posterior(data, game, method="laplace", num_samples=200).theta
            ),
        }
    again["solve_qse"] = measured(calls["solve_qse"])
    again["simulate"] = measured(calls["simulate"])
    return {
        "wall": sum(v[0] for v in first.values()),
        "n": sum(v[1] for v in first.values()),
        "compile": sum(v[2] for v in first.values()),
        "run": sum(v[0] for v in again.values()),
        "n_again": sum(v[1] for v in again.values()),
        "by_call": {k: (v[1], round(v[2], 2)) for k, v in first.items()},
    }


def by_call(r: dict) -> str:
    return "; ".join(f"{k} {n}, {s:.1f}" for k, (n, s) in r["by_call"].items())


def bucket(n: int) -> int:
    return 1 << (int(n) - 1).bit_length()


def run(args) -> str:
    rows_games, rows_data = [], []
    for n in args.sites:
        r = one_size(patrol_large_game(n, horizon=args.horizon), args.episodes)
        rows_games.append((n, r))
        print(f"sites {n}: {r}")
    game = patrol_large_game(args.sites[0], horizon=args.horizon)
    for N in args.dataset_sizes:
        r = one_size(game, N, seed=N)
        rows_data.append((N, r))
        print(f"N {N}: {r}")
    total_compile = sum(r["compile"] for _, r in rows_games)
    by_bucket: dict[int, tuple[int, float]] = {}
    for n, r in rows_games:
        b = bucket(n)
        if b not in by_bucket or n > by_bucket[b][0]:
            by_bucket[b] = (n, r["compile"])
    bucket_compile = sum(c for _, c in by_bucket.values())
    total_run = sum(r["run"] for _, r in rows_games)
    lines = [
        SECTION,
        "",
        f"`patrol-large` games (H={args.horizon}, S=2, A=n_sites, B=n_sites+1, d=4); per size "
        f"`solve_qse`, `simulate` ({args.episodes} episodes, uniform leader), `fit_mle`, "
        "Laplace (200 draws); persistent compilation cache off. Compilations counted by "
        "`jax.monitoring` backend-compile events. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs while "
        f"measured), JAX {jax.__version__} CPU, bayes_qse {bayes_qse.__version__}.",
        "",
        "| n_sites | compilations (first calls) | compile (s) | first calls (s) | "
        "second calls (s) | compilations (second calls) | per call: compilations, s |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n, r in rows_games:
        lines.append(
            f"| {n} | {r['n']} | {r['compile']:.1f} | {r['wall']:.1f} | {r['run']:.2f} | "
            f"{r['n_again']} | {by_call(r)} |"
        )
    lines += [
        "",
        f"Dataset sizes (n_sites={args.sites[0]}): the same calls with N episodes.",
        "",
        "| N | compilations (first calls) | compile (s) | first calls (s) | second calls (s) | "
        "per call: compilations, s |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for N, r in rows_data:
        lines.append(
            f"| {N} | {r['n']} | {r['compile']:.1f} | {r['wall']:.1f} | {r['run']:.2f} | "
            f"{by_call(r)} |"
        )
    lines += [
        "",
        f"Sweep over {len(rows_games)} game sizes: {total_compile:.1f} s of compilation "
        f"against {total_run:.1f} s of running (second calls). Padding A and B to powers of "
        f"two ({len(by_bucket)} buckets: {sorted(by_bucket)}) would compile "
        f"{bucket_compile:.1f} s (the largest size of each bucket), an upper bound on the "
        f"saving of {total_compile - bucket_compile:.1f} s "
        f"({100 * (total_compile - bucket_compile) / max(total_compile, 1e-9):.0f}% of the "
        "compilation).",
        "",
        f"Command: `{args.command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, nargs="+", default=list(range(10, 101, 10)))
    parser.add_argument(
        "--dataset-sizes", type=int, nargs="+", default=[100, 200, 400, 800, 1600, 3200]
    )
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/bench_buckets.py" + (" " + " ".join(argv) if argv else "")
    if args.quick:
        args.sites, args.dataset_sizes, args.episodes = [10, 12], [50, 100], 50
    text = run(args)
    publish(SECTION, text, args)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
