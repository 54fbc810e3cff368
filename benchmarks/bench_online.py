"""Wall time of the online learners (docs/math.md §5): 1000 episodes on the standard tabular game.

The standard tabular game is the ``tabular`` game of the ``online_regret`` experiment's full
configuration (myopic follower, S=3, A=3, B=2, H=3, d=27; the leader also learns her own
transitions and rewards), with the learners' full-run settings.  Each learner plays ``T``
episodes for one seed (and, on the last line, 20 seeds at once, ``vmap``-ped) through
:class:`bayes_qse.learners.OnlineRunner`; the baseline is ``greedy`` (the cheapest learner that
fits the follower each episode: one MAP fit and one backward induction), measured in the same
run.  Times: the first chunk (which compiles) is reported apart; "T episodes" is the steady
state (the best of ``--repeats`` replays of the chunks after the first, scaled to ``T``) and
"total" is what a user waits for (first chunk plus one pass).

    python benchmarks/bench_online.py            # updates docs/benchmarks.md
    python benchmarks/bench_online.py --quick    # a smoke test, no docs update

Target (issue 5): 1000 episodes of ``bayes-optimistic`` (Laplace) <= 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
from _report import publish

import bayes_qse
from bayes_qse.experiments import online_regret, online_units
from bayes_qse.learners import OnlineRunner

SECTION = "## Online learners: episodes per second (`bench_online.py`)"


def time_learner(
    game, name: str, config: dict, episodes: int, chunk: int, seeds: list[int], repeats: int
):
    """``(first_chunk_s, steady_s_for_T, total_s)`` for ``name`` on ``game``.

    The chunks after the first are replayed ``repeats`` times from the same state (the runner
    is pure) and the best time is kept; ``total`` is the first chunk plus the first replay."""
    t0 = time.perf_counter()
    runner = OnlineRunner(
        game, name, dict(config, capacity=episodes), episodes=episodes, chunk=chunk
    )
    first, rec = runner.run_chunk(runner.init_states(seeds), seeds, 0)
    jax.block_until_ready(rec)
    t1 = time.perf_counter()
    laps = []
    for _ in range(repeats):
        start_lap, states = time.perf_counter(), first
        for start in range(chunk, episodes, chunk):
            states, rec = runner.run_chunk(states, seeds, start)
        jax.block_until_ready(rec)
        laps.append(time.perf_counter() - start_lap)
    n_later = episodes - chunk
    steady = min(laps) * episodes / n_later if n_later else float("nan")
    assert runner.n_traces == 1
    return t1 - t0, steady, t1 - t0 + laps[0]


def run(args: argparse.Namespace) -> str:
    full = online_regret.FULL_CONFIG
    game = online_units.online_experiment_game("tabular", full)
    config = {k: full["learner"][k] for k in online_units.LEARNER_KEYS}
    T, chunk = args.episodes, args.chunk
    rows = []
    for name in ("greedy", "thompson", "bayes-optimistic", "mle-optimistic"):
        first, steady, total = time_learner(game, name, config, T, chunk, [0], args.repeats)
        rows.append((name, 1, first, steady, total))
        print(f"{name}: first chunk {first:.1f} s, {T} episodes {steady:.1f} s", flush=True)
    seeds = list(range(args.seeds))
    first, steady, total = time_learner(game, "bayes-optimistic", config, T, chunk, seeds, 1)
    rows.append(("bayes-optimistic", len(seeds), first, steady, total))
    base = rows[0][3]
    H, S, A, B = game.shape
    lines = [
        SECTION,
        "",
        f"Game: the `online_regret` full-run tabular game (myopic, S={S}, A={A}, B={B}, H={H}, "
        f"d={game.feature_dim}; the leader learns her transitions and rewards too), T={T} "
        f"episodes in chunks of {chunk}, full-run learner settings (M={config['num_draws']} "
        f"posterior draws, Newton <= {config['newton_steps']} steps per episode). Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs while "
        f"measured), JAX {jax.__version__} CPU, bayes_qse {bayes_qse.__version__}. Baseline: "
        f"`greedy`, same run. Steady state: best of {args.repeats} replays (1 for 20 seeds).",
        "",
        f"| learner | seeds | first chunk, compiles (s) | {T} episodes, steady (s) | "
        "total (s) | ms per episode per seed | per seed vs greedy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    base_per = 1000 * base / T
    for name, n, first, steady, total in rows:
        per = 1000 * steady / (T * n)
        lines.append(
            f"| `{name}` | {n} | {first:.1f} | {steady:.1f} | {total:.1f} | {per:.2f} | "
            f"{per / base_per:.1f}x |"
        )
    bayes = rows[2]
    status = "met" if bayes[4] <= 60 else "**not met**"
    lines += [
        "",
        f"Target (issue 5): {T} episodes of `bayes-optimistic` (Laplace) <= 60 s on 2 cores: "
        f"{bayes[4]:.1f} s including compilation, {bayes[3]:.1f} s excluding it ({status}).",
        "",
        f"Command: `{args.command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=20, help="seeds of the batched line")
    parser.add_argument("--repeats", type=int, default=5, help="replays of the steady state")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/bench_online.py" + (" " + " ".join(argv) if argv else "")
    if args.quick:
        args.episodes, args.chunk, args.seeds, args.repeats = 20, 10, 2, 1
    text = run(args)
    publish(SECTION, text, args)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
