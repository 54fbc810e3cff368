"""Experiment 3 of docs/math.md §7: frequentist confidence sets versus Bayesian credible sets.

Over many simulated datasets (``seeds`` replications per case and sample size) we measure the
empirical coverage, against the nominal level, of

- the true ``theta`` (joint sets in ``R^d``),
- the true response probabilities ``nu_h(b|s,a)`` at *every* cell ``(h,s,a,b)`` (marginal
  intervals, one per cell; tables report the cell average, the worst cell and one chosen cell),
- the true leader value ``J(pi)`` of a fixed policy (the true game's QSE policy),

for five constructions, all on the one likelihood (4):

``wald``
    ellipsoid ``(theta - theta_hat)' I (theta - theta_hat) <= beta`` (observed Fisher ``I``).
``lr``
    likelihood-ratio set ``2 (L(theta_hat) - L(theta)) <= beta``.
``lr_theory``
    the same set with the paper's finite-sample radius (:func:`bayes_qse.sets.theory_radius`).
``laplace``
    Gaussian posterior at the MAP (prior ``N(0, sigma^2 I)``), HPD ellipsoid / equal-tailed
    intervals of draws.
``nuts``
    NUTS posterior (same prior), Mahalanobis-rank HPD region / equal-tailed intervals.

For ``theta`` the frequentist sets use ``beta = chi2_d(level)``.  For a scalar function ``g``
(one response probability, the value) the frequentist interval is the *projection* of the set
with ``beta = chi2_1(level)``: for the LR set this is exactly the profile-likelihood interval,
for the Wald set it is (to first order) the delta-method interval; both are then marginal
intervals with nominal ``level``.  The projection is computed on ``n_directions`` boundary
points (rays from the centre, bisection on ``L`` for the LR set).  ``lr_theory`` projects the
joint set (one radius), so its intervals are simultaneous and conservative by design.

Cases: ``well_specified`` (a random linear myopic game), ``misspecified`` (the follower's
utility is ``phi . theta + misspec_scale * noise[h,s,a,b]``, not in the model class; ``theta``
coverage is then of the pseudo-true (KL-projection) parameter, the response and value coverage
of the true follower) and ``near_deterministic`` (the same game at ``large_eta``).

The experiment also runs simulation-based calibration (:mod:`bayes_qse.sbc`) of the Laplace and
NUTS posteriors: ``theta ~ N(0, sigma^2 I)``, ``sbc_sample_size`` episodes, rank histograms and
uniformity tests per parameter.

Everything is vectorised over a batch of replications (``batch_size``): data are simulated by
``vmap`` of :func:`bayes_qse.data.play_episode`, reduced to the counts of
:func:`bayes_qse.likelihood.response_counts` (the myopic likelihood depends on nothing else),
fitted by the Newton core of :mod:`bayes_qse.inference`, and NUTS runs on all datasets at once
(:func:`bayes_qse.sbc.batched_nuts`).  Each batch is one unit of the
:class:`~bayes_qse.experiments.store.RunStore`, so the run resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from ..data import EpisodeBuffer, play_episode
from ..errors import ConfigError
from ..follower import myopic_log_response
from ..games import ARRAY_FIELDS, Game, random_game, tabular_game
from ..inference import laplace_draws, newton_maximize
from ..likelihood import log_likelihood, log_posterior, response_counts
from ..model import Model
from ..planning import evaluate_policy, leader_value, solve_qse
from ..sbc import batched_nuts, rank_statistic, uniformity_test
from ..sets import chi2_radius, credible_box, hpd_region, theory_radius
from .store import RunStore
from .store import progress as progress_bar

NAME = "confidence_sets"
CASES = ("well_specified", "misspecified", "near_deterministic")
FREQ_METHODS = ("wald", "lr", "lr_theory")
BAYES_METHODS = ("laplace", "nuts")
METHODS = FREQ_METHODS + BAYES_METHODS

DEFAULT_CONFIG: dict[str, Any] = {
    "seeds": 500,  # replications per (case, sample size)
    "base_seed": 0,
    "batch_size": 250,
    "cases": list(CASES),
    "sample_sizes": [30, 300],
    "levels": [0.5, 0.8, 0.9, 0.95, 0.99],
    "game": {
        "seed": 3,
        "n_states": 2,
        "n_leader_actions": 2,
        "n_follower_actions": 3,
        "horizon": 2,
        "feature_dim": 2,
    },
    "eta": 1.0,
    "large_eta": 10.0,
    "misspec_scale": 0.5,
    "prior_scale": 1.0,
    "theory_delta": 0.05,
    "n_directions": 32,
    "laplace_draws": 1000,
    "nuts_warmup": 200,
    "nuts_samples": 400,
    "sbc_replications": 500,
    "sbc_sample_size": 50,
    "sbc_thin": 2,
}

FULL_CONFIG: dict[str, Any] = {
    **DEFAULT_CONFIG,
    "seeds": 1000,
    "sample_sizes": [10, 100, 1000],
    "nuts_warmup": 300,
    "nuts_samples": 600,
    "sbc_replications": 1000,
}

#: Index of the response cell reported on its own in the tables ((h, s, a, b) = (0, 0, 0, 0)).
CHOSEN_CELL = (0, 0, 0, 0)


def validate_config(config: dict) -> None:
    """Reject configurations the experiment cannot run (naming the key)."""
    for case in config["cases"]:
        if case not in CASES:
            raise ConfigError(f"config: cases has unknown case {case!r}; choose from {CASES}")
    if not config["sample_sizes"] or min(config["sample_sizes"]) < 1:
        raise ConfigError("config: sample_sizes must be a non-empty list of integers >= 1")
    if not config["levels"] or not all(0 < lv < 1 for lv in config["levels"]):
        raise ConfigError("config: levels must be numbers in (0, 1)")
    if 0.95 not in config["levels"]:
        raise ConfigError("config: levels must contain 0.95 (the level of the set sizes)")
    for key in ("batch_size", "n_directions", "laplace_draws", "nuts_samples", "sbc_thin"):
        if config[key] < 1:
            raise ConfigError(f"config: {key} must be >= 1, got {config[key]}")
    if config["sbc_replications"] < 2 or config["sbc_sample_size"] < 1:
        raise ConfigError("config: sbc_replications must be >= 2 and sbc_sample_size >= 1")
    for key in ("eta", "large_eta", "prior_scale"):
        if config[key] <= 0:
            raise ConfigError(f"config: {key} must be > 0, got {config[key]}")
    if not 0 < config["theory_delta"] < 1:
        raise ConfigError("config: theory_delta must lie in (0, 1)")


# ---------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------


def make_case(config: dict, case: str) -> dict[str, Any]:
    """The data-generating game, the model and the true targets of one case.

    Returns a dict with ``true_game`` (simulates the data), ``features``, ``eta`` (the model),
    ``policy`` (the fixed policy whose value is covered), ``behaviour`` (the data policy:
    uniform), ``theta_target[d]`` (true or pseudo-true), ``g_true[G]`` (the true response
    probabilities, flattened ``[H*S*A*B]``, then the true value ``J(policy)``).
    """
    g = config["game"]
    game = random_game(
        g["seed"],
        g["n_states"],
        g["n_leader_actions"],
        g["n_follower_actions"],
        g["horizon"],
        g["feature_dim"],
        eta=config["eta"],
    )
    H, S, A, B = game.shape
    behaviour = np.full((H, S, A), 1.0 / A)
    if case == "near_deterministic":
        game = game.replace(eta=config["large_eta"])
    true_game = game
    if case == "misspecified":
        noise = np.random.default_rng(g["seed"] + 1).normal(size=(H, S, A, B))
        u_true = np.asarray(game.utility()) + config["misspec_scale"] * noise
        true_game = tabular_game(
            game.transitions, game.leader_reward, u_true, game.eta, game.initial_dist
        )
    policy = solve_qse(true_game).policy
    nu_true = np.exp(np.asarray(myopic_log_response(true_game.model, true_game.theta)))
    g_true = np.concatenate([nu_true.ravel(), [leader_value(true_game, policy)]])
    theta_target = np.asarray(game.theta)
    if case == "misspecified":
        theta_target = pseudo_true_theta(game, nu_true, behaviour)
    return {
        "true_game": true_game,
        "model_game": game,
        "features": np.asarray(game.features),
        "eta": float(game.eta),
        "policy": policy,
        "behaviour": behaviour,
        "theta_target": theta_target,
        "g_true": g_true,
    }


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


# ---------------------------------------------------------------------------------------
# Pure, vmapped pieces
# ---------------------------------------------------------------------------------------


def functionals(theta: jax.Array, model: Model, policy: jax.Array) -> jax.Array:
    """``g(theta)[G]``: the myopic response ``nu[H,S,A,B]`` (eq. 1d), flattened, then the
    leader value ``J(policy)`` (eq. 2) under it."""
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
        g = game if th is None else _with_theta(game, th)
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


_simulate_counts_jit = jax.jit(simulate_counts, static_argnames=("n_episodes",))


def _with_theta(game: Game, theta: jax.Array) -> Game:
    """``game`` with its true ``theta`` replaced by a (possibly traced) value, unvalidated."""
    leaves, treedef = jax.tree_util.tree_flatten(game)
    leaves[ARRAY_FIELDS.index("theta")] = theta
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _fit(counts, features, eta, prior_precision, n_steps=100):
    """MLE / MAP of eq. (4) (+ Gaussian prior) from counts: ``(theta, L, neg_hess, converged)``."""
    d = features.shape[-1]
    ll = lambda th: log_likelihood(th, Model(features, eta), counts)
    objective = lambda th: log_posterior(th, Model(features, eta), counts, prior_precision)
    theta, _, neg_h, _, converged = newton_maximize(objective, jnp.zeros(d), n_steps)
    return theta, ll(theta), neg_h, converged


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


def _whitener(info: jax.Array) -> jax.Array:
    """``C`` with ``C C' = info^-1`` (eigenvalues floored: flat directions get a huge scale)."""
    lam, vecs = jnp.linalg.eigh(0.5 * (info + info.T))
    floor = 1e-10 * jnp.maximum(jnp.max(jnp.abs(lam)), 1e-12)
    return vecs / jnp.sqrt(jnp.maximum(lam, floor))


def _lr_ray_lengths(ll, center, ll_center, rays, radii, theta_cap, n_bisect=30):
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


def _projection(gfun, center, points):
    """``(lo, hi)[..., G]`` of ``g`` over ``points[..., n, d]`` and the centre."""
    g_c = gfun(center)
    g_p = jax.vmap(jax.vmap(gfun))(points)  # [K, n, G]
    return jnp.minimum(g_c, g_p.min(axis=-2)), jnp.maximum(g_c, g_p.max(axis=-2))


def _log_unit_ball(d: int) -> float:
    return d / 2 * math.log(math.pi) - math.lgamma(d / 2 + 1)


@partial(jax.jit, static_argnames=("n_draws",))
def _frequentist_and_laplace(counts, key, model, theta_target, g_true, radii, n_draws):
    """Per replication (vmapped over ``counts[R]``): the statistics of every method but NUTS.

    ``radii``: ``chi2_1(levels)`` then ``chi2_d(0.95)`` then the theory radius.  Returns a dict
    of arrays with leading axis ``R``.
    """
    features, eta, P, r, rho, policy, rays, prior_prec, theta_cap, levels = model
    gfun = lambda th: functionals(th, Model(features, eta, P, r, rho), policy)
    d = features.shape[-1]
    K = levels.shape[0]

    def one(counts, key):
        ll = lambda th: log_likelihood(th, Model(features, eta), counts)
        mle, ll_hat, info, conv = _fit(counts, features, eta, 0.0)
        mapt, _, post_prec, conv_map = _fit(counts, features, eta, prior_prec)
        C = _whitener(info)
        w = rays @ C.T  # [n, d] rays in the Fisher geometry
        out = {"mle_converged": conv, "map_converged": conv_map}
        # theta: Wald and LR statistics (coverage at any level follows from them)
        diff = theta_target - mle
        out["stat_wald"] = diff @ info @ diff
        out["stat_lr"] = 2.0 * (ll_hat - ll(theta_target))
        dm = theta_target - mapt
        out["stat_laplace"] = dm @ post_prec @ dm
        # functionals: projections of the Wald and LR sets
        wald_pts = mle + jnp.sqrt(radii)[:, None, None] * w[None]  # [K+2, n, d]
        t_lr = _lr_ray_lengths(ll, mle, ll_hat, w, radii, theta_cap)  # [K+2, n]
        lr_pts = mle + t_lr[..., None] * w[None]
        for name, pts in (("wald", wald_pts), ("lr", lr_pts)):
            lo, hi = _projection(gfun, mle, pts[:K])
            out[f"cover_{name}"] = (lo <= g_true) & (g_true <= hi)
            out[f"width_{name}"] = hi - lo
        lo, hi = _projection(gfun, mle, lr_pts[K + 1 :])
        out["cover_lr_theory"] = (lo <= g_true) & (g_true <= hi)
        out["width_lr_theory"] = hi - lo
        # set volumes at 0.95 (log): Wald and Laplace ellipsoids, LR by rays (star-shaped)
        logdet_c = jnp.sum(jnp.log(jnp.abs(jnp.diag(jnp.linalg.qr(C)[1]))))
        chi2_95 = radii[K]
        out["logvol_wald"] = _log_unit_ball(d) + d / 2 * jnp.log(chi2_95) + logdet_c
        out["logvol_lr"] = _log_unit_ball(d) + logdet_c + jnp.log(jnp.mean(t_lr[K] ** d))
        out["lr_unbounded"] = jnp.any(t_lr[K] * jnp.linalg.norm(w, axis=-1) >= theta_cap * 0.999)
        sign, logdet_p = jnp.linalg.slogdet(post_prec)
        out["logvol_laplace"] = _log_unit_ball(d) + d / 2 * jnp.log(chi2_95) - 0.5 * logdet_p
        # Laplace: g over draws (equal-tailed intervals are taken on the host)
        out["g_draws_laplace"] = jax.vmap(gfun)(laplace_draws(key, mapt, post_prec, n_draws))
        out["mle"] = mle
        out["map"] = mapt
        return out

    return jax.vmap(one)(counts, jax.random.split(key, counts.shape[0]))


@jax.jit
def _g_of_draws(draws, model):
    """``g(theta)`` for every draw: ``[R, M, d] -> [R, M, G]``."""
    features, eta, P, r, rho, policy = model[:6]
    gfun = lambda th: functionals(th, Model(features, eta, P, r, rho), policy)
    return jax.vmap(jax.vmap(gfun))(draws)


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
    logvol = _log_unit_ball(d) + d / 2 * np.log(r95.threshold) - 0.5 * logdet_prec
    return {
        "cover_theta": np.array(cover_theta),
        "cover": np.array(cover),
        "width": np.array(width),
        "logvol": np.float64(logvol),
    }


def _credible_batch(draws, g_draws, theta_target, g_true, levels) -> dict[str, np.ndarray]:
    per = [
        credible_stats(draws[r], g_draws[r], theta_target, g_true, levels)
        for r in range(draws.shape[0])
    ]
    return {k: np.stack([p[k] for p in per]) for k in per[0]}


def _model_tuple(case: dict, config: dict) -> tuple:
    g = case["model_game"]
    d = g.feature_dim
    return (
        jnp.asarray(case["features"]),
        jnp.asarray(case["eta"]),
        jnp.asarray(g.transitions),
        jnp.asarray(g.leader_reward),
        jnp.asarray(g.initial_dist),
        jnp.asarray(case["policy"]),
        jnp.asarray(directions(d, config["n_directions"])),
        1.0 / config["prior_scale"] ** 2,
        50.0 / case["eta"],
        jnp.asarray(config["levels"], jnp.float64),
    )


def radii_for(config: dict, case: dict, n_episodes: int) -> np.ndarray:
    """``chi2_1(levels)``, then ``chi2_d(0.95)``, then the paper's finite-sample radius
    (:func:`~bayes_qse.sets.theory_radius` at level ``1 - theory_delta`` with ``n * H``
    observations and the Lipschitz constant ``2 eta max|phi|`` of one log-response)."""
    phi = case["features"]
    d, H = phi.shape[-1], phi.shape[0]
    lipschitz = 2.0 * case["eta"] * float(np.abs(phi).max())
    chi1 = [chi2_radius(1, lv) for lv in config["levels"]]
    theory = theory_radius(d, n_episodes * H, 1.0 - config["theory_delta"], lipschitz=lipschitz)
    return np.array([*chi1, chi2_radius(d, 0.95), theory], dtype=np.float64)


def log_posterior_from_counts(theta: jax.Array, data: tuple) -> jax.Array:
    """``L(theta) - theta' Lambda theta / 2``: eq. (4) from counts plus the Normal prior of
    docs/math.md §2; ``data = (counts[H,S,A,B], features, eta, prior_precision)``.  The log-density
    of :func:`~bayes_qse.sbc.batched_nuts` (module level, so its compilation is cached)."""
    counts, features, eta, prior_precision = data
    return log_posterior(theta, Model(features, eta), counts, prior_precision)


def nuts_data(counts: jax.Array, features: Any, eta: float, prior_precision: float) -> tuple:
    """The per-replication data of :func:`log_posterior_from_counts`, broadcast to ``R`` rows."""
    R = counts.shape[0]
    rows = lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float64), (R, *np.shape(x)))
    return (counts, rows(features), rows(eta), rows(prior_precision))


def replication_keys(base_seed: int, indices: np.ndarray, *tags: int) -> jax.Array:
    """One key per replication: ``PRNGKey(base_seed + i)`` folded with ``tags``."""

    def one(i):
        k = jax.random.PRNGKey(base_seed + i)
        for t in tags:
            k = jax.random.fold_in(k, t)
        return k

    return jax.vmap(one)(jnp.asarray(indices))


def run_batch(config: dict, case: dict, case_id: int, n: int, indices: np.ndarray) -> dict:
    """All statistics for the replications ``indices`` (padded to ``batch_size``)."""
    B = config["batch_size"]
    padded = np.concatenate([indices, np.full(B - len(indices), indices[-1])])
    keys = replication_keys(config["base_seed"], padded, case_id, n)
    k_data, k_lap, k_nuts = (
        jax.vmap(lambda k, j=j: jax.random.fold_in(k, j))(keys) for j in (0, 1, 2)
    )
    counts = _simulate_counts_jit(case["true_game"], case["behaviour"], k_data, n)
    model = _model_tuple(case, config)
    radii = jnp.asarray(radii_for(config, case, n))
    theta_t = jnp.asarray(case["theta_target"])
    g_true = jnp.asarray(case["g_true"])
    out = _frequentist_and_laplace(
        counts, k_lap[0], model, theta_t, g_true, radii, int(config["laplace_draws"])
    )
    nuts = batched_nuts(
        k_nuts[0],
        log_posterior_from_counts,
        out["map"],
        nuts_data(counts, model[0], model[1], model[7]),
        num_warmup=config["nuts_warmup"],
        num_samples=config["nuts_samples"],
    )
    levels = config["levels"]
    g_lap = np.asarray(out.pop("g_draws_laplace"))
    out = {k: np.asarray(v) for k, v in out.items()}
    g_nuts = np.asarray(_g_of_draws(jnp.asarray(nuts.draws), model))
    cred = _credible_batch(nuts.draws, g_nuts, case["theta_target"], case["g_true"], levels)
    out["cover_theta_nuts"] = cred["cover_theta"]
    out["cover_nuts"] = cred["cover"]
    out["width_nuts"] = cred["width"]
    out["logvol_nuts"] = cred["logvol"]
    boxes = [[credible_box(g_lap[r], lv) for lv in levels] for r in range(g_lap.shape[0])]
    lo = np.array([[b[0] for b in row] for row in boxes])
    hi = np.array([[b[1] for b in row] for row in boxes])
    out["cover_laplace"] = (lo <= case["g_true"]) & (case["g_true"] <= hi)
    out["width_laplace"] = hi - lo
    out["nuts_divergences"] = nuts.diverging.sum(axis=1)
    out["nuts_accept"] = nuts.accept_prob
    out["nuts_ess_min"] = nuts.ess.min(axis=1)
    out["nuts_mean_steps"] = nuts.num_steps.mean(axis=1)
    keep = len(indices)
    return {k: np.asarray(v)[:keep] for k, v in out.items()}


def run_sbc_batch(config: dict, case: dict, indices: np.ndarray) -> dict:
    """SBC ranks (:mod:`bayes_qse.sbc`) of the Laplace and NUTS posteriors for replications
    ``indices``: ``theta ~ N(0, sigma^2 I)``, ``sbc_sample_size`` episodes under the behaviour
    policy, ranks of ``theta`` among ``nuts_samples / sbc_thin`` draws of each posterior."""
    B = config["batch_size"]
    padded = np.concatenate([indices, np.full(B - len(indices), indices[-1])])
    keys = replication_keys(config["base_seed"], padded, 999)
    sub = lambda j: jax.vmap(lambda k: jax.random.fold_in(k, j))(keys)
    sigma = config["prior_scale"]
    features, eta = jnp.asarray(case["features"]), case["eta"]
    d = features.shape[-1]
    theta = sigma * jax.vmap(lambda k: jax.random.normal(k, (d,)))(sub(0))
    counts = _simulate_counts_jit(
        case["model_game"], case["behaviour"], sub(1), config["sbc_sample_size"], theta=theta
    )
    M = config["nuts_samples"] // config["sbc_thin"]
    maps, lap_draws = _laplace_batch(counts, sub(2), features, eta, 1.0 / sigma**2, M)
    nuts = batched_nuts(
        sub(3)[0],
        log_posterior_from_counts,
        maps,
        nuts_data(counts, features, eta, 1.0 / sigma**2),
        num_warmup=config["nuts_warmup"],
        num_samples=config["nuts_samples"],
    )
    nuts_draws = jnp.asarray(nuts.draws[:, :: config["sbc_thin"]][:, :M])
    keep = len(indices)
    return {
        "rank_laplace": np.asarray(rank_statistic(lap_draws, theta))[:keep],
        "rank_nuts": np.asarray(rank_statistic(nuts_draws, theta))[:keep],
        "theta": np.asarray(theta)[:keep],
        "nuts_divergences": nuts.diverging.sum(axis=1)[:keep],
        "nuts_ess_min": nuts.ess.min(axis=1)[:keep],
    }


@partial(jax.jit, static_argnames=("n_draws",))
def _laplace_batch(counts, keys, features, eta, prior_prec, n_draws):
    """MAPs ``[R,d]`` and Laplace draws ``[R,M,d]`` for ``counts[R]`` (vmapped)."""

    def one(c, k):
        mapt, _, prec, _ = _fit(c, features, eta, prior_prec)
        return mapt, laplace_draws(k, mapt, prec, n_draws)

    return jax.vmap(one)(counts, keys)


# ---------------------------------------------------------------------------------------
# Running and aggregating
# ---------------------------------------------------------------------------------------


def _batches(total: int, size: int) -> list[tuple[int, int]]:
    return [(s, min(s + size, total)) for s in range(0, total, size)]


def run(config: dict, out_dir: Path, *, progress: bool = True) -> Path:
    """Run every (case, sample size, batch of replications) unit not yet stored, then the SBC
    units, then aggregate into ``results.npz`` / ``results.json``; returns the ``.npz`` path."""
    validate_config(config)
    out_dir = Path(out_dir)
    store = RunStore(out_dir, NAME, config)
    cases = {name: make_case(config, name) for name in config["cases"]}
    jobs = [
        (case, n, lo, hi)
        for case in config["cases"]
        for n in config["sample_sizes"]
        for lo, hi in _batches(config["seeds"], config["batch_size"])
    ]
    jobs += [
        ("sbc", config["sbc_sample_size"], lo, hi)
        for lo, hi in _batches(config["sbc_replications"], config["batch_size"])
    ]
    for case, n, lo, hi in progress_bar(jobs, len(jobs), NAME, progress):
        key = f"sbc_r{lo}-{hi}" if case == "sbc" else f"{case}_n{n}_r{lo}-{hi}"
        if store.has(key):
            continue
        start = time.perf_counter()
        idx = np.arange(lo, hi)
        if case == "sbc":
            arrays = run_sbc_batch(
                config, cases.get("well_specified") or make_case(config, "well_specified"), idx
            )
        else:
            arrays = run_batch(config, cases[case], CASES.index(case), n, idx)
        seconds = time.perf_counter() - start
        store.save_unit(
            key,
            arrays,
            {
                "case": case,
                "n_episodes": n,
                "replications": [lo, hi],
                "seconds": seconds,
                "seeds": [config["base_seed"] + lo, config["base_seed"] + hi],
            },
        )
    results = aggregate(store, config, cases)
    return store.write_results("results", results)


def clopper_pearson(k: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial (Clopper-Pearson) interval for ``k`` successes in ``n`` trials."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    a = (1 - level) / 2
    lo = np.where(k > 0, stats.beta.ppf(a, k, n - k + 1), 0.0)
    hi = np.where(k < n, stats.beta.ppf(1 - a, k + 1, n - k), 1.0)
    return lo, hi


TARGETS = ("theta", "nu_cell", "nu_avg", "nu_worst", "value")


def _load(store: RunStore, prefix: str, total: int, size: int) -> dict[str, np.ndarray]:
    parts = [store.load_unit(f"{prefix}_r{lo}-{hi}")[0] for lo, hi in _batches(total, size)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def aggregate(store: RunStore, config: dict, cases: dict) -> dict[str, Any]:
    """Coverage with Clopper-Pearson bands, set sizes, NUTS diagnostics and SBC tests.

    Arrays: ``coverage[case, n, method, target, level]`` (methods ``wald, lr, laplace, nuts``;
    targets :data:`TARGETS`), ``coverage_lo``/``coverage_hi`` (95% Clopper-Pearson; NaN for the
    cell average and the worst cell, which are not binomial counts), ``coverage_theory[case, n,
    target]`` (+ ``_lo``/``_hi``) for ``lr_theory`` at nominal ``1 - theory_delta``,
    ``width[case, n, method5, target]`` (mean interval width at 0.95; ``theta``: median log
    volume), SBC ranks and p-values.
    """
    levels = np.asarray(config["levels"])
    K = len(levels)
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    main = ("wald", "lr", "laplace", "nuts")
    R = config["seeds"]
    C, N, T = len(config["cases"]), len(config["sample_sizes"]), len(TARGETS)
    cov = np.full((C, N, len(main), T, K), np.nan)
    cov_lo, cov_hi = np.full_like(cov, np.nan), np.full_like(cov, np.nan)
    cov_th = np.full((C, N, T), np.nan)
    cov_th_lo, cov_th_hi = np.full_like(cov_th, np.nan), np.full_like(cov_th, np.nan)
    width = np.full((C, N, len(METHODS), T), np.nan)
    diag = {
        k: np.full((C, N), np.nan)
        for k in (
            "mle_converged",
            "lr_unbounded",
            "nuts_divergent_frac",
            "nuts_ess_min_median",
            "nuts_accept_mean",
            "nuts_steps_mean",
        )
    }
    rows = []
    for ci, case in enumerate(config["cases"]):
        game = cases[case]["model_game"]
        H, S, A, B = game.shape
        d = game.feature_dim
        cell = int(np.ravel_multi_index(CHOSEN_CELL, (H, S, A, B)))
        G = H * S * A * B
        for ni, n in enumerate(config["sample_sizes"]):
            u = _load(store, f"{case}_n{n}", R, config["batch_size"])
            chi_d = np.array([chi2_radius(d, lv) for lv in levels])
            theta_cover = {
                "wald": u["stat_wald"][:, None] <= chi_d,
                "lr": u["stat_lr"][:, None] <= chi_d,
                "laplace": u["stat_laplace"][:, None] <= chi_d,
                "nuts": u["cover_theta_nuts"],
            }
            for mi, m in enumerate(main):
                fc = u[f"cover_{m}"].astype(float)  # [R, K, G+1]
                per_cell = fc[..., :G].mean(axis=0)  # [K, G]
                tgt = {
                    "theta": theta_cover[m].mean(axis=0),
                    "nu_cell": fc[:, :, cell].mean(axis=0),
                    "nu_avg": per_cell.mean(axis=-1),
                    "nu_worst": per_cell.min(axis=-1),
                    "value": fc[:, :, G].mean(axis=0),
                }
                for ti, t in enumerate(TARGETS):
                    cov[ci, ni, mi, ti] = tgt[t]
                    if t in ("theta", "nu_cell", "value"):
                        lo, hi = clopper_pearson(np.round(tgt[t] * R), R)
                        cov_lo[ci, ni, mi, ti], cov_hi[ci, ni, mi, ti] = lo, hi
            th_stat = u["stat_lr"] <= radii_for(config, cases[case], n)[-1]
            fc = u["cover_lr_theory"][:, 0].astype(float)
            tgt = {
                "theta": th_stat.mean(),
                "nu_cell": fc[:, cell].mean(),
                "nu_avg": fc[:, :G].mean(),
                "nu_worst": fc[:, :G].mean(axis=0).min(),
                "value": fc[:, G].mean(),
            }
            for ti, t in enumerate(TARGETS):
                cov_th[ci, ni, ti] = tgt[t]
                if t in ("theta", "nu_cell", "value"):
                    lo, hi = clopper_pearson(np.round(tgt[t] * R), R)
                    cov_th_lo[ci, ni, ti], cov_th_hi[ci, ni, ti] = lo, hi
            for mi, m in enumerate(METHODS):
                w = u[f"width_{m}"]
                w95 = w[:, 0] if m == "lr_theory" else w[:, i95]
                width[ci, ni, mi, TARGETS.index("nu_cell")] = w95[:, cell].mean()
                width[ci, ni, mi, TARGETS.index("nu_avg")] = w95[:, :G].mean()
                width[ci, ni, mi, TARGETS.index("value")] = w95[:, G].mean()
                if m != "lr_theory":
                    width[ci, ni, mi, 0] = np.median(u[f"logvol_{m}"])
            diag["mle_converged"][ci, ni] = u["mle_converged"].mean()
            diag["lr_unbounded"][ci, ni] = u["lr_unbounded"].mean()
            diag["nuts_divergent_frac"][ci, ni] = (u["nuts_divergences"] > 0).mean()
            diag["nuts_ess_min_median"][ci, ni] = np.median(u["nuts_ess_min"])
            diag["nuts_accept_mean"][ci, ni] = u["nuts_accept"].mean()
            diag["nuts_steps_mean"][ci, ni] = u["nuts_mean_steps"].mean()
            for mi, m in enumerate(main):
                for ti, t in enumerate(TARGETS):
                    rows.append(
                        {
                            "case": case,
                            "n_episodes": n,
                            "method": m,
                            "target": t,
                            "level": float(levels[i95]),
                            "coverage": cov[ci, ni, mi, ti, i95],
                            "ci_low": cov_lo[ci, ni, mi, ti, i95],
                            "ci_high": cov_hi[ci, ni, mi, ti, i95],
                        }
                    )
    out: dict[str, Any] = {
        "coverage": cov,
        "coverage_lo": cov_lo,
        "coverage_hi": cov_hi,
        "coverage_theory": cov_th,
        "coverage_theory_lo": cov_th_lo,
        "coverage_theory_hi": cov_th_hi,
        "width": width,
        "levels": levels,
        "sample_sizes": np.asarray(config["sample_sizes"]),
        "cases": list(config["cases"]),
        "methods": list(main),
        "all_methods": list(METHODS),
        "targets": list(TARGETS),
        "chosen_cell": list(CHOSEN_CELL),
        "theta_target": {c: cases[c]["theta_target"] for c in config["cases"]},
        "rows_95": rows,
        "replications": R,
    }
    out.update({f"diag_{k}": v for k, v in diag.items()})
    sbc = _load(store, "sbc", config["sbc_replications"], config["batch_size"])
    M = config["nuts_samples"] // config["sbc_thin"]
    for m in BAYES_METHODS:
        test = uniformity_test(sbc[f"rank_{m}"], M)
        out[f"sbc_ranks_{m}"] = sbc[f"rank_{m}"]
        out[f"sbc_chi2_pvalue_{m}"] = test.chi2_pvalue
        out[f"sbc_ks_pvalue_{m}"] = test.ks_pvalue
    out["sbc_n_draws"] = M
    out["sbc_nuts_divergent_frac"] = float((sbc["nuts_divergences"] > 0).mean())
    out["sbc_nuts_ess_min_median"] = float(np.median(sbc["nuts_ess_min"]))
    return out


# ---------------------------------------------------------------------------------------
# Figures and tables
# ---------------------------------------------------------------------------------------

_LABELS = {
    "wald": "Wald",
    "lr": "LR (chi2)",
    "lr_theory": "LR (paper radius)",
    "laplace": "Laplace",
    "nuts": "NUTS",
}
_COLORS = {"wald": "C0", "lr": "C1", "laplace": "C2", "nuts": "C3", "lr_theory": "C4"}
_TARGET_LABELS = {
    "theta": "theta (joint set)",
    "nu_cell": "nu at (h,s,a,b)=(0,0,0,0)",
    "nu_avg": "nu, mean over cells",
    "nu_worst": "nu, worst cell",
    "value": "leader value J(pi)",
}


def _read_results(out_dir: Path) -> tuple[dict, dict]:
    import json

    out_dir = Path(out_dir)
    with np.load(out_dir / "results.npz") as f:
        arrays = {k: f[k] for k in f.files}
    doc = json.loads((out_dir / "results.json").read_text())
    return arrays, doc


def plot(out_dir: Path) -> list[Path]:
    """Calibration plot, coverage and set size against ``n``, SBC rank histograms, and
    ``tables.md`` (coverage at 95% with Clopper-Pearson bands, set sizes, SBC tests)."""
    from ..plots import new_figure, save_figure

    out_dir = Path(out_dir)
    a, doc = _read_results(out_dir)
    s = doc["summary"]
    cases, methods, targets = s["cases"], s["methods"], s["targets"]
    levels, ns = a["levels"], a["sample_sizes"]
    shown = ("theta", "nu_cell", "value")
    paths = []

    # 1. calibration: coverage vs nominal at the smallest and the largest n
    fig, axes = new_figure(len(shown), len(cases), size=(4.0, 3.4))
    for ci, case in enumerate(cases):
        for j, t in enumerate(shown):
            ax = axes[ci * len(shown) + j]
            ti = targets.index(t)
            ax.plot([0, 1], [0, 1], "k:", lw=1)
            for mi, m in enumerate(methods):
                for ni, style in ((len(ns) - 1, "-"), (0, "--")):
                    y = a["coverage"][ci, ni, mi, ti]
                    err = [
                        y - a["coverage_lo"][ci, ni, mi, ti],
                        a["coverage_hi"][ci, ni, mi, ti] - y,
                    ]
                    ax.errorbar(
                        levels,
                        y,
                        yerr=err,
                        fmt="o" + style,
                        ms=3,
                        capsize=2,
                        color=_COLORS[m],
                        label=f"{_LABELS[m]} n={ns[ni]}" if ci == j == 0 else None,
                    )
            ax.set_title(f"{case}: {_TARGET_LABELS[t]}", fontsize="small")
            ax.set_xlabel("nominal level")
            ax.set_ylabel("coverage")
            ax.set_xlim(0.45, 1.0)
            ax.set_ylim(
                max(0.0, min(0.45, float(np.nanmin(a["coverage"][ci, :, :, ti])) - 0.05)), 1.01
            )
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, fontsize="small")
    paths.append(save_figure(fig, out_dir / "calibration.png"))

    # 2. coverage at 95% against n
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    fig, axes = new_figure(len(shown), len(cases), size=(4.0, 3.2))
    for ci, case in enumerate(cases):
        for j, t in enumerate(shown):
            ax = axes[ci * len(shown) + j]
            ti = targets.index(t)
            for mi, m in enumerate(methods):
                y = a["coverage"][ci, :, mi, ti, i95]
                ax.fill_between(
                    ns,
                    a["coverage_lo"][ci, :, mi, ti, i95],
                    a["coverage_hi"][ci, :, mi, ti, i95],
                    color=_COLORS[m],
                    alpha=0.2,
                )
                ax.plot(
                    ns, y, "o-", color=_COLORS[m], ms=3, label=_LABELS[m] if ci == j == 0 else None
                )
            y = a["coverage_theory"][ci, :, ti]
            ax.plot(
                ns,
                y,
                "s:",
                color=_COLORS["lr_theory"],
                ms=3,
                label=_LABELS["lr_theory"] if ci == j == 0 else None,
            )
            ax.axhline(0.95, color="k", lw=1, ls=":")
            _log_n_axis(ax, ns)
            ax.set_title(f"{case}: {_TARGET_LABELS[t]}", fontsize="small")
            ax.set_xlabel("episodes n")
            ax.set_ylabel("coverage at 95%")
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=5, fontsize="small")
    paths.append(save_figure(fig, out_dir / "coverage_vs_n.png"))

    # 3. set sizes at 95%
    all_methods = s["all_methods"]
    size_targets = (
        ("theta", "median log volume of the theta set"),
        ("nu_avg", "mean width of nu intervals"),
        ("value", "mean width of value interval"),
    )
    fig, axes = new_figure(len(size_targets), len(cases), size=(4.0, 3.2))
    for ci, case in enumerate(cases):
        for j, (t, label) in enumerate(size_targets):
            ax = axes[ci * len(size_targets) + j]
            ti = targets.index(t)
            for mi, m in enumerate(all_methods):
                y = a["width"][ci, :, mi, ti]
                if np.all(np.isnan(y)):
                    continue
                ax.plot(
                    ns,
                    y,
                    "o-",
                    ms=3,
                    color=_COLORS[m],
                    label=_LABELS[m] if ci == 0 and j == 1 else None,
                )
            _log_n_axis(ax, ns)
            if t != "theta":
                ax.set_yscale("log")
            ax.set_title(f"{case}: {label}", fontsize="small")
            ax.set_xlabel("episodes n")
            ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=5, fontsize="small")
    paths.append(save_figure(fig, out_dir / "set_sizes.png"))

    # 4. SBC rank histograms
    M = int(s["sbc_n_draws"])
    d = a["sbc_ranks_nuts"].shape[1]
    fig, axes = new_figure(d, len(BAYES_METHODS), size=(3.6, 2.8))
    for i, m in enumerate(BAYES_METHODS):
        ranks = a[f"sbc_ranks_{m}"]
        test = uniformity_test(ranks, M)
        R = ranks.shape[0]
        edges = np.floor(np.linspace(0, M + 1, test.n_bins + 1)) - 0.5
        for j in range(d):
            ax = axes[i * d + j]
            ax.hist(ranks[:, j], bins=edges, color=f"C{i}", alpha=0.6, zorder=2)
            p = test.expected / R
            lo = stats.binom.ppf(0.005, R, p)
            hi = stats.binom.ppf(0.995, R, p)
            ax.fill_between(
                edges,
                np.append(lo, lo[-1]),
                np.append(hi, hi[-1]),
                step="post",
                color="grey",
                alpha=0.4,
                zorder=1,
                label="99% band under uniformity",
            )
            ax.set_title(
                f"{_LABELS[m]} theta[{j}]: chi2 p={test.chi2_pvalue[j]:.2g}, "
                f"KS p={test.ks_pvalue[j]:.2g}",
                fontsize="x-small",
            )
            ax.set_xlabel(f"rank among {M} draws")
    paths.append(save_figure(fig, out_dir / "sbc_ranks.png"))

    paths.append(_write_tables(out_dir, a, s, doc["config"]))
    return paths


def _log_n_axis(ax: Any, ns: np.ndarray) -> None:
    """A log x-axis ticked exactly at the sample sizes."""
    from matplotlib.ticker import NullLocator

    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(ns, [str(int(n)) for n in ns])


def _fmt_cov(c: float, lo: float, hi: float) -> str:
    if np.isnan(c):
        return "-"
    if np.isnan(lo):
        return f"{c:.3f}"
    return f"{c:.3f} [{lo:.3f}, {hi:.3f}]"


def _write_tables(out_dir: Path, a: dict, s: dict, config: dict) -> Path:
    from ..io import atomic_write_text
    from ..plots import markdown_table

    cases, methods, targets = s["cases"], s["methods"], s["targets"]
    levels, ns = a["levels"], a["sample_sizes"]
    i95 = int(np.flatnonzero(np.isclose(levels, 0.95))[0])
    R = s["replications"]
    lines = [
        f"# confidence_sets: coverage tables ({R} replications per row)\n",
        "Coverage at nominal 95% with exact (Clopper-Pearson) 95% binomial bands in brackets. "
        "`theta`: joint set (chi2_d radius for Wald/LR, HPD for the posteriors). `nu cell`: the "
        f"response probability at (h,s,a,b) = {tuple(s['chosen_cell'])}. `nu avg` / `nu worst`: "
        "the mean / minimum over all cells of the per-cell coverage (not a binomial count: no "
        "band). `value`: the leader value of the fixed policy. Frequentist intervals for scalar "
        "targets are projections of the chi2_1-radius set (profile-likelihood for LR); "
        f"`LR (paper radius)` is the joint set with the finite-sample radius at nominal "
        f"{1 - config['theory_delta']:.2f}.\n",
    ]
    for t in ("theta", "nu_cell", "nu_avg", "nu_worst", "value"):
        ti = targets.index(t)
        headers = ["case", "n", *[_LABELS[m] for m in methods], _LABELS["lr_theory"]]
        rows = []
        for ci, case in enumerate(cases):
            for ni, n in enumerate(ns):
                row = [case, int(n)]
                for mi in range(len(methods)):
                    row.append(
                        _fmt_cov(
                            a["coverage"][ci, ni, mi, ti, i95],
                            a["coverage_lo"][ci, ni, mi, ti, i95],
                            a["coverage_hi"][ci, ni, mi, ti, i95],
                        )
                    )
                row.append(
                    _fmt_cov(
                        a["coverage_theory"][ci, ni, ti],
                        a["coverage_theory_lo"][ci, ni, ti],
                        a["coverage_theory_hi"][ci, ni, ti],
                    )
                )
                rows.append(row)
        lines += [f"\n## Coverage of {_TARGET_LABELS[t]} at 95%\n", markdown_table(headers, rows)]
    # calibration across levels at the largest n (theta and value)
    for t in ("theta", "value"):
        ti = targets.index(t)
        headers = ["case", "method", *[f"{lv:g}" for lv in levels]]
        rows = [
            [
                case,
                _LABELS[m],
                *[
                    _fmt_cov(
                        a["coverage"][ci, -1, mi, ti, k],
                        a["coverage_lo"][ci, -1, mi, ti, k],
                        a["coverage_hi"][ci, -1, mi, ti, k],
                    )
                    for k in range(len(levels))
                ],
            ]
            for ci, case in enumerate(cases)
            for mi, m in enumerate(methods)
        ]
        lines += [
            f"\n## Calibration of {_TARGET_LABELS[t]} at n = {int(ns[-1])}\n",
            markdown_table(headers, rows),
        ]
    # set sizes
    all_methods = s["all_methods"]
    for t, label in (
        ("theta", "median log volume of the 95% theta set"),
        ("nu_avg", "mean width of the 95% nu intervals"),
        ("value", "mean width of the 95% value interval"),
    ):
        ti = targets.index(t)
        ms = [m for m in all_methods if not (t == "theta" and m == "lr_theory")]
        headers = ["case", "n", *[_LABELS[m] for m in ms]]
        rows = [
            [case, int(n), *[float(a["width"][ci, ni, all_methods.index(m), ti]) for m in ms]]
            for ci, case in enumerate(cases)
            for ni, n in enumerate(ns)
        ]
        lines += [f"\n## Set size: {label}\n", markdown_table(headers, rows)]
    # diagnostics
    headers = [
        "case",
        "n",
        "MLE converged",
        "LR set unbounded (95%)",
        "NUTS runs with divergences",
        "NUTS median min-ESS",
        "NUTS mean accept",
        "NUTS mean leapfrog steps",
    ]
    rows = [
        [
            case,
            int(n),
            float(a["diag_mle_converged"][ci, ni]),
            float(a["diag_lr_unbounded"][ci, ni]),
            float(a["diag_nuts_divergent_frac"][ci, ni]),
            float(a["diag_nuts_ess_min_median"][ci, ni]),
            float(a["diag_nuts_accept_mean"][ci, ni]),
            float(a["diag_nuts_steps_mean"][ci, ni]),
        ]
        for ci, case in enumerate(cases)
        for ni, n in enumerate(ns)
    ]
    lines += [
        "\n## Diagnostics (fractions of replications unless stated)\n",
        markdown_table(headers, rows),
    ]
    # SBC
    headers = [
        "posterior",
        *[f"theta[{j}] chi2 p / KS p" for j in range(len(a["sbc_chi2_pvalue_nuts"]))],
    ]
    rows = [
        [
            _LABELS[m],
            *[
                f"{p:.3g} / {q:.3g}"
                for p, q in zip(a[f"sbc_chi2_pvalue_{m}"], a[f"sbc_ks_pvalue_{m}"], strict=True)
            ],
        ]
        for m in BAYES_METHODS
    ]
    lines += [
        f"\n## Simulation-based calibration ({config['sbc_replications']} replications, "
        f"{config['sbc_sample_size']} episodes, {s['sbc_n_draws']} draws kept)\n",
        markdown_table(headers, rows),
        f"\nNUTS (SBC runs): fraction with divergences {s['sbc_nuts_divergent_frac']:.3f}, "
        f"median min-ESS {s['sbc_nuts_ess_min_median']:.0f}.\n",
    ]
    return atomic_write_text(out_dir / "tables.md", "\n".join(lines))
