"""The leader's own model of her transitions and rewards, docs/math.md eq. (5).

One interface, four implementations, so that a learner can switch between them:

* :class:`KnownModel` -- planning mode: the true transitions and rewards, nothing to learn.
* :class:`DirichletNormalModel` -- Bayesian, tabular: a Dirichlet posterior over each
  ``P_h(.|s,a,b)`` and a conjugate Normal posterior (known noise scale) over each mean reward.
* :class:`EmpiricalBonusModel` -- frequentist, model-based: empirical estimates with Hoeffding
  or empirical-Bernstein reward bonuses and a Weissman L1 radius for the transitions.
* :class:`LinearLSVI` -- model-free, linear: least-squares value iteration on features
  ``psi[H,S,A,B,k]``, written as planning on the least-squares "model"
  ``r_hat = psi . w_r``, ``P_hat(.|s,a,b) = psi(s,a,b)' Lambda^{-1} sum_i psi_i e_{s'_i}'``
  (Jin et al. 2020): backward induction on ``(P_hat, r_hat)`` *is* LSVI, since
  ``r_hat + P_hat V = psi' Lambda^{-1} sum_i psi_i (r_i + V(s'_i))``.

The interface (:class:`LeaderModel`), all methods pure and ``jit``-able in ``stats``::

    init(H, S, A, B)            -> stats         (a NamedTuple pytree of arrays)
    update(stats, data)         -> stats         (data: an Episode, an EpisodeBuffer, a Dataset,
                                                  or any object with the same arrays)
    mean(stats)                 -> (transitions[H,S,A,B,S], leader_reward[H,S,A,B])
    sample(stats, key, M)       -> (transitions[M,H,S,A,B,S], leader_reward[M,H,S,A,B])
    bonus(stats, delta)         -> Bonus(reward[H,S,A,B], l1_radius[H,S,A,B])

``mean`` and ``bonus`` feed :func:`bayes_qse.robust_planning.box_plan` (reward +/- bonus, L1 ball
of radius ``l1_radius`` around the mean kernel); ``sample`` feeds
:func:`bayes_qse.robust_planning.plan_draws` and ``quantile_plan``.  The frequentist models'
``sample`` returns ``M`` copies of the mean (they have no posterior).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from ._validate import as_float_array, check_distribution, check_positive_scalar
from .errors import BayesQSEInputError, ConfigError
from .types import Array

#: Reward bonuses of :class:`EmpiricalBonusModel` (online ``mle-optimistic``, offline
#: ``mle-pessimistic``): Hoeffding, empirical Bernstein, the smaller of the two, or none.
REWARD_BOUNDS = ("hoeffding", "bernstein", "best", "deterministic")


class TabularStats(NamedTuple):
    """Sufficient statistics of tabular transitions and rewards.

    Attributes:
        counts: ``[H,S,A,B,S]`` number of observed transitions ``(h,s,a,b) -> s'``.
        n: ``[H,S,A,B]`` visits of ``(h,s,a,b)`` (``counts.sum(-1)``).
        reward_sum: ``[H,S,A,B]`` sum of observed rewards.
        reward_sq: ``[H,S,A,B]`` sum of squared observed rewards.
    """

    counts: Array
    n: Array
    reward_sum: Array
    reward_sq: Array


class LinearStats(NamedTuple):
    """Sufficient statistics of least-squares value iteration (per step ``h``).

    Attributes:
        gram: ``[H,k,k]`` ``sum_i psi_i psi_i'`` (without the ridge ``lambda I``).
        reward_moment: ``[H,k]`` ``sum_i psi_i r_i``.
        next_moment: ``[H,k,S]`` ``sum_i psi_i e_{s'_i}'``.
        n: ``[H]`` number of samples.
    """

    gram: Array
    reward_moment: Array
    next_moment: Array
    n: Array


class Bonus(NamedTuple):
    """Optimism / pessimism widths of a leader model at level ``delta``.

    Attributes:
        reward: ``[H,S,A,B]`` >= 0, added to (optimism) or subtracted from (pessimism) the mean
            reward.
        l1_radius: ``[H,S,A,B]`` >= 0, L1 radius of the transition set around the mean kernel
            (zeros where the model has no transition uncertainty or none it can express).
    """

    reward: Array
    l1_radius: Array


class LeaderModel(Protocol):
    """The interface every leader model implements (see the module docstring)."""

    def init(self, H: int, S: int, A: int, B: int) -> Any: ...

    def update(self, stats: Any, data: Any) -> Any: ...

    def mean(self, stats: Any) -> tuple[Array, Array]: ...

    def sample(self, stats: Any, key: Array, M: int) -> tuple[Array, Array]: ...

    def bonus(self, stats: Any, delta: float) -> Bonus: ...


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------


def episode_arrays(data: Any) -> tuple[Array, Array, Array, Array, Array]:
    """``(states[N,H+1], leader_actions[N,H], follower_actions[N,H], rewards[N,H],
    weight[N])`` from an Episode (``N = 1``), an EpisodeBuffer (weight = its ``mask``), a
    Dataset, or any object with these attributes.  Pure (no validation) so it runs under jit.
    """
    states = jnp.asarray(data.states)
    la = jnp.asarray(data.leader_actions)
    fa = jnp.asarray(data.follower_actions)
    rw = jnp.asarray(data.rewards, dtype=jnp.float64)
    if states.ndim == 1:
        states, la, fa, rw = states[None], la[None], fa[None], rw[None]
    mask = getattr(data, "mask", None)
    weight = jnp.ones(states.shape[0]) if mask is None else jnp.asarray(mask, dtype=rw.dtype)
    return states, la, fa, rw, weight


def tabular_stats_init(H: int, S: int, A: int, B: int) -> TabularStats:
    """Zero :class:`TabularStats` for a game of shape ``(H,S,A,B)``."""
    z = jnp.zeros((H, S, A, B))
    return TabularStats(jnp.zeros((H, S, A, B, S)), z, z, z)


def tabular_stats_update(stats: TabularStats, data: Any) -> TabularStats:
    """Add the (weighted) transitions and rewards of ``data`` to ``stats``; pure, jit-able."""
    states, la, fa, rw, weight = episode_arrays(data)
    N, H = la.shape
    h = jnp.broadcast_to(jnp.arange(H), (N, H))
    s, s_next = states[:, :-1], states[:, 1:]
    w = jnp.broadcast_to(weight[:, None], (N, H))
    idx = (h, s, la, fa)
    return TabularStats(
        counts=stats.counts.at[(*idx, s_next)].add(w),
        n=stats.n.at[idx].add(w),
        reward_sum=stats.reward_sum.at[idx].add(w * rw),
        reward_sq=stats.reward_sq.at[idx].add(w * rw * rw),
    )


def weissman_l1_radius(n: Array, n_states: int, delta: float) -> Array:
    """L1 deviation bound of an empirical distribution on ``S`` points from ``n`` samples
    (Weissman et al. 2003): ``sqrt(2 (S log 2 + log(1/delta)) / n)``, capped at 2 (2 where
    ``n = 0``)."""
    radius = jnp.sqrt(2.0 * (n_states * jnp.log(2.0) + jnp.log(1.0 / delta)) / jnp.maximum(n, 1))
    return jnp.where(n > 0, jnp.minimum(radius, 2.0), 2.0)


def _check_delta(delta: Any) -> None:
    if not isinstance(delta, jax.core.Tracer):
        d = float(delta)
        if not 0.0 < d < 1.0:
            raise BayesQSEInputError(f"delta: must lie in (0, 1), got {delta!r}")


def _repeat(x: Array, M: int) -> Array:
    return jnp.broadcast_to(x, (M, *x.shape))


# ---------------------------------------------------------------------------------------
# Implementations
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class KnownModel:
    """Planning mode: the leader knows ``transitions[H,S,A,B,S]`` and ``leader_reward``.

    ``update`` ignores data, ``sample`` repeats the truth and ``bonus`` is zero.
    """

    transitions: Any
    leader_reward: Any

    def __post_init__(self) -> None:
        P = as_float_array(self.transitions, "transitions", 5)
        check_distribution(P, "transitions", axis=-1)
        r = as_float_array(self.leader_reward, "leader_reward", 4)
        if r.shape != P.shape[:4]:
            raise BayesQSEInputError(f"leader_reward: expected shape {P.shape[:4]}, got {r.shape}")
        object.__setattr__(self, "transitions", P)
        object.__setattr__(self, "leader_reward", r)

    @classmethod
    def from_game(cls, game: Any) -> KnownModel:
        return cls(game.transitions, game.leader_reward)

    def init(self, H: int, S: int, A: int, B: int) -> TabularStats:
        return tabular_stats_init(H, S, A, B)

    def update(self, stats: TabularStats, data: Any) -> TabularStats:
        return stats

    def mean(self, stats: TabularStats) -> tuple[Array, Array]:
        return jnp.asarray(self.transitions), jnp.asarray(self.leader_reward)

    def sample(self, stats: TabularStats, key: Array, M: int) -> tuple[Array, Array]:
        P, r = self.mean(stats)
        return _repeat(P, M), _repeat(r, M)

    def bonus(self, stats: TabularStats, delta: float) -> Bonus:
        z = jnp.zeros(np.shape(self.leader_reward))
        return Bonus(z, z)


def log_gamma_draws(key: Array, alpha: Array, shape: tuple[int, ...], boost: int = 4) -> Array:
    """``log`` of ``Gamma(alpha, 1)`` draws of ``shape`` without rejection loops.

    ``Gamma(a) = Gamma(a + k) * prod_{j<k} U_j^{1/(a+j)}`` exactly (Marsaglia & Tsang's
    boosting identity, iterated ``k = boost`` times), and ``Gamma(b)``, ``b = a + k``, by the
    Wilson-Hilferty cube of a normal, ``b (1 - 1/(9b) + z / (3 sqrt b))^3``, whose
    distribution error at ``b >= 4`` is below what 200,000 draws can detect (a KS test against
    :mod:`scipy.stats` is in the tests).  Loop-free, hence cheap to compile and to ``vmap``,
    unlike ``jax.random.gamma``'s rejection sampler (which dominated the cost of an episode of
    ``bayes-optimistic``).  Works in log space, so tiny ``alpha`` are fine.
    """
    alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float64), shape)
    k_z, k_u = jax.random.split(key)
    b = alpha + boost
    z = jax.random.normal(k_z, shape, dtype=jnp.float64)
    base = 1.0 - 1.0 / (9.0 * b) + z / (3.0 * jnp.sqrt(b))
    tiny = jnp.finfo(jnp.float64).tiny
    log_u = jnp.log(jax.random.uniform(k_u, (boost, *shape), jnp.float64, minval=tiny))
    j = jnp.arange(boost, dtype=jnp.float64).reshape((boost,) + (1,) * len(shape))
    return jnp.log(b) + 3.0 * jnp.log(jnp.maximum(base, tiny)) + jnp.sum(log_u / (alpha + j), 0)


def dirichlet_draws(key: Array, concentration: Array, num_samples: int) -> Array:
    """``[M, ..., S]`` draws of ``Dirichlet(concentration[..., S])`` (normalised Gamma draws,
    :func:`log_gamma_draws`)."""
    shape = (num_samples, *concentration.shape)
    return jax.nn.softmax(log_gamma_draws(key, concentration, shape), axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class DirichletNormalModel:
    """Bayesian tabular model (eq. 5).

    Prior: ``P_h(.|s,a,b) ~ Dirichlet(alpha0 * 1_S)``; mean reward
    ``mu_h(s,a,b) ~ Normal(reward_prior_mean, reward_noise_sd^2 / reward_prior_strength)``,
    rewards ``r ~ Normal(mu, reward_noise_sd^2)`` with a known noise scale.  Posterior after
    counts ``c`` and ``n`` visits with reward sum ``R``::

        P | data  ~ Dirichlet(alpha0 + c)
        mu | data ~ Normal((k0 m0 + R) / (k0 + n), sigma^2 / (k0 + n))

    ``mean`` gives the posterior means; ``bonus(delta)`` the one-sided ``1 - delta`` posterior
    quantile width of ``mu`` and the Weissman L1 radius with ``n + S alpha0`` pseudo-samples.
    """

    alpha0: float = 1.0
    reward_prior_mean: float = 0.0
    reward_prior_strength: float = 1.0
    reward_noise_sd: float = 1.0

    def __post_init__(self) -> None:
        for name in ("alpha0", "reward_prior_strength", "reward_noise_sd"):
            check_positive_scalar(getattr(self, name), name)
        float(as_float_array(self.reward_prior_mean, "reward_prior_mean", 0))

    def init(self, H: int, S: int, A: int, B: int) -> TabularStats:
        return tabular_stats_init(H, S, A, B)

    def update(self, stats: TabularStats, data: Any) -> TabularStats:
        return tabular_stats_update(stats, data)

    def posterior(self, stats: TabularStats) -> tuple[Array, Array, Array]:
        """``(dirichlet_concentration[H,S,A,B,S], reward_mean[H,S,A,B], reward_sd[H,S,A,B])``."""
        conc = self.alpha0 + stats.counts
        k = self.reward_prior_strength + stats.n
        mu = (self.reward_prior_strength * self.reward_prior_mean + stats.reward_sum) / k
        return conc, mu, self.reward_noise_sd / jnp.sqrt(k)

    def mean(self, stats: TabularStats) -> tuple[Array, Array]:
        conc, mu, _ = self.posterior(stats)
        return conc / jnp.sum(conc, axis=-1, keepdims=True), mu

    def sample(self, stats: TabularStats, key: Array, M: int) -> tuple[Array, Array]:
        conc, mu, sd = self.posterior(stats)
        k_p, k_r = jax.random.split(key)
        P = dirichlet_draws(k_p, conc, M)
        r = mu + sd * jax.random.normal(k_r, (M, *mu.shape), dtype=mu.dtype)
        return P, r

    def bonus(self, stats: TabularStats, delta: float) -> Bonus:
        _check_delta(delta)
        conc, _, sd = self.posterior(stats)
        S = conc.shape[-1]
        z = ndtri(1.0 - jnp.asarray(delta, dtype=sd.dtype))
        radius = weissman_l1_radius(stats.n + S * self.alpha0, S, delta)
        return Bonus(z * sd, radius)


@dataclasses.dataclass(frozen=True, eq=False)
class EmpiricalBonusModel:
    """Frequentist, model-based (eq. 5): empirical kernel and mean rewards with bonuses.

    ``mean``: ``P_hat = c / n`` and ``r_hat = R / n``; unvisited ``(h,s,a,b)`` get the uniform
    kernel and the mid-range reward.  ``bonus(delta)`` with ``L = log(2 H S A B / delta)``
    (a union bound over cells) and rewards in ``reward_range = (low, high)``, ``R = high-low``:

    * ``kind="hoeffding"``: ``R sqrt(L / (2n))``;
    * ``kind="bernstein"`` (empirical Bernstein, Maurer & Pontil 2009):
      ``sqrt(2 var_hat L / n) + 7 R L / (3 (n - 1))`` for ``n >= 2``;
    * ``kind="best"``: per cell the smaller of the two, each at ``delta / 2`` (both hold
      together with probability ``>= 1 - delta``; the Bernstein term decays like ``1 / n`` when
      the rewards vary little, deterministic rewards included);
    * ``kind="deterministic"``: 0 once visited (the leader knows her rewards are deterministic);

    each capped at ``R`` (``R`` where there are too few visits); the transition radius is the
    Weissman L1 bound :func:`weissman_l1_radius` at ``delta / (H S A B)`` (the same union
    bound).  ``sample`` returns ``M`` copies of the mean.
    """

    kind: str = "hoeffding"
    reward_range: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.kind not in REWARD_BOUNDS:
            raise BayesQSEInputError(f"kind: expected one of {REWARD_BOUNDS}, got {self.kind!r}")
        lo, hi = (float(x) for x in self.reward_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
            raise BayesQSEInputError(f"reward_range: need low < high, got {self.reward_range!r}")
        object.__setattr__(self, "reward_range", (lo, hi))

    def init(self, H: int, S: int, A: int, B: int) -> TabularStats:
        return tabular_stats_init(H, S, A, B)

    def update(self, stats: TabularStats, data: Any) -> TabularStats:
        return tabular_stats_update(stats, data)

    def mean(self, stats: TabularStats) -> tuple[Array, Array]:
        S = stats.counts.shape[-1]
        n = stats.n
        visited = n > 0
        safe_n = jnp.maximum(n, 1)
        P = jnp.where(visited[..., None], stats.counts / safe_n[..., None], 1.0 / S)
        mid = 0.5 * (self.reward_range[0] + self.reward_range[1])
        r = jnp.where(visited, stats.reward_sum / safe_n, mid)
        return P, r

    def sample(self, stats: TabularStats, key: Array, M: int) -> tuple[Array, Array]:
        P, r = self.mean(stats)
        return _repeat(P, M), _repeat(r, M)

    def bonus(self, stats: TabularStats, delta: float) -> Bonus:
        _check_delta(delta)
        S = stats.counts.shape[-1]
        n = stats.n
        width = self.reward_range[1] - self.reward_range[0]
        safe_n = jnp.maximum(n, 1)

        def hoeffding(d):
            L = jnp.log(2.0 * n.size / jnp.asarray(d, dtype=n.dtype))
            return jnp.where(n > 0, width * jnp.sqrt(L / (2.0 * safe_n)), width)

        def bernstein(d):
            L = jnp.log(2.0 * n.size / jnp.asarray(d, dtype=n.dtype))
            mean = stats.reward_sum / safe_n
            var = jnp.maximum(stats.reward_sq / safe_n - mean**2, 0.0) * n / jnp.maximum(n - 1, 1)
            b = jnp.sqrt(2.0 * var * L / safe_n) + 7.0 * width * L / (3.0 * jnp.maximum(n - 1, 1))
            return jnp.where(n >= 2, b, width)

        if self.kind == "best":
            b = jnp.minimum(hoeffding(delta / 2), bernstein(delta / 2))
        elif self.kind == "deterministic":
            b = jnp.where(n > 0, 0.0, width)
        else:
            b = hoeffding(delta) if self.kind == "hoeffding" else bernstein(delta)
        # the L1 radius takes the same union bound over the ``n.size`` cells as the rewards
        return Bonus(jnp.minimum(b, width), weissman_l1_radius(n, S, delta / n.size))


@dataclasses.dataclass(frozen=True, eq=False)
class LinearLSVI:
    """Model-free, linear (eq. 5): least-squares value iteration on ``psi[H,S,A,B,k]``.

    With ridge ``Lambda_h = reg I + sum_i psi_i psi_i'`` over the samples of step ``h``::

        r_hat_h(s,a,b)      = psi' Lambda_h^{-1} sum_i psi_i r_i
        P_hat_h(s'|s,a,b)   = psi' Lambda_h^{-1} sum_i psi_i 1[s'_i = s']

    so ``r_hat + P_hat V = psi' Lambda^{-1} sum_i psi_i (r_i + V(s'_i))``, the LSVI regression
    (Jin et al. 2020); ``P_hat`` rows need not be distributions.  ``bonus(delta)``:
    ``beta_h ||psi||_{Lambda_h^{-1}}`` with ``beta_h = bonus_scale (sqrt(reg) + sqrt(k log(1 +
    n_h / (k reg)) + 2 log(1/delta)))`` (the self-normalised bound of Abbasi-Yadkori et al.
    2011 for unit noise and unit-norm weights), ``l1_radius`` zero.  ``sample`` perturbs the
    reward weights, ``w ~ Normal(w_hat, noise_sd^2 Lambda^{-1})`` (randomised LSVI), and keeps
    the mean ``P_hat``.
    """

    features: Any
    reg: float = 1.0
    bonus_scale: float = 1.0
    noise_sd: float = 1.0

    def __post_init__(self) -> None:
        psi = as_float_array(self.features, "features", 5)
        object.__setattr__(self, "features", psi)
        for name in ("reg", "bonus_scale", "noise_sd"):
            check_positive_scalar(getattr(self, name), name)

    def init(self, H: int, S: int, A: int, B: int) -> LinearStats:
        psi = self.features
        if psi.shape[:4] != (H, S, A, B):
            raise BayesQSEInputError(
                f"features: expected shape {(H, S, A, B)} + (k,), got {psi.shape}"
            )
        k = psi.shape[-1]
        return LinearStats(
            jnp.zeros((H, k, k)), jnp.zeros((H, k)), jnp.zeros((H, k, S)), jnp.zeros((H,))
        )

    def update(self, stats: LinearStats, data: Any) -> LinearStats:
        states, la, fa, rw, weight = episode_arrays(data)
        N, H = la.shape
        S = stats.next_moment.shape[-1]
        h = jnp.broadcast_to(jnp.arange(H), (N, H))
        psi = jnp.asarray(self.features)[h, states[:, :-1], la, fa]  # [N,H,k]
        wpsi = psi * weight[:, None, None]
        onehot = jax.nn.one_hot(states[:, 1:], S, dtype=psi.dtype)  # [N,H,S]
        return LinearStats(
            gram=stats.gram + jnp.einsum("nhk,nhl->hkl", wpsi, psi),
            reward_moment=stats.reward_moment + jnp.einsum("nhk,nh->hk", wpsi, rw),
            next_moment=stats.next_moment + jnp.einsum("nhk,nhs->hks", wpsi, onehot),
            n=stats.n + jnp.sum(weight) * jnp.ones((H,)),
        )

    def _precision(self, stats: LinearStats) -> Array:
        k = stats.gram.shape[-1]
        return stats.gram + self.reg * jnp.eye(k)

    def weights(self, stats: LinearStats) -> tuple[Array, Array]:
        """``(w_r[H,k], W_P[H,k,S])``: the ridge solutions for rewards and next states."""
        lam = self._precision(stats)
        w_r = jnp.linalg.solve(lam, stats.reward_moment[..., None])[..., 0]
        w_p = jnp.linalg.solve(lam, stats.next_moment)
        return w_r, w_p

    def mean(self, stats: LinearStats) -> tuple[Array, Array]:
        w_r, w_p = self.weights(stats)
        psi = jnp.asarray(self.features)
        return jnp.einsum("hsabk,hkt->hsabt", psi, w_p), jnp.einsum("hsabk,hk->hsab", psi, w_r)

    def sample(self, stats: LinearStats, key: Array, M: int) -> tuple[Array, Array]:
        P, _ = self.mean(stats)
        w_r, _ = self.weights(stats)
        cov = jnp.linalg.inv(self._precision(stats))
        chol = jnp.linalg.cholesky(cov)  # [H,k,k]
        z = jax.random.normal(key, (M, *w_r.shape), dtype=w_r.dtype)
        w = w_r + self.noise_sd * jnp.einsum("hkl,mhl->mhk", chol, z)
        r = jnp.einsum("hsabk,mhk->mhsab", jnp.asarray(self.features), w)
        return _repeat(P, M), r

    def bonus(self, stats: LinearStats, delta: float) -> Bonus:
        _check_delta(delta)
        psi = jnp.asarray(self.features)
        k = psi.shape[-1]
        lam_inv = jnp.linalg.inv(self._precision(stats))
        norm = jnp.sqrt(jnp.maximum(jnp.einsum("hsabk,hkl,hsabl->hsab", psi, lam_inv, psi), 0.0))
        log_term = k * jnp.log1p(stats.n / (k * self.reg)) + 2.0 * jnp.log(1.0 / delta)
        beta = self.bonus_scale * (jnp.sqrt(self.reg) + jnp.sqrt(log_term))  # [H]
        reward = beta[:, None, None, None] * norm
        return Bonus(reward, jnp.zeros_like(reward))


LEADER_FEATURES = ("follower", "tabular")


def lsvi_features(follower_features: Any, kind: str = "follower") -> np.ndarray:
    """Leader features ``psi[H,S,A,B,k]`` for :class:`LinearLSVI` (docs/math.md §3.1).

    ``kind="follower"``: the follower's features and a constant, ``psi = (phi, 1)``,
    ``k = d + 1`` -- the leader reuses what she already observes about each cell (exact for
    :func:`bayes_qse.games.patrol_game`, whose rewards and transitions are affine in ``phi``).
    ``kind="tabular"``: the one-hot of ``(s, a, b)``, ``k = S A B`` (shared across ``h``,
    whose statistics :class:`LinearLSVI` keeps per step anyway); LSVI on these is tabular
    model-based planning on the ridge-shrunk empirical model ``counts / (n + reg)``.
    """
    phi = np.asarray(follower_features, np.float64)
    if phi.ndim != 5:
        raise BayesQSEInputError(f"features: expected [H,S,A,B,d], got shape {phi.shape}")
    H, S, A, B, _ = phi.shape
    if kind == "follower":
        return np.concatenate([phi, np.ones((H, S, A, B, 1))], axis=-1)
    if kind == "tabular":
        eye = np.eye(S * A * B).reshape(S, A, B, S * A * B)
        return np.broadcast_to(eye, (H, S, A, B, S * A * B)).copy()
    raise BayesQSEInputError(f"leader_features: must be one of {LEADER_FEATURES}, got {kind!r}")


# ---------------------------------------------------------------------------------------
# The frequentist tabular model of a dataset (eq. 5), as the offline learners use it
# ---------------------------------------------------------------------------------------


def leader_model_stats(dataset: Any, spec: Any) -> TabularStats:
    """Sufficient statistics (counts, reward sums) of the leader's tabular model (eq. 5) from
    a ``Dataset``; ``spec`` gives ``shape`` (a ``GameSpec`` or a ``Game``)."""
    return tabular_stats_update(tabular_stats_init(*spec.shape), dataset)


def empirical_leader_model(
    dataset: Any, spec: Any, delta: float | None = None, reward_bound: str = "hoeffding"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The frequentist leader model of eq. (5) from ``dataset``
    (:class:`EmpiricalBonusModel`); ``spec`` gives ``shape`` and ``reward_range`` (a
    :class:`~bayes_qse.learners.common.GameSpec`).

    ``reward_bound``: the ``kind`` of :class:`EmpiricalBonusModel`, one of :data:`REWARD_BOUNDS`.
    Returns ``(counts[H,S,A,B], p_hat[H,S,A,B,S], r_hat[H,S,A,B], reward_bonus, l1_radius)``;
    unseen cells get the uniform kernel and the mid-range reward.  With ``delta``, the bonuses
    hold simultaneously over all ``K = H S A B`` cells with probability ``>= 1 - delta`` each
    (rewards: ``log(2K/delta)`` in the bonus; transitions: Weissman's L1 radius at
    ``delta / K``); else they are ``None``.
    """
    if reward_bound not in REWARD_BOUNDS:
        raise ConfigError(
            f"config: reward_bound must be one of {REWARD_BOUNDS}, got {reward_bound!r}"
        )
    model = EmpiricalBonusModel(reward_bound, spec.reward_range)
    stats = leader_model_stats(dataset, spec)
    p_hat, r_hat = model.mean(stats)
    bonus = radius = None
    if delta is not None:
        bonus = np.asarray(model.bonus(stats, delta).reward)
        K = int(np.size(stats.n))
        radius = np.asarray(weissman_l1_radius(stats.n, spec.shape[1], delta / K))
    return np.asarray(stats.n), np.asarray(p_hat), np.asarray(r_hat), bonus, radius


def first_state_counts(dataset: Any, spec: Any) -> np.ndarray:
    """``[S]`` counts of the episodes' first states."""
    states = np.asarray(dataset.states)[:, 0]
    return np.bincount(states, minlength=spec.shape[1]).astype(np.float64)


def posterior_leader_draws(
    dataset: Any,
    spec: Any,
    key: Array,
    num_draws: int,
    dirichlet_prior: float = 1.0,
) -> tuple[Array, Array]:
    """Posterior draws of the leader's model (eq. 5, Bayesian, tabular) from
    :class:`DirichletNormalModel` (``spec``: a :class:`~bayes_qse.learners.common.GameSpec`):
    ``P^m_h(.|s,a,b) ~ Dirichlet(dirichlet_prior + counts)`` and mean rewards from the
    conjugate Normal with prior mean the middle of ``reward_range`` and noise scale half its
    width.  In planning mode the known model is repeated.  Returns
    ``(transitions[M,H,S,A,B,S], rewards[M,H,S,A,B])``.
    """
    M = int(num_draws)
    if spec.known_model:
        P = jnp.broadcast_to(jnp.asarray(spec.transitions), (M, *np.shape(spec.transitions)))
        r = jnp.broadcast_to(jnp.asarray(spec.leader_reward), (M, *np.shape(spec.leader_reward)))
        return P, r
    lo, hi = spec.reward_range
    model = DirichletNormalModel(
        alpha0=float(dirichlet_prior),
        reward_prior_mean=0.5 * (lo + hi),
        reward_prior_strength=1.0,
        reward_noise_sd=max(0.5 * (hi - lo), 1e-12),
    )
    return model.sample(leader_model_stats(dataset, spec), key, M)


__all__ = [
    "first_state_counts",
    "posterior_leader_draws",
    "REWARD_BOUNDS",
    "empirical_leader_model",
    "leader_model_stats",
    "Bonus",
    "LEADER_FEATURES",
    "DirichletNormalModel",
    "EmpiricalBonusModel",
    "KnownModel",
    "LeaderModel",
    "LinearLSVI",
    "LinearStats",
    "TabularStats",
    "episode_arrays",
    "lsvi_features",
    "tabular_stats_init",
    "tabular_stats_update",
    "weissman_l1_radius",
]
