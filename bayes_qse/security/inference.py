"""Learning the SUQR attacker from attack data (docs/math.md eq. 7c, §2).

Data are (commitment, attack) pairs grouped by commitment: ``coverage[K, T]`` and
``counts[K, T]`` (attacks on each target under commitment ``k``; zero rows are padding).  The
log-likelihood is eq. (7c) with the SUQR features of eq. (8a); it is a multinomial logit in
``w``, so

- :func:`fit_suqr_mle`: damped Newton (the library's ``newton_maximize``) to the MLE, with the
  observed Fisher information (an :class:`~bayes_qse.inference.MLEFit`, so
  :func:`bayes_qse.sets.wald_ellipsoid` gives its Wald set);
- :func:`suqr_posterior`: Laplace (MAP + Gaussian) or NUTS (NumPyro's sampler through
  :func:`bayes_qse.sbc.batched_nuts`) under a ``N(0, prior_scale^2 I)`` prior;
- :func:`suqr_numpyro_model`: the same likelihood as a NumPyro model (flat or normal prior).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from ..commitment import CommitmentStats
from ..errors import BayesQSEInputError, DatasetValidationError
from ..inference import MLEFit, laplace_draws
from ..likelihood import log_likelihood, log_posterior
from ..model import as_model
from ..optim import newton_maximize
from ..posterior import Posterior
from ..samplers import nuts
from .game import SUQR_MODEL, SecurityGame, attack_log_probs, suqr_features

Array = jax.Array


class AttackData(NamedTuple):
    """Observed attacks, grouped by commitment (a JAX pytree).

    Attributes:
        coverage: ``[K, T]`` the commitment the attacker saw.
        counts: ``[K, T]`` attacks on each target under it (zero rows are padding).
    """

    coverage: Any
    counts: Any

    @property
    def n_attacks(self) -> int:
        return int(np.sum(np.asarray(self.counts)))


def check_attack_data(game: SecurityGame, data: AttackData) -> AttackData:
    """Validate ``data`` against ``game`` (shapes, coverage in the polytope, counts >= 0)."""
    c = np.asarray(data.coverage, np.float64)
    n = np.asarray(data.counts, np.float64)
    T = game.n_targets
    if c.ndim != 2 or c.shape[1] != T:
        raise DatasetValidationError(f"coverage: expected shape (K, {T}), got {c.shape}")
    if n.shape != c.shape:
        raise DatasetValidationError(f"counts: expected shape {c.shape}, got {n.shape}")
    if not (np.all(np.isfinite(c)) and np.all(c >= -1e-9) and np.all(c <= 1 + 1e-9)):
        raise DatasetValidationError("coverage: entries must lie in [0, 1]")
    if np.any(c.sum(axis=1) > game.resources + 1e-6):
        raise DatasetValidationError(f"coverage: a row exceeds the budget m = {game.resources}")
    if not np.all(np.isfinite(n)) or np.any(n < 0) or np.any(n != np.round(n)):
        raise DatasetValidationError("counts: must be non-negative integers")
    return AttackData(jnp.asarray(c), jnp.asarray(n))


def attack_stats(game: SecurityGame, data: AttackData) -> CommitmentStats:
    """The :class:`~bayes_qse.commitment.CommitmentStats` of eq. (7c) for attack data."""
    return CommitmentStats(suqr_features(game, data.coverage), jnp.asarray(data.counts))


def suqr_log_likelihood(theta: Array, game: SecurityGame, data: AttackData) -> Array:
    """``L(w)`` of eq. (7c) for the SUQR attacker; pure and differentiable."""
    return log_likelihood(theta, as_model(game), attack_stats(game, data))


def simulate_attacks(
    key: Array, game: SecurityGame, theta: Array, coverage: Array, n_per_commitment: int = 1
) -> AttackData:
    """Draw ``n_per_commitment`` SUQR attacks (eq. 8a) under each ``coverage[K, T]``; pure."""
    log_q = attack_log_probs(jnp.asarray(theta), game, coverage)  # [K, T]
    idx = jax.random.categorical(key, log_q, axis=-1, shape=(n_per_commitment, log_q.shape[0]))
    counts = jnp.sum(jax.nn.one_hot(idx, log_q.shape[-1], dtype=log_q.dtype), axis=0)
    return AttackData(jnp.asarray(coverage), counts)


def random_coverages(key: Array, n_targets: int, resources: float, n: int) -> Array:
    """``[n, T]`` commitments spread over the polytope: budget shares from a flat Dirichlet,
    capped at 1 (a behaviour policy for offline data)."""
    shares = jax.random.dirichlet(key, jnp.ones(n_targets + 1), (n,))[:, :n_targets]
    return jnp.minimum(resources * shares, 1.0)


# ---------------------------------------------------------------------------------------
# MLE and MAP
# ---------------------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("max_steps",))
def map_core(model, stats, prior_precision, theta0, max_steps=50):
    """Pure Newton MAP/MLE of :func:`bayes_qse.likelihood.log_posterior` (eq. 7c plus the
    Gaussian log-prior of precision ``prior_precision``; ``0``: the MLE) for the follower
    ``model`` and :class:`~bayes_qse.commitment.CommitmentStats` ``stats``:
    ``(w, L, neg_hessian, n_iter, converged)``."""
    return newton_maximize(
        lambda th: log_posterior(th, model, stats, prior_precision), theta0, max_steps
    )


def fit_suqr_mle(
    game: SecurityGame, data: AttackData, theta0: Any = None, max_steps: int = 50
) -> MLEFit:
    """The MLE of the SUQR weights (eq. 7c) by damped Newton, with its Fisher information.

    When the data separate a direction (too few attacks, e.g. all on one target) the
    likelihood has no maximum: ``converged`` is False and ``std_err`` huge; check it.
    """
    data = check_attack_data(game, data)
    if data.n_attacks < 1:
        raise DatasetValidationError("counts: no attacks observed")
    th0 = jnp.zeros(3) if theta0 is None else jnp.asarray(theta0, jnp.float64)
    stats = attack_stats(game, data)
    theta, ll, fisher, it, conv = map_core(as_model(game), stats, 0.0, th0, max_steps)
    fisher = np.asarray(fisher)
    lam, vecs = np.linalg.eigh(fisher)
    null = lam <= 1e-9 * max(abs(lam).max(), 1e-300)
    cov = np.linalg.pinv(fisher, rcond=1e-12, hermitian=True)
    std = np.sqrt(np.abs(np.diag(cov)))
    if np.any(null):
        touched = np.any(np.abs(vecs[:, null]) > 1e-8, axis=1)
        std = np.where(touched, np.inf, std)
    return MLEFit(
        theta=np.asarray(theta),
        cov=cov,
        log_likelihood=float(ll),
        std_err=std,
        fisher=fisher,
        n_iter=int(it),
        converged=bool(conv),
        non_identified=[vecs[:, i] for i in np.flatnonzero(null)],
    )


# ---------------------------------------------------------------------------------------
# Posteriors
# ---------------------------------------------------------------------------------------


def _nuts_log_density(theta, data_r):
    """``(w, (psi, counts, lambda)) -> log posterior`` for NUTS (arrays only, so that the
    batched sampler can map over datasets)."""
    psi, counts, prior_precision = data_r
    return log_posterior(theta, SUQR_MODEL, CommitmentStats(psi, counts), prior_precision)


def suqr_posterior(
    game: SecurityGame,
    data: AttackData,
    *,
    method: str = "laplace",
    prior_scale: float = 10.0,
    num_samples: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 2,
    seed: int = 0,
) -> Posterior:
    """Posterior of the SUQR weights under ``N(0, prior_scale^2 I)`` (docs/math.md §2).

    ``method="laplace"``: ``N(MAP, (I + I/sigma^2)^-1)``; ``"nuts"``: ``num_chains`` NUTS
    chains from the MAP (NumPyro's sampler, vectorised over chains).
    """
    if method not in ("laplace", "nuts"):
        raise BayesQSEInputError(f"method: must be 'laplace' or 'nuts', got {method!r}")
    if not prior_scale > 0:
        raise BayesQSEInputError(f"prior_scale: must be > 0, got {prior_scale!r}")
    data = check_attack_data(game, data)
    stats = attack_stats(game, data)
    lam = 1.0 / float(prior_scale) ** 2
    w_map, _, neg_h, _, _ = map_core(as_model(game), stats, lam, jnp.zeros(3), 50)
    key = jax.random.PRNGKey(seed)
    if method == "laplace":
        draws = laplace_draws(key, w_map, neg_h, int(num_samples))
        cov = np.linalg.inv(np.asarray(neg_h))
        diagnostics = {"r_hat": None, "ess": np.full(3, float(num_samples)), "divergences": 0}
        diagnostics["warnings"] = []
        return Posterior(
            theta=np.asarray(draws), method="laplace", diagnostics=diagnostics, num_chains=1,
            cov=cov, map_theta=np.asarray(w_map), prior="normal", prior_scale=float(prior_scale),
        )  # fmt: skip
    out = nuts(
        key, _nuts_log_density, w_map, (stats.psi, stats.counts, jnp.asarray(lam)),
        num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains, dense_mass=True,
    )  # fmt: skip
    diagnostics = {
        "r_hat": None,
        "ess": out.ess,
        "divergences": int(out.diverging.sum()),
        "warnings": [],
    }
    return Posterior(
        theta=out.draws.reshape(-1, 3), method="nuts", diagnostics=diagnostics,
        num_chains=int(num_chains), map_theta=np.asarray(w_map), prior="normal",
        prior_scale=float(prior_scale), diverging=out.diverging.reshape(-1),
    )  # fmt: skip


def suqr_numpyro_model(psi, counts, prior_scale: float | None = None):
    """NumPyro model of eq. (7c): ``w ~ N(0, prior_scale^2 I)`` (or flat when ``None``) and the
    likelihood as a factor; its potential energy is ``-log posterior``."""
    if prior_scale is None:
        prior = dist.ImproperUniform(constraints.real_vector, (), (3,))
    else:
        prior = dist.Normal(jnp.zeros(3), prior_scale).to_event(1)
    w = numpyro.sample("theta", prior)
    numpyro.factor("log_likelihood", log_likelihood(w, SUQR_MODEL, CommitmentStats(psi, counts)))
