"""bayes_qse.samplers.nuts: the one NUTS driver (vectorised chains and datasets).

Targets are Gaussians with closed-form moments; reproducibility is checked against separate
runs with the documented keys.  All tests share one setting (module-level log density, the
same warm-up length) so that the kernel compiles a few times only."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_qse.errors import BayesQSEInputError
from bayes_qse.samplers import nuts

WARMUP = SAMPLES = 100  # equal: one compiled scan length


def gaussian_log_density(z, data):
    """``N(mu, diag(sd^2))`` up to a constant; ``data = {"mu": [d], "sd": [d]}``."""
    return -0.5 * jnp.sum(((z - data["mu"]) / data["sd"]) ** 2)


DATA = {"mu": jnp.array([1.0, -2.0]), "sd": jnp.array([0.5, 2.0])}


@pytest.fixture(scope="module")
def three_chains():
    return nuts(
        jax.random.key(0),
        gaussian_log_density,
        jnp.zeros(2),
        DATA,
        num_warmup=WARMUP,
        num_samples=SAMPLES,
        num_chains=3,
    )


def test_vectorised_chains_sample_the_gaussian(three_chains):
    """Moments within Monte Carlo error of the closed form (a sign error in the potential or a
    broken adaptation fails), and the chains differ (chains sharing one key would not)."""
    out = three_chains
    assert out.draws.shape == (3, SAMPLES, 2) and out.diverging.shape == (3, SAMPLES)
    assert out.step_size.shape == (3,) and out.ess.shape == (2,)
    draws = out.draws.reshape(-1, 2)
    se = np.asarray(DATA["sd"]) / np.sqrt(out.ess)
    assert np.all(np.abs(draws.mean(0) - np.asarray(DATA["mu"])) < 5 * se)
    np.testing.assert_allclose(draws.std(0), np.asarray(DATA["sd"]), rtol=0.2)
    assert not np.allclose(out.draws[0], out.draws[1])


def test_chunked_progress_gives_the_same_draws(three_chains):
    """Same seed, same draws whether the run is cut into progress chunks or not (a chunk that
    restarted the adaptation or the key would change them)."""
    seen = []
    loud = nuts(
        jax.random.key(0),
        gaussian_log_density,
        jnp.zeros(2),
        DATA,
        num_warmup=WARMUP,
        num_samples=SAMPLES,
        num_chains=3,
        progress=seen.append,
    )
    np.testing.assert_array_equal(loud.draws, three_chains.draws)
    assert seen[0] == f"NUTS chains 1-3/3 warm-up {WARMUP // 10}/{WARMUP}"
    assert seen[-1] == f"NUTS chains 1-3/3 sampling {SAMPLES}/{SAMPLES}" and len(seen) == 20


def test_batched_datasets_match_the_vectorised_chains(three_chains):
    """``R = 3`` datasets, one chain each, the last one the fixture's target: with the same key
    its draws are those of chain 2 of the fixture's vectorised run (both use
    ``split(key, 3)[2]``), so chains do not interact (pooled adaptation or a shared key would
    break it) and dataset rows are not mixed up; the other rows centre on their own means."""
    mus = jnp.array([[5.0, 5.0], [-3.0, 0.0], [1.0, -2.0]])
    data = {"mu": mus, "sd": jnp.array([[1.0, 1.0], [1.0, 1.0], [0.5, 2.0]])}
    kw = dict(num_warmup=WARMUP, num_samples=SAMPLES, batched=True)
    out = nuts(jax.random.key(0), gaussian_log_density, jnp.zeros((3, 2)), data, **kw)
    assert out.draws.shape == (3, 1, SAMPLES, 2) and out.ess.shape == (3, 2)
    # equal up to round-off (a vmapped while loop may fuse differently)
    np.testing.assert_allclose(out.draws[2, 0], three_chains.draws[2], rtol=0, atol=1e-6)
    assert np.all(np.abs(out.draws[:2].mean(axis=(1, 2)) - np.asarray(mus[:2])) < 0.5)


def test_sequential_chains_are_the_vectorised_chains(three_chains):
    """``chain_method="sequential"`` (one compiled one-chain loop per chain) gives the draws
    of the vectorised run, chain for chain, and a hand-written loop of one-chain runs with the
    documented keys ``split(key, 3)[c]`` gives them too.  Catches: the sequential path handing
    every chain the same key (or ``key`` itself), or putting the chains in another order.
    Equal up to round-off (a vmapped while loop may fuse differently)."""
    kw = dict(num_warmup=WARMUP, num_samples=SAMPLES)
    seq = nuts(
        jax.random.key(0),
        gaussian_log_density,
        jnp.zeros(2),
        DATA,
        num_chains=3,
        chain_method="sequential",
        **kw,
    )
    assert seq.draws.shape == (3, SAMPLES, 2) and seq.step_size.shape == (3,)
    np.testing.assert_allclose(seq.draws, three_chains.draws, rtol=0, atol=1e-6)
    keys = jax.random.split(jax.random.key(0), 3)
    by_hand = [nuts(k, gaussian_log_density, jnp.zeros(2), DATA, **kw).draws[0] for k in keys]
    np.testing.assert_array_equal(seq.draws, np.stack(by_hand))
    assert not np.allclose(seq.draws[0], seq.draws[1])


def test_bad_settings_name_the_field():
    args = (jax.random.key(0), gaussian_log_density, jnp.zeros(2), DATA)
    for kw, field in (
        ({"num_chains": 0}, "num_chains"),
        ({"num_samples": 0}, "num_samples"),
        ({"num_warmup": -1}, "num_warmup"),
        ({"chain_method": "threads"}, "chain_method"),
        ({"batched": True}, "init"),
    ):
        with pytest.raises(BayesQSEInputError, match=f"^{field}"):
            nuts(*args, **kw)


_PARALLEL = """
import json, jax, jax.numpy as jnp, numpy as np
from tests.test_samplers import DATA, SAMPLES, WARMUP, gaussian_log_density
from bayes_qse.samplers import nuts
assert jax.local_device_count() == 2
kw = dict(num_warmup=WARMUP, num_samples=SAMPLES, num_chains=2)
out = {m: nuts(jax.random.key(0), gaussian_log_density, jnp.zeros(2), DATA, chain_method=m,
               **kw).draws.tolist() for m in ("vectorized", "parallel")}
print(json.dumps(out))
"""


@pytest.mark.slow
def test_parallel_chains_over_host_devices_give_the_same_draws():
    """``chain_method="parallel"`` on 2 host devices: the draws of the vectorised run (a
    device that got the wrong keys or the other device's states would differ)."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    env["PYTHONPATH"] = os.getcwd() + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", "import bayes_qse\n" + _PARALLEL],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["parallel"], out["vectorized"], rtol=0, atol=1e-6)
