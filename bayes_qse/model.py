"""One model pytree for the jitted core (docs/math.md §1).

A :class:`Model` carries the arrays that every core computation reads — the follower's
features and rationality, the leader's transitions, rewards and initial distribution — and the
static follower kind.  The follower's parameter ``theta`` is *not* part of it: it is what the
leader learns, so cores take it as their first argument, ``f(theta, model, ...)``, and vmapping
over posterior draws is ``in_axes=(0, None)``; vmapping over sampled leader models is an
``in_axes`` pytree on the model, e.g. ``Model(features=None, eta=None, transitions=0,
leader_reward=0, initial_dist=None)``.

Fields the leader does not know (her transitions and rewards outside planning mode, a learned
initial distribution) are ``None``; a core that needs them raises when they are missing.

Public functions accept a :class:`bayes_qse.games.Game`, a
:class:`bayes_qse.learners.GameSpec` or a :class:`Model`; :func:`as_model` turns any of them
into the pytree.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """The arrays of a leader-follower Markov game, minus ``theta`` (docs/math.md §1).

    Attributes:
        features: ``[H, S, A, B, d]`` follower features, ``u = features @ theta`` (eq. 3).
        eta: scalar rationality (eq. 1).
        transitions: ``[H, S, A, B, S]`` next-state distributions, or ``None`` (unknown).
        leader_reward: ``[H, S, A, B]`` leader rewards, or ``None`` (unknown).
        initial_dist: ``[S]`` initial state distribution, or ``None`` (unknown).
        farsighted: static; whether the follower plans over the remaining episode
            (eq. 1a-1d) or only the current step.
        follower: static; what the follower answers: ``"action"`` (the leader's realised
            action, eq. 1) or ``"commitment"`` (her announced policy, eq. 7; the commitment
            features then come with the data, :class:`~bayes_qse.commitment.CommitmentStats`,
            and ``features`` may be ``None``).
    """

    features: Any
    eta: Any
    transitions: Any = None
    leader_reward: Any = None
    initial_dist: Any = None
    farsighted: bool = dataclasses.field(default=False, metadata=dict(static=True))
    follower: str = dataclasses.field(default="action", metadata=dict(static=True))

    @property
    def follower_kind(self) -> str:
        """``"myopic"``, ``"farsighted"`` or ``"commitment"``."""
        if self.follower == "commitment":
            return "commitment"
        return "farsighted" if self.farsighted else "myopic"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(H, S, A, B)``."""
        return tuple(int(x) for x in self.features.shape[:4])  # type: ignore[return-value]

    @property
    def feature_dim(self) -> int:
        return int(self.features.shape[-1])

    @classmethod
    def of(cls, source: Any) -> Model:
        """The model read off any object with the six fields by name (``Game``, ``GameSpec``)."""
        return cls(
            features=source.features,
            eta=source.eta,
            transitions=source.transitions,
            leader_reward=source.leader_reward,
            initial_dist=source.initial_dist,
            farsighted=source.farsighted,
        )

    def replace(self, **changes: Any) -> Model:
        """A copy with ``changes`` (e.g. sampled ``transitions``)."""
        return dataclasses.replace(self, **changes)


def as_model(obj: Any) -> Model:
    """The :class:`Model` of a ``Game``, ``GameSpec`` or ``Model`` (returned as is)."""
    if isinstance(obj, Model):
        return obj
    model = getattr(obj, "model", None)
    if isinstance(model, Model):
        return model
    raise TypeError(f"expected a Game, GameSpec or Model, got {type(obj).__name__}")


__all__ = [
    "Model",
    "as_model",
]
