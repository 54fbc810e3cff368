"""Benchmark of the certified security planner (docs/math.md eq. 8f-8k; issue 21).

On ``uniform_security_game(T, m, seed)`` for ``T = 8, 20, 100`` and three SUQR weight vectors
(Kar et al.'s ``w1 > 0``, ``w1 = -0.3``, the ``-9.85`` attributed to Nguyen et al.), measured in
the same run:

* ``plan_coverage`` (certified: Dinkelbach, root relaxations in JAX, branch and bound where
  needed): wall time after one compilation run, value and relative gap to its own bound;
* the previous planner (multistart projected gradient ascent, 16 starts x 300 steps: the
  ``plan_core`` local search from the spread and 15 random starts) -- the baseline;
* an independent solve: SciPy's SLSQP from 10 starts (the spread and 9 random points), with
  the hand-written gradient of eq. (8b).

"shortfall" is ``certified value - method's value`` (positive: the method found less);
"above bound" would be a method's value above the certified bound (it never is).  Timings are
the best of ``--repeats`` rounds (shared machine), each method treated alike.

Usage::

    /work/main/.venv/bin/python benchmarks/bench_security_planner.py
    /work/main/.venv/bin/python benchmarks/bench_security_planner.py --quick --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from _report import publish
from scipy.optimize import minimize

import bayes_qse  # noqa: F401  (enables float64)
from bayes_qse.security import plan_coverage, uniform_security_game
from bayes_qse.security.planning import _plan_jit, starting_points

SECTION = (
    "## Security planner: certified against multistart and SLSQP (`bench_security_planner.py`)"
)

WEIGHTS = {
    "w1 = 2.876 (Kar)": (2.876, -0.186, 0.3),
    "w1 = -0.3": (-0.3, 0.37, 0.15),
    "w1 = -9.85": (-9.85, 0.37, 0.15),
}
SIZES = ((8, 3.0), (20, 5.5), (100, 20.5))


def _best_time(fn, repeats):
    out, best = None, np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def _slsqp(game, w, n_starts, seed):
    T, m = game.n_targets, game.resources
    rd, pd = np.asarray(game.defender_reward), np.asarray(game.defender_penalty)
    ra, pa = np.asarray(game.attacker_reward), np.asarray(game.attacker_penalty)

    def neg(c):
        su = w[0] * c + w[1] * ra + w[2] * pa
        q = np.exp(su - su.max())
        q /= q.sum()
        v = pd + (rd - pd) * c
        u = q @ v
        return -u, -q * ((rd - pd) + w[0] * (v - u))

    rng = np.random.default_rng(seed)
    starts = [np.full(T, min(m / T, 1.0))]
    starts += [np.clip(m * rng.dirichlet(np.ones(T)), 0, 1) for _ in range(n_starts - 1)]
    cons = [{"type": "ineq", "fun": lambda c: m - c.sum(), "jac": lambda c: -np.ones(T)}]
    best = -np.inf
    for x0 in starts:
        res = minimize(
            neg,
            x0,
            jac=True,
            method="SLSQP",
            bounds=[(0, 1)] * T,
            constraints=cons,
            options={"ftol": 1e-12, "maxiter": 1000},
        )
        c = np.clip(res.x, 0, 1)
        if c.sum() <= m + 1e-9:
            best = max(best, -neg(c)[0])
    return best


def _one(T, m, w, seed, repeats) -> dict[str, float]:
    game = uniform_security_game(T, m, seed=seed, theta=None)
    th = jnp.asarray([w])
    plan_coverage(game, w)  # compile
    plan, t_cert = _best_time(lambda: plan_coverage(game, w), repeats)
    starts = starting_points(jax.random.PRNGKey(seed), T, m, 16)

    def multistart():
        return jax.block_until_ready(_plan_jit(game, th, starts, "mean", 0.5, 300, 0.05, False))

    multistart()  # compile
    (_, v_ms, _), t_ms = _best_time(multistart, repeats)
    v_sl, t_sl = _best_time(lambda: _slsqp(game, w, 10, seed), 1)
    assert max(float(v_ms), v_sl) <= plan.upper_bound + 1e-9
    short_ms, short_sl = plan.value - float(v_ms), plan.value - v_sl
    return {
        "t_cert": t_cert,
        "gap": plan.relative_gap,
        "t_ms": t_ms,
        "short_ms": short_ms,
        "t_sl": t_sl,
        "short_sl": short_sl,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    sizes = SIZES[:1] if args.quick else SIZES
    rows = []
    for T, m in sizes:
        for label, w in WEIGHTS.items():
            stats = {k: [] for k in ("t_cert", "gap", "t_ms", "short_ms", "t_sl", "short_sl")}
            for seed in range(args.seeds):
                for key, value in _one(T, m, w, seed, args.repeats).items():
                    stats[key].append(value)
            rows.append((T, m, label, stats))
            print(T, m, label, {k: float(np.max(v)) for k, v in stats.items()}, flush=True)
    lines = [
        SECTION,
        "",
        f"`/work/main/.venv/bin/python benchmarks/bench_security_planner.py --seeds "
        f"{args.seeds}` on {platform.machine()}, {os.cpu_count()} CPUs visible (2 cores shared "
        f"with other jobs), JAX {jax.__version__}, best of {args.repeats} rounds; "
        f"`uniform_security_game(T, m, seed)` for seeds 0-{args.seeds - 1}; worst seed shown.",
        "",
        "| T | m | weights | certified: time (s) | rel. gap | multistart 16x300: time (s) "
        "| shortfall | SLSQP x10: time (s) | shortfall |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for T, m, label, s in rows:
        lines.append(
            f"| {T} | {m:g} | {label} | {max(s['t_cert']):.3f} | {max(s['gap']):.1e} | "
            f"{max(s['t_ms']):.3f} | {max(s['short_ms']):.3g} | {max(s['t_sl']):.3f} | "
            f"{max(s['short_sl']):.3g} |"
        )
    lines += [
        "",
        "Shortfall: the certified plan's value minus the method's (utility units; payoffs in "
        "[-10, 10]); no method ever exceeded the certified upper bound (asserted). The "
        "certified time excludes the first call's compilation (one per shape).",
    ]
    publish(SECTION, "\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
