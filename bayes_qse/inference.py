"""Learning the follower's ``theta`` from episodes (docs/math.md §2): MLE with the observed Fisher
information, the MAP/Laplace posterior and NUTS in NumPyro — all on the one likelihood (4) of
:mod:`bayes_qse.likelihood`.

- :func:`map_newton` is the pure, jit-able core: damped Newton on
  ``L(theta) - theta' Lambda theta / 2`` (``Lambda`` the prior precision; ``0`` gives the MLE)
  over a fixed-capacity :class:`~bayes_qse.data.EpisodeBuffer`, so an online loop never
  recompiles as data grow.  It returns the optimum and the negative Hessian there: the observed
  Fisher information ``I = -Hess L`` (plus ``Lambda``), shared by the Wald set and Laplace.
- :func:`fit_mle` wraps it for a :class:`~bayes_qse.data.Dataset`: float64, standard errors,
  and the detection of non-identified directions (null space of ``I``; docs/math.md §1.3).
- :func:`sample_posterior` gives a :class:`Posterior` by NUTS (NumPyro, the likelihood enters
  as a ``numpyro.factor``) or by Laplace (Gaussian at the MAP, covariance ``(I + Lambda)^-1``);
  ``Posterior.to_arviz()`` returns an ArviZ 1.x ``DataTree`` with a ``feature`` coordinate.
  The data enter the NumPyro model as arguments and the NUTS kernel loop is a cached
  ``jit``-compiled ``scan``, so only the first call for a given shape compiles.
- :func:`fit_summary` is the JSON-able dictionary printed by ``bayes-qse fit --json`` (§6).
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import NUTS

from ._validate import as_float_array, check_eta, check_positive_scalar
from .data import Dataset, EpisodeBuffer, buffer_from_dataset, simulate
from .errors import BayesQSEInputError
from .games import Game
from .likelihood import log_likelihood, myopic_log_likelihood_from_counts, response_counts

Array = jax.Array


class IdentifiabilityWarning(UserWarning):
    """Some direction of ``theta`` is not identified by the data (flat likelihood)."""


class PosteriorDiagnosticsWarning(UserWarning):
    """NUTS diagnostics are bad (R-hat, effective sample size or divergences)."""


# ---------------------------------------------------------------------------------------
# Pure core: damped Newton to the MLE / MAP
# ---------------------------------------------------------------------------------------


def _pinv_solve(neg_hess: Array, grad: Array, rtol: float = 1e-12) -> Array:
    """``|I|^+ g``: a Newton step that ignores (near-)flat directions and flips negative ones."""
    lam, vecs = jnp.linalg.eigh(neg_hess)
    mag = jnp.abs(lam)
    keep = mag > rtol * jnp.maximum(jnp.max(mag), 1.0)
    inv = jnp.where(keep, 1.0 / jnp.where(keep, mag, 1.0), 0.0)
    return vecs @ (inv * (vecs.T @ grad))


_LINE_SEARCH_STEPS = 2.0 ** -jnp.arange(24)


def newton_maximize(objective, theta0: Array, max_steps: int):
    """Maximise ``objective`` by damped Newton with a backtracking (Armijo) line search.

    Each iteration evaluates value, gradient and Hessian at the current point, stops there if
    the Newton decrement ``g' |H|^+ g`` is at round-off level, and otherwise moves by the
    largest of the step sizes ``1, 1/2, ..., 2^-23`` (evaluated at once, vectorised) that
    passes the Armijo test.  The last iteration never moves, so the returned Hessian is always
    the one at the returned point.  Traces the Hessian once (compile time matters online).

    Returns ``(theta, value, neg_hessian, n_iter, converged)``; runs inside ``jit``.
    """
    value_and_grad = jax.value_and_grad(objective)
    hessian = jax.hessian(objective)
    d = theta0.shape[0]

    def cond(state):
        return (state[4] < max_steps) & ~state[5]

    def body(state):
        theta, _, _, _, it, _ = state
        f, g = value_and_grad(theta)
        neg_h = -hessian(theta)
        step = _pinv_solve(neg_h, g)
        decrement = g @ step
        converged = decrement <= 1e-20 * (1.0 + jnp.abs(f))
        trial = jax.vmap(objective)(theta + _LINE_SEARCH_STEPS[:, None] * step)
        ok = jnp.isfinite(trial) & (trial >= f + 1e-4 * _LINE_SEARCH_STEPS * decrement)
        first = jnp.argmax(ok)
        move = ~converged & ok[first] & (it < max_steps - 1)
        theta_new = jnp.where(move, theta + _LINE_SEARCH_STEPS[first] * step, theta)
        loose = decrement <= 1e-10 * (1.0 + jnp.abs(f))
        stop = converged | ~move
        return theta_new, f, neg_h, loose, it + 1, stop

    false = jnp.asarray(False)
    init = (theta0, jnp.zeros(()), jnp.zeros((d, d)), false, jnp.asarray(0), false)
    theta, f, neg_h, converged, it, _ = jax.lax.while_loop(cond, body, init)
    return theta, f, neg_h, it, converged


def _objective(features, transitions, eta, stats, farsighted, prior_precision):
    """``theta -> L(theta) - theta' Lambda theta / 2`` (eq. 4 plus a Gaussian log-prior).

    ``stats`` is the :class:`EpisodeBuffer` (farsighted) or the counts ``[H,S,A,B]`` of
    :func:`~bayes_qse.likelihood.response_counts` (myopic, where they are sufficient).
    """
    d = features.shape[-1]
    lam = jnp.asarray(prior_precision, jnp.float64)
    lam = lam * jnp.eye(d) if lam.ndim == 0 else lam
    if farsighted:
        ll = lambda th: log_likelihood(th, features, transitions, eta, stats, True)
    else:
        ll = lambda th: myopic_log_likelihood_from_counts(th, features, eta, stats)
    return lambda th: ll(th) - 0.5 * th @ lam @ th


@partial(jax.jit, static_argnames=("n_steps", "farsighted"))
def _map_newton_full(
    stats, features, transitions, eta, prior_precision, theta0, n_steps, farsighted
):
    objective = _objective(features, transitions, eta, stats, farsighted, prior_precision)
    return newton_maximize(objective, jnp.asarray(theta0, jnp.float64), n_steps)


def _sufficient_stats(buffer: EpisodeBuffer, features: Any, farsighted: bool) -> Any:
    """Counts (myopic) or the buffer itself (farsighted): what the likelihood needs."""
    return buffer if farsighted else response_counts(buffer, tuple(np.shape(features)[:4]))


def _stats_from_dataset(dataset: Dataset, features: Any, farsighted: bool) -> Any:
    """As :func:`_sufficient_stats`, with the buffer capacity rounded up to a power of two so
    that repeated fits on growing datasets reuse a few compiled shapes."""
    if not farsighted:
        H, S, A, B = np.shape(features)[:4]
        counts = np.zeros((H, S, A, B))
        h = np.broadcast_to(np.arange(H), dataset.leader_actions.shape)
        np.add.at(
            counts,
            (h, dataset.states[:, :H], dataset.leader_actions, dataset.follower_actions),
            1.0,
        )
        return jnp.asarray(counts)
    capacity = 1 << max(int(np.ceil(np.log2(max(dataset.n_episodes, 1)))), 0)
    return buffer_from_dataset(dataset, capacity)


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
    """MAP (or MLE when ``prior_precision`` is 0) by damped Newton; pure and jit-compiled.

    Args:
        buffer: episodes, an :class:`EpisodeBuffer` (fixed capacity: no recompilation as it
            fills up).
        features: ``[H,S,A,B,d]``.
        transitions: ``[H,S,A,B,S]`` (used only when ``farsighted``; may be None otherwise).
        eta: rationality.
        prior_precision: ``Lambda``, a scalar (times the identity) or ``[d,d]``; 0 -> MLE.
        theta0: ``[d]`` starting point (e.g. the previous estimate in an online loop).
        n_steps: maximum number of Newton steps (static); stops early at convergence.
        farsighted: static flag of the follower model.

    Returns:
        ``(theta_hat[d], neg_hessian[d,d])`` with ``neg_hessian = -Hess L(theta_hat) + Lambda``:
        the observed Fisher information plus the prior precision (eq. 4, §2).
    """
    if transitions is None:
        transitions = jnp.zeros(features.shape[:4] + (features.shape[1],))
    stats = _sufficient_stats(buffer, features, bool(farsighted))
    theta, _, neg_h, _, _ = _map_newton_full(
        stats, features, transitions, eta, prior_precision, theta0, int(n_steps), bool(farsighted)
    )
    return theta, neg_h


# ---------------------------------------------------------------------------------------
# Resolving the model arguments
# ---------------------------------------------------------------------------------------


class _Model(NamedTuple):
    features: np.ndarray
    transitions: np.ndarray
    eta: float
    farsighted: bool


def _resolve_model(dataset, game_or_features, eta, transitions, farsighted) -> _Model:
    """Features, transitions, eta and the follower model from a Game or from bare features."""
    if isinstance(game_or_features, Game):
        g = game_or_features
        phi = np.asarray(g.features)
        P = np.asarray(g.transitions) if transitions is None else transitions
        eta = float(g.eta) if eta is None else eta
        farsighted = g.farsighted if farsighted is None else farsighted
    else:
        phi = as_float_array(game_or_features, "features", 5)
        if eta is None:
            raise BayesQSEInputError("eta: required when features (not a Game) are given")
        farsighted = bool(farsighted) if farsighted is not None else False
        P = transitions
    eta = check_eta(eta, "eta")
    H, S, A, B, d = phi.shape
    if farsighted:
        if P is None:
            raise BayesQSEInputError("transitions: required for a farsighted follower")
        P = as_float_array(P, "transitions", 5)
        if P.shape != (H, S, A, B, S):
            raise BayesQSEInputError(
                f"transitions: expected shape {(H, S, A, B, S)}, got {P.shape}"
            )
    else:
        P = np.zeros((H, S, A, B, S))
    if not isinstance(dataset, Dataset):
        raise BayesQSEInputError(f"dataset: expected a Dataset, got {type(dataset).__name__}")
    dataset.check_sizes((H, S, A, B))
    return _Model(phi, P, eta, bool(farsighted))


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


class MLEFit(NamedTuple):
    """The maximum-likelihood fit of eq. (4).

    Attributes:
        theta: ``[d]`` the MLE.
        cov: ``[d,d]`` the inverse observed Fisher information (pseudo-inverse when some
            directions are not identified).
        log_likelihood: ``L(theta_hat)``.
        std_err: ``[d]`` ``sqrt(diag(cov))``; ``inf`` for a coordinate that has a component in
            a non-identified direction.
        fisher: ``[d,d]`` observed Fisher information ``I = -Hess L(theta_hat)``.
        n_iter: Newton steps taken.
        converged: whether the Newton decrement reached its tolerance.
        non_identified: unit vectors ``[d]`` spanning the null space of ``I`` (empty when all
            of ``theta`` is identified).
    """

    theta: np.ndarray
    cov: np.ndarray
    log_likelihood: float
    std_err: np.ndarray
    fisher: np.ndarray
    n_iter: int
    converged: bool
    non_identified: list


def constant_feature_directions(features: Any, rtol: float = 1e-9) -> list[np.ndarray]:
    """Unit vectors ``v`` with ``phi_h(s,a,b) . v`` constant across ``b`` at every ``(h,s,a)``.

    For a myopic follower these directions are never identified (the response (1d) ignores
    anything that does not depend on ``b``, docs/math.md §1.3); for a farsighted one they can be,
    through the follower's values at later steps.
    """
    phi = np.asarray(features, np.float64)
    d = phi.shape[-1]
    diffs = (phi[..., 1:, :] - phi[..., :1, :]).reshape(-1, d)
    if diffs.shape[0] == 0:
        return [np.eye(d)[i] for i in range(d)]
    _, sv, vt = np.linalg.svd(diffs, full_matrices=True)
    sv_full = np.zeros(d)
    sv_full[: sv.size] = sv
    null = sv_full <= rtol * max(sv_full.max(), 1e-300)
    return [_canonical(v) for v in vt[null]]


def _canonical(v: np.ndarray) -> np.ndarray:
    v = np.where(np.abs(v) < 1e-12, 0.0, v)
    i = int(np.argmax(np.abs(v)))
    return v / np.linalg.norm(v) * np.sign(v[i])


def _null_space(
    fisher: np.ndarray, rtol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decomposition of the Fisher information and the mask of its (near-)null space."""
    lam, vecs = np.linalg.eigh(0.5 * (fisher + fisher.T))
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    null = lam <= rtol * scale
    return lam, vecs, null


def _describe_directions(dirs: list[np.ndarray], limit: int = 4) -> str:
    """``coordinates [i, j]`` when every direction is an axis, else a few vectors."""
    axes = [int(np.argmax(np.abs(v))) for v in dirs if np.sum(np.abs(v) > 1e-9) == 1]
    if len(axes) == len(dirs):
        return f"coordinate(s) {sorted(axes)} of theta"
    shown = ", ".join(np.array2string(v, precision=3) for v in dirs[:limit])
    more = f" and {len(dirs) - limit} more" if len(dirs) > limit else ""
    return f"direction(s) {shown}{more}"


def _identifiability_message(
    null_dirs: list[np.ndarray], features: np.ndarray, farsighted: bool
) -> str:
    """Explain a singular observed Fisher information (docs/math.md §1.3)."""
    lines = [
        f"theta is not identified along {len(null_dirs)} direction(s) (the observed Fisher "
        f"information is singular there): {_describe_directions(null_dirs)}."
    ]
    const = constant_feature_directions(features)
    if const:
        basis = np.array(const)
        in_const = [float(np.linalg.norm(basis @ v)) > 1 - 1e-6 for v in null_dirs]
        lines.append(
            f"Likely cause: the feature {_describe_directions(const)} are constant across "
            "follower actions, which the quantal response cannot see"
            + (
                " at any single step (a farsighted follower reveals them only through later "
                "steps' values)"
                if farsighted
                else ""
            )
            + "; drop or re-code them (docs/math.md §1.3)."
        )
        if not all(in_const):
            lines.append(
                "Some flat directions are not of that kind: the data do not cover enough "
                "(h, s, a) or follower actions."
            )
    else:
        lines.append(
            "The features vary across follower actions, so the data are the cause: too few "
            "episodes, or (h, s, a) / follower actions never observed."
        )
    lines.append("cov uses the pseudo-inverse; std_err is inf along these directions.")
    return " ".join(lines)


class Identification(NamedTuple):
    """Which directions of ``theta`` a game's follower data can identify (docs/math.md §1.3).

    Attributes:
        rank: the rank of the observed Fisher information at the true ``theta``.
        dim: ``d``.
        basis: ``[d, rank]`` orthonormal basis of its range (the identified subspace).
        eigenvalues: ``[d]`` of the Fisher information, ascending.
    """

    rank: int
    dim: int
    basis: np.ndarray
    eigenvalues: np.ndarray

    def project(self, x: Any) -> np.ndarray:
        """The component of ``x[..., d]`` in the identified subspace."""
        return np.asarray(x) @ self.basis @ self.basis.T


def identified_directions(
    game: Any, n_episodes: int = 400, seed: int = 0, rtol: float = 1e-6
) -> Identification:
    """The Fisher rank of ``game`` at its true ``theta`` under varied leader policies.

    ``n_episodes`` episodes are simulated, each under its own random leader policy (rows drawn
    from a uniform Dirichlet, so that every leader action and, for a farsighted follower, every
    continuation is tried), and the observed Fisher information ``-Hess L(theta)`` of eq. (4)
    at the truth is decomposed; eigenvalues above ``rtol`` times the largest count as
    identified.  A direction outside the range is one that no leader policy reveals (e.g. a
    feature constant across follower actions, for a myopic follower).
    """
    H, S, A, _ = game.shape
    rng = np.random.default_rng(seed)
    policies = rng.dirichlet(np.ones(A), size=(n_episodes, H, S))
    data = simulate(game, policies, n_episodes, seed)
    stats = _stats_from_dataset(data, game.features, bool(game.farsighted))
    ll = lambda th: log_likelihood(
        th, jnp.asarray(game.features), jnp.asarray(game.transitions), game.eta, stats,
        bool(game.farsighted),
    )  # fmt: skip
    if not game.farsighted:
        ll = lambda th: myopic_log_likelihood_from_counts(
            th, jnp.asarray(game.features), game.eta, stats
        )
    fisher = -np.asarray(jax.hessian(ll)(jnp.asarray(game.theta, jnp.float64)))
    lam, vecs = np.linalg.eigh(0.5 * (fisher + fisher.T))
    keep = lam > rtol * max(float(lam.max()), 1e-300)
    return Identification(int(keep.sum()), int(lam.size), vecs[:, keep], lam)


def fit_mle(
    dataset: Dataset,
    game_or_features: Any,
    eta: float | None = None,
    *,
    transitions: Any = None,
    farsighted: bool | None = None,
    theta0: Any = None,
    max_steps: int = 100,
) -> MLEFit:
    """Maximum-likelihood estimate of ``theta`` (eq. 4), float64 damped Newton.

    Args:
        dataset: the episodes.
        game_or_features: a :class:`~bayes_qse.games.Game` (its features, transitions, eta
            and follower model are used unless overridden) or features ``[H,S,A,B,d]``.
        eta: rationality; the game's by default, required with bare features.
        transitions: ``[H,S,A,B,S]`` for a farsighted follower given bare features.
        farsighted: follower model; the game's by default (myopic with bare features).
        theta0: ``[d]`` start (zeros by default).
        max_steps: Newton step limit.

    Returns:
        :class:`MLEFit`.  Warns :class:`IdentifiabilityWarning` if the observed Fisher
        information has a null space (naming the constant-across-``b`` feature directions as
        the likely cause) and ``RuntimeWarning`` if Newton did not converge (e.g. a separated
        dataset whose MLE is at infinity).
    """
    m = _resolve_model(dataset, game_or_features, eta, transitions, farsighted)
    d = m.features.shape[-1]
    th0 = _theta0(theta0, d)
    stats = _stats_from_dataset(dataset, m.features, m.farsighted)
    theta, f, neg_h, n_iter, converged = _map_newton_full(
        stats, m.features, m.transitions, m.eta, 0.0, th0, int(max_steps), m.farsighted
    )
    theta, fisher = np.asarray(theta), np.asarray(neg_h)
    fisher = 0.5 * (fisher + fisher.T)
    lam, vecs, null = _null_space(fisher)
    inv = np.where(null, 0.0, 1.0 / np.where(null, 1.0, lam))
    cov = (vecs * inv) @ vecs.T
    std_err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    null_dirs = [_canonical(v) for v in vecs[:, null].T]
    if null_dirs:
        touched = np.any(np.abs(vecs[:, null]) > 1e-8, axis=1)
        std_err = np.where(touched, np.inf, std_err)
        warnings.warn(
            _identifiability_message(null_dirs, m.features, m.farsighted),
            IdentifiabilityWarning,
            stacklevel=2,
        )
    if not bool(converged):
        warnings.warn(
            f"fit_mle: Newton did not converge in {int(n_iter)} steps (the MLE may be at "
            "infinity: some follower action is never or always chosen)",
            RuntimeWarning,
            stacklevel=2,
        )
    return MLEFit(
        theta=theta,
        cov=cov,
        log_likelihood=float(f),
        std_err=std_err,
        fisher=fisher,
        n_iter=int(n_iter),
        converged=bool(converged),
        non_identified=null_dirs,
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


@dataclasses.dataclass(frozen=True, eq=False)
class Posterior:
    """Posterior draws of ``theta`` (docs/math.md §2).

    Attributes:
        theta: ``[M,d]`` draws (chains concatenated, chain-major).
        method: ``"nuts"`` or ``"laplace"``.
        diagnostics: ``r_hat[d]``, ``ess[d]``, ``divergences`` (int) and ``warnings``
            (list of str); for Laplace the draws are independent (``ess = M``, no R-hat).
        num_chains: number of chains (``theta`` reshapes to ``[chains, M/chains, d]``).
        cov: ``[d,d]`` the Laplace covariance ``(I + Lambda)^-1`` (None for NUTS).
        map_theta: ``[d]`` the MAP (Laplace) or None.
        prior: ``"normal"`` or ``"flat"``; ``prior_scale`` its sigma.
        diverging: ``[M]`` NUTS divergence flags (None for Laplace).
        eta: ``[M]`` draws of ``eta`` when it was inferred (``eta_unknown``), else None.
    """

    theta: np.ndarray
    method: str
    diagnostics: dict
    num_chains: int = 1
    cov: np.ndarray | None = None
    map_theta: np.ndarray | None = None
    prior: str = "normal"
    prior_scale: float = 1.0
    diverging: np.ndarray | None = None
    eta: np.ndarray | None = None

    @property
    def mean(self) -> np.ndarray:
        """``[d]`` posterior mean of the draws."""
        return self.theta.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """``[d]`` posterior standard deviation of the draws."""
        return self.theta.std(axis=0, ddof=1)

    @property
    def n_draws(self) -> int:
        return int(self.theta.shape[0])

    def chains(self) -> np.ndarray:
        """Draws as ``[chains, draws, d]``."""
        return self.theta.reshape(self.num_chains, -1, self.theta.shape[-1])

    def to_arviz(self):
        """An ArviZ 1.x ``xarray.DataTree`` with ``posterior.theta[chain, draw, feature]``.

        NUTS results also carry ``sample_stats.diverging``.  Built with
        ``arviz_base.from_dict`` (equivalent to ``from_numpyro`` for this single-site model).
        """
        import arviz_base  # lazy: ArviZ is slow to import and only this export needs it

        d = self.theta.shape[-1]
        data: dict[str, dict[str, np.ndarray]] = {"posterior": {"theta": self.chains()}}
        if self.eta is not None:
            data["posterior"]["eta"] = np.asarray(self.eta).reshape(self.num_chains, -1)
        if self.diverging is not None:
            data["sample_stats"] = {
                "diverging": np.asarray(self.diverging, bool).reshape(self.num_chains, -1)
            }
        return arviz_base.from_dict(
            data,
            coords={"feature": np.arange(d)},
            dims={"theta": ["feature"]},
            attrs={"posterior": {"inference_method": self.method, "prior": self.prior}},
        )


def _numpyro_model(farsighted: bool, prior: str, fixed_coordinate: int | None):
    """The NumPyro model of eq. (4) (data enter as model arguments, so one compiled sampler
    serves every dataset of the same shape).

    ``model(features, transitions, eta, stats, prior_scale, log_eta_mean, log_eta_sd)``:
    ``theta ~ N(0, prior_scale^2 I)`` (or flat) and ``numpyro.factor(L(theta))``.  With
    ``fixed_coordinate = k`` the rationality is a parameter too (docs/math.md §1.3): ``theta`` is
    normalised by ``theta[k] = 1`` (latent site ``theta_free``, the other coordinates) and
    ``log eta ~ Normal(log_eta_mean, log_eta_sd)`` (site ``log_eta``).  ``stats`` as in
    :func:`_objective` (buffer or myopic counts).
    """

    def ll(th, features, transitions, e, stats):
        if farsighted:
            return log_likelihood(th, features, transitions, e, stats, True)
        return myopic_log_likelihood_from_counts(th, features, e, stats)

    def prior_dist(n, scale):
        if prior == "flat":
            return dist.ImproperUniform(dist.constraints.real_vector, (), (n,))
        return dist.Normal(jnp.zeros(n), scale * jnp.ones(n)).to_event(1)

    def model(features, transitions, eta, stats, prior_scale, log_eta_mean, log_eta_sd):
        d = features.shape[-1]
        if fixed_coordinate is None:
            theta = numpyro.sample("theta", prior_dist(d, prior_scale))
            numpyro.factor("log_likelihood", ll(theta, features, transitions, eta, stats))
            return
        free = numpyro.sample("theta_free", prior_dist(d - 1, prior_scale))
        theta = jnp.insert(free, fixed_coordinate, 1.0)
        log_eta = numpyro.sample("log_eta", dist.Normal(log_eta_mean, log_eta_sd))
        numpyro.factor("log_likelihood", ll(theta, features, transitions, jnp.exp(log_eta), stats))

    return model


@functools.lru_cache(maxsize=16)
def _nuts_sampler(farsighted: bool, prior: str, fixed_coordinate: int | None):
    """``(kernel, run)``: a NumPyro NUTS kernel for :func:`_numpyro_model` and
    ``run(state, model_args, n) -> (state, (z, diverging))``, ``n`` kernel steps in one
    jit-compiled ``scan`` (warm-up adaptation runs while ``state.i < num_warmup``).

    Cached, so repeated calls (experiments, sweeps) compile once per shape instead of once
    per call as ``MCMC.run`` does.
    """
    kernel = NUTS(_numpyro_model(farsighted, prior, fixed_coordinate))

    @partial(jax.jit, static_argnums=2)
    def run(state, model_args, n):
        def body(st, _):
            st = kernel.sample(st, model_args, {})
            return st, (st.z, st.diverging)

        return jax.lax.scan(body, state, None, length=n)

    return kernel, run


def _progress_printer(progress: Any) -> Callable[[str], None] | None:
    """``None`` (no progress), a callable as given, or (``True``) a one-line printer to
    stderr."""
    if not progress:
        return None
    if callable(progress):
        return progress

    def show(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    return show


def _scan_in_chunks(run, state, model_args, n: int, label: str, show) -> tuple[Any, Any]:
    """``run(state, model_args, n)`` in up to ten pieces, calling ``show`` after each.

    The pieces continue the same ``scan`` state (the warm-up adaptation counts steps in
    ``state.i``), so the chain is the same as in one piece; only the compiled lengths differ
    (at most two: ``ceil(n/10)`` and the remainder).
    """
    chunk = max(1, -(-n // 10))
    outs, done = [], 0
    while done < n:
        m = min(chunk, n - done)
        state, out = run(state, model_args, m)
        jax.block_until_ready(out)  # report work done, not work queued
        outs.append(out)
        done += m
        show(f"{label} {done}/{n}")
    return state, jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *outs)


def _run_nuts(
    sampler, model_args, init_params, seed, num_warmup, num_samples, num_chains, progress=None
) -> tuple[dict, np.ndarray]:
    """Run ``num_chains`` chains in turn; returns latent draws ``{site: [C, M, ...]}`` and
    divergence flags ``[C, M]``.  ``progress``: see :func:`sample_posterior`."""
    kernel, run = sampler
    show = _progress_printer(progress)
    draws, divs = [], []
    for c, key in enumerate(jax.random.split(jax.random.key(seed), num_chains)):
        state = kernel.init(key, num_warmup, init_params, model_args, {})
        if show is None:
            if num_warmup:
                state, _ = run(state, model_args, num_warmup)
            state, (z, div) = run(state, model_args, num_samples)
        else:
            chain = f"NUTS chain {c + 1}/{num_chains}"
            if num_warmup:
                state, _ = _scan_in_chunks(
                    run, state, model_args, num_warmup, f"{chain} warm-up", show
                )
            state, (z, div) = _scan_in_chunks(
                run, state, model_args, num_samples, f"{chain} sampling", show
            )
        draws.append(z)
        divs.append(np.asarray(div))
    stacked = {k: np.stack([np.asarray(z[k]) for z in draws]) for k in draws[0]}
    return stacked, np.stack(divs)


def _chain_diagnostics(chains: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split R-hat and ESS per coordinate from ``[chains, draws, d]`` (NumPyro's estimators)."""
    if chains.shape[1] < 4:  # too few draws to split: unknown
        nan = np.full(chains.shape[2:], np.nan)
        return nan, nan
    return np.asarray(split_gelman_rubin(chains)), np.asarray(effective_sample_size(chains))


def _diagnostic_warnings(r_hat: np.ndarray, ess: np.ndarray, n_div: int) -> list[str]:
    """Messages (also issued as :class:`PosteriorDiagnosticsWarning`) for bad diagnostics."""
    msgs = []
    if np.any(~np.isfinite(r_hat)) or np.any(~np.isfinite(ess)):
        msgs.append("R-hat/ESS undefined (fewer than 4 draws per chain, or a stuck chain)")
    else:
        if np.max(r_hat) > 1.01:
            msgs.append(f"R-hat up to {np.max(r_hat):.3f} (> 1.01): chains have not mixed")
        if np.min(ess) < 100:
            msgs.append(f"effective sample size as low as {np.min(ess):.0f} (< 100)")
    if n_div:
        msgs.append(f"{n_div} divergent transitions")
    for msg in msgs:
        warnings.warn(f"sample_posterior (NUTS): {msg}", PosteriorDiagnosticsWarning, stacklevel=3)
    return msgs


def sample_posterior(
    dataset: Dataset,
    game_or_features: Any,
    eta: float | None = None,
    *,
    method: str = "nuts",
    num_samples: int = 1000,
    seed: int = 0,
    prior: str = "normal",
    prior_scale: float = 1.0,
    num_warmup: int = 500,
    num_chains: int = 1,
    transitions: Any = None,
    farsighted: bool | None = None,
    eta_unknown: bool = False,
    fixed_coordinate: int = 0,
    log_eta_prior: tuple[float, float] = (0.0, 1.0),
    progress: bool | Callable[[str], None] = False,
) -> Posterior:
    """Posterior of ``theta`` given episodes, with the likelihood (4).

    Args:
        dataset, game_or_features, eta, transitions, farsighted: as in :func:`fit_mle`.
        method: ``"nuts"`` (NumPyro NUTS) or ``"laplace"`` (Gaussian at the MAP with the
            Hessian of the Wald set, float64).
        num_samples: draws per chain.
        seed: integer seed (the JAX key).
        prior: ``"normal"`` (``theta ~ N(0, prior_scale^2 I)``) or ``"flat"`` (improper).
        prior_scale: sigma of the Normal prior.
        num_warmup, num_chains: NUTS settings (chains run sequentially).
        eta_unknown: infer ``eta`` too (NUTS only; docs/math.md §1.3): ``theta`` is normalised by
            ``theta[fixed_coordinate] = 1``, ``log eta ~ Normal(*log_eta_prior)``, and the
            ``eta`` argument is ignored.  Draws of ``eta`` are in ``Posterior.eta``;
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
        BayesQSEInputError: bad arguments, or (Laplace) a negative Hessian at the MAP that is
            not positive definite (a flat direction under a flat prior).
    """
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
    if eta_unknown:
        return _sample_eta_unknown(
            dataset,
            game_or_features,
            eta,
            transitions,
            farsighted,
            method=method,
            num_samples=num_samples,
            seed=seed,
            prior=prior,
            prior_scale=prior_scale,
            num_warmup=num_warmup,
            num_chains=num_chains,
            fixed_coordinate=fixed_coordinate,
            log_eta_prior=log_eta_prior,
            progress=progress,
        )
    m = _resolve_model(dataset, game_or_features, eta, transitions, farsighted)
    d = m.features.shape[-1]
    stats = _stats_from_dataset(dataset, m.features, m.farsighted)
    precision_prior = 0.0 if prior == "flat" else 1.0 / prior_scale**2
    key = jax.random.key(seed)

    theta_map, _, neg_h, _, converged = _map_newton_full(
        stats, m.features, m.transitions, m.eta, precision_prior, np.zeros(d), 100, m.farsighted
    )
    if method == "laplace":
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
        draws = laplace_draws(key, jnp.asarray(theta_map), jnp.asarray(precision), int(num_samples))
        return Posterior(
            theta=np.asarray(draws),
            method="laplace",
            diagnostics={
                "r_hat": None,
                "ess": np.full(d, float(num_samples)),
                "divergences": 0,
                "warnings": [],
            },
            cov=np.linalg.inv(precision),
            map_theta=np.asarray(theta_map),
            prior=prior,
            prior_scale=prior_scale,
        )

    init = np.asarray(theta_map) if bool(converged) else np.zeros(d)
    args = (m.features, m.transitions, m.eta, stats, prior_scale, 0.0, 1.0)
    z, diverging = _run_nuts(
        _nuts_sampler(m.farsighted, prior, None),
        jax.tree_util.tree_map(jnp.asarray, args),
        {"theta": jnp.asarray(init)},
        seed,
        int(num_warmup),
        int(num_samples),
        int(num_chains),
        progress,
    )
    chains = z["theta"]
    r_hat, ess = _chain_diagnostics(chains)
    n_div = int(diverging.sum())
    msgs = _diagnostic_warnings(r_hat, ess, n_div)
    return Posterior(
        theta=chains.reshape(-1, d),
        method="nuts",
        diagnostics={"r_hat": r_hat, "ess": ess, "divergences": n_div, "warnings": msgs},
        num_chains=int(num_chains),
        prior=prior,
        prior_scale=prior_scale,
        diverging=diverging.reshape(-1),
    )


def _sample_eta_unknown(
    dataset,
    game_or_features,
    eta,
    transitions,
    farsighted,
    *,
    method,
    num_samples,
    seed,
    prior,
    prior_scale,
    num_warmup,
    num_chains,
    fixed_coordinate,
    log_eta_prior,
    progress=False,
) -> Posterior:
    """NUTS over ``(theta with theta[k] = 1, log eta)``; see :func:`sample_posterior`."""
    if method != "nuts":
        raise BayesQSEInputError("method: eta_unknown needs method='nuts'")
    m = _resolve_model(
        dataset, game_or_features, 1.0 if eta is None else eta, transitions, farsighted
    )
    d = m.features.shape[-1]
    k = int(fixed_coordinate)
    if d < 1 or not 0 <= k < d:
        raise BayesQSEInputError(f"fixed_coordinate: must lie in [0, {d}), got {fixed_coordinate}")
    mean, sd = (float(x) for x in log_eta_prior)
    check_positive_scalar(sd, "log_eta_prior")
    stats = _stats_from_dataset(dataset, m.features, m.farsighted)
    args = (m.features, m.transitions, m.eta, stats, prior_scale, mean, sd)
    init = {"theta_free": jnp.zeros(d - 1), "log_eta": jnp.asarray(mean)}
    z, diverging = _run_nuts(
        _nuts_sampler(m.farsighted, prior, k),
        jax.tree_util.tree_map(jnp.asarray, args),
        init,
        seed,
        int(num_warmup),
        int(num_samples),
        int(num_chains),
        progress,
    )
    chains = np.insert(z["theta_free"], k, 1.0, axis=-1)
    eta_chains = np.exp(z["log_eta"])
    free = np.concatenate([np.delete(chains, k, axis=-1), eta_chains[..., None]], axis=-1)
    r_free, ess_free = _chain_diagnostics(free)
    r_hat = np.insert(r_free[:-1], k, 1.0)
    ess = np.insert(ess_free[:-1], k, float(chains.shape[0] * chains.shape[1]))
    n_div = int(diverging.sum())
    msgs = _diagnostic_warnings(r_free, ess_free, n_div)
    return Posterior(
        theta=chains.reshape(-1, d),
        method="nuts",
        diagnostics={
            "r_hat": r_hat,
            "ess": ess,
            "r_hat_eta": float(r_free[-1]),
            "ess_eta": float(ess_free[-1]),
            "divergences": n_div,
            "warnings": msgs,
        },
        num_chains=int(num_chains),
        prior=prior,
        prior_scale=prior_scale,
        diverging=diverging.reshape(-1),
        eta=eta_chains.reshape(-1),
    )


# ---------------------------------------------------------------------------------------
# The command line's summary
# ---------------------------------------------------------------------------------------


def _finite_or_none(x: Any) -> Any:
    arr = np.asarray(x, np.float64)
    out = [None if not np.isfinite(v) else float(v) for v in arr.reshape(-1)]
    return np.array(out, dtype=object).reshape(arr.shape).tolist() if arr.ndim else out[0]


def _record_warnings(call: Any) -> tuple[Any, list[str]]:
    """``(call(), messages)``: every warning ``call`` issues, recorded (each once, in order)
    instead of shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    messages: list[str] = []
    for w in caught:
        text = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        if text not in messages:
            messages.append(text)
    return result, messages


#: ``fit_summary`` warns when a finite standard error exceeds this many times
#: ``max(1, |estimate|)``: the data barely constrain that coordinate.
WEAK_SE_RATIO = 100.0


def _weak_identification_messages(theta: np.ndarray, std_err: np.ndarray) -> list[str]:
    """One message if some finite ``std_err[k] > WEAK_SE_RATIO * max(1, |theta[k]|)``."""
    theta, se = np.asarray(theta, np.float64), np.asarray(std_err, np.float64)
    weak = np.isfinite(se) & (se > WEAK_SE_RATIO * np.maximum(1.0, np.abs(theta)))
    if not np.any(weak):
        return []
    idx = [int(i) for i in np.flatnonzero(weak)]
    return [
        f"IdentifiabilityWarning: std err up to {float(se[weak].max()):.3g} on coordinate(s) "
        f"{idx} of theta (> {WEAK_SE_RATIO:g} x max(1, |estimate|)): the data barely "
        "constrain them (too few episodes, or a follower action never or always chosen, so "
        "the MLE may be at infinity)"
    ]


def fit_summary(
    dataset: Dataset,
    game: Any,
    method: str = "mle",
    seed: int = 0,
    num_samples: int = 1000,
    num_warmup: int = 500,
    progress: Any = None,
) -> dict:
    """The JSON-able result of ``bayes-qse fit`` (docs/math.md, eq. 4).

    ``mle``: ``theta``, ``cov``, ``log_likelihood``, ``std_err``; ``laplace``: ``mean``, ``sd``;
    ``nuts``: ``mean``, ``sd``, ``r_hat``, ``ess``.  Lists of floats; a non-finite entry (a
    non-identified direction) is ``None``.

    Every warning the fit issues (:class:`IdentifiabilityWarning`, Newton's non-convergence,
    :class:`PosteriorDiagnosticsWarning` for divergences, R-hat or ESS) is recorded, not
    shown: ``"warnings"`` is the list of their one-line texts (``"Category: message"``), so
    that the command line can print them and carry them in ``--json``.  ``progress`` is passed
    to :func:`sample_posterior` (NUTS only).
    """
    if method == "mle":
        fit, msgs = _record_warnings(lambda: fit_mle(dataset, game))
        msgs += _weak_identification_messages(fit.theta, fit.std_err)
        return {
            "theta": _finite_or_none(fit.theta),
            "cov": _finite_or_none(fit.cov),
            "log_likelihood": _finite_or_none(fit.log_likelihood),
            "std_err": _finite_or_none(fit.std_err),
            "warnings": msgs,
        }
    if method not in ("laplace", "nuts"):
        raise BayesQSEInputError(f"method: must be 'mle', 'laplace' or 'nuts', got {method!r}")
    msgs = []
    if int(getattr(dataset, "n_episodes", 1)) == 0:
        msgs.append(
            "IdentifiabilityWarning: the dataset has no episodes; the posterior is the prior"
        )
    extra = {"progress": progress} if method == "nuts" and progress is not None else {}
    post, post_msgs = _record_warnings(
        lambda: sample_posterior(
            dataset,
            game,
            method=method,
            num_samples=num_samples,
            num_warmup=num_warmup,
            seed=seed,
            **extra,
        )
    )
    out = {
        "mean": _finite_or_none(post.mean),
        "sd": _finite_or_none(post.sd),
        "warnings": [*msgs, *post_msgs],
    }
    if method == "nuts":
        out["r_hat"] = _finite_or_none(post.diagnostics["r_hat"])
        out["ess"] = _finite_or_none(post.diagnostics["ess"])
    return out


__all__ = [
    "IdentifiabilityWarning",
    "MLEFit",
    "Posterior",
    "PosteriorDiagnosticsWarning",
    "constant_feature_directions",
    "fit_mle",
    "fit_summary",
    "laplace_draws",
    "map_newton",
    "newton_maximize",
    "sample_posterior",
]
