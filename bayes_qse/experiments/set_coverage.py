"""The coverage experiment's cases and per-batch computation (docs/math.md §7, experiment 3),
shared by :mod:`~bayes_qse.experiments.confidence_sets` (which runs and reports it) and
:mod:`~bayes_qse.experiments.rationality_sweep` (its set-width part).

:func:`make_case` builds a case's game, model and true targets; :func:`run_batch` computes,
for a batch of replications, every method's statistics (Wald, LR, the paper's LR radius,
Laplace, NUTS); :func:`run_sbc_batch` the SBC ranks.  The geometry lives in
:mod:`bayes_qse.profile`.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._validate import check_memory, game_bytes
from ..data import dataset_bytes
from ..errors import ConfigError
from ..follower import myopic_log_response
from ..games import tabular_game
from ..inference import laplace_draws
from ..likelihood import log_likelihood
from ..model import Model
from ..planning import leader_value, solve_qse
from ..profile import (
    credible_stats,
    directions,
    fit_counts,
    functionals,
    log_posterior_from_counts,
    log_unit_ball,
    lr_ray_lengths,
    nuts_data,
    projection,
    pseudo_true_theta,
    simulate_counts,
    whitener,
)
from ..samplers import nuts as run_nuts
from ..sbc import rank_statistic
from ..sets import chi2_radius, credible_box, theory_radius
from .config import ExperimentConfig, Table
from .games import GameRef, config_game, game_shape

CASES = ("well_specified", "misspecified", "near_deterministic")


FREQ_METHODS = ("wald", "lr", "lr_theory")


BAYES_METHODS = ("laplace", "nuts")


METHODS = FREQ_METHODS + BAYES_METHODS


@dataclasses.dataclass(frozen=True)
class ConfidenceSetsConfig(ExperimentConfig):
    """The ``confidence_sets`` config (one field per TOML key; the CI-sized defaults), here
    beside the cases it names (``rationality_sweep`` shares its game table), checked when
    made: a one-line :class:`ConfigError` naming the key, sizes against memory before
    anything is built."""

    seeds: int = 500  # replications per (case, sample size)
    base_seed: int = 0
    batch_size: int = 250
    cases: tuple[str, ...] = CASES
    sample_sizes: tuple[int, ...] = (30, 300)
    levels: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99)
    game: Table = Table(
        seed=3, n_states=2, n_leader_actions=2, n_follower_actions=3, horizon=2, feature_dim=2
    )
    eta: float = 1.0
    large_eta: float = 10.0
    misspec_scale: float = 0.5
    prior_scale: float = 1.0
    theory_delta: float = 0.05
    n_directions: int = 32
    laplace_draws: int = 1000
    nuts_warmup: int = 200
    nuts_samples: int = 400
    sbc_replications: int = 500
    sbc_sample_size: int = 50
    sbc_thin: int = 2

    def check(self, config: dict[str, Any]) -> None:
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
        n, key = max(
            (max(config["sample_sizes"]), "sample_sizes"),
            (config["sbc_sample_size"], "sbc_sample_size"),
        )
        check_game_settings(config, n, config["batch_size"], key)


#: The published form of the CI-sized defaults.
DEFAULT_CONFIG = ConfidenceSetsConfig.defaults()

#: ``--full``: 1000 replications, sample sizes 10 .. 1000.
FULL_CONFIG = ConfidenceSetsConfig.preset(
    seeds=1000,
    sample_sizes=[10, 100, 1000],
    nuts_warmup=300,
    nuts_samples=600,
    sbc_replications=1000,
)


#: The game of a set-coverage config: the ``random`` game of the ``game`` table, at the
#: config's ``eta`` (:mod:`bayes_qse.experiments.games`).
COVERAGE_GAME = GameRef("random", "game")


#: Index of the response cell reported on its own in the tables ((h, s, a, b) = (0, 0, 0, 0)).
CHOSEN_CELL = (0, 0, 0, 0)


TARGETS = ("theta", "nu_cell", "nu_avg", "nu_worst", "value")


def check_game_settings(config: dict, n_episodes: int, copies: int, key: str) -> None:
    """The ``game`` table of a set-coverage config (``confidence_sets``,
    ``rationality_sweep``): seed in ``[0, 2**32 - 1]``, sizes ``>= 1``, and the game with
    ``copies`` datasets of ``n_episodes`` episodes within the memory limit of ``make-game`` and
    ``simulate`` (:func:`bayes_qse._validate.memory_limit`); :class:`ConfigError` naming the
    key (``game`` for the game alone, else ``key``, the setting of ``n_episodes``), before
    anything is built."""
    H, S, A, B, d = game_shape(COVERAGE_GAME.kind, config["game"], COVERAGE_GAME.table)
    what = f"a game with (H,S,A,B)=({H},{S},{A},{B}), d={d}"
    check_memory(game_bytes(H, S, A, B, d), "config: game", what, ConfigError)
    check_memory(
        game_bytes(H, S, A, B, d) + copies * dataset_bytes(n_episodes, H, S, A),
        f"config: {key}",
        f"a game with (H,S,A,B)=({H},{S},{A},{B}), d={d}, and {copies} dataset(s) of "
        f"{n_episodes} episodes",
        ConfigError,
    )


def make_case(config: dict, case: str) -> dict[str, Any]:
    """The data-generating game, the model and the true targets of one case.

    Returns a dict with ``true_game`` (simulates the data), ``features``, ``eta`` (the model),
    ``policy`` (the fixed policy whose value is covered), ``behaviour`` (the data policy:
    uniform), ``theta_target[d]`` (true or pseudo-true), ``g_true[G]`` (the true response
    probabilities, flattened ``[H*S*A*B]``, then the true value ``J(policy)``).
    """
    g = config["game"]
    game = config_game(config, COVERAGE_GAME, eta=config["eta"])
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


_simulate_counts_jit = jax.jit(simulate_counts, static_argnames=("n_episodes",))


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
        mle, ll_hat, info, conv = fit_counts(counts, features, eta, 0.0)
        mapt, _, post_prec, conv_map = fit_counts(counts, features, eta, prior_prec)
        C = whitener(info)
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
        t_lr = lr_ray_lengths(ll, mle, ll_hat, w, radii, theta_cap)  # [K+2, n]
        lr_pts = mle + t_lr[..., None] * w[None]
        for name, pts in (("wald", wald_pts), ("lr", lr_pts)):
            lo, hi = projection(gfun, mle, pts[:K])
            out[f"cover_{name}"] = (lo <= g_true) & (g_true <= hi)
            out[f"width_{name}"] = hi - lo
        lo, hi = projection(gfun, mle, lr_pts[K + 1 :])
        out["cover_lr_theory"] = (lo <= g_true) & (g_true <= hi)
        out["width_lr_theory"] = hi - lo
        # set volumes at 0.95 (log): Wald and Laplace ellipsoids, LR by rays (star-shaped)
        logdet_c = jnp.sum(jnp.log(jnp.abs(jnp.diag(jnp.linalg.qr(C)[1]))))
        chi2_95 = radii[K]
        out["logvol_wald"] = log_unit_ball(d) + d / 2 * jnp.log(chi2_95) + logdet_c
        out["logvol_lr"] = log_unit_ball(d) + logdet_c + jnp.log(jnp.mean(t_lr[K] ** d))
        out["lr_unbounded"] = jnp.any(t_lr[K] * jnp.linalg.norm(w, axis=-1) >= theta_cap * 0.999)
        sign, logdet_p = jnp.linalg.slogdet(post_prec)
        out["logvol_laplace"] = log_unit_ball(d) + d / 2 * jnp.log(chi2_95) - 0.5 * logdet_p
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
    nuts = _batched_nuts(
        k_nuts[0], out["map"], nuts_data(counts, model[0], model[1], model[7]), config
    )
    levels = config["levels"]
    g_lap = np.asarray(out.pop("g_draws_laplace"))
    out = {k: np.asarray(v) for k, v in out.items()}
    g_nuts = np.asarray(_g_of_draws(jnp.asarray(nuts["draws"]), model))
    cred = _credible_batch(nuts["draws"], g_nuts, case["theta_target"], case["g_true"], levels)
    out["cover_theta_nuts"] = cred["cover_theta"]
    out["cover_nuts"] = cred["cover"]
    out["width_nuts"] = cred["width"]
    out["logvol_nuts"] = cred["logvol"]
    boxes = [[credible_box(g_lap[r], lv) for lv in levels] for r in range(g_lap.shape[0])]
    lo = np.array([[b[0] for b in row] for row in boxes])
    hi = np.array([[b[1] for b in row] for row in boxes])
    out["cover_laplace"] = (lo <= case["g_true"]) & (case["g_true"] <= hi)
    out["width_laplace"] = hi - lo
    out["nuts_divergences"] = nuts["diverging"].sum(axis=1)
    out["nuts_accept"] = nuts["accept_prob"]
    out["nuts_ess_min"] = nuts["ess"].min(axis=1)
    out["nuts_mean_steps"] = nuts["num_steps"].mean(axis=1)
    keep = len(indices)
    return {k: np.asarray(v)[:keep] for k, v in out.items()}


def _batched_nuts(key: jax.Array, init: Any, data: tuple, config: dict) -> dict:
    """One NUTS chain per replication (dense mass, tree depth 8), all replications at once
    (:func:`bayes_qse.samplers.nuts`, ``batched``): ``draws[R,M,d]``, ``diverging[R,M]``,
    ``num_steps[R,M]``, ``accept_prob[R]``, ``ess[R,d]``."""
    res = run_nuts(
        key,
        log_posterior_from_counts,
        init,
        data,
        num_warmup=config["nuts_warmup"],
        num_samples=config["nuts_samples"],
        batched=True,
        dense_mass=True,
        max_tree_depth=8,
    )
    return {
        "draws": res.draws[:, 0],
        "diverging": res.diverging[:, 0],
        "num_steps": res.num_steps[:, 0],
        "accept_prob": res.accept_prob[:, 0],
        "ess": res.ess,
    }


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
    nuts = _batched_nuts(sub(3)[0], maps, nuts_data(counts, features, eta, 1.0 / sigma**2), config)
    nuts_draws = jnp.asarray(nuts["draws"][:, :: config["sbc_thin"]][:, :M])
    keep = len(indices)
    return {
        "rank_laplace": np.asarray(rank_statistic(lap_draws, theta))[:keep],
        "rank_nuts": np.asarray(rank_statistic(nuts_draws, theta))[:keep],
        "theta": np.asarray(theta)[:keep],
        "nuts_divergences": nuts["diverging"].sum(axis=1)[:keep],
        "nuts_ess_min": nuts["ess"].min(axis=1)[:keep],
    }


@partial(jax.jit, static_argnames=("n_draws",))
def _laplace_batch(counts, keys, features, eta, prior_prec, n_draws):
    """MAPs ``[R,d]`` and Laplace draws ``[R,M,d]`` for ``counts[R]`` (vmapped)."""

    def one(c, k):
        mapt, _, prec, _ = fit_counts(c, features, eta, prior_prec)
        return mapt, laplace_draws(k, mapt, prec, n_draws)

    return jax.vmap(one)(counts, keys)


__all__ = [
    "COVERAGE_GAME",
    "BAYES_METHODS",
    "CASES",
    "CHOSEN_CELL",
    "ConfidenceSetsConfig",
    "DEFAULT_CONFIG",
    "FREQ_METHODS",
    "FULL_CONFIG",
    "METHODS",
    "TARGETS",
    "check_game_settings",
    "make_case",
    "radii_for",
    "replication_keys",
    "run_batch",
    "run_sbc_batch",
]
