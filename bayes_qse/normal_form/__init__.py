"""Normal-form commitment games and inverse Stackelberg learning (docs/math.md eq. 9).

The leader announces a mixed strategy ``x`` over ``m`` actions; the follower answers with
``softmax(eta * x @ V)`` over ``n`` (eq. 9a), ``V = features @ theta``.  Games and Wu et
al. (NeurIPS 2022)'s generators and error metric: :mod:`.game`; simulated play as grouped
counts and the PURE baseline: :mod:`.pure`.  The fits are the core's
(:func:`bayes_qse.fit_mle`, :func:`bayes_qse.sample_posterior`, the sets of
:mod:`bayes_qse.sets`) on :class:`~bayes_qse.counts.CommitmentCounts`.

This package re-exports the public names of :mod:`.game`, :mod:`.pure` and the grouped
statistics of :mod:`bayes_qse.counts`.
"""

from __future__ import annotations

from ..counts import ActionCounts, CommitmentCounts, group_rounds, merge_counts
from .game import (
    CODINGS,
    NormalFormGame,
    commitment_fisher,
    identification_rank,
    normal_form_game,
    onehot_features,
    onehot_game,
    onehot_theta,
    per_commitment_fisher,
    random_normal_form_game,
    random_security_form_game,
    security_features,
    security_form_game,
    security_theta,
    shift_invariant_l1,
    wu_security_parameters,
    wu_utilities,
)
from .pure import PureFit, pure_counts, pure_estimate, round_robin, simulate_commitment_counts

__all__ = [
    "CODINGS",
    "ActionCounts",
    "CommitmentCounts",
    "NormalFormGame",
    "PureFit",
    "commitment_fisher",
    "group_rounds",
    "identification_rank",
    "merge_counts",
    "normal_form_game",
    "onehot_features",
    "onehot_game",
    "onehot_theta",
    "per_commitment_fisher",
    "pure_counts",
    "pure_estimate",
    "random_normal_form_game",
    "random_security_form_game",
    "round_robin",
    "security_features",
    "security_form_game",
    "security_theta",
    "shift_invariant_l1",
    "simulate_commitment_counts",
    "wu_security_parameters",
    "wu_utilities",
]
