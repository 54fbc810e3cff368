"""Learners of the leader's QSE policy (docs/math.md §5).

Online (:mod:`bayes_qse.learners.online`): ``oracle``, ``greedy``, ``thompson``,
``bayes-optimistic`` and the paper's ``mle-optimistic``, as pure ``init`` / ``act`` /
``update`` functions over a fixed-shape state (:func:`make_learner`), and the episode loop
that runs them with exact regret (:class:`OnlineRunner`, :func:`run_online`).

Offline (:mod:`bayes_qse.learners.offline`): ``oracle``, ``plugin``, the paper's
``mle-pessimistic`` and ``bayes-pessimistic``, each ``fit(dataset, game_spec, config, key) ->
OfflineResult(policy, lower_bound, info)``, plus the behaviour policies of the offline
experiment.

The package re-exports these names from their home modules (:mod:`.common`, :mod:`.online`,
:mod:`.offline`, :mod:`.runner`, :mod:`.behaviour`), which define them.
"""

from __future__ import annotations

from .behaviour import behaviour_policy
from .common import GameSpec, Learner, OnlineState
from .config import LearnerConfig, OfflineLearnerConfig
from .offline import OFFLINE_LEARNERS, OfflineResult, fit_offline
from .online import LEARNERS, make_learner
from .runner import EpisodeRecord, OnlineRunner, run_online

__all__ = [
    "LEARNERS",
    "EpisodeRecord",
    "GameSpec",
    "Learner",
    "LearnerConfig",
    "OFFLINE_LEARNERS",
    "OfflineLearnerConfig",
    "OfflineResult",
    "OnlineRunner",
    "OnlineState",
    "behaviour_policy",
    "fit_offline",
    "make_learner",
    "run_online",
]
