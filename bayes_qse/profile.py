"""Confidence-set geometry and coverage statistics for a myopic follower (docs/math.md §3 and
§7, experiment 3): the functionals ``g(theta)`` whose intervals are covered (responses, the
leader value), the MLE/MAP from response counts, boundary rays of the Wald and likelihood-ratio
sets and their projections (profile intervals), credible-set statistics from posterior draws,
the expected-count pseudo-true parameter of a misspecified model, and Clopper-Pearson bands.

Everything here works on the myopic likelihood's sufficient statistics, the response counts
``counts[H,S,A,B]`` of :func:`bayes_qse.likelihood.response_counts`; the pure pieces are
``jit``/``vmap``-able over replications.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .data import EpisodeBuffer, play_episode
from .follower import myopic_log_response
from .games import ARRAY_FIELDS, Game
from .likelihood import log_likelihood, log_posterior, map_core, response_counts
from .model import Model
from .optim import newton_maximize
from .planning import evaluate_policy
from .sets import credible_box, hpd_region


def response_occupancy(game: Game, policy: Any, nu: Any) -> np.ndarray:
    """Expected counts per episode ``x[H,S,A,B] = P(s_h=s, a_h=a, b_h=b)`` under ``policy`` and
    the follower response ``nu[H,S,A,B]`` (forward recursion from ``rho``)."""
    P = np.asarray(game.transitions)
    d = np.asarray(game.initial_dist)
    out = []
    for h in range(P.shape[0]):
        x = d[:, None, None] * np.asarray(policy)[h][:, :, None] * np.asarray(nu)[h]
        out.append(x)
        d = np.einsum("sab,sabt->t", x, P[h])
    return np.stack(out)


def pseudo_true_theta(game: Game, nu_true: Any, behaviour: Any) -> np.ndarray:
    """The KL projection of the true response onto the model (the limit of the MLE):
    ``argmax_theta sum x_h(s,a,b) log nu_theta(b|s,a)`` with ``x`` the expected counts of
    :func:`response_occupancy` under ``behaviour`` (eq. 4 in expectation)."""
    x = jnp.asarray(response_occupancy(game, behaviour, nu_true))
    phi, eta = jnp.asarray(game.features), game.eta
    objective = lambda th: log_likelihood(th, Model(phi, eta), x)
    theta, *_ = jax.jit(lambda t0: newton_maximize(objective, t0, 100))(jnp.zeros(phi.shape[-1]))
    return np.asarray(theta)


def functionals(theta: jax.Array, model: Model, policy: jax.Array) -> jax.Array:
    """``g(theta)[G]``: the myopic response ``nu[H,S,A,B]`` (eq. 1d), flattened, then the
    leader value ``J(policy)`` (eq. 2) under it (``model`` with the leader's arrays)."""
    nu = jnp.exp(myopic_log_response(model, theta))
    v, _ = evaluate_policy(model, nu, policy)
    return jnp.concatenate([nu.reshape(-1), (model.initial_dist @ v[0])[None]])


def simulate_counts(
    game: Game, behaviour: Any, keys: jax.Array, n_episodes: int, theta: Any = None
) -> jax.Array:
    """``counts[R,H,S,A,B]``: one dataset of ``n_episodes`` per key in ``keys[R]``, played by
    :func:`~bayes_qse.data.play_episode`; with ``theta[R,d]`` dataset ``r`` uses the follower
    ``theta[r]`` instead of the game's."""

    def one(args):
        key, th = args
        g = game if th is None else with_theta(game, th)
        ks = jax.random.split(key, n_episodes)
        ep = jax.vmap(play_episode, in_axes=(None, None, 0))(g, behaviour, ks)
        buf = EpisodeBuffer(
            ep.states,
            ep.leader_actions,
            ep.follower_actions,
            ep.rewards,
            ep.policy,
            jnp.ones(n_episodes, bool),
            jnp.asarray(n_episodes),
        )
        return response_counts(buf, game.shape)

    return jax.lax.map(one, (keys, theta))


def with_theta(game: Game, theta: jax.Array) -> Game:
    """``game`` with its true ``theta`` replaced by a (possibly traced) value, unvalidated."""
    leaves, treedef = jax.tree_util.tree_flatten(game)
    leaves[ARRAY_FIELDS.index("theta")] = theta
    return jax.tree_util.tree_unflatten(treedef, leaves)


def fit_counts(counts, features, eta, prior_precision, n_steps=100):
    """MLE / MAP of eq. (4) (+ Gaussian prior) from counts: ``(theta, L, neg_hess, converged)``."""
    d = features.shape[-1]
    model = Model(features, eta)
    theta, _, neg_h, _, converged = map_core(model, counts, prior_precision, jnp.zeros(d), n_steps)
    return theta, log_likelihood(theta, model, counts), neg_h, converged


def directions(d: int, n: int) -> np.ndarray:
    """``[n, d]`` unit vectors: evenly spaced on the circle for ``d = 2``, else a fixed
    pseudo-random (Gaussian, normalised) set including the ``2d`` coordinate directions."""
    if d == 1:
        return np.array([[1.0], [-1.0]])
    if d == 2:
        a = 2 * np.pi * np.arange(n) / n
        return np.stack([np.cos(a), np.sin(a)], axis=1)
    z = np.random.default_rng(0).normal(size=(max(n - 2 * d, 0), d))
    z = np.concatenate([np.eye(d), -np.eye(d), z])
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def whitener(info: jax.Array) -> jax.Array:
    """``C`` with ``C C' = info^-1`` (eigenvalues floored: flat directions get a huge scale)."""
    lam, vecs = jnp.linalg.eigh(0.5 * (info + info.T))
    floor = 1e-10 * jnp.maximum(jnp.max(jnp.abs(lam)), 1e-12)
    return vecs / jnp.sqrt(jnp.maximum(lam, floor))


def lr_ray_lengths(ll, center, ll_center, rays, radii, theta_cap, n_bisect=30):
    """``t[K, n]``: ``2 (L(c) - L(c + t w)) = radii[k]`` along each ray ``w`` (bisection;
    capped where the set is unbounded within ``|theta - c| <= theta_cap``)."""
    norms = jnp.linalg.norm(rays, axis=-1)
    t_cap = theta_cap / norms

    def stat(t, w):
        return 2.0 * (ll_center - ll(center + t * w))

    def one(w, tcap, beta):
        def grow(_, hi):
            return jnp.where(stat(hi, w) < beta, jnp.minimum(2.0 * hi, tcap), hi)

        hi = jax.lax.fori_loop(0, 12, grow, jnp.minimum(2.0 * jnp.sqrt(beta), tcap))

        def bisect(_, lohi):
            lo, hi = lohi
            mid = 0.5 * (lo + hi)
            inside = stat(mid, w) <= beta
            return jnp.where(inside, mid, lo), jnp.where(inside, hi, mid)

        lo, hi = jax.lax.fori_loop(0, n_bisect, bisect, (0.0, hi))
        return jnp.where(stat(hi, w) <= beta, hi, 0.5 * (lo + hi))

    per_ray = jax.vmap(one, in_axes=(0, 0, None))
    return jax.vmap(lambda beta: per_ray(rays, t_cap, beta))(radii)


def projection(gfun, center, points):
    """``(lo, hi)[..., G]`` of ``g`` over ``points[..., n, d]`` and the centre."""
    g_c = gfun(center)
    g_p = jax.vmap(jax.vmap(gfun))(points)  # [K, n, G]
    return jnp.minimum(g_c, g_p.min(axis=-2)), jnp.maximum(g_c, g_p.max(axis=-2))


def log_unit_ball(d: int) -> float:
    return d / 2 * math.log(math.pi) - math.lgamma(d / 2 + 1)


def credible_stats(
    draws: np.ndarray,
    g_draws: np.ndarray,
    theta_target: np.ndarray,
    g_true: np.ndarray,
    levels: Any,
) -> dict[str, np.ndarray]:
    """Coverage of a posterior's sets for one replication, from its draws.

    ``theta``: the HPD region (:func:`~bayes_qse.sets.hpd_region`, Mahalanobis rank) at each
    level; functionals: equal-tailed intervals (:func:`~bayes_qse.sets.credible_box`) of
    ``g_draws[M, G]``.  Returns ``cover_theta[K]``, ``cover[K, G]``, ``width[K, G]`` and the
    log volume of the 95% HPD ellipsoid.
    """
    d = draws.shape[-1]
    cover_theta, cover, width = [], [], []
    for lv in levels:
        region = hpd_region(draws, lv)
        cover_theta.append(bool(region.contains(theta_target)))
        lo, hi = credible_box(g_draws, lv)
        cover.append((lo <= g_true) & (g_true <= hi))
        width.append(hi - lo)
    r95 = hpd_region(draws, 0.95)
    logdet_prec = np.linalg.slogdet(r95.precision)[1]
    logvol = log_unit_ball(d) + d / 2 * np.log(r95.threshold) - 0.5 * logdet_prec
    return {
        "cover_theta": np.array(cover_theta),
        "cover": np.array(cover),
        "width": np.array(width),
        "logvol": np.float64(logvol),
    }


def log_posterior_from_counts(theta: jax.Array, data: tuple) -> jax.Array:
    """``L(theta) - theta' Lambda theta / 2``: eq. (4) from counts plus the Normal prior of
    docs/math.md §2; ``data = (counts[H,S,A,B], features, eta, prior_precision)``.  The log-density
    of :func:`~bayes_qse.samplers.nuts` (module level, so its compilation is cached)."""
    counts, features, eta, prior_precision = data
    return log_posterior(theta, Model(features, eta), counts, prior_precision)


def nuts_data(counts: jax.Array, features: Any, eta: float, prior_precision: float) -> tuple:
    """The per-replication data of :func:`log_posterior_from_counts`, broadcast to ``R`` rows."""
    R = counts.shape[0]
    rows = lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float64), (R, *np.shape(x)))
    return (counts, rows(features), rows(eta), rows(prior_precision))


def clopper_pearson(k: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial (Clopper-Pearson) interval for ``k`` successes in ``n`` trials."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    a = (1 - level) / 2
    from scipy import stats  # lazy: scipy.stats costs ~0.5 s to import

    lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
    hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi


__all__ = [
    "clopper_pearson",
    "credible_stats",
    "directions",
    "fit_counts",
    "functionals",
    "log_posterior_from_counts",
    "log_unit_ball",
    "lr_ray_lengths",
    "nuts_data",
    "projection",
    "pseudo_true_theta",
    "response_occupancy",
    "simulate_counts",
    "whitener",
    "with_theta",
]
