"""Learning the SUQR attacker from attack data (docs/math.md eq. 7c, §2).

Data are (commitment, attack) pairs grouped by commitment: ``coverage[K, T]`` and
``counts[K, T]`` (attacks on each target under commitment ``k``; zero rows are padding).  The
log-likelihood is eq. (7c) with the SUQR features of eq. (8a); it is a multinomial logit in
``w``, so

- :func:`fit_suqr_mle`: the core's MLE (:func:`bayes_qse.mle.fit_likelihood`: Newton, the
  separation LP, the bounded MLE) with the observed Fisher information (an
  :class:`~bayes_qse.mle.MLEFit`, so :func:`bayes_qse.sets.wald_ellipsoid` gives its Wald set);
- :func:`suqr_posterior`: Laplace (MAP + Gaussian) or NUTS under a ``N(0, prior_scale^2 I)``
  or flat prior, through the core's posterior builder
  (:func:`bayes_qse.inference.posterior_from_stats`);
- :func:`suqr_numpyro_model`: the same likelihood as a NumPyro model (flat or normal prior).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from .._validate import as_float_array
from ..bounded import check_constraints
from ..commitment import CommitmentStats
from ..errors import BayesQSEInputError, DatasetValidationError
from ..inference import _check_sampling, posterior_from_stats
from ..likelihood import log_likelihood
from ..mle import MLEFit, fit_likelihood
from ..model import as_model
from ..posterior import Posterior
from ..types import Array
from .game import SUQR_MODEL, SecurityGame, attack_log_probs, suqr_features


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
# MLE and posteriors: the core's fit and posterior builder on the SUQR statistics
# ---------------------------------------------------------------------------------------


def _suqr_identifiability(dirs: list) -> str:
    shown = ", ".join(np.array2string(v, precision=3) for v in dirs)
    return (
        f"fit_suqr_mle: the SUQR weights are not identified along {shown} (the observed Fisher "
        "information is singular there: too few commitments, or features that do not vary "
        "across the targets); std_err is inf along these directions"
    )


def fit_suqr_mle(
    game: SecurityGame,
    data: AttackData,
    theta0: Any = None,
    max_steps: int = 100,
    *,
    lower: Any = None,
    upper: Any = None,
    radius: float | None = None,
) -> MLEFit:
    """The MLE of the SUQR weights ``w = (w1, w2, w3)`` (eq. 7c) by damped Newton, with its
    Fisher information -- the same fit as :func:`bayes_qse.inference.fit_mle`
    (:func:`bayes_qse.mle.fit_likelihood`).

    When the attacks separate a direction (e.g. all on the most rewarding target) the
    likelihood has no maximum: the LP of docs/math.md §2.3 finds it, ``converged`` is False,
    ``theta`` is the MLE of the limiting model, ``std_err`` is inf along the separated
    directions, and a :class:`~bayes_qse.errors.SeparationWarning` names the directions and
    the cells ``(k, t)`` (commitment, target) whose attack probability tends to 0.

    ``lower``, ``upper`` (a box, e.g. ``lower=[-inf, 0, 0]``) and ``radius``
    (``||w|| <= radius``): the bounded MLE of docs/math.md §2.4, with ``kkt_residual`` and the
    ``active`` constraints' multipliers.
    """
    data = check_attack_data(game, data)
    if data.n_attacks < 1:
        raise DatasetValidationError("counts: no attacks observed")
    th0 = np.zeros(3) if theta0 is None else as_float_array(theta0, "theta0", 1)
    if th0.shape != (3,):
        raise BayesQSEInputError(f"theta0: expected shape (3,), got {th0.shape}")
    constraints = check_constraints(lower, upper, radius, 3)
    stats = attack_stats(game, data)
    return fit_likelihood(
        as_model(game),
        stats,
        th0,
        constraints=constraints,
        identifiability_message=_suqr_identifiability,
        caller="fit_suqr_mle",
        max_steps=int(max_steps),
    )


def suqr_posterior(
    game: SecurityGame,
    data: AttackData,
    *,
    method: str = "laplace",
    prior: str = "normal",
    prior_scale: float = 10.0,
    num_samples: int = 1000,
    num_warmup: int = 500,
    num_chains: int = 2,
    seed: int = 0,
    chain_method: str = "vectorized",
    progress: bool | Callable[[str], None] = False,
) -> Posterior:
    """Posterior of the SUQR weights (docs/math.md §2) through the core's posterior builder
    (:func:`bayes_qse.inference.posterior_from_stats`): the same diagnostics and guards as
    :func:`bayes_qse.inference.sample_posterior`.

    ``prior``: ``"normal"`` (``w ~ N(0, prior_scale^2 I)``) or ``"flat"`` (improper).
    ``method="laplace"``: ``N(MAP, (I + I/sigma^2)^-1)``; raises
    :class:`~bayes_qse.errors.BayesQSEInputError` when that precision is not positive
    definite (e.g. a flat prior on separated data).  ``"nuts"``: ``num_chains`` NUTS chains
    from the MAP (NumPyro's sampler, vectorised over chains, dense mass matrix); diagnostics
    carry split R-hat, ESS and divergences, and :class:`PosteriorDiagnosticsWarning` is issued
    when R-hat > 1.01, ESS < 100 or a transition diverged.
    """
    prior_scale = _check_sampling(method, prior, prior_scale, num_samples, num_warmup, num_chains)
    data = check_attack_data(game, data)
    return posterior_from_stats(
        as_model(game),
        attack_stats(game, data),
        3,
        method=method,
        seed=seed,
        prior=prior,
        prior_scale=prior_scale,
        num_samples=num_samples,
        num_warmup=num_warmup,
        num_chains=num_chains,
        chain_method=chain_method,
        progress=progress,
        dense_mass=True,
    )


def suqr_numpyro_model(psi, counts, prior_scale: float | None = None):
    """NumPyro model of eq. (7c): ``w ~ N(0, prior_scale^2 I)`` (or flat when ``None``) and the
    likelihood as a factor; its potential energy is ``-log posterior``."""
    if prior_scale is None:
        prior = dist.ImproperUniform(constraints.real_vector, (), (3,))
    else:
        prior = dist.Normal(jnp.zeros(3), prior_scale).to_event(1)
    w = numpyro.sample("theta", prior)
    numpyro.factor("log_likelihood", log_likelihood(w, SUQR_MODEL, CommitmentStats(psi, counts)))


__all__ = [
    "AttackData",
    "attack_stats",
    "check_attack_data",
    "fit_suqr_mle",
    "random_coverages",
    "simulate_attacks",
    "suqr_log_likelihood",
    "suqr_numpyro_model",
    "suqr_posterior",
]
