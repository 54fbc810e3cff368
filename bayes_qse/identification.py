"""Which directions of the follower's ``theta`` the data can identify (docs/math.md §1.3).

- :func:`constant_feature_directions`: feature directions constant across follower actions
  (never seen by a myopic follower's quantal response).
- :func:`identified_directions`: the Fisher rank of a game at its true ``theta`` under varied
  leader policies (:class:`Identification`).
- :func:`null_space` and :func:`identifiability_message`: the null space of an observed Fisher
  information and the message :func:`bayes_qse.inference.fit_mle` warns with
  (:class:`IdentifiabilityWarning`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .data import simulate
from .likelihood import log_likelihood


class IdentifiabilityWarning(UserWarning):
    """Some direction of ``theta`` is not identified by the data (flat likelihood)."""


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
    # the full [d, d] right basis without the [rows, rows] left one (which is 20 GB for the
    # 50-site patrol game): full matrices only when there are fewer rows than d
    _, sv, vt = np.linalg.svd(diffs, full_matrices=diffs.shape[0] < d)
    sv_full = np.zeros(d)
    sv_full[: sv.size] = sv
    null = sv_full <= rtol * max(sv_full.max(), 1e-300)
    return [canonical(v) for v in vt[null]]


def canonical(v: np.ndarray) -> np.ndarray:
    v = np.where(np.abs(v) < 1e-12, 0.0, v)
    i = int(np.argmax(np.abs(v)))
    return v / np.linalg.norm(v) * np.sign(v[i])


def null_space(fisher: np.ndarray, rtol: float = 1e-9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def identifiability_message(
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
    phi, P = jnp.asarray(game.features), jnp.asarray(game.transitions)
    farsighted = bool(game.farsighted)
    ll = lambda th: log_likelihood(th, phi, P, game.eta, data, farsighted)  # noqa: E731
    fisher = -np.asarray(jax.hessian(ll)(jnp.asarray(game.theta, jnp.float64)))
    lam, vecs = np.linalg.eigh(0.5 * (fisher + fisher.T))
    keep = lam > rtol * max(float(lam.max()), 1e-300)
    return Identification(int(keep.sum()), int(lam.size), vecs[:, keep], lam)


__all__ = [
    "IdentifiabilityWarning",
    "Identification",
    "canonical",
    "constant_feature_directions",
    "identifiability_message",
    "identified_directions",
    "null_space",
]
