"""Confidence and credible sets for the follower's ``theta`` and its response (docs/math.md §2).

Frequentist (around an :class:`~bayes_qse.mle.MLEFit`):

- Wald ellipsoid ``{theta : (theta - theta_hat)' I (theta - theta_hat) <= beta}`` with ``I`` the
  observed Fisher information;
- likelihood-ratio set ``{theta : L(theta_hat) - L(theta) <= beta / 2}`` with ``L`` of eq. (4);
- ``beta`` from the chi-square quantile (:func:`chi2_radius`, asymptotic, "practical") or the
  conservative finite-sample radius (:func:`theory_radius`, "theory" mode of the paper).

Bayesian (from posterior draws ``theta[M,d]``): the equal-tailed :func:`credible_box` and the
highest-density region :func:`hpd_region` (Mahalanobis rank of the draws).

Per-response intervals of ``nu_h(b|s,a)`` (myopic follower) by the delta method or by sampling
(the ellipsoid's image, or the posterior draws): :func:`response_intervals`.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._validate import as_float_array
from .errors import BayesQSEInputError
from .fit_data import resolve_data
from .follower import myopic_log_response, myopic_response
from .likelihood import log_likelihood
from .model import Model
from .types import Array


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise BayesQSEInputError(f"level: must lie strictly between 0 and 1, got {level}")
    return level


def chi2_radius(dim: int, level: float) -> float:
    """``beta = chi2_dim.ppf(level)``: the asymptotic radius of the Wald and LR sets."""
    if int(dim) != dim or dim < 1:
        raise BayesQSEInputError(f"dim: must be a positive integer, got {dim!r}")
    # scipy.stats.chi2.ppf(level, dim) computes 2 * gammaincinv(dim / 2, level) for a level
    # in (0, 1); called so, bit for bit, without importing scipy.stats (1 s: the sweeps'
    # serial start, benchmarks/bench_sweep.py).  A test compares the two.
    from scipy.special import gammaincinv  # lazy: SciPy is imported where used

    return float(2 * gammaincinv(int(dim) / 2, _check_level(level)))


def theory_radius(
    dim: int,
    n_observations: int,
    level: float,
    theta_bound: float = 10.0,
    lipschitz: float = 2.0,
    episodes: int | None = None,
) -> float:
    """A conservative finite-sample radius for the likelihood-ratio set (the paper's "theory").

    A covering argument in the style of Chen, Wang & Yang (2023): cover the ball
    ``|theta| <= theta_bound`` at scale ``eps = 1 / (n * lipschitz)`` (where ``lipschitz``
    bounds the gradient of one log-response, ``2 * eta * max |phi|``), take a union bound of the
    likelihood-ratio deviation ``log(1/delta)`` over the cover and add the discretisation error:

        beta / 2 = d log(1 + 2 theta_bound n lipschitz) + log(1 / delta) + 2,

    ``delta = 1 - level``; with ``episodes = t`` (online), ``delta_t = delta / (t (t + 1))``, a
    union bound over the episodes ``t = 1, 2, ...`` (``sum_t delta_t = delta``), so that the sets
    of every episode hold at once with probability ``>= level``.  It is much larger than
    :func:`chi2_radius` and holds without asymptotics.
    """
    if int(dim) != dim or dim < 1:
        raise BayesQSEInputError(f"dim: must be a positive integer, got {dim!r}")
    if n_observations < 0:
        raise BayesQSEInputError(f"n_observations: must be >= 0, got {n_observations!r}")
    if episodes is not None and (int(episodes) != episodes or episodes < 1):
        raise BayesQSEInputError(f"episodes: must be a positive integer, got {episodes!r}")
    delta = 1.0 - _check_level(level)
    if episodes is not None:
        delta = delta / (float(episodes) * (float(episodes) + 1.0))
    half = dim * np.log1p(2.0 * theta_bound * max(n_observations, 1) * lipschitz) - np.log(delta)
    return float(2.0 * (half + 2.0))


def theory_radius_jax(
    dim: int, n_observations: Array, delta: Array, theta_bound: float, lipschitz: Array
) -> Array:
    """:func:`theory_radius` for a traced ``n_observations`` and ``delta = 1 - level`` (inside a
    jitted online loop, where ``delta`` carries the union bound over episodes); the same
    formula, ``2 [d log(1 + 2 B n L) + log(1/delta) + 2]``."""
    n = jnp.maximum(jnp.asarray(n_observations, jnp.float64), 1.0)
    log_delta = jnp.log(jnp.asarray(delta, jnp.float64))
    return 2.0 * (dim * jnp.log1p(2.0 * theta_bound * n * lipschitz) - log_delta + 2.0)


def chi2_radius_table(dim: int, level: float) -> np.ndarray:
    """``[dim+1]`` chi-square radii ``chi2_k(level)`` for ``k = 0..dim`` (``k = 0`` gives 0),
    so that a jitted learner can look up the radius for a data-dependent Fisher rank."""
    return np.array([0.0] + [chi2_radius(k, level) for k in range(1, dim + 1)])


def identified_split(precision: Array, rtol: float = 1e-9) -> tuple[Array, Array, Array]:
    """Eigen-split of a PSD ``precision[d,d]`` (an observed Fisher information, no ridge).

    Returns ``(evals[d], evecs[d,d], identified[d])``: directions whose eigenvalue exceeds
    ``rtol * max(1, largest eigenvalue)`` are *identified* by the data; the others are the
    (numerical) null space, along which a Wald set is unbounded.  ``identified.sum()`` is the
    Fisher rank, the chi-square degrees of freedom of the set (docs/math.md, eq. 4).
    """
    sym = 0.5 * (precision + precision.T)
    lam, vecs = jnp.linalg.eigh(sym)
    identified = lam > rtol * jnp.maximum(jnp.max(lam), 1.0)
    return lam, vecs, identified


def _logodds_geometry(features: Array, eta: Array, precision: Array) -> tuple[Array, Array]:
    """``(diff[H,S,A,B,B,d], norm[H,S,A,B,B])``: the log-odds directions ``x_bc = eta (phi_c -
    phi_b)`` and ``sqrt(x_bc' I^+ x_bc)``, ``+inf`` where ``x_bc`` leaves the range of
    ``I = precision`` (a direction the data do not identify)."""
    lam, vecs, ident = identified_split(precision)
    inv = jnp.where(ident, 1.0 / jnp.where(ident, lam, 1.0), 0.0)
    diff = eta * (features[..., None, :, :] - features[..., :, None, :])  # [H,S,A,B,B,d]
    coords = diff @ vecs  # [..., d] in the eigenbasis
    scale = jnp.sqrt(jnp.sum(diff * diff, axis=-1)) + 1e-300
    null_part = jnp.sqrt(jnp.sum(jnp.where(ident, 0.0, coords) ** 2, axis=-1))
    norm = jnp.sqrt(jnp.sum(coords**2 * inv, axis=-1))
    return diff, jnp.where(null_part > 1e-7 * scale, jnp.inf, norm)


@jax.jit
def wald_response_box(
    features: Array,
    eta: Array,
    theta_hat: Array,
    precision: Array,
    beta: Array,
    theta_bound: Array = jnp.inf,
) -> tuple[Array, Array]:
    """A probability box ``(nu_lower, nu_upper)`` ``[H,S,A,B]`` containing the myopic response
    ``softmax_b(eta phi_h(s,a,.) . theta)`` for *every* ``theta`` in the Wald set
    ``{theta : (theta - theta_hat)' I (theta - theta_hat) <= beta}`` (docs/math.md, eq. 6),
    intersected with the class ``||theta|| <= theta_bound`` (default: no class bound).

    Exact interval arithmetic, no linearisation: the log-odds ``z_c - z_b = x_bc . theta`` with
    ``x_bc = eta (phi_c - phi_b)`` is linear in ``theta``; over the set it ranges in
    ``x_bc . theta_hat +/- sqrt(beta x_bc' I^+ x_bc)`` when ``x_bc`` lies in the identified
    subspace (the range of ``I``) and over the whole real line otherwise (the set is unbounded
    along a null direction of ``I``); over the class in ``+/- theta_bound |x_bc|``, and over the
    intersection in the intersection of the two intervals.  Since ``nu_b = 1 / sum_c exp(z_c -
    z_b)``, ``nu_b >= exp(-logsumexp_c upper_bc)`` and ``nu_b <= exp(-logsumexp_c lower_bc)``.
    Each pair is bounded separately, so the box is a relaxation of the set's image: valid at
    any radius, and exact for ``B = 2`` without the class bound.
    """
    diff, norm = _logodds_geometry(features, eta, precision)
    # norm 0 (b = c, or equal features): no movement, whatever beta (even an infinite one)
    half = jnp.where(norm > 0, jnp.sqrt(jnp.maximum(beta, 0.0)) * norm, 0.0)
    half = jnp.where(jnp.isinf(norm), jnp.inf, half)
    centre = diff @ theta_hat
    length = jnp.sqrt(jnp.sum(diff * diff, axis=-1))
    ball = jnp.where(length > 0, theta_bound * length, 0.0)
    up_bc = jnp.minimum(centre + half, ball)
    lo_bc = jnp.maximum(centre - half, -ball)
    lower = jnp.exp(-jax.scipy.special.logsumexp(up_bc, axis=-1))
    upper = jnp.exp(-jax.scipy.special.logsumexp(lo_bc, axis=-1))
    return lower, jnp.minimum(upper, 1.0)


def lr_outer_radius(beta: Array, grad_norm: Array, logodds_norm: Array) -> Array:
    """The squared radius ``r^2`` of a Wald ellipsoid ``E = {||theta - theta_hat||_J^2 <= r^2}``
    that provably contains the likelihood-ratio set ``{L(theta) >= L(theta_hat) - beta / 2}`` of
    a myopic follower (docs/math.md eq. 6d), or ``+inf`` when no ellipsoid is certified.

    ``J = -Hessian L(theta_hat)``, ``grad_norm = ||grad L(theta_hat)||_{J^+}`` (0 at an exact
    MLE), ``logodds_norm = G = max_bc ||x_bc||_{J^+}`` over the cells and pairs.  Over ``E``
    every log-odds moves by at most ``r G``, so every softmax probability by a factor within
    ``exp(+/- r G)`` and every softmax covariance, hence ``-Hessian L``, is at least
    ``exp(-r G) J``.  On the boundary of ``E``, by Taylor's theorem,
    ``L(theta_hat) - L(theta) >= F(r) + beta / 2`` with
    ``F(r) = exp(-r G) r^2 / 2 - grad_norm r - beta / 2``; where ``F(r) > 0`` the boundary lies
    outside the (convex) LR set, which contains ``theta_hat``, so the set lies inside ``E``.
    The smallest such ``r`` on a geometric grid of 512 points from ``sqrt(beta)`` to ``2 / G``
    (beyond ``2 / G`` the bound ``F`` decreases) is returned.
    """
    beta = jnp.maximum(jnp.asarray(beta, jnp.float64), 1e-12)
    G = jnp.asarray(logodds_norm, jnp.float64)
    r0 = jnp.sqrt(beta)
    r1 = jnp.minimum(2.0 / jnp.maximum(G, 1e-300), 1e6 * r0)
    r = r0 * jnp.exp(jnp.linspace(0.0, 1.0, 512) * jnp.log(jnp.maximum(r1 / r0, 1.0)))
    F = jnp.exp(-r * G) * r**2 / 2 - grad_norm * r - beta / 2
    ok = F > 1e-9 * beta
    return jnp.where(jnp.any(ok), r[jnp.argmax(ok)] ** 2, jnp.inf)


@jax.jit
def lr_response_box(
    features: Array,
    eta: Array,
    counts: Array,
    theta_hat: Array,
    beta: Array,
    theta_bound: Array,
) -> tuple[Array, Array, Array]:
    """A box ``(nu_lower, nu_upper)`` ``[H,S,A,B]`` containing the myopic response of every
    ``theta`` in the likelihood-ratio set ``{L(theta) >= L(theta_hat) - beta / 2}`` (which
    contains ``{L(theta) >= max L - beta / 2}``) within the class ``||theta|| <= theta_bound``,
    and the squared radius ``r^2`` of the certified outer ellipsoid (docs/math.md eq. 6d).

    ``L(theta) = sum counts * log nu_theta`` (the myopic likelihood of response counts
    ``counts[H,S,A,B]``, eq. 4'), differentiated at ``theta_hat`` (any point: its gradient
    enters the certificate).  The box is :func:`wald_response_box` of the outer ellipsoid
    :func:`lr_outer_radius` around ``theta_hat`` in the geometry ``J = -Hessian L(theta_hat)``,
    intersected with the class; where no ellipsoid is certified (little data, a large radius)
    the class alone.  Returns ``(nu_lower, nu_upper, r2)``.
    """
    model = Model(features, eta)

    def loglik(th):
        return jnp.sum(counts * myopic_log_response(model, th))

    grad = jax.grad(loglik)(theta_hat)
    J = -jax.hessian(loglik)(theta_hat)
    J = 0.5 * (J + J.T)
    lam, vecs, ident = identified_split(J)
    inv = jnp.where(ident, 1.0 / jnp.where(ident, lam, 1.0), 0.0)
    grad_norm = jnp.sqrt(jnp.sum((grad @ vecs) ** 2 * inv))
    _, norm = _logodds_geometry(features, eta, J)
    G = jnp.max(jnp.where(jnp.isinf(norm), 0.0, norm))
    r2 = lr_outer_radius(beta, grad_norm, G)
    lower, upper = wald_response_box(features, eta, theta_hat, J, r2, theta_bound)
    return lower, upper, r2


def ellipsoid_response_box(
    features: Array, eta: Array, theta_hat: Array, cov: Array, beta: Array
) -> tuple[Array, Array]:
    """The response box of the Wald set written with its covariance
    ``{(theta - theta_hat)' cov^{-1} (theta - theta_hat) <= beta}``: see
    :func:`wald_response_box` (which takes the precision).  Returns
    ``(nu_lower[H,S,A,B], nu_upper[H,S,A,B])``."""
    precision = jnp.linalg.pinv(jnp.asarray(cov), hermitian=True)
    return wald_response_box(features, eta, theta_hat, precision, beta)


# ---------------------------------------------------------------------------------------
# Wald ellipsoid
# ---------------------------------------------------------------------------------------


class WaldEllipsoid(NamedTuple):
    """``{theta : (theta - center)' precision (theta - center) <= radius}``.

    Attributes:
        center: ``[d]``.
        precision: ``[d,d]`` (the observed Fisher information, or a posterior precision).
        radius: ``beta``.
    """

    center: np.ndarray
    precision: np.ndarray
    radius: float

    def distance2(self, theta: Any) -> np.ndarray:
        """Squared Mahalanobis distance ``[...]`` of ``theta[..., d]`` to the center."""
        diff = np.asarray(theta, np.float64) - self.center
        return np.einsum("...i,ij,...j->...", diff, self.precision, diff)

    def contains(self, theta: Any) -> np.ndarray:
        """Membership of ``theta[..., d]``: a bool array ``[...]``."""
        return self.distance2(theta) <= self.radius * (1 + 1e-12)

    def half_widths(self) -> np.ndarray:
        """``[d]`` half-widths of the bounding box: ``sqrt(radius * cov_ii)``."""
        return np.sqrt(self.radius * np.diag(np.linalg.inv(self.precision)))

    def sample(self, seed: int, num_samples: int, boundary_fraction: float = 0.5) -> np.ndarray:
        """``[M,d]`` points of the ellipsoid: uniform inside, plus a share on its surface.

        The surface share matters for the extremes of a function over the set.
        """
        d = self.center.shape[0]
        lam = np.linalg.eigvalsh(self.precision)
        if lam.min() <= 1e-12 * max(abs(lam).max(), 1e-300):
            raise BayesQSEInputError(
                "precision: not positive definite, the ellipsoid is unbounded (theta is not "
                "identified along some direction)"
            )
        rng = np.random.default_rng(seed)
        z = rng.normal(size=(num_samples, d))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        n_surface = int(round(boundary_fraction * num_samples))
        r = np.ones(num_samples)
        r[n_surface:] = rng.uniform(size=num_samples - n_surface) ** (1.0 / d)
        chol = np.linalg.cholesky(self.precision)  # precision = L L'
        # x = L'^-1 (sqrt(radius) r z) satisfies x' precision x = radius r^2
        x = np.linalg.solve(chol.T, (np.sqrt(self.radius) * r[:, None] * z).T).T
        return self.center + x


def wald_ellipsoid(fit: Any, level: float = 0.95, radius: float | None = None) -> WaldEllipsoid:
    """The Wald set of an :class:`~bayes_qse.mle.MLEFit` (or a Laplace posterior).

    ``radius`` defaults to :func:`chi2_radius` ``(r, level)`` with ``r`` the rank of the
    precision (the number of directions the data identify, :func:`fisher_rank`; ``r = d``
    when every direction is identified); pass :func:`theory_radius` for the conservative set.
    A Laplace :class:`~bayes_qse.posterior.Posterior` gives its Gaussian's ellipsoid (center
    the MAP, precision ``cov^-1``).
    """
    if hasattr(fit, "fisher"):
        center, precision = np.asarray(fit.theta), np.asarray(fit.fisher)
    elif getattr(fit, "cov", None) is not None and getattr(fit, "map_theta", None) is not None:
        center, precision = np.asarray(fit.map_theta), np.linalg.inv(np.asarray(fit.cov))
    else:
        raise BayesQSEInputError("fit: expected an MLEFit or a Laplace Posterior")
    beta = chi2_radius(max(fisher_rank(precision), 1), level) if radius is None else float(radius)
    return WaldEllipsoid(center, precision, beta)


def fisher_rank(precision: Any, rtol: float = 1e-9) -> int:
    """The number of identified directions: eigenvalues of ``precision`` above ``rtol`` times
    the largest (the chi-square degrees of freedom of the Wald and LR sets)."""
    lam = np.linalg.eigvalsh(0.5 * (np.asarray(precision) + np.asarray(precision).T))
    return int(np.sum(lam > rtol * max(float(lam.max()), 1e-300)))


# ---------------------------------------------------------------------------------------
# Likelihood-ratio set
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class LikelihoodRatioSet:
    """``{theta : L(theta_hat) - L(theta) <= radius / 2}`` for the likelihood (4).

    Build it with :func:`likelihood_ratio_set`.  ``contains(theta[..., d])`` evaluates ``L``
    at every point (vectorised, jit-compiled).
    """

    center: np.ndarray
    max_log_likelihood: float
    radius: float
    _log_likelihood: Any = dataclasses.field(repr=False)

    def log_likelihood(self, theta: Any) -> np.ndarray:
        """``L(theta)`` for ``theta[..., d]``."""
        th = np.asarray(theta, np.float64)
        flat = th.reshape(-1, th.shape[-1])
        return np.asarray(self._log_likelihood(jnp.asarray(flat))).reshape(th.shape[:-1])

    def deviance(self, theta: Any) -> np.ndarray:
        """``2 (L(theta_hat) - L(theta))`` for ``theta[..., d]``."""
        return 2.0 * (self.max_log_likelihood - self.log_likelihood(theta))

    def contains(self, theta: Any) -> np.ndarray:
        """Membership of ``theta[..., d]``: a bool array ``[...]``."""
        return self.deviance(theta) <= self.radius * (1 + 1e-12) + 1e-9


@jax.jit
def _batched_log_likelihood(thetas: Array, model: Model, stats: Any) -> Array:
    """``L(theta)`` of eq. (4) for ``thetas[M,d]`` (``stats`` as in
    :func:`~bayes_qse.likelihood.log_likelihood`)."""
    return jax.vmap(lambda th: log_likelihood(th, model, stats))(thetas)


def likelihood_ratio_set(
    dataset: Any,
    game: Any,
    fit: Any,
    level: float = 0.95,
    *,
    radius: float | None = None,
) -> LikelihoodRatioSet:
    """The likelihood-ratio confidence set around ``fit`` (an MLEFit of the same data).

    ``radius`` defaults to :func:`chi2_radius` ``(r, level)`` (Wilks) with ``r`` the Fisher
    rank of ``fit`` (:func:`fisher_rank`); ``dataset`` (a ``Dataset``, ``CommitmentCounts`` or
    ``ActionCounts``) and ``game`` (a ``Game``, ``GameSpec``, ``Model`` or
    ``NormalFormGame``) are those of :func:`~bayes_qse.inference.fit_mle`.
    """
    m, stats_ = resolve_data(dataset, game)
    model = m.replace(
        features=jnp.asarray(m.features),
        transitions=jnp.asarray(m.transitions) if m.farsighted else None,
    )
    batched = partial(_batched_log_likelihood, model=model, stats=stats_)
    d = model.feature_dim
    rank = fisher_rank(fit.fisher) if getattr(fit, "fisher", None) is not None else d
    beta = chi2_radius(max(rank, 1), level) if radius is None else float(radius)
    center = np.asarray(fit.theta, np.float64)
    l_max = float(batched(jnp.asarray(center[None]))[0])
    return LikelihoodRatioSet(center, l_max, beta, batched)


# ---------------------------------------------------------------------------------------
# Per-response intervals (myopic follower)
# ---------------------------------------------------------------------------------------


_response_batch = jax.jit(myopic_response)


def response_intervals(
    game: Any,
    fit_or_posterior: Any,
    level: float = 0.95,
    method: str = "delta",
    num_samples: int = 4000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Intervals ``(lower[H,S,A,B], upper[H,S,A,B])`` for the myopic response ``nu_h(b|s,a)``.

    - ``method="delta"``: ``nu(theta_c) -/+ z sqrt(g' C g)`` with ``g = d nu / d theta``,
      ``z`` the two-sided normal quantile; ``(theta_c, C)`` is the MLE and its ``cov`` (an
      :class:`MLEFit`) or the draws' mean and covariance (a :class:`Posterior`).  Pointwise,
      clipped to ``[0, 1]``.
    - ``method="sampling"``: for an :class:`MLEFit`, the range of ``nu`` over ``num_samples``
      points of the Wald ellipsoid at ``level`` (its image: simultaneous over all entries);
      for a :class:`Posterior`, equal-tailed quantiles of ``nu`` over the draws.
    """
    if game.farsighted:
        raise BayesQSEInputError(
            "game: response_intervals covers a myopic follower (a farsighted response also "
            "depends on the leader's policy)"
        )
    level = _check_level(level)
    if method not in ("delta", "sampling"):
        raise BayesQSEInputError(f"method: must be 'delta' or 'sampling', got {method!r}")
    phi, eta = jnp.asarray(game.features), float(game.eta)
    model = Model(phi, eta)
    is_fit = hasattr(fit_or_posterior, "fisher")
    if not is_fit and not hasattr(fit_or_posterior, "theta"):
        raise BayesQSEInputError("fit_or_posterior: expected an MLEFit or a Posterior")
    if method == "sampling":
        if is_fit:
            points = wald_ellipsoid(fit_or_posterior, level).sample(seed, num_samples)
            nu = np.asarray(_response_batch(model, jnp.asarray(points)))
            return nu.min(axis=0), nu.max(axis=0)
        draws = as_float_array(fit_or_posterior.theta, "theta", 2)
        nu = np.asarray(_response_batch(model, jnp.asarray(draws)))
        alpha = (1.0 - level) / 2
        return np.quantile(nu, alpha, axis=0), np.quantile(nu, 1 - alpha, axis=0)
    if is_fit:
        center, cov = np.asarray(fit_or_posterior.theta), np.asarray(fit_or_posterior.cov)
    else:
        draws = as_float_array(fit_or_posterior.theta, "theta", 2)
        center, cov = draws.mean(axis=0), np.atleast_2d(np.cov(draws, rowvar=False))
    nu = np.asarray(myopic_response(model, jnp.asarray(center)))
    # d nu_b / d theta = eta nu_b (phi_b - sum_b' nu_b' phi_b')
    phi_np = np.asarray(phi)
    mean_phi = np.einsum("hsab,hsabd->hsad", nu, phi_np)
    grad = eta * nu[..., None] * (phi_np - mean_phi[..., None, :])
    var = np.einsum("hsabi,ij,hsabj->hsab", grad, cov, grad)
    from scipy.special import ndtri  # lazy; scipy.stats.norm.ppf's own, as in chi2_radius

    half = ndtri(0.5 + level / 2) * np.sqrt(np.clip(var, 0.0, None))
    return np.clip(nu - half, 0.0, 1.0), np.clip(nu + half, 0.0, 1.0)


# ---------------------------------------------------------------------------------------
# Credible sets from draws
# ---------------------------------------------------------------------------------------


def credible_box(draws: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Equal-tailed credible intervals per coordinate of ``draws[M,d]``: ``(lower, upper)``."""
    th = as_float_array(draws, "draws", 2)
    alpha = (1.0 - _check_level(level)) / 2
    return np.quantile(th, alpha, axis=0), np.quantile(th, 1 - alpha, axis=0)


class HPDRegion(NamedTuple):
    """A highest-density region from draws, by Mahalanobis rank (exact for a Gaussian posterior).

    ``{theta : (theta - mean)' precision (theta - mean) <= threshold}`` where ``precision`` is
    the inverse covariance of the draws and ``threshold`` the ``level`` quantile of the draws'
    own squared distances.
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float

    def contains(self, theta: Any) -> np.ndarray:
        """Membership of ``theta[..., d]``: a bool array ``[...]``."""
        diff = np.asarray(theta, np.float64) - self.mean
        return np.einsum("...i,ij,...j->...", diff, self.precision, diff) <= self.threshold


def hpd_region(draws: Any, level: float = 0.95) -> HPDRegion:
    """The :class:`HPDRegion` holding a fraction ``level`` of ``draws[M,d]``."""
    th = as_float_array(draws, "draws", 2)
    level = _check_level(level)
    if th.shape[0] < th.shape[1] + 2:
        raise BayesQSEInputError(f"draws: need at least d + 2 draws, got {th.shape[0]}")
    mean = th.mean(axis=0)
    precision = np.linalg.inv(np.atleast_2d(np.cov(th, rowvar=False)))
    diff = th - mean
    d2 = np.einsum("mi,ij,mj->m", diff, precision, diff)
    return HPDRegion(mean, precision, float(np.quantile(d2, level)))


__all__ = [
    "HPDRegion",
    "LikelihoodRatioSet",
    "WaldEllipsoid",
    "chi2_radius",
    "chi2_radius_table",
    "credible_box",
    "ellipsoid_response_box",
    "fisher_rank",
    "hpd_region",
    "identified_split",
    "likelihood_ratio_set",
    "lr_outer_radius",
    "lr_response_box",
    "response_intervals",
    "theory_radius",
    "theory_radius_jax",
    "wald_ellipsoid",
    "wald_response_box",
]
