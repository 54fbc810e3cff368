"""Scaling of the online learners (issue 14): time per episode against the game's size
(``S``, ``A``, ``B``, ``H``, ``d``) and against the number of seeds ``vmap``-ped, compile time
with a cold, a warm and no persistent compilation cache, and peak memory.

Every measurement runs in its own subprocess (``--worker``), so that its peak memory
(``resource.getrusage(...).ru_maxrss``) is that size's alone and its compile time starts from
an empty in-memory cache.  One measurement: a random myopic game
(:func:`bayes_qse.games.random_game`) of the given shape, the learner (``thompson``: a
Laplace draw of ``theta`` and a Dirichlet/Normal draw of the leader's model, then backward
induction; or its model-free variant ``thompson-linear``) playing ``--episodes`` episodes in
chunks (:class:`bayes_qse.learners.OnlineRunner`): "first chunk" includes compilation, "ms per
episode" is the steady state (the chunks after the first), per seed.  The baseline of each
sweep is its first (smallest) row, measured in the same run; ratios are against it.

    python benchmarks/bench_scaling.py           # updates docs/benchmarks.md + docs/results/
    python benchmarks/bench_scaling.py --quick   # a smoke test, no docs update

The same tables on another machine (a GPU): ``benchmarks/gpu_scaling.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECTION = "## Scaling: size, seeds, compile cache, memory (`bench_scaling.py`)"
HERE = Path(__file__).resolve().parent
FIGURE = HERE.parent / "docs" / "results" / "bench_scaling.png"

#: The smallest game of every sweep; each sweep varies one of its fields.
BASE = {"S": 10, "A": 3, "B": 3, "H": 5, "d": 8}
SWEEPS = {
    "S": [10, 30, 100],
    "A": [3, 10],
    "B": [3, 10],
    "H": [5, 20],
    "d": [8, 32],
}
SEEDS = [1, 4, 16]
FULL = {"S": 100, "A": 10, "B": 10, "H": 20, "d": 32}


def worker(spec: dict) -> dict:
    """One measurement (in a fresh process): see the module docstring."""
    import resource

    t_import = time.perf_counter()
    import jax

    import bayes_qse
    from bayes_qse.games import random_game
    from bayes_qse.learners import OnlineRunner

    import_s = time.perf_counter() - t_import
    S, A, B, H, d = (spec[k] for k in ("S", "A", "B", "H", "d"))
    game = random_game(0, S, A, B, H, d, eta=1.0, transition_concentration=0.1)
    n, T, chunk = spec["seeds"], spec["episodes"], spec["chunk"]
    seeds = list(range(n))
    config = {"capacity": T, "num_draws": 8, "newton_steps": 5}
    t0 = time.perf_counter()
    runner = OnlineRunner(game, spec["learner"], config, episodes=T, chunk=chunk, seed_block=n)
    states, rec = runner.run_chunk(runner.init_states(seeds), seeds, 0)
    jax.block_until_ready(rec)
    first = time.perf_counter() - t0
    t1 = time.perf_counter()
    for start in range(chunk, T, chunk):
        states, rec = runner.run_chunk(states, seeds, start)
    jax.block_until_ready(rec)
    steady = time.perf_counter() - t1
    later = T - chunk
    return {
        **spec,
        "import_s": import_s,
        "first_chunk_s": first,
        "ms_per_episode_per_seed": 1000 * steady / max(later * n, 1) if later else float("nan"),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": str(jax.devices()[0].platform),
        "x64": bool(bayes_qse.X64),
        "cache_dir": bayes_qse.CACHE_DIR,
        "n_traces": runner.n_traces,
    }


_MEMO: dict[str, dict] = {}


def measure(spec: dict, env: dict[str, str] | None = None, memo: bool = True) -> dict:
    """Run :func:`worker` in a subprocess; returns its result (``error`` on failure).  The
    same ``spec`` under the same ``env`` is measured once (the base game heads every sweep)."""
    key = json.dumps([spec, env], sort_keys=True)
    if memo and key in _MEMO:
        return _MEMO[key]
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        print(f"  failed: {spec}: {tail[0]}", flush=True)
        return {**spec, "error": tail[0], "process_s": wall}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = wall
    _MEMO[key] = out
    print(
        f"  {spec['learner']} S={spec['S']} A={spec['A']} B={spec['B']} H={spec['H']} "
        f"d={spec['d']} seeds={spec['seeds']}: first chunk {out['first_chunk_s']:.1f} s, "
        f"{out['ms_per_episode_per_seed']:.2f} ms/episode/seed, {out['maxrss_mb']:.0f} MB",
        flush=True,
    )
    return out


def _spec(args, learner="thompson", seeds=1, **shape) -> dict:
    return {
        **BASE,
        **shape,
        "learner": learner,
        "seeds": seeds,
        "episodes": args.episodes,
        "chunk": args.chunk,
    }


def collect(args: argparse.Namespace) -> dict:
    """All measurements: the size sweeps, the seed sweep, the full size (both leader models)
    and the cache comparison."""
    env = {"BAYES_QSE_CACHE": "0"}  # every row compiles from scratch: comparable columns
    res: dict = {"sweeps": {}, "seeds": [], "full": [], "cache": {}}
    for field, values in SWEEPS.items():
        if args.quick:
            values = values[:2]
        print(f"sweep {field}: {values}", flush=True)
        res["sweeps"][field] = [measure(_spec(args, **{field: v}), env) for v in values]
    print(f"seeds: {SEEDS}", flush=True)
    seeds = SEEDS[:2] if args.quick else SEEDS
    res["seeds"] = [measure(_spec(args, seeds=n), env) for n in seeds]
    if not args.quick:
        print(f"full size {FULL}", flush=True)
        for learner in ("thompson", "thompson-linear", "mle-optimistic-linear"):
            res["full"].append(measure(_spec(args, learner=learner, **FULL), env))
    print("compile cache", flush=True)
    fresh = {"BAYES_QSE_CACHE_DIR": tempfile.mkdtemp(prefix="bq_bench_cold_")}
    spec = _spec(args, learner="mle-optimistic")
    res["cache"]["off"] = measure(spec, {"BAYES_QSE_CACHE": "0"})
    res["cache"]["cold"] = measure(spec, fresh)
    res["cache"]["warm"] = measure(spec, fresh, memo=False)
    return res


def _row(r: dict, base: dict | None) -> str:
    if "error" in r:
        return (
            f"| {r['learner']} | {r['S']} | {r['A']} | {r['B']} | {r['H']} | {r['d']} | "
            f"{r['seeds']} | failed: {r['error'][:60]} | | | |"
        )
    ratio = ""
    if base and "error" not in base:
        ratio = f"{r['ms_per_episode_per_seed'] / base['ms_per_episode_per_seed']:.2f}x"
    return (
        f"| `{r['learner']}` | {r['S']} | {r['A']} | {r['B']} | {r['H']} | {r['d']} | "
        f"{r['seeds']} | {r['first_chunk_s']:.1f} | {r['ms_per_episode_per_seed']:.2f} | "
        f"{ratio} | {r['maxrss_mb']:.0f} |"
    )


def report(res: dict, args: argparse.Namespace, device: str) -> str:
    """The markdown section."""
    head = [
        "| learner | S | A | B | H | d | seeds | first chunk, compiles (s) | "
        "ms / episode / seed | vs sweep's first row | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = [
        SECTION,
        "",
        f"Random myopic games (`random_game`, Dirichlet(0.1) transitions), base "
        f"S={BASE['S']}, A={BASE['A']}, B={BASE['B']}, H={BASE['H']}, d={BASE['d']}; each "
        f"sweep varies one size. `thompson` (the leader learns her transitions and rewards: "
        f"Dirichlet/Normal draws) with M=8, {args.episodes} episodes in chunks of "
        f"{args.chunk} (first chunk compiles, persistent cache off; the rest is the steady "
        f"state). One subprocess per row: peak RSS is that row's alone. Device: {device}; "
        f"{platform.machine()}, "
        f"{os.cpu_count()} CPU cores (shared with other jobs while measured).",
        "",
    ]
    for field, rows in res["sweeps"].items():
        lines += [f"Against {field}:", "", *head]
        lines += [_row(r, rows[0]) for r in rows] + [""]
    lines += [
        "Against the number of seeds `vmap`-ped (one compiled block of that many lanes):",
        "",
        *head,
    ]
    lines += [_row(r, res["seeds"][0]) for r in res["seeds"]] + [""]
    if res["full"]:
        lines += ["Full size (the `random-large` preset's shape), model-based vs model-free:", ""]
        lines += [*head, *[_row(r, res["full"][0]) for r in res["full"]], ""]
    c = res["cache"]
    if all("error" not in c[k] for k in ("off", "cold", "warm")):
        lines += [
            "Compile time with and without the persistent cache (`mle-optimistic`, base game, "
            "a fresh process each; first chunk = compile + one chunk; process = import to exit):",
            "",
            "| cache | first chunk (s) | process (s) | vs no cache |",
            "|---|---:|---:|---:|",
        ]
        for k, label in (
            ("off", "off (`BAYES_QSE_CACHE=0`)"),
            ("cold", "cold (empty dir)"),
            ("warm", "warm (second process)"),
        ):
            lines.append(
                f"| {label} | {c[k]['first_chunk_s']:.1f} | {c[k]['process_s']:.1f} | "
                f"{c['off']['first_chunk_s'] / c[k]['first_chunk_s']:.1f}x faster |"
            )
        lines.append("")
    if args.figure:
        lines += [f"![scaling](results/{FIGURE.name})", ""]
    lines += [f"Command: `{args.command}`", ""]
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    """One panel per sweep: ms per episode per seed against the varied size (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [*res["sweeps"].items(), ("seeds", res["seeds"])]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3))
    for ax, (field, rows) in zip(axes, panels, strict=True):
        ok = [r for r in rows if "error" not in r]
        ax.loglog([r[field] for r in ok], [r["ms_per_episode_per_seed"] for r in ok], "o-")
        ax.set_xlabel(field)
        ax.set_title(f"vs {field}")
    axes[0].set_ylabel("ms / episode / seed")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="fewer sizes (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    parser.add_argument("--json", help="also write the raw measurements to this file")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return {}
    args.command = "python benchmarks/bench_scaling.py" + (" " + " ".join(argv) if argv else "")
    if args.quick:
        args.episodes, args.chunk = 10, 5
    res = collect(args)
    device = next((r["device"] for r in res["seeds"] if "device" in r), "?")
    write = not args.no_write and not args.quick
    args.figure = write
    text = report(res, args, device)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    if write:
        from _report import write_section

        plot(res, FIGURE)
        write_section(SECTION, text)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
