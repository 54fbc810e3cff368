"""Where tabular ``mle-optimistic``'s optimism comes from (issue 22, finding 4).

Plays ``mle-optimistic`` on the ``tabular`` test bed of ``online_regret --full`` (the same
game and learner settings, learned leader model and initial distribution, every-episode refit)
for ``T`` episodes on each seed, then, at the learner's state after episode ``T``, plans with
:func:`bayes_qse.confidence.plan_on_set` on its confidence set with each source of optimism
switched on alone:

- ``point``: none (the plug-in plan on ``theta_hat``, ``P_hat``, ``r_hat``);
- ``l1``: the Weissman L1 balls around ``P_hat`` only;
- ``follower``: the follower's response box (Wald set at the chi-square radius) only;
- ``reward``: the reward bonus only (``min(r_hat + b, high)``);
- ``all``: everything, the learner's own plan.

Each value is ``rho_hat . V_1`` (the empirical initial distribution, for every variant); the
*gap* of a source is its value minus ``point``'s (the sources interact, so the gaps need not
add up to ``all - point``).  Run with the Hoeffding reward bonus (the learner before issue
22), with ``reward_bound="best"`` (the smaller of Hoeffding and empirical Bernstein; the
default since) and with ``"deterministic"`` (the leader knows her rewards are deterministic,
as they are in every test bed: no bonus once a cell is visited).  Prints a table (median,
min and max over seeds) and the cumulative regret at ``T``.

Usage::

    python experiments/optimism_decomposition.py --seeds 10 --episodes 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from bayes_qse.confidence import (
    confidence_set,
    confidence_split,
    follower_radius,
    follower_set,
    plan_on_set,
)
from bayes_qse.data import play_episode
from bayes_qse.experiments.online_regret import FULL_CONFIG
from bayes_qse.experiments.online_units import LEARNER_KEYS, online_experiment_game
from bayes_qse.follower import myopic_response
from bayes_qse.learners.common import GameSpec, frequentist_leader_model
from bayes_qse.learners.config import LearnerConfig
from bayes_qse.learners.online import make_learner
from bayes_qse.model import Model
from bayes_qse.planning import evaluate_policy, solve_qse
from bayes_qse.sets import identified_split

VARIANTS = ("point", "l1", "follower", "reward", "all")


def run_learner(game, spec, cfg, seeds, episodes):
    """The learner's state after ``episodes`` episodes for each seed (``vmap`` over seeds,
    ``scan`` over episodes; episode ``t`` of seed ``s`` uses ``fold_in(fold_in(key(s), 1),
    t)``), and each seed's cumulative regret."""
    learner = make_learner("mle-optimistic", spec, cfg)
    qse = solve_qse(game)
    optimal = float(qse.value)

    def one(seed):
        base = jax.random.fold_in(jax.random.key(seed), 1)

        def step(carry, t):
            state, regret = carry
            policy = learner.act(state)
            v, _ = evaluate_policy(game.model, myopic_response(game.model, game.theta), policy)
            regret = regret + optimal - jnp.asarray(game.initial_dist) @ v[0]
            episode = play_episode(game, policy, jax.random.fold_in(base, t))
            return (learner.update(state, episode), regret), None

        init = learner.init(jax.random.fold_in(jax.random.key(seed), 0))
        (state, regret), _ = jax.lax.scan(step, (init, 0.0), jnp.arange(episodes))
        return state, regret

    return jax.jit(jax.vmap(one))(jnp.asarray(seeds))


def decompose(spec, cfg, state):
    """``{variant: rho_hat . V_1}`` at one seed's learner state: the learner's own
    :class:`~bayes_qse.confidence.ConfidenceSet` with all but one source of optimism removed
    (no reward bonus, no L1 balls, the point response ``nu_hat`` as the box)."""
    model = frequentist_leader_model(
        spec, cfg.leader_model, cfg.reward_bound, cfg.leader_features, cfg.lsvi_reg
    )
    H, S, A, B = spec.shape
    delta = confidence_split(spec, cfg.delta)
    rank = jnp.sum(identified_split(state.precision)[2])
    beta = follower_radius(spec, cfg.radius, 1.0 - delta, cfg.theta_bound)(
        rank, H * state.buffer.count, state.buffer.count
    )
    follower = follower_set(spec, state.theta_hat, state.precision, beta)
    counts = state.buffer.first_state_counts
    cs = confidence_set(spec, follower, model, state.leader_stats, counts, delta)
    nu_hat = myopic_response(Model(jnp.asarray(spec.features), spec.eta), state.theta_hat)
    rho = counts / jnp.sum(counts)
    out = {}
    for name in VARIANTS:
        variant = dataclasses.replace(
            cs,
            reward_bonus=cs.reward_bonus if name in ("reward", "all") else 0.0 * cs.reward_bonus,
            l1_radius=cs.l1_radius if name in ("l1", "all") else None,
            follower=follower
            if name in ("follower", "all")
            else dataclasses.replace(follower, nu_lower=nu_hat, nu_upper=nu_hat),
        )
        _, v, _ = plan_on_set(variant, optimistic=True)
        out[name] = float(rho @ v[0])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args(argv)
    config = FULL_CONFIG
    game = online_experiment_game("tabular", config)
    spec = GameSpec.from_game(game, reward_range=tuple(config["reward_range"]))
    seeds = list(range(args.seeds))
    for bound in ("hoeffding", "best", "deterministic"):
        t0 = time.time()
        cfg = LearnerConfig.from_mapping(
            {
                **{k: config["learner"][k] for k in LEARNER_KEYS},
                "capacity": args.episodes,
                "reward_bound": bound,
            }
        )
        states, regret = run_learner(game, spec, cfg, seeds, args.episodes)
        rows = []
        for i in range(len(seeds)):
            st = jax.tree_util.tree_map(lambda x, i=i: x[i], states)
            rows.append(decompose(spec, cfg, st))
        vals = {k: np.array([r[k] for r in rows]) for k in VARIANTS}
        print(
            f"\nreward_bound={bound}, t={args.episodes}, seeds 0-{len(seeds) - 1} "
            f"({time.time() - t0:.0f} s)"
        )
        print("| source | gap median | min | max |")
        print("|---|---|---|---|")
        for k in VARIANTS[1:]:
            gap = vals[k] - vals["point"]
            label = "all (the learner's plan)" if k == "all" else k
            print(f"| {label} | {np.median(gap):.3f} | {gap.min():.3f} | {gap.max():.3f} |")
        reg = np.asarray(regret)
        print(
            f"cumulative regret at t={args.episodes}: median {np.median(reg):.1f}, "
            f"min {reg.min():.1f}, max {reg.max():.1f}, mean {reg.mean():.1f}"
        )


if __name__ == "__main__":
    main()
