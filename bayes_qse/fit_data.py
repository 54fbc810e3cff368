"""What the fits read: the game's validated follower :class:`~bayes_qse.model.Model` and the
sufficient statistics of the data, dispatched on the data's type (docs/math.md eq. 4, 7c, 9d).

- a :class:`~bayes_qse.data.Dataset` (episodes): the follower the game says (myopic or
  farsighted, answering the leader's action); statistics the counts ``[H,S,A,B]`` (myopic)
  or an episode buffer (farsighted), :func:`stats_from_dataset`;
- :class:`~bayes_qse.counts.CommitmentCounts`: a follower who answers the announced
  commitment (eq. 7), counts grouped per distinct commitment;
- :class:`~bayes_qse.counts.ActionCounts`: a myopic follower's counts ``[H,S,A,B]``.

:func:`resolve_data` is shared by :func:`bayes_qse.inference.fit_mle`,
:func:`~bayes_qse.inference.sample_posterior` and :func:`bayes_qse.sets.likelihood_ratio_set`.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from ._validate import as_float_array, check_eta
from .counts import ActionCounts, CommitmentCounts, check_action_counts, check_commitment_counts
from .data import Dataset, buffer_from_dataset
from .errors import BayesQSEInputError
from .model import Model, as_model

#: The data types the fits accept.
DATA_TYPES = (Dataset, CommitmentCounts, ActionCounts)


def _game_model(game: Any) -> Model:
    """The validated model of ``game``: float64 features ``[H,S,A,B,d]``, a checked ``eta``,
    transitions ``[H,S,A,B,S]`` (zeros for a myopic follower) and the game's follower kind."""
    try:
        m = as_model(game)
    except TypeError as err:
        raise BayesQSEInputError(f"game: {err}") from None
    phi = as_float_array(m.features, "features", 5)
    eta = check_eta(m.eta, "eta")
    H, S, A, B, _ = phi.shape
    if m.farsighted:
        if m.transitions is None:
            raise BayesQSEInputError("transitions: required for a farsighted follower")
        P = as_float_array(m.transitions, "transitions", 5)
        if P.shape != (H, S, A, B, S):
            raise BayesQSEInputError(
                f"transitions: expected shape {(H, S, A, B, S)}, got {P.shape}"
            )
    else:
        P = np.zeros((H, S, A, B, S))
    return Model(
        features=phi, eta=eta, transitions=P, farsighted=bool(m.farsighted), follower=m.follower
    )


def resolve_model(dataset: Any, game: Any) -> Model:
    """The validated :class:`Model` of ``game`` (a ``Game``, ``GameSpec`` or ``Model``) for
    fitting the episodes ``dataset``: float64 features ``[H,S,A,B,d]``, a checked ``eta``, and
    transitions ``[H,S,A,B,S]`` (zeros for a myopic follower, whose likelihood ignores them).

    Raises:
        BayesQSEInputError: naming the field (``game``, ``features``, ``eta``,
            ``transitions``, ``dataset``).
    """
    m = _game_model(game)
    if not isinstance(dataset, Dataset):
        raise BayesQSEInputError(f"dataset: expected a Dataset, got {type(dataset).__name__}")
    if m.follower == "commitment":
        raise BayesQSEInputError(
            "dataset: this game's follower answers the leader's commitment; pass its data as "
            "CommitmentCounts (bayes_qse.counts), not a Dataset of realised actions"
        )
    dataset.check_sizes(m.shape)
    return m.replace(follower="action")


def stats_from_dataset(dataset: Dataset, features: Any, farsighted: bool) -> Any:
    """The sufficient statistics of eq. (4) for ``dataset``: counts ``[H,S,A,B]`` (myopic) or
    an :class:`EpisodeBuffer` whose capacity is rounded up to a power of two (farsighted), so
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


def resolve_data(data: Any, game: Any) -> tuple[Model, Any]:
    """``(model, stats)`` for the likelihood :func:`bayes_qse.likelihood.log_likelihood`:
    the follower kind follows the data's type (see the module doc); the statistics are
    validated against the game's ``(H, S, A, B)``.

    Raises:
        BayesQSEInputError: naming the field (``game``, ``features``, ``eta``,
            ``transitions``, ``dataset``, ``commitments``, ``counts``).
    """
    if isinstance(data, Dataset):
        m = resolve_model(data, game)
        return m, stats_from_dataset(data, m.features, m.farsighted)
    if not isinstance(data, (CommitmentCounts, ActionCounts)):
        raise BayesQSEInputError(
            "dataset: expected a Dataset, CommitmentCounts or ActionCounts, got "
            f"{type(data).__name__}"
        )
    m = _game_model(game)
    if m.farsighted:
        raise BayesQSEInputError(
            f"dataset: {type(data).__name__} are sufficient only for a myopic follower; a "
            "farsighted follower's likelihood needs the episodes (a Dataset)"
        )
    if isinstance(data, CommitmentCounts):
        stats = check_commitment_counts(data, m.shape)
        stats = CommitmentCounts(jnp.asarray(stats.commitments), jnp.asarray(stats.counts))
        return m.replace(follower="commitment", transitions=None), stats
    stats = check_action_counts(data, m.shape)
    return m.replace(follower="action", transitions=None), ActionCounts(jnp.asarray(stats.counts))


__all__ = ["DATA_TYPES", "resolve_data", "resolve_model", "stats_from_dataset"]
