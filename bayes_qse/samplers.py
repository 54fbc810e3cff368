"""One NUTS driver (docs/math.md §2), built on NumPyro's functional ``hmc()`` API.

:func:`nuts` samples any pure-JAX log density ``log_density(z[d], data) -> scalar`` (e.g. the
log-posterior ``L(theta) - theta' Lambda theta / 2`` of docs/math.md eq. (4) and §2) with
NumPyro's NUTS kernel (``numpyro.infer.hmc.hmc``: step-size adaptation by dual averaging and
a windowed mass-matrix adaptation during warm-up).  All chains, and with ``batched=True`` all
datasets (SBC, coverage studies), advance together in one ``jit``-compiled ``scan`` of a
``vmap``-ped kernel step: no Python loop over chains or datasets.  With
``chain_method="parallel"`` the chains are split across the host's devices (e.g.
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` before JAX starts) by ``shard_map``;
``chain_method="sequential"`` runs them one after another (the same compiled one-chain loop
each time: ``1/C`` of the memory, and the baseline of ``benchmarks/bench_chains.py``).

Reproducible: each ``(dataset, chain)`` gets its own key from ``key``, and the run may be cut
into chunks (for progress lines) that continue the same kernel state, so the draws do not
depend on the chunking nor on the chain method.

The compiled kernel loop is cached on ``log_density`` and the sampler settings: pass a
module-level function (not a fresh closure) so that repeated calls compile once per shape.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from .errors import BayesQSEInputError
from .types import Array

CHAIN_METHODS = ("vectorized", "parallel", "sequential")


class NUTSResult(NamedTuple):
    """Output of :func:`nuts`; ``...`` is ``[R]`` with ``batched=True``, empty otherwise.

    Attributes:
        draws: ``[..., C, M, d]`` post-warm-up draws of ``C`` chains.
        diverging: ``[..., C, M]`` divergent post-warm-up transitions.
        num_steps: ``[..., C, M]`` leapfrog steps per draw (``2**depth - 1`` for a full tree).
        accept_prob: ``[..., C]`` mean acceptance probability after warm-up.
        step_size: ``[..., C]`` adapted step size.
        ess: ``[..., d]`` effective sample size over the ``C`` chains of each dataset
            (NumPyro's estimator).
    """

    draws: np.ndarray
    diverging: np.ndarray
    num_steps: np.ndarray
    accept_prob: np.ndarray
    step_size: np.ndarray
    ess: np.ndarray


def progress_printer(progress: Any) -> Callable[[str], None] | None:
    """``None`` (no progress), a callable as given, or (``True``) a line printer to stderr."""
    if not progress:
        return None
    if callable(progress):
        return progress

    def show(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return show


def _check_settings(num_warmup, num_samples, num_chains, chain_method) -> None:
    for name, v, low in (
        ("num_warmup", num_warmup, 0),
        ("num_samples", num_samples, 1),
        ("num_chains", num_chains, 1),
    ):
        if isinstance(v, bool) or int(v) != v or v < low:
            raise BayesQSEInputError(f"{name}: must be an integer >= {low}, got {v!r}")
    if chain_method not in CHAIN_METHODS:
        raise BayesQSEInputError(
            f"chain_method: must be one of {CHAIN_METHODS}, got {chain_method!r}"
        )
    if chain_method == "parallel" and num_chains % jax.local_device_count():
        raise BayesQSEInputError(
            f"num_chains: {num_chains} chains cannot be split evenly over the "
            f"{jax.local_device_count()} local devices (chain_method='parallel'); set "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX starts"
        )


def nuts(
    key: Array,
    log_density: Callable[[Array, Any], Array],
    init: Any,
    data: Any,
    *,
    num_warmup: int = 500,
    num_samples: int = 1000,
    num_chains: int = 1,
    batched: bool = False,
    dense_mass: bool = False,
    target_accept_prob: float = 0.8,
    max_tree_depth: int = 10,
    chain_method: str = "vectorized",
    progress: bool | Callable[[str], None] = False,
) -> NUTSResult:
    """NUTS on one posterior (``C`` chains) or ``R`` posteriors at once (``batched``).

    Args:
        key: JAX PRNG key; dataset ``r`` gets ``k_r = split(key, R)[r]`` (``key`` itself
            without ``batched``) and its chain ``c`` ``split(k_r, C)[c]`` (``k_r`` itself
            when ``C = 1``).
        log_density: ``(z[d], data) -> scalar`` unnormalised log density, pure JAX; a
            module-level function, so that the compiled loop is reused (see the module doc).
        init: ``[d]`` start of every chain (``[R, d]`` with ``batched``), e.g. the MAP.
        data: pytree passed to ``log_density`` (leaves with a leading axis ``R`` with
            ``batched``).
        num_warmup, num_samples: iterations per chain (warm-up adapts step size and mass).
        num_chains: chains per dataset, run side by side (vmapped), not one after another.
        batched: ``R`` datasets along the leading axis of ``init`` and ``data``.
        dense_mass: adapt a dense (True) or diagonal mass matrix.
        target_accept_prob: the dual-averaging target.
        max_tree_depth: NUTS tree-depth limit.
        chain_method: ``"vectorized"`` (one device), ``"parallel"`` (chains split over the
            local devices; ``num_chains`` a multiple of their number) or ``"sequential"``
            (one chain after another, each with its own key as above).  The same chains
            whichever, up to round-off (a vmapped step rounds differently; along a long chain
            the difference can grow: benchmarks/bench_chains.py).
        progress: ``True`` prints a line such as ``NUTS chain 1/1 warm-up 50/500`` to stderr
            after each tenth of the warm-up and of the sampling (``NUTS chains 1-4/4 ...``
            for several chains); a callable receives the lines instead.  Same draws either way.

    Returns:
        :class:`NUTSResult` (NumPy arrays).
    """
    _check_settings(num_warmup, num_samples, num_chains, chain_method)
    init = jnp.asarray(init, jnp.float64)
    if init.ndim != (2 if batched else 1):
        want = "(R, d)" if batched else "(d,)"
        raise BayesQSEInputError(f"init: expected shape {want}, got {init.shape}")
    if not batched:
        init = init[None]
        data = jax.tree_util.tree_map(lambda x: jnp.asarray(x)[None], data)
    R, C = init.shape[0], int(num_chains)
    keys = _chain_keys(key, R if batched else None, C)
    sequential = chain_method == "sequential"
    runner = _runner(
        log_density,
        int(num_warmup),
        bool(dense_mass),
        float(target_accept_prob),
        int(max_tree_depth),
        "vectorized" if sequential else chain_method,
    )
    show = progress_printer(progress)
    # one group of all C chains, or (sequential) C groups of one chain each
    groups = [slice(c, c + 1) for c in range(C)] if sequential else [slice(0, C)]
    parts = []
    for g in groups:
        n = g.stop - g.start
        start = jnp.broadcast_to(init[:, None], (R, n, init.shape[-1]))
        states = runner.init(keys[:, g], start, data)
        if C == 1:
            label = "NUTS chain 1/1"
        elif sequential:
            label = f"NUTS chain {g.start + 1}/{C}"
        else:
            label = f"NUTS chains 1-{C}/{C}"
        states, _ = _scan_in_chunks(
            runner.run, states, data, int(num_warmup), f"{label} warm-up", show
        )
        states, (z, div, steps) = _scan_in_chunks(
            runner.run, states, data, int(num_samples), f"{label} sampling", show
        )
        parts.append(
            (
                np.moveaxis(np.asarray(z), 0, 2),  # [R, n, M, d]
                np.moveaxis(np.asarray(div), 0, 2),
                np.moveaxis(np.asarray(steps), 0, 2),
                np.asarray(states.mean_accept_prob),
                np.asarray(states.adapt_state.step_size),
            )
        )
    draws, diverging, num_steps, accept, step = (
        np.concatenate(xs, axis=1) for xs in zip(*parts, strict=True)
    )
    out = NUTSResult(draws, diverging, num_steps, accept, step, _ess(draws))
    return out if batched else NUTSResult(*(x[0] for x in out))


def _ess(draws: np.ndarray) -> np.ndarray:
    """``[R, d]`` ESS over the chains of each dataset from ``draws[R, C, M, d]``."""
    from numpyro.diagnostics import effective_sample_size  # lazy: NumPyro costs ~1 s to import

    return np.asarray(effective_sample_size(np.moveaxis(draws, 0, -2)))


def _chain_keys(key: Array, n_datasets: int | None, n_chains: int) -> Array:
    """``[R, C]`` keys: ``k_r = split(key, R)[r]`` (``key`` itself without datasets), then
    ``split(k_r, C)[c]`` for several chains or ``k_r`` itself for one."""
    per_data = key[None] if n_datasets is None else jax.random.split(key, n_datasets)
    if n_chains == 1:
        return per_data[:, None]
    return jax.vmap(lambda k: jax.random.split(k, n_chains))(per_data)


def _scan_in_chunks(run, states, data, n: int, label: str, show) -> tuple[Any, Any]:
    """``run(states, data, n)``, in up to ten pieces calling ``show`` after each when
    ``show`` is given.  The pieces continue the same kernel state (warm-up adaptation counts
    steps in ``state.i``), so the draws are those of one piece; only the compiled lengths
    differ (at most two: ``ceil(n/10)`` and the remainder)."""
    if n == 0:
        return states, None
    if show is None:
        return run(states, data, n)
    chunk = max(1, -(-n // 10))
    outs, done = [], 0
    while done < n:
        m = min(chunk, n - done)
        states, out = run(states, data, m)
        jax.block_until_ready(out)  # report work done, not work queued
        outs.append(out)
        done += m
        show(f"{label} {done}/{n}")
    return states, jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *outs)


class _Runner(NamedTuple):
    init: Callable  # (keys[R,C], init[R,C,d], data) -> states[R,C]
    run: Callable  # (states, data, n) -> (states, (z[n,R,C,d], div[n,R,C], steps[n,R,C]))


@functools.lru_cache(maxsize=32)
def _runner(log_density, num_warmup, dense_mass, target, max_tree_depth, chain_method):
    """The jit-compiled init and kernel loop of :func:`nuts` for one setting (cached).

    Kernel states carry leading axes ``[R, C]``: ``vmap`` over datasets (data mapped) of
    ``vmap`` over chains (data shared).  ``parallel`` wraps the same function in a
    ``shard_map`` that splits the chain axis over the local devices.
    """
    from numpyro.infer.hmc import hmc  # lazy: NumPyro costs ~1 s to import

    init_kernel, sample_kernel = hmc(
        potential_fn_gen=lambda data_r: lambda z: -log_density(z, data_r), algo="NUTS"
    )

    def init_one(k, z0, data_r):
        return init_kernel(
            z0,
            num_warmup,
            dense_mass=dense_mass,
            target_accept_prob=target,
            max_tree_depth=max_tree_depth,
            model_args=(data_r,),
            rng_key=k,
        )

    def step_one(state, data_r):
        return sample_kernel(state, model_args=(data_r,))

    over_chains = lambda f: jax.vmap(f, in_axes=(0, 0, None))  # noqa: E731
    init_all = jax.vmap(over_chains(init_one), in_axes=(0, 0, 0))
    step_all = jax.vmap(jax.vmap(step_one, in_axes=(0, None)), in_axes=(0, 0))

    def scan(states, data, n):
        def body(st, _):
            st = step_all(st, data)
            return st, (st.z, st.diverging, st.num_steps)

        return jax.lax.scan(body, states, None, length=n)

    if chain_method == "parallel":
        init_all, scan = _shard_chains(init_all, scan)
    return _Runner(jax.jit(init_all), jax.jit(scan, static_argnums=2))


def _shard_chains(init_all, scan):
    """``init_all`` and ``scan`` with the chain axis (axis 1 of states, keys and starts)
    split over the local devices; the data are replicated."""
    mesh = Mesh(np.array(jax.local_devices()), ("chain",))
    chains, rep = P(None, "chain"), P()
    init_sharded = jax.shard_map(
        init_all, mesh=mesh, in_specs=(chains, chains, rep), out_specs=chains, check_vma=False
    )

    def scan_sharded(states, data, n):
        out_specs = (chains, (P(None, None, "chain"),) * 3)
        f = jax.shard_map(
            lambda st, dt: scan(st, dt, n),
            mesh=mesh,
            in_specs=(chains, rep),
            out_specs=out_specs,
            check_vma=False,
        )
        return f(states, data)

    return init_sharded, scan_sharded


__all__ = ["CHAIN_METHODS", "NUTSResult", "nuts", "progress_printer"]
