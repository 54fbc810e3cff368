"""Time per episode against ``t`` for the online learners (issue 14's done-when targets).

Farsighted: ``thompson`` on a random farsighted game (S=5, A=B=3, H=4, d=8) for ``T = 10^4``
episodes x 2 seeds with rarely-switching policies (``refit="switching"``, docs/math.md eq. 4'
and "Rarely-switching policies"), timed per chunk; the every-episode learner
(``refit="every"``, the likelihood over the whole buffer) is the baseline, measured in the same
run for a shorter ``T``.  Myopic: ``thompson`` on the myopic game of the same shape for
``T = 10^4`` episodes x 2 seeds, both schedules.  Settings: the ``online_regret`` full-run
learner settings.

"Time per episode at ``t``" is the best of ``--repeats`` plays of the chunk of ``chunk``
episodes that ends at ``t`` (the runner is pure: a chunk replays from its saved state; the
replays run after the whole run, alternating between the probed ``t``), per episode and seed.
The totals include compilation.

    python benchmarks/bench_scaling_online.py            # updates docs/benchmarks.md
    python benchmarks/bench_scaling_online.py --quick    # a smoke test, no docs update

Targets (issue 14, 2 cores): farsighted ``T = 10^4`` x 2 seeds in <= 10 min including
compilation, time per episode at ``t = 10^4`` <= 1.5x that at ``t = 10^3``; myopic time per
episode at ``t = 10^4`` within 1.2x of that at ``t = 10^2``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np
from _report import publish

import bayes_qse
from bayes_qse.experiments import online_regret, online_units
from bayes_qse.games import random_game
from bayes_qse.learners import OnlineRunner

SECTION = "## Online learners: time per episode against t (`bench_scaling_online.py`)"
SHAPE = dict(n_states=5, n_leader_actions=3, n_follower_actions=3, horizon=4, feature_dim=8)


def timed_run(game, refit: str, episodes: int, chunk: int, seeds, probes, repeats: int):
    """Play ``episodes`` episodes; returns ``(total_s, first_chunk_s, {t: s per episode per
    seed}, final switches per seed)``.  The chunks ending at each ``t`` in ``probes`` are
    replayed from their saved states ``repeats - 1`` times after the run, round-robin over
    the probes (so that a change of the machine's load during the run does not bias one
    ``t`` against another), and the best time is kept (replays not counted in the total)."""
    full = online_regret.FULL_CONFIG
    config = {k: full["learner"][k] for k in online_units.LEARNER_KEYS}
    config.update(refit=refit, capacity=episodes)
    start = time.perf_counter()
    runner = OnlineRunner(game, "thompson", config, episodes=episodes, chunk=chunk)
    states = runner.init_states(seeds)
    laps, saved, first = {}, {}, float("nan")
    for t0 in range(0, episodes, chunk):
        tick = time.perf_counter()
        new_states, rec = runner.run_chunk(states, seeds, t0)
        jax.block_until_ready(rec)
        lap = time.perf_counter() - tick
        if t0 == 0:
            first = lap
        if t0 + chunk in probes:
            laps[t0 + chunk], saved[t0] = [lap], states
        states = new_states
    total = time.perf_counter() - start
    for _ in range(repeats - 1):
        for t0, st in saved.items():
            tick = time.perf_counter()
            jax.block_until_ready(runner.run_chunk(st, seeds, t0)[1])
            laps[t0 + chunk].append(time.perf_counter() - tick)
    per_episode = {t: min(v) / (chunk * len(seeds)) for t, v in laps.items()}
    assert runner.n_traces == 1
    return (
        total,
        first,
        per_episode,
        np.asarray(getattr(states.buffer, "switches", states.buffer.count)),
    )


def run(args: argparse.Namespace) -> str:
    seeds = list(range(args.seeds))
    T, Tb, Tm = args.episodes, args.baseline_episodes, args.myopic_episodes
    rows = []
    lines_targets = []
    farsighted = random_game(args.game_seed, **SHAPE, eta=2.0, farsighted=True)
    myopic = random_game(args.game_seed, **SHAPE, eta=2.0, farsighted=False)

    def add(label, game, refit, episodes, chunk, probes):
        total, first, per, sw = timed_run(game, refit, episodes, chunk, seeds, probes, args.repeats)
        rows.append((label, refit, episodes, total, first, per, sw))
        shown = ", ".join(f"t={t}: {1000 * v:.2f} ms" for t, v in sorted(per.items()))
        print(f"{label} {refit} T={episodes}: total {total:.1f} s ({shown}); switches {sw}")
        return total, per

    # the targets first: farsighted rarely switching to T, myopic; then the baselines
    fs_probes = sorted({Tb, T // 10, T})
    sw_total, sw_per = add("farsighted", farsighted, "switching", T, args.chunk, fs_probes)
    m_probes = sorted({2 * args.myopic_chunk, Tm})
    _, m_every = add("myopic", myopic, "every", Tm, args.myopic_chunk, m_probes)
    fb = sorted({Tb // 2, Tb})
    base_total, base_per = add("farsighted", farsighted, "every", Tb, args.baseline_chunk, fb)
    _, m_switch = add("myopic", myopic, "switching", Tm, args.myopic_chunk, m_probes)

    ratio_f = sw_per[T] / sw_per[T // 10]
    t_small = 2 * args.myopic_chunk
    ratio_me = m_every[Tm] / m_every[t_small]
    ratio_ms = m_switch[Tm] / m_switch[t_small]
    met = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines_targets = [
        f'- Farsighted, `refit="switching"`: T={T} x {len(seeds)} seeds in {sw_total:.0f} s '
        f"including compilation (target <= 600 s: {met(sw_total <= 600)}); time per episode "
        f"at t={T} / at t={T // 10}: {ratio_f:.2f} (target <= 1.5: {met(ratio_f <= 1.5)}).",
        f"- Farsighted, every-episode baseline: at t={Tb} it costs "
        f"{1000 * base_per[Tb]:.2f} ms per episode per seed, "
        f"{base_per[Tb] / sw_per[Tb]:.0f}x the switching learner at the same t "
        f"({1000 * sw_per[Tb]:.2f} ms, its early phase of frequent switches); its cost per "
        f"episode is proportional to the buffer capacity T (t={Tb // 2}: "
        f"{1000 * base_per[Tb // 2]:.2f} ms), so a run is quadratic in T.",
        f"- Myopic, time per episode at t={Tm} / at t={t_small}: {ratio_me:.2f} "
        f"(`every`), {ratio_ms:.2f} (`switching`) (target <= 1.2: "
        f"{met(ratio_me <= 1.2)} / {met(ratio_ms <= 1.2)}).",
    ]
    H, S, A, B = farsighted.shape
    full = online_regret.FULL_CONFIG
    lines = [
        SECTION,
        "",
        f"Games: `random_game({args.game_seed}, S={S}, A={A}, B={B}, H={H}, "
        f"d={farsighted.feature_dim}, eta=2)`, farsighted and myopic; learner `thompson` with "
        f"the `online_regret` full-run settings (planner_steps="
        f"{full['learner']['planner_steps']}, newton_steps={full['learner']['newton_steps']}); "
        f"{len(seeds)} seeds; `switch_factor` 2, "
        f"`max_policies` 512. Time per episode: best of {args.repeats} plays of the chunk "
        "ending at t (the replays after the run, alternating between the t), per episode and "
        "seed. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs while "
        f"measured), JAX {jax.__version__} CPU, bayes_qse {bayes_qse.__version__}.",
        "",
        "| game | refit | T | total incl. compile (s) | first chunk (s) | "
        "ms per episode per seed at t | switches (final, per seed) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for label, refit, episodes, total, first, per, sw in rows:
        shown = "; ".join(f"t={t}: {1000 * v:.2f}" for t, v in sorted(per.items()))
        lines.append(
            f"| {label} | `{refit}` | {episodes} | {total:.0f} | {first:.0f} | {shown} | "
            f"{', '.join(str(int(x)) for x in sw)} |"
        )
    lines += ["", "Targets (issue 14):", "", *lines_targets, "", f"Command: `{args.command}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10_000, help="farsighted T")
    parser.add_argument("--chunk", type=int, default=250)
    parser.add_argument("--baseline-episodes", type=int, default=250)
    parser.add_argument("--baseline-chunk", type=int, default=125)
    parser.add_argument("--myopic-episodes", type=int, default=10_000)
    parser.add_argument("--myopic-chunk", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--game-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/bench_scaling_online.py" + (
        " " + " ".join(argv) if argv else ""
    )
    if args.quick:
        args.episodes, args.chunk, args.baseline_episodes, args.baseline_chunk = 100, 10, 20, 10
        args.myopic_episodes, args.myopic_chunk, args.repeats = 40, 10, 1
    text = run(args)
    publish(SECTION, text, args)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
