"""NUTS chains vectorised against the same chains one after another (issue 14).

:func:`bayes_qse.samplers.nuts` advances all ``K`` chains of a posterior together, one
``vmap``-ped kernel step in one compiled ``scan`` (``chain_method="vectorized"``, the
default).  The baseline is ``chain_method="sequential"``: the same ``K`` chains, with the same
keys, run one after another by the compiled one-chain loop.  Both give the same draws (checked
here: the largest absolute difference is printed; tests/test_samplers.py checks it too).

The target is the follower's log-posterior (docs/math.md eq. 4 and §2) of a myopic random game,
on its response counts.  Each setting is timed as the best of ``--repeats`` calls after one
compiling call (reported separately); the ratio is sequential / vectorised time, measured in
the same run.  Note that a ``vmap``-ped NUTS step runs the tree building of every chain to the
deepest tree any chain builds at that step, so vectorised chains do more leapfrog steps than
the sequential ones (the column "leapfrog work" gives the ratio).

    python benchmarks/bench_chains.py            # updates docs/benchmarks.md
    python benchmarks/bench_chains.py --quick --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from _report import write_section

import bayes_qse
from bayes_qse.data import simulate
from bayes_qse.games import random_game
from bayes_qse.inference import fit_mle, stats_from_dataset
from bayes_qse.likelihood import log_posterior
from bayes_qse.model import Model
from bayes_qse.samplers import nuts

SECTION = "## NUTS chains: vectorised against sequential (`bench_chains.py`)"


def log_density(theta, data):
    """The follower's log-posterior on counts, prior ``N(0, I)`` (module level: one compile)."""
    features, eta, counts = data
    return log_posterior(theta, Model(features, eta, None), counts, 1.0)


def timed(fn, repeats: int):
    """``(first_call_s, best_s, result)``."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return first, best, out


def run(args) -> str:
    H, S, A, B, d = args.horizon, args.states, args.actions, args.follower_actions, args.dim
    game = random_game(0, S, A, B, H, d, eta=1.0)
    pi = np.random.default_rng(0).dirichlet(np.ones(A), size=(H, S))
    data = simulate(game, pi, args.episodes, seed=1)
    counts = stats_from_dataset(data, game.features, False)
    payload = (jnp.asarray(game.features), jnp.asarray(game.eta), counts)
    init = jnp.asarray(fit_mle(data, game).theta)
    key = jax.random.key(0)
    rows = []
    for K in args.chains:
        out = {}
        for method in ("vectorized", "sequential"):
            fn = lambda method=method, K=K: nuts(  # noqa: E731
                key, log_density, init, payload, num_warmup=args.warmup,
                num_samples=args.samples, num_chains=K, chain_method=method,
            )  # fmt: skip
            out[method] = timed(fn, args.repeats)
        (fv, bv, rv), (fs, bs, rs) = out["vectorized"], out["sequential"]
        diff = float(np.max(np.abs(rv.draws - rs.draws)))
        # leapfrog steps: per chain (sequential) vs the deepest tree at each step (vectorised)
        work = float(np.sum(np.max(rv.num_steps, axis=0)) * K / np.sum(rs.num_steps))
        rows.append((K, bs, bv, fs, fv, bs / bv, work, diff))
        print(f"K={K}: sequential {bs:.2f} s, vectorised {bv:.2f} s, ratio {bs / bv:.2f}, "
              f"work {work:.2f}, max |diff| {diff:.1e}")  # fmt: skip
    lines = [
        SECTION,
        "",
        f"Target: the follower's log-posterior (prior N(0, I)) on {args.episodes} episodes of a "
        f"myopic `random_game(0, S={S}, A={A}, B={B}, H={H}, d={d}, eta=1)`, from the MLE; "
        f"NUTS (NumPyro's `hmc()` kernel, diagonal mass) with {args.warmup} warm-up + "
        f"{args.samples} draws per chain. Best of {args.repeats} calls after a compiling call. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs "
        f"while measured), JAX {jax.__version__} CPU, bayes_qse {bayes_qse.__version__}.",
        "",
        "| chains K | sequential (s) | vectorised (s) | sequential / vectorised | "
        "first call seq. / vec. (s) | leapfrog work vec. / seq. | max abs draw difference |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for K, bs, bv, fs, fv, ratio, work, diff in rows:
        lines.append(
            f"| {K} | {bs:.2f} | {bv:.2f} | **{ratio:.2f}** | {fs:.1f} / {fv:.1f} | "
            f"{work:.2f} | {diff:.1e} |"
        )
    lines += ["", f"Command: `{args.command}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chains", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--episodes", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--states", type=int, default=4)
    parser.add_argument("--actions", type=int, default=3)
    parser.add_argument("--follower-actions", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=3)
    parser.add_argument("--dim", type=int, default=6)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/bench_chains.py" + (" " + " ".join(argv) if argv else "")
    if args.quick:
        args.chains, args.warmup, args.samples, args.repeats = [2], 50, 50, 1
    text = run(args)
    print()
    print(text)
    if not args.no_write and not args.quick:
        write_section(SECTION, text)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
