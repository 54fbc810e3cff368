"""The learners' settings (:mod:`bayes_qse.settings`' idiom): :class:`LearnerConfig` of the
online learners and :class:`OfflineLearnerConfig` of the offline ones, each a frozen
dataclass validated when made and built from a mapping by ``from_mapping`` (retired names
read for one release with a DeprecationWarning)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..errors import ConfigError
from ..leader_model import LEADER_FEATURES, REWARD_BOUNDS
from ..settings import Settings, check_choice, check_count, check_real


@dataclasses.dataclass(frozen=True)
class LearnerConfig(Settings):
    """Settings of the online learners (all static: changing one recompiles; the idiom and
    the retired names are those of :mod:`bayes_qse.settings`).

    Attributes:
        capacity: episodes the buffer holds (``>=`` the number of episodes to play, so the
            likelihood uses all data).  Farsighted follower, ``refit="every"`` only: facing a
            myopic follower the learner keeps running counts of every episode instead
            (:class:`~bayes_qse.policy_stats.ResponseCounts`).
        prior_scale: ``sigma`` of the ``Normal(0, sigma^2 I)`` prior on ``theta`` (docs/math.md §2);
            the frequentist learners use the same ``1/sigma^2`` as a ridge penalty on the MLE
            (as in logistic bandits: it keeps the estimate finite before the data identify
            ``theta``), so that every learner shares the same point estimate and Hessian.
        newton_steps: maximum damped-Newton steps per episode, warm-started at the previous
            estimate (:func:`bayes_qse.likelihood.map_core`; myopic follower only: for a
            farsighted one each episode takes one step, :func:`bayes_qse.optim.online_newton_step`).
        num_draws: ``M`` joint posterior draws of ``bayes-optimistic``.
        quantile_offset: the quantile schedule of ``bayes-optimistic``,
            ``level_t = 1 - 1 / (t + quantile_offset)`` after ``t`` episodes (Bayes-UCB with
            ``c = 0``, Kaufmann, Cappé & Garivier 2012); with ``M`` draws the empirical
            quantile saturates at the largest draw.
        delta: the failure probability of the frequentist sets, in ``(0, 1)`` (the
            Wald/likelihood-ratio radius ``beta = chi2_d(1 - delta)`` and the leader model's
            bonuses, ``delta`` split among them; retired name ``confidence_level = 1 - delta``).
        n_candidates: starts of the farsighted ``mle-optimistic``'s joint search over policy
            and confidence set (:func:`~bayes_qse.confidence.joint_optimistic_plan`).
        planner_steps: Adam steps per episode of the warm-started farsighted planner.
        planner_lr: its learning rate.
        reward_noise_sd: noise scale of the Bayesian leader model's Normal rewards (relative
            to the reward range).
        optimism: how ``mle-optimistic`` bounds the follower's response over its confidence
            set: ``"box"`` (default, valid at any radius: the exact response box of the Wald
            set, :func:`bayes_qse.sets.wald_response_box`) or ``"first-order"`` (the
            linearised bonus ``sqrt(beta) ||grad E_nu[W]||_{I^+}``, an approximation that is
            *not* an upper bound at realistic radii; kept for comparison).  Myopic follower
            only; a farsighted one is always optimised jointly over policy and set.
        radius: the confidence set and radius of ``mle-optimistic``: ``"chi2"`` (the Wald
            set at ``chi2_r(level)`` with ``r`` the Fisher rank, the asymptotic law of the Wald
            statistic) or ``"theory"`` (the paper's likelihood-ratio set at its finite-sample
            radius :func:`bayes_qse.sets.theory_radius`, ``n_t = H t`` observations, union
            bound over episodes ``delta_t = delta / (t (t + 1))``; planned over a certified
            outer ellipsoid of it, :func:`bayes_qse.sets.lr_response_box`; ``optimism="box"``
            only).
        reward_bound: the reward bonus of ``mle-optimistic``'s tabular leader model
            (:class:`bayes_qse.leader_model.EmpiricalBonusModel`): ``"best"`` (default: per
            cell the smaller of Hoeffding and empirical Bernstein, each at half the rewards'
            delta), ``"hoeffding"`` or ``"bernstein"``.
        mle_prior_scale: the Gaussian penalty of the frequentist MLE as a prior scale (its
            ridge is ``1 / mle_prior_scale^2``; ``inf``, the default: the paper's unpenalised
            MLE, whose directions the data leave unidentified stay unbounded in the set and are
            reported; retired name ``mle_ridge = mle_prior_scale^-2``).
        theta_bound: ``B`` of the paper's bounded parameter class ``||theta|| <= B``: the MLE
            is projected onto it (it may not exist on separable data) and the theory radius
            covers it.
        leader_model: how the leader learns her own transitions and rewards (eq. 5):
            ``"tabular"`` (default; model-based, Dirichlet/Normal posterior or empirical model
            with bonuses) or ``"linear"`` (model-free: least-squares value iteration on leader
            features, :class:`bayes_qse.leader_model.LinearLSVI`, docs/math.md §3.1; myopic
            follower only).
        leader_features: the features of ``"linear"``: ``"follower"`` (``(phi, 1)``) or
            ``"tabular"`` (one-hot ``(s,a,b)``), :func:`bayes_qse.leader_model.lsvi_features`.
        lsvi_reg: the ridge ``lambda`` of LSVI's Gram matrices (``"linear"`` only).
        refit: ``"every"`` (default: refit and replan after every episode, the likelihood over
            a buffer of ``capacity`` episodes, or over running counts for a myopic follower)
            or ``"switching"`` (rarely-switching policies,
            :mod:`bayes_qse.learners.switching`: refit and announce a new policy only when the
            log-determinant of the information has grown by ``log(switch_factor)`` since the
            last switch; the likelihood runs on per-policy statistics, docs/math.md eq. 4').
        switch_factor: the determinant growth factor ``> 1`` that triggers a switch.
        max_policies: rows of the per-policy statistics (``refit="switching"``): the most
            distinct policies a run may announce (a :class:`ConfigError` when exceeded).
    """

    capacity: int = 1000
    prior_scale: float = 1.0
    newton_steps: int = 5
    num_draws: int = 32
    quantile_offset: float = 2.0
    delta: float = 0.1
    n_candidates: int = 8
    planner_steps: int = 30
    planner_lr: float = 0.2
    reward_noise_sd: float = 0.5
    optimism: str = "box"
    radius: str = "chi2"
    reward_bound: str = "best"
    mle_prior_scale: float = math.inf
    theta_bound: float = 10.0
    leader_model: str = "tabular"
    leader_features: str = "follower"
    lsvi_reg: float = 1.0
    refit: str = "every"
    switch_factor: float = 2.0
    max_policies: int = 512

    def __post_init__(self) -> None:
        for name, allowed in (
            ("optimism", ("box", "first-order")),
            ("radius", ("chi2", "theory")),
            ("reward_bound", REWARD_BOUNDS),
            ("leader_model", ("tabular", "linear")),
            ("leader_features", ("follower", "tabular")),
            ("refit", ("every", "switching")),
        ):
            check_choice(name, getattr(self, name), allowed)
        if self.radius == "theory" and self.optimism != "box":
            raise ConfigError(
                "radius: 'theory' (the likelihood-ratio set) is planned over its certified "
                "outer box only; use optimism='box'"
            )
        check_real("mle_prior_scale", self.mle_prior_scale, 0.0, open_low=True, finite=False)
        check_real("theta_bound", self.theta_bound, 0.0, open_low=True)
        check_real("switch_factor", self.switch_factor, 1.0, open_low=True)
        for name in (
            "capacity",
            "newton_steps",
            "num_draws",
            "n_candidates",
            "planner_steps",
            "max_policies",
        ):
            check_count(name, getattr(self, name))
        for name in ("prior_scale", "planner_lr", "reward_noise_sd", "lsvi_reg"):
            check_real(name, getattr(self, name), 0.0, open_low=True)
        check_real("delta", self.delta, 0.0, 1.0, open_low=True, open_high=True)
        check_real("quantile_offset", self.quantile_offset, 1.0)

    @property
    def prior_precision(self) -> float:
        """``1 / prior_scale^2``: the precision of the prior (derived, not a setting)."""
        return 1.0 / self.prior_scale**2

    @property
    def mle_precision(self) -> float:
        """``1 / mle_prior_scale^2``: the ridge of the frequentist MLE (derived; 0 at ``inf``)."""
        return 1.0 / self.mle_prior_scale**2


@dataclasses.dataclass(frozen=True)
class OfflineLearnerConfig(Settings):
    """Settings of the offline learners (docs/math.md §5; every learner reads the fields it
    needs).

    Attributes:
        delta: the total failure probability of ``mle-pessimistic``'s certified lower bound
            (split equally among the learned parts) and the quantile level of
            ``bayes-pessimistic``'s rule, in ``(0, 1)``.
        prior_scale: ``sigma`` of the ``Normal(0, sigma^2 I)`` prior on ``theta``; the
            regularised MLE's ridge is the derived :attr:`prior_precision` ``1 / sigma^2``
            (retired name ``ridge = sigma^-2``).
        newton_steps: Newton steps of the (regularised) MLE.
        penalty: ``mle-pessimistic``'s bound over the follower's set: ``"box"`` (the exact
            response box of the ellipsoid: valid at any radius) or ``"first-order"`` (the
            paper's linearised penalty: not valid at realistic radii); ``"ellipsoid"`` is a
            deprecated alias of ``"first-order"``.
        reward_bound: ``mle-pessimistic``'s reward lower bound: ``"best"`` (per cell the
            smaller of Hoeffding and empirical Bernstein, each at half the rewards' delta),
            ``"hoeffding"`` or ``"bernstein"``.
        rule: ``bayes-pessimistic``'s rule (6): ``"quantile"`` or ``"cvar"``.
        num_draws: ``M`` joint posterior draws of ``bayes-pessimistic``.
        posterior: ``"laplace"`` or ``"nuts"``.
        dirichlet_prior: concentration of the Bayesian transition model's Dirichlet prior.
        leader_model: the leader's own model (eq. 5): ``"tabular"`` (model-based) or
            ``"linear"`` (model-free LSVI, docs/math.md §3.1; myopic follower only).
        leader_features: the features of ``"linear"``: ``"follower"`` (``(phi, 1)``) or
            ``"tabular"`` (one-hot ``(s,a,b)``).
        lsvi_reg: the ridge ``lambda`` of LSVI's Gram matrices (``"linear"`` only).
    """

    delta: float = 0.1
    prior_scale: float = 1.0
    newton_steps: int = 25
    penalty: str = "box"
    reward_bound: str = "best"
    rule: str = "quantile"
    num_draws: int = 256
    posterior: str = "laplace"
    dirichlet_prior: float = 1.0
    leader_model: str = "tabular"
    leader_features: str = "follower"
    lsvi_reg: float = 1.0

    def __post_init__(self) -> None:
        check_real("delta", self.delta, 0.0, 1.0, open_low=True, open_high=True)
        for name in ("prior_scale", "dirichlet_prior", "lsvi_reg"):
            check_real(name, getattr(self, name), 0.0, open_low=True)
        for name in ("delta", "prior_scale", "dirichlet_prior", "lsvi_reg"):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name, allowed in (
            ("penalty", ("box", "first-order", "ellipsoid")),
            ("reward_bound", REWARD_BOUNDS),
            ("rule", ("quantile", "cvar")),
            ("posterior", ("laplace", "nuts")),
            ("leader_model", ("tabular", "linear")),
            ("leader_features", LEADER_FEATURES),
        ):
            check_choice(name, getattr(self, name), allowed)
        for name in ("num_draws", "newton_steps"):
            check_count(name, getattr(self, name))
        if self.penalty == "ellipsoid":  # deprecated alias
            object.__setattr__(self, "penalty", "first-order")

    @property
    def prior_precision(self) -> float:
        """``1 / prior_scale^2``: the prior's precision, the ridge of the regularised MLE."""
        return 1.0 / self.prior_scale**2


#: Named variants of the learners, ``name -> (base learner, settings overrides)``: a base
#: learner of :data:`~bayes_qse.learners.online.LEARNERS` (overrides of
#: :class:`LearnerConfig`) or of :data:`~bayes_qse.learners.offline.OFFLINE_LEARNERS`
#: (overrides of :class:`OfflineLearnerConfig`); names are unique across both.
LEARNER_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # online: the first-order bonus (not optimistic at realistic radii; for comparison) and
    # the paper's theory radius
    "mle-optimistic-first-order": ("mle-optimistic", {"optimism": "first-order"}),
    "mle-optimistic-theory": ("mle-optimistic", {"radius": "theory"}),
    # the model-free leader (LSVI on leader features, docs/math.md §3.1)
    **{
        f"{name}-linear": (name, {"leader_model": "linear"})
        for name in ("greedy", "thompson", "bayes-optimistic", "mle-optimistic")
    },
    # offline: the set's bound, the Bayesian rule, the model-free leader
    "mle-pessimistic-box": ("mle-pessimistic", {"penalty": "box"}),  # = the default
    "mle-pessimistic-first-order": ("mle-pessimistic", {"penalty": "first-order"}),
    "bayes-pessimistic-cvar": ("bayes-pessimistic", {"rule": "cvar"}),
    "plugin-linear": ("plugin", {"leader_model": "linear"}),
    "mle-pessimistic-linear": ("mle-pessimistic", {"leader_model": "linear"}),
    "bayes-pessimistic-linear": ("bayes-pessimistic", {"leader_model": "linear"}),
}


def variants_of(bases: tuple[str, ...] | dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The entries of :data:`LEARNER_VARIANTS` whose base learner is one of ``bases``, in
    order (the online or the offline variants)."""
    return {name: v for name, v in LEARNER_VARIANTS.items() if v[0] in bases}


__all__ = ["LEARNER_VARIANTS", "LearnerConfig", "OfflineLearnerConfig", "variants_of"]
