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
from _report import publish

import bayes_qse
from bayes_qse.data import simulate
from bayes_qse.fit_data import stats_from_dataset
from bayes_qse.games import random_game
from bayes_qse.inference import fit_mle
from bayes_qse.likelihood import log_posterior
from bayes_qse.model import Model
from bayes_qse.samplers import nuts

SECTION = "## NUTS chains: vectorised against sequential (`bench_chains.py`)"


def log_density(theta, data):
    """The myopic follower's log-posterior on counts, prior ``N(0, I)`` (module level: one
    compile per shape)."""
    features, eta, counts = data
    return log_posterior(theta, Model(features, eta, None), counts, 1.0)


def farsighted_log_density(theta, data):
    """The farsighted follower's log-posterior on the episodes (one soft Bellman recursion
    per stored episode), prior ``N(0, I)``."""
    features, eta, transitions, buffer = data
    return log_posterior(theta, Model(features, eta, transitions, farsighted=True), buffer, 1.0)


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


def targets(args):
    """``(label, density, payload, init, n_warmup, n_samples)`` of the myopic and the
    farsighted posterior (the latter with fewer episodes and iterations: it costs more)."""
    H, S, A, B, d = args.horizon, args.states, args.actions, args.follower_actions, args.dim
    game = random_game(0, S, A, B, H, d, eta=1.0)
    rng = np.random.default_rng(0)
    data = simulate(game, rng.dirichlet(np.ones(A), size=(H, S)), args.episodes, seed=1)
    counts = stats_from_dataset(data, game.features, False)
    phi, eta = jnp.asarray(game.features), jnp.asarray(game.eta)
    init = jnp.asarray(fit_mle(data, game).theta)
    out = [("myopic", log_density, (phi, eta, counts), init, args.warmup, args.samples)]
    if args.far_episodes:
        far = game.replace(farsighted=True)
        n = args.far_episodes
        pols = rng.dirichlet(np.ones(A), size=(n, H, S))
        data_far = simulate(far, pols, n, seed=2)
        buffer = stats_from_dataset(data_far, far.features, True)
        payload = (phi, eta, jnp.asarray(far.transitions), buffer)
        init_far = jnp.asarray(fit_mle(data_far, far).theta)
        label = f"farsighted ({n} episodes)"
        out.append(
            (label, farsighted_log_density, payload, init_far, args.far_iters, args.far_iters)
        )
    return out


def first_drift(a: np.ndarray, b: np.ndarray, tol: float = 1e-6) -> int:
    """The earliest draw index (over chains) where ``a`` and ``b`` differ by more than
    ``tol`` (the number of draws if never)."""
    far = np.any(np.abs(a - b) > tol, axis=-1)  # [K, M]
    return int(min(np.argmax(row) if row.any() else row.size for row in far))


def run(args) -> str:
    H, S, A, B, d = args.horizon, args.states, args.actions, args.follower_actions, args.dim
    key = jax.random.key(0)
    rows = []
    for label, density, payload, init, n_warm, n_draw in targets(args):
        for K in args.chains:
            out = {}
            for method in ("vectorized", "sequential"):
                kw = dict(num_warmup=n_warm, num_samples=n_draw, num_chains=K, chain_method=method)
                call = (key, density, init, payload)
                fn = lambda call=call, kw=kw: nuts(*call, **kw)  # noqa: E731
                out[method] = timed(fn, args.repeats)
            (fv, bv, rv), (fs, bs, rs) = out["vectorized"], out["sequential"]
            diff = float(np.max(np.abs(rv.draws - rs.draws)))
            drift = first_drift(rv.draws, rs.draws)
            # leapfrog steps: each chain's own (sequential) vs the deepest tree of the K chains
            # at each step (a vmapped while loop runs until every chain is done)
            work = float(np.sum(np.max(rv.num_steps, axis=0)) * K / np.sum(rv.num_steps))
            rows.append((label, n_warm, n_draw, K, bs, bv, fs, fv, work, diff, drift))
            print(
                f"{label} K={K}: sequential {bs:.2f} s, vectorised {bv:.2f} s, ratio "
                f"{bs / bv:.2f}, work {work:.2f}, max |diff| {diff:.1e}, drift {drift}"
            )
    lines = [
        SECTION,
        "",
        f"Targets: the follower's log-posterior (prior N(0, I)) for `random_game(0, S={S}, "
        f"A={A}, B={B}, H={H}, d={d}, eta=1)`: myopic on {args.episodes} episodes (its "
        "counts), and farsighted (one soft Bellman recursion per episode, random policies); "
        "chains start at the MLE. NUTS (NumPyro's `hmc()` kernel, diagonal mass); best of "
        f"{args.repeats} calls after a compiling call. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores (shared with other jobs while measured), "
        f"JAX {jax.__version__} CPU, bayes_qse {bayes_qse.__version__}.",
        "",
        "| target | warm-up + draws | chains K | sequential (s) | vectorised (s) | "
        "sequential / vectorised | first call seq. / vec. (s) | leapfrog work vec. / seq. | "
        "max abs draw difference | first draw differing > 1e-6 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, n_warm, n_draw, K, bs, bv, fs, fv, work, diff, drift in rows:
        lines.append(
            f"| {label} | {n_warm} + {n_draw} | {K} | {bs:.2f} | {bv:.2f} | **{bs / bv:.2f}** | "
            f"{fs:.1f} / {fv:.1f} | {work:.2f} | {diff:.1e} | {drift} |"
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
    parser.add_argument("--far-episodes", type=int, default=50, help="0: no farsighted rows")
    parser.add_argument("--far-iters", type=int, default=200, help="warm-up = draws")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/bench_chains.py" + (" " + " ".join(argv) if argv else "")
    if args.quick:
        args.chains, args.warmup, args.samples, args.repeats = [2], 50, 50, 1
        args.far_episodes, args.far_iters = 8, 20
    text = run(args)
    publish(SECTION, text, args)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
