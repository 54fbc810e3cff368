"""The maximum-likelihood fit shared by every follower (docs/math.md §2, §2.3, §2.4): one
piece of code turns a log-likelihood into an :class:`MLEFit` -- the Newton MLE, the separation
check and the limiting model when the MLE does not exist, the bounded MLE with its KKT
residual, the standard errors and the warnings.

:func:`bayes_qse.inference.fit_mle` (Markov-game episodes, counts) and
:func:`bayes_qse.security.fit_suqr_mle` (attack data) differ only in how they build the
likelihood's sufficient statistics; both call :func:`fit_likelihood`, whose Newton MLE is
:func:`bayes_qse.likelihood.map_core`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .bounded import Constraints, constrained_maximize, face_covariance
from .counts import ActionCounts, CommitmentCounts
from .errors import SeparationWarning
from .identification import IdentifiabilityWarning, canonical, null_space
from .likelihood import log_likelihood, map_core
from .separation import Separation, describe_separation, find_separation, limiting_fit


class MLEFit(NamedTuple):
    """The maximum-likelihood fit of eq. (4) / (7c).

    Attributes:
        theta: ``[d]`` the MLE.  When it does not exist (``separation.separated``), the MLE
            of the limiting model (docs/math.md §2.3): the finite part of the supremum, with
            no component along ``separation.span``; the likelihood approaches its supremum as
            ``theta + t * separation.direction``, ``t -> inf``.
        cov: ``[d,d]`` the inverse observed Fisher information (pseudo-inverse when some
            directions are not identified; for a bounded fit, restricted to the face of the
            active constraints, :func:`bayes_qse.bounded.face_covariance`).
        log_likelihood: ``L(theta_hat)`` (the supremum when the MLE does not exist).
        std_err: ``[d]`` ``sqrt(diag(cov))``; ``inf`` for a coordinate with a component in a
            non-identified or separated direction; ``nan`` for one held at an active bound.
        fisher: ``[d,d]`` observed Fisher information ``I = -Hess L(theta_hat)`` (of the
            limiting model when separated: zero along the separated directions).
        n_iter: Newton (and interior-point) steps taken.
        converged: whether the estimate is a maximiser of ``L`` over the parameter class:
            Newton's decrement reached its tolerance (or the KKT residual is below
            :data:`bayes_qse.bounded.KKT_TOL`) and the MLE exists (False under separation).
        non_identified: unit vectors ``[d]`` spanning the null space of ``fisher``.
        separation: the :class:`~bayes_qse.separation.Separation` found by the LP (2.3a) of
            the unconstrained likelihood (``None`` for a farsighted follower, whose
            likelihood is not a multinomial logit in ``theta``).
        kkt_residual: bounded fits: the relative KKT residual (2.4b); else ``None``.
        active: bounded fits: ``{("upper"|"lower", j) or ("radius", -1): multiplier}`` of
            the active constraints; else ``None``.
    """

    theta: np.ndarray
    cov: np.ndarray
    log_likelihood: float
    std_err: np.ndarray
    fisher: np.ndarray
    n_iter: int
    converged: bool
    non_identified: list
    separation: Separation | None = None
    kkt_residual: float | None = None
    active: dict | None = None


@jax.jit
def _value_grad_hessian(theta, model, stats):
    """``(L, grad L, Hess L)`` of :func:`bayes_qse.likelihood.log_likelihood` (compiled once
    per shape and follower kind)."""

    def f(th):
        return log_likelihood(th, model, stats)

    return f(theta), jax.grad(f)(theta), jax.hessian(f)(theta)


def _pinv_cov(fisher: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    """``(cov, std_err, null_dirs)``: the pseudo-inverse of ``fisher`` with ``std_err = inf``
    on coordinates touched by its null space."""
    lam, vecs, null = null_space(fisher)
    inv = np.where(null, 0.0, 1.0 / np.where(null, 1.0, lam))
    cov = (vecs * inv) @ vecs.T
    std_err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    if np.any(null):
        touched = np.any(np.abs(vecs[:, null]) > 1e-8, axis=1)
        std_err = np.where(touched, np.inf, std_err)
    return cov, std_err, [canonical(v) for v in vecs[:, null].T]


class ChoiceData(NamedTuple):
    """A likelihood that is a multinomial logit (myopic, commitment): ``features[..., B, d]``,
    ``counts[..., B]``, ``eta`` and the names of a cell's indices (e.g. ``("k", "t")``)."""

    features: Any
    counts: Any
    eta: float
    cell_names: tuple[str, ...]


def choice_data(model: Any, stats: Any) -> ChoiceData | None:
    """The choice sets of ``log_likelihood(., model, stats)`` when it is a multinomial logit
    in ``theta``: a myopic follower (``stats`` the counts ``[H,S,A,B]``, cells
    ``(h, s, a, b)``) or a commitment-observing one (``CommitmentStats``, cells ``(k, t)`` for
    ``[K, T]`` statistics, ``(k, h, s, b)`` for ``[K, H, S, B]``; ``CommitmentCounts``, cells
    ``(k, b)`` in a normal-form game, ``(k, h, s, b)`` otherwise); ``None`` for a farsighted
    follower or episode statistics."""
    if isinstance(stats, CommitmentCounts):
        return _grouped_choice_data(model, stats)
    if isinstance(stats, ActionCounts):
        stats = np.reshape(stats.counts, model.shape)
    if model.follower == "commitment":
        counts = np.asarray(stats.counts, np.float64)
        names = ("k", "t") if counts.ndim == 2 else ("k", "h", "s", "b")[-counts.ndim :]
        return ChoiceData(np.asarray(stats.psi), counts, float(model.eta), names)
    if model.farsighted or np.ndim(stats) != 4:
        return None
    counts = np.asarray(stats, np.float64)
    return ChoiceData(np.asarray(model.features), counts, float(model.eta), ("h", "s", "a", "b"))


def _grouped_choice_data(model: Any, stats: CommitmentCounts) -> ChoiceData:
    """The choice sets of :class:`CommitmentCounts`: ``psi_k = x_k @ phi`` (eq. 7b),
    ``[K, B, d]`` -- formed only here, for the separation LP (2.3a), whose rows cost
    ``O(K B^2 d)`` too; the likelihood itself never forms them."""
    phi = np.asarray(model.features, np.float64)
    H, S, A, B, d = phi.shape
    x = np.asarray(stats.commitments, np.float64).reshape(-1, H, S, A)
    n = np.asarray(stats.counts, np.float64).reshape(-1, H, S, B)
    if (H, S) == (1, 1):
        psi = np.einsum("ka,abd->kbd", x[:, 0, 0], phi[0, 0])
        return ChoiceData(psi, n[:, 0, 0], float(model.eta), ("k", "b"))
    psi = np.einsum("khsa,hsabd->khsbd", x, phi)
    return ChoiceData(psi, n, float(model.eta), ("k", "h", "s", "b"))


def fit_likelihood(
    model: Any,
    stats: Any,
    theta0: np.ndarray,
    *,
    constraints: Constraints | None,
    identifiability_message: Callable[[list], str],
    caller: str,
    max_steps: int = 100,
) -> MLEFit:
    """The :class:`MLEFit` of ``L = log_likelihood(., model, stats)``.

    Args:
        model, stats: the likelihood (:func:`bayes_qse.likelihood.log_likelihood`).
        theta0: ``[d]`` start.
        constraints: the bounded class (§2.4) or ``None``.
        identifiability_message: ``null_dirs -> str`` for :class:`IdentifiabilityWarning`.
        caller: the public name in the warnings.
        max_steps: Newton step limit (:func:`bayes_qse.likelihood.map_core` with
            ``Lambda = 0``, and the limiting model).

    Warns :class:`SeparationWarning` (a ``RuntimeWarning``) when the MLE does not exist,
    :class:`IdentifiabilityWarning` when the Fisher information of the data has a null space,
    ``RuntimeWarning`` when the optimiser did not converge.
    """

    def vgh(th):
        out = _value_grad_hessian(jnp.asarray(th, jnp.float64), model, stats)
        return tuple(np.asarray(x) for x in out)

    choice = choice_data(model, stats)
    sep = None
    if constraints is not None:
        if choice is not None:
            sep = find_separation(choice.features, choice.counts)
        return _bounded(vgh, theta0, constraints, choice, sep, identifiability_message, caller)
    zero = jnp.zeros((np.shape(theta0)[-1],) * 2)  # Lambda = 0 as a matrix (published rounding)
    core = map_core(model, stats, zero, theta0, int(max_steps))
    theta, f, neg_h, n_iter, converged = (np.asarray(x) for x in core)
    converged = bool(converged)
    if choice is not None:  # Newton's point may certify existence (skipping the LP)
        logits = choice.eta * (np.asarray(choice.features) @ theta)
        sep = find_separation(choice.features, choice.counts, logits=logits)
    full_fisher = None
    if sep is not None and sep.separated:
        theta, f, neg_h, n2, _ = (
            np.asarray(x)
            for x in limiting_fit(choice.features, choice.counts, choice.eta, sep, max_steps)
        )
        n_iter, converged = int(n_iter) + int(n2), False
        full_fisher = -vgh(theta)[2]
        warnings.warn(
            f"{caller}: {describe_separation(sep, choice.cell_names)}; theta is the MLE of the "
            "limiting model, std_err is inf along those directions (docs/math.md §2.3)",
            SeparationWarning,
            stacklevel=3,
        )
    fisher = 0.5 * (neg_h + neg_h.T)
    cov, std_err, null_dirs = _pinv_cov(fisher)
    # the Fisher null space of the data themselves (not the separated directions)
    data_null = (
        null_dirs if full_fisher is None else _pinv_cov(0.5 * (full_fisher + full_fisher.T))[2]
    )
    if data_null:
        warnings.warn(identifiability_message(data_null), IdentifiabilityWarning, stacklevel=3)
    if not converged and not (sep is not None and sep.separated):
        warnings.warn(
            f"{caller}: Newton did not converge in {int(n_iter)} steps (the MLE may be at "
            "infinity: some follower action is never or always chosen)",
            RuntimeWarning,
            stacklevel=3,
        )
    return MLEFit(
        theta=theta,
        cov=cov,
        log_likelihood=float(f),
        std_err=std_err,
        fisher=fisher,
        n_iter=int(n_iter),
        converged=converged,
        non_identified=null_dirs,
        separation=sep,
    )


def _bounded(vgh, theta0, c, choice, sep, identifiability_message, caller) -> MLEFit:
    """The bounded MLE (§2.4): :func:`bayes_qse.bounded.constrained_maximize`."""
    exists = True
    if not c.compact and choice is not None:
        inside = find_separation(
            choice.features,
            choice.counts,
            nonneg=np.isfinite(c.lower) & ~np.isfinite(c.upper),
            nonpos=np.isfinite(c.upper) & ~np.isfinite(c.lower),
        )
        if inside.separated:
            exists = False
            warnings.warn(
                f"{caller}: within the bounds, {describe_separation(inside, choice.cell_names)}",
                SeparationWarning,
                stacklevel=4,
            )
    res = constrained_maximize(vgh, theta0, c)
    fisher = 0.5 * (res.neg_hessian + res.neg_hessian.T)
    cov, std_err = face_covariance(fisher, res.theta, res.multipliers)
    _, _, null_dirs = _pinv_cov(fisher)
    if not exists:  # theta is where the optimiser stopped on its way to infinity
        std_err = np.full_like(std_err, np.inf)
    elif null_dirs:
        warnings.warn(identifiability_message(null_dirs), IdentifiabilityWarning, stacklevel=4)
    if not res.converged:
        warnings.warn(
            f"{caller}: the bounded MLE did not converge (relative KKT residual "
            f"{res.kkt_residual:.2g} > 1e-8 after {res.n_iter} steps)",
            RuntimeWarning,
            stacklevel=4,
        )
    return MLEFit(
        theta=res.theta,
        cov=cov,
        log_likelihood=res.value,
        std_err=std_err,
        fisher=fisher,
        n_iter=res.n_iter,
        converged=bool(res.converged and exists),
        non_identified=null_dirs,
        separation=sep,
        kkt_residual=res.kkt_residual,
        active=res.multipliers,
    )


__all__ = ["ChoiceData", "MLEFit", "choice_data", "fit_likelihood"]
