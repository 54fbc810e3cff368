"""Learning the follower's ``theta`` from episodes (docs/math.md §2): MLE with the observed Fisher
information, the MAP/Laplace posterior and NUTS — all on the one likelihood (4) of
:mod:`bayes_qse.likelihood`.

- The pure, jit-able core is :func:`bayes_qse.likelihood.map_core`: damped Newton
  (:func:`bayes_qse.optim.newton_maximize`) on ``L(theta) - theta' Lambda theta / 2``
  (``Lambda = I / prior_scale^2`` the prior precision; ``0`` gives the MLE) for any follower
  model and statistics type.  It returns the optimum and the negative Hessian there: the
  observed Fisher information ``I = -Hess L`` (plus ``Lambda``), shared by the Wald set and
  Laplace.  :func:`map_newton` is its deprecated former front end.
- :func:`fit_mle` wraps it (:func:`bayes_qse.mle.fit_likelihood`) for a
  :class:`~bayes_qse.data.Dataset` or grouped counts (:mod:`bayes_qse.counts`, dispatched by
  :func:`bayes_qse.fit_data.resolve_data`): float64, standard errors, and the detection
  of non-identified directions (:mod:`bayes_qse.identification`).
- :func:`sample_posterior` gives a :class:`~bayes_qse.posterior.Posterior` by NUTS
  (:func:`bayes_qse.samplers.nuts`, all chains vectorised) or by Laplace (Gaussian at the MAP,
  covariance ``(I + Lambda)^-1``).

Every public function takes the game as a :class:`~bayes_qse.games.Game`, a
:class:`~bayes_qse.learners.GameSpec` or a :class:`~bayes_qse.model.Model`
(:func:`bayes_qse.model.as_model`).  The Gaussian prior is named by its standard deviation
``prior_scale`` in public signatures; cores take the precision ``1 / prior_scale^2``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import samplers
from ._validate import as_float_array, check_positive_scalar
from .bounded import check_constraints
from .data import Dataset, EpisodeBuffer
from .errors import BayesQSEInputError
from .fit_data import resolve_data
from .identification import identifiability_message
from .likelihood import log_posterior, map_core, response_counts
from .mle import MLEFit, choice_data, fit_likelihood
from .model import Model
from .posterior import Posterior, laplace_posterior, nuts_posterior
from .separation import describe_separation, find_separation
from .types import Array

# ---------------------------------------------------------------------------------------
# Pure core: the log-posterior and damped Newton to the MLE / MAP
# ---------------------------------------------------------------------------------------


def _objective(model, stats, prior_precision):
    """``theta -> L(theta) - theta' Lambda theta / 2`` with a scalar ``Lambda`` taken as the
    matrix ``Lambda * I`` (the rounding of the published NUTS and Laplace results)."""

    def objective(th):
        return log_posterior(th, model, stats, _precision_matrix(prior_precision, th.shape[-1]))

    return objective


def _precision_matrix(prior_precision: Array | float, d: int) -> Array:
    """``Lambda`` as a ``[d,d]`` matrix (a scalar times the identity)."""
    lam = jnp.asarray(prior_precision, jnp.float64)
    return lam * jnp.eye(d) if lam.ndim == 0 else lam


def map_newton_model(model, stats, prior_precision, theta0, n_steps=100):
    """Deprecated (removed in the next release): :func:`bayes_qse.likelihood.map_core` with a
    scalar ``prior_precision`` taken as ``prior_precision * I``."""
    warnings.warn(
        "map_newton_model is deprecated: use bayes_qse.likelihood.map_core",
        DeprecationWarning,
        stacklevel=2,
    )
    d = np.shape(theta0)[-1]
    return map_core(model, stats, _precision_matrix(prior_precision, d), theta0, int(n_steps))


def map_newton(
    buffer: EpisodeBuffer,
    features: Array,
    transitions: Array | None,
    eta: Array | float,
    prior_precision: Array | float,
    theta0: Array,
    n_steps: int = 50,
    farsighted: bool = False,
) -> tuple[Array, Array]:
    """Deprecated (removed in the next release): ``map_core(Model(features, eta, transitions,
    farsighted=farsighted), stats, prior_precision * I, theta0, n_steps)[::2]`` of
    :func:`bayes_qse.likelihood.map_core`, with ``stats`` the response counts of ``buffer``
    for a myopic follower.  Returns ``(theta_hat[d], neg_hessian[d,d])``."""
    warnings.warn(
        "map_newton is deprecated: use bayes_qse.likelihood.map_core",
        DeprecationWarning,
        stacklevel=2,
    )
    model = Model(features, eta, transitions if farsighted else None, farsighted=bool(farsighted))
    stats = buffer
    if not farsighted and isinstance(buffer, EpisodeBuffer):
        stats = response_counts(buffer, tuple(np.shape(features)[:4]))
    d = np.shape(features)[-1]
    theta, _, neg_h, _, _ = map_core(
        model, stats, _precision_matrix(prior_precision, d), theta0, int(n_steps)
    )
    return theta, neg_h


# ---------------------------------------------------------------------------------------
# The game's model, validated
# ---------------------------------------------------------------------------------------


def _theta0(theta0: Any, d: int) -> np.ndarray:
    if theta0 is None:
        return np.zeros(d)
    th = as_float_array(theta0, "theta0", 1)
    if th.shape != (d,):
        raise BayesQSEInputError(f"theta0: expected shape ({d},), got {th.shape}")
    return th


# ---------------------------------------------------------------------------------------
# MLE
# ---------------------------------------------------------------------------------------


def fit_mle(
    dataset: Dataset,
    game: Any,
    *,
    theta0: Any = None,
    max_steps: int = 100,
    lower: Any = None,
    upper: Any = None,
    radius: float | None = None,
) -> MLEFit:
    """Maximum-likelihood estimate of ``theta`` (eq. 4 / 7c / 9d), float64 damped Newton.

    Args:
        dataset: the episodes (a :class:`~bayes_qse.data.Dataset`), or grouped counts: a
            :class:`~bayes_qse.counts.CommitmentCounts` (a follower answering the announced
            commitment, eq. 7) or :class:`~bayes_qse.counts.ActionCounts` (a myopic follower
            answering the realised action); the type names the follower
            (:func:`bayes_qse.fit_data.resolve_data`).
        game: a :class:`~bayes_qse.games.Game`, :class:`~bayes_qse.learners.GameSpec` or
            :class:`~bayes_qse.model.Model` (its features, eta, follower model and, for a
            farsighted follower, transitions are used).
        theta0: ``[d]`` start (zeros by default).
        max_steps: Newton step limit.
        lower, upper: a box ``lower <= theta <= upper`` (scalars or ``[d]``, may be
            infinite): the bounded MLE of docs/math.md §2.4.
        radius: the paper's bounded class ``||theta|| <= radius`` (alone or with the box).

    Returns:
        :class:`MLEFit`.  For a myopic follower the separation LP (docs/math.md §2.3) runs
        first: when the MLE does not exist, ``converged`` is False, ``theta`` is the MLE of
        the limiting model, ``std_err`` is inf along the separated directions and a
        :class:`~bayes_qse.errors.SeparationWarning` (a ``RuntimeWarning``) names them and the
        cells ``(h, s, a, b)`` whose fitted probability tends to 0.  Warns
        :class:`IdentifiabilityWarning` if the observed Fisher information has a null space
        (naming the constant-across-``b`` feature directions as the likely cause) and
        ``RuntimeWarning`` if Newton (or, bounded, the KKT check) did not converge.  A
        farsighted follower's likelihood is not a multinomial logit in ``theta``: there the
        LP does not apply, and only Newton's non-convergence is reported.
    """
    model, stats = resolve_data(dataset, game)
    d = model.feature_dim
    th0 = _theta0(theta0, d)
    constraints = check_constraints(lower, upper, radius, d)
    m = model

    def message(dirs: list) -> str:
        return identifiability_message(dirs, m.features, m.farsighted)

    return fit_likelihood(
        model,
        stats,
        th0,
        constraints=constraints,
        identifiability_message=message,
        caller="fit_mle",
        max_steps=int(max_steps),
    )


# ---------------------------------------------------------------------------------------
# Posteriors: Laplace and NUTS
# ---------------------------------------------------------------------------------------


def laplace_draws(key: Array, theta_hat: Array, precision: Array, num_samples: int) -> Array:
    """``[M,d]`` draws from ``N(theta_hat, precision^-1)``; pure, jit-able (M static).

    Uses the Cholesky factor ``L L' = precision``: ``theta = theta_hat + L'^-1 z``.
    """
    chol = jnp.linalg.cholesky(precision)
    z = jax.random.normal(key, (num_samples, theta_hat.shape[-1]), dtype=jnp.float64)
    x = jax.scipy.linalg.solve_triangular(chol.T, z.T, lower=False).T
    return theta_hat + x


@functools.lru_cache(maxsize=16)
def _log_density(fixed_coordinate: int | None) -> Callable:
    """``log_density(z, args)``: the log-posterior sampled by NUTS (one function object per
    setting, so that :func:`bayes_qse.samplers.nuts` compiles once per shape).

    ``args = (model, stats, prior_precision, log_eta_mean, log_eta_sd)`` with ``model`` the
    follower's :class:`Model` pytree (any follower kind) and ``stats`` its statistics.
    Without ``fixed_coordinate``, ``z = theta`` and the density is :func:`_objective`:
    ``L(theta) - theta' Lambda theta / 2`` (eq. 4; ``Lambda = 0`` for the flat prior).  With
    ``fixed_coordinate = k`` the rationality is a parameter too (docs/math.md §1.3):
    ``z = (theta without coordinate k, log eta)``, ``theta[k] = 1``, and
    ``log eta ~ Normal(log_eta_mean, log_eta_sd)`` is added.
    """

    def log_density(z, args):
        model, stats, precision, log_eta_mean, log_eta_sd = args
        if fixed_coordinate is None:
            return _objective(model, stats, precision)(z)
        theta = jnp.insert(z[:-1], fixed_coordinate, 1.0)
        log_eta = z[-1]
        post = _objective(model.replace(eta=jnp.exp(log_eta)), stats, precision)
        log_prior_eta = -0.5 * ((log_eta - log_eta_mean) / log_eta_sd) ** 2
        # the prior is on the free coordinates: drop the fixed one's constant -Lambda/2
        return post(theta) + 0.5 * precision + log_prior_eta

    return log_density


def _check_sampling(method, prior, prior_scale, num_samples, num_warmup, num_chains) -> float:
    if method not in ("nuts", "laplace"):
        raise BayesQSEInputError(f"method: must be 'nuts' or 'laplace', got {method!r}")
    if prior not in ("normal", "flat"):
        raise BayesQSEInputError(f"prior: must be 'normal' or 'flat', got {prior!r}")
    prior_scale = check_positive_scalar(prior_scale, "prior_scale")
    for name, v in (("num_samples", num_samples), ("num_chains", num_chains)):
        if int(v) != v or v < 1:
            raise BayesQSEInputError(f"{name}: must be a positive integer, got {v!r}")
    if int(num_warmup) != num_warmup or num_warmup < 0:
        raise BayesQSEInputError(f"num_warmup: must be an integer >= 0, got {num_warmup!r}")
    return prior_scale


def sample_posterior(
    dataset: Dataset,
    game: Any,
    *,
    method: str = "nuts",
    num_samples: int = 1000,
    seed: int = 0,
    prior: str = "normal",
    prior_scale: float = 1.0,
    num_warmup: int = 500,
    num_chains: int = 1,
    chain_method: str = "vectorized",
    eta_unknown: bool = False,
    fixed_coordinate: int = 0,
    log_eta_prior: tuple[float, float] = (0.0, 1.0),
    progress: bool | Callable[[str], None] = False,
) -> Posterior:
    """Posterior of ``theta`` given episodes or grouped counts, with the likelihood (4) /
    (7c) / (9d).

    Args:
        dataset, game: as in :func:`fit_mle` (a ``Dataset``, ``CommitmentCounts`` or
            ``ActionCounts``).
        method: ``"nuts"`` (NumPyro's NUTS kernel, :func:`bayes_qse.samplers.nuts`) or
            ``"laplace"`` (Gaussian at the MAP with the Hessian of the Wald set, float64).
        num_samples: draws per chain.
        seed: integer seed (the JAX key).
        prior: ``"normal"`` (``theta ~ N(0, prior_scale^2 I)``) or ``"flat"`` (improper).
        prior_scale: sigma of the Normal prior.
        num_warmup, num_chains: NUTS settings; the chains run side by side (vectorised).
        chain_method: ``"vectorized"``, ``"sequential"`` (one chain after another) or
            ``"parallel"`` (chains split over the local devices, e.g.
            ``XLA_FLAGS=--xla_force_host_platform_device_count=4``); the draws are the same.
        eta_unknown: infer ``eta`` too (NUTS only; docs/math.md §1.3): ``theta`` is normalised by
            ``theta[fixed_coordinate] = 1``, ``log eta ~ Normal(*log_eta_prior)``, and the
            game's ``eta`` is ignored.  Draws of ``eta`` are in ``Posterior.eta``;
            diagnostics add ``r_hat_eta`` and ``ess_eta`` (the fixed coordinate reports
            ``r_hat = 1`` and ``ess = M``).
        fixed_coordinate, log_eta_prior: see ``eta_unknown``.
        progress: NUTS only.  ``True`` prints a line such as ``NUTS chain 1/1 warm-up
            50/500`` on stderr after each tenth of the warm-up and of the sampling; a callable
            receives those lines instead; ``False`` (default) is silent.  The draws are the
            same either way.

    Returns:
        :class:`Posterior`.  NUTS warns :class:`PosteriorDiagnosticsWarning` when R-hat > 1.01,
        ESS < 100 or any transition diverged.

    Raises:
        BayesQSEInputError: bad arguments; a flat prior on separated data (the posterior is
            improper, docs/math.md §2.3); or (Laplace) a negative Hessian at the MAP that is
            not positive definite (a flat direction under a flat prior).
    """
    prior_scale = _check_sampling(method, prior, prior_scale, num_samples, num_warmup, num_chains)
    if chain_method not in samplers.CHAIN_METHODS:
        raise BayesQSEInputError(
            f"chain_method: must be one of {samplers.CHAIN_METHODS}, got {chain_method!r}"
        )
    nuts_kw = dict(
        num_warmup=int(num_warmup),
        num_samples=int(num_samples),
        num_chains=int(num_chains),
        chain_method=chain_method,
        progress=progress,
    )
    model, stats = resolve_data(dataset, game)
    m = model
    return posterior_from_stats(
        model,
        stats,
        m.features.shape[-1],
        method=method,
        seed=seed,
        prior=prior,
        prior_scale=prior_scale,
        eta_unknown=eta_unknown,
        fixed_coordinate=fixed_coordinate,
        log_eta_prior=log_eta_prior,
        **nuts_kw,
    )


def posterior_from_stats(
    model: Model,
    stats: Any,
    d: int,
    *,
    method: str,
    seed: int,
    prior: str,
    prior_scale: float,
    num_samples: int,
    num_warmup: int,
    num_chains: int,
    chain_method: str = "vectorized",
    progress: bool | Callable[[str], None] = False,
    dense_mass: bool = False,
    eta_unknown: bool = False,
    fixed_coordinate: int = 0,
    log_eta_prior: tuple[float, float] = (0.0, 1.0),
) -> Posterior:
    """The posterior builder behind :func:`sample_posterior` and
    :func:`bayes_qse.security.suqr_posterior`: Laplace or NUTS on
    ``log_posterior(theta, model, stats, Lambda)`` for any follower kind (docs/math.md §2).

    Arguments as in :func:`sample_posterior` (already validated), with ``model`` the follower's
    :class:`Model` and ``stats`` its sufficient statistics (counts, an episode buffer or
    :class:`~bayes_qse.commitment.CommitmentStats`); ``dense_mass``: NUTS adapts a dense mass
    matrix.  NUTS starts from the MAP when Newton converged (else 0), reports split R-hat,
    ESS and divergences and warns :class:`PosteriorDiagnosticsWarning`; Laplace raises
    :class:`BayesQSEInputError` when the negative Hessian at the MAP is not positive definite.
    """
    nuts_kw = dict(
        num_warmup=int(num_warmup),
        num_samples=int(num_samples),
        num_chains=int(num_chains),
        chain_method=chain_method,
        progress=progress,
        dense_mass=bool(dense_mass),
    )
    precision_prior = 0.0 if prior == "flat" else 1.0 / prior_scale**2
    if prior == "flat":
        _check_proper(model, stats)
    key = jax.random.key(seed)
    if eta_unknown:
        if method != "nuts":
            raise BayesQSEInputError("method: eta_unknown needs method='nuts'")
        return _sample_eta_unknown(
            model,
            stats,
            d,
            key,
            precision_prior,
            prior,
            prior_scale,
            fixed_coordinate,
            log_eta_prior,
            nuts_kw,
        )

    theta_map, _, neg_h, _, converged = map_core(
        model, stats, _precision_matrix(precision_prior, d), np.zeros(d), 100
    )
    if method == "laplace":
        return _laplace(key, theta_map, neg_h, converged, int(num_samples), prior, prior_scale)

    init = np.asarray(theta_map) if bool(converged) else np.zeros(d)
    args = (model, stats, precision_prior, 0.0, 1.0)
    res = samplers.nuts(key, _log_density(None), init, _as_jax(args), **nuts_kw)
    map_theta = np.asarray(theta_map) if bool(converged) else None
    return nuts_posterior(res.draws, res.diverging, prior, prior_scale, map_theta=map_theta)


def _check_proper(model: Model, stats: Any) -> None:
    """Under a flat prior the posterior of a multinomial logit is improper exactly when the
    MLE does not exist (separation, docs/math.md §2.3): refuse, naming ``prior``."""
    choice = choice_data(model, stats)
    if choice is None:
        return
    sep = find_separation(choice.features, choice.counts)
    if sep.separated:
        raise BayesQSEInputError(
            "prior: the flat-prior posterior is improper on these data ("
            + describe_separation(sep, choice.cell_names)
            + "); use prior='normal'"
        )


def _as_jax(args: Any) -> Any:
    return jax.tree_util.tree_map(jnp.asarray, args)


def _laplace(key, theta_map, neg_h, converged, num_samples, prior, prior_scale) -> Posterior:
    """The Laplace posterior ``N(MAP, (I + Lambda)^-1)`` (docs/math.md §2)."""
    precision = np.asarray(neg_h)
    precision = 0.5 * (precision + precision.T)
    lam = np.linalg.eigvalsh(precision)
    if not bool(converged) or lam.min() <= 1e-9 * max(abs(lam).max(), 1e-300):
        raise BayesQSEInputError(
            "laplace: the negative Hessian of the log-posterior at the MAP is not positive "
            f"definite (eigenvalues in [{lam.min():.3g}, {lam.max():.3g}], Newton converged: "
            f"{bool(converged)}); theta is not identified under this prior — use "
            "prior='normal' or re-code the features (see fit_mle's warning)"
        )
    draws = laplace_draws(key, jnp.asarray(theta_map), jnp.asarray(precision), num_samples)
    cov = np.linalg.inv(precision)
    return laplace_posterior(draws, cov, np.asarray(theta_map), prior, prior_scale)


def _sample_eta_unknown(
    model,
    stats,
    d,
    key,
    precision_prior,
    prior,
    prior_scale,
    fixed_coordinate,
    log_eta_prior,
    nuts_kw,
) -> Posterior:
    """NUTS over ``(theta with theta[k] = 1, log eta)``; see :func:`sample_posterior`."""
    k = int(fixed_coordinate)
    if d < 1 or not 0 <= k < d:
        raise BayesQSEInputError(f"fixed_coordinate: must lie in [0, {d}), got {fixed_coordinate}")
    mean, sd = (float(x) for x in log_eta_prior)
    check_positive_scalar(sd, "log_eta_prior")
    args = (model, stats, precision_prior, mean, sd)
    init = np.append(np.zeros(d - 1), mean)
    res = samplers.nuts(key, _log_density(k), init, _as_jax(args), **nuts_kw)
    chains = np.insert(res.draws[..., :-1], k, 1.0, axis=-1)
    eta_chains = np.exp(res.draws[..., -1])
    return nuts_posterior(
        chains,
        res.diverging,
        prior,
        prior_scale,
        eta_chains=eta_chains,
        fixed_coordinate=k,
    )


__all__ = [
    "fit_mle",
    "laplace_draws",
    "map_newton",
    "sample_posterior",
]
