"""The scaling benchmark on whatever accelerator JAX finds (a GPU), as is; falls back to CPU.

Prints the same tables as ``benchmarks/bench_scaling.py`` (time per episode against S, A, B,
H, d and the seeds ``vmap``-ped; compile time with and without the persistent cache; peak
host memory) plus a per-function precision table: each core function timed in the dtype
docs/benchmarks.md ("Precision per function") assigns it -- float32 for the planners
(backward induction, policy evaluation), float64 for the follower's likelihood Hessian -- with
the float32 result's largest deviation from float64 on the same inputs.  The learners
themselves stay float64 (the package default: their MAP fits take Hessians).

    python benchmarks/gpu_scaling.py                 # tables on stdout
    python benchmarks/gpu_scaling.py --out gpu.md    # and a markdown file
    python benchmarks/gpu_scaling.py --quick         # a smoke test

Nothing here writes docs/benchmarks.md: paste the tables by hand, with the command and the
device line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scaling  # noqa: E402


def _best_time(fn, *args, repeats: int = 5) -> float:
    import jax

    jax.block_until_ready(fn(*args))  # compile
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def precision_table(shape: dict) -> str:
    """Per-function dtype table: time in float32 and float64 and the float32 error."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bayes_qse.games import random_game
    from bayes_qse.likelihood import log_likelihood
    from bayes_qse.model import Model
    from bayes_qse.planning import evaluate_policy, plan_myopic

    S, A, B, H, d = (shape[k] for k in ("S", "A", "B", "H", "d"))
    g = random_game(0, S, A, B, H, d, transition_concentration=0.1)
    f64 = [jnp.asarray(x, jnp.float64) for x in (g.transitions, g.leader_reward, g.features)]
    f32 = [x.astype(jnp.float32) for x in f64]
    th64 = jnp.asarray(g.theta, jnp.float64)
    plan = jax.jit(lambda P, r, f, e, th: plan_myopic(Model(f, e, P, r), th))
    rows = []
    v64 = plan(*f64, 1.0, th64)[1]
    v32 = plan(*f32, jnp.float32(1.0), th64.astype(jnp.float32))[1]
    rows.append(
        (
            "`plan_myopic` (backward induction, eq. 2a)",
            "float32",
            _best_time(plan, *f32, jnp.float32(1.0), th64.astype(jnp.float32)),
            _best_time(plan, *f64, 1.0, th64),
            float(jnp.abs(v32 - v64).max()),
        )
    )
    pi64 = plan(*f64, 1.0, th64)[2]
    nu64 = jax.nn.softmax(jnp.einsum("hsabd,d->hsab", f64[2], th64), -1)
    ev = jax.jit(lambda P, r, nu, pi: evaluate_policy(Model(None, None, P, r), nu, pi))
    e64 = ev(f64[0], f64[1], nu64, pi64)[0]
    e32 = ev(f32[0], f32[1], nu64.astype(jnp.float32), pi64.astype(jnp.float32))[0]
    rows.append(
        (
            "`evaluate_policy` (policy value)",
            "float32",
            _best_time(ev, f32[0], f32[1], nu64.astype(jnp.float32), pi64.astype(jnp.float32)),
            _best_time(ev, f64[0], f64[1], nu64, pi64),
            float(jnp.abs(e32 - e64).max()),
        )
    )
    counts = jnp.asarray(np.random.default_rng(0).poisson(3.0, (H, S, A, B)), jnp.float64)
    hess = jax.jit(jax.hessian(lambda t, f, c: log_likelihood(t, Model(f, 1.0), c)))
    h64 = hess(th64, f64[2], counts)
    h32 = hess(th64.astype(jnp.float32), f32[2], counts.astype(jnp.float32))
    rel = float(jnp.abs(h32 - h64).max() / jnp.abs(h64).max())
    rows.append(
        (
            "likelihood Hessian (Wald set, Laplace; eq. 4)",
            "float64",
            _best_time(hess, th64.astype(jnp.float32), f32[2], counts.astype(jnp.float32)),
            _best_time(hess, th64, f64[2], counts),
            rel,
        )
    )
    lines = [
        f"Precision per function (S={S}, A={A}, B={B}, H={H}, d={d}; best of 5 after "
        "compiling; error: max |float32 - float64| on the same inputs, relative for the "
        "Hessian):",
        "",
        "| function | dtype used | float32 (ms) | float64 (ms) | float32 error |",
        "|---|---|---:|---:|---:|",
    ]
    for name, dtype, t32, t64, err in rows:
        lines.append(f"| {name} | {dtype} | {1e3 * t32:.2f} | {1e3 * t64:.2f} | {err:.2e} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--chunk", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="fewer sizes (a smoke test)")
    parser.add_argument("--out", help="also write the tables (markdown) to this file")
    args = parser.parse_args(argv)
    args.command = "python benchmarks/gpu_scaling.py" + (" " + " ".join(argv) if argv else "")
    if args.quick:
        args.episodes, args.chunk = 10, 5
    import jax

    import bayes_qse  # noqa: F401  (float64 default, persistent cache)

    device = f"{jax.devices()[0].platform}: {jax.devices()[0].device_kind}"
    print(f"device: {device} ({len(jax.devices())} device(s)), JAX {jax.__version__}", flush=True)
    shape = bench_scaling.BASE if args.quick else bench_scaling.FULL
    text = precision_table(shape)
    print(text, flush=True)
    res = bench_scaling.collect(args)
    args.figure = False
    text += "\n" + bench_scaling.report(res, args, device)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])
