"""Where tabular ``mle-optimistic``'s optimism comes from (issue 22, finding 4).

Plays ``mle-optimistic`` on the ``tabular`` test bed of ``online_regret --full`` (the same
game and learner settings, learned leader model and initial distribution, every-episode refit)
for ``T`` episodes on each seed, then, at the learner's state after episode ``T``, plans with
:func:`bayes_qse.robust_planning.box_plan` with each source of optimism switched on alone:

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
import time

import jax
import jax.numpy as jnp
import numpy as np

from bayes_qse.data import play_episode
from bayes_qse.experiments.online_regret import FULL_CONFIG
from bayes_qse.experiments.online_units import LEARNER_KEYS, make_game
from bayes_qse.follower import myopic_response
from bayes_qse.learners.common import GameSpec, LearnerConfig
from bayes_qse.learners.online import (
    _frequentist_leader_model,
    confidence_split,
    follower_radius,
    make_learner,
)
from bayes_qse.model import Model
from bayes_qse.planning import evaluate_policy, solve_qse
from bayes_qse.robust_planning import box_plan
from bayes_qse.sets import identified_split, wald_response_box

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
    """``{variant: rho_hat . V_1}`` at one seed's learner state."""
    model = _frequentist_leader_model(spec, cfg)
    H, S, A, B = spec.shape
    features = jnp.asarray(spec.features)
    split = confidence_split(spec, cfg)
    p_hat, r_hat = model.mean(state.leader_stats)
    bonus = model.bonus(state.leader_stats, split["leader"])
    rank = jnp.sum(identified_split(state.precision)[2])
    beta = follower_radius(spec, cfg, 1.0 - split["follower"])(
        rank, H * state.buffer.count, state.buffer.count
    )
    nu_hat = myopic_response(Model(features, spec.eta), state.theta_hat)
    box = wald_response_box(features, spec.eta, state.theta_hat, state.precision, beta)
    counts = state.buffer.first_state_counts
    rho = counts / jnp.sum(counts)
    hi = spec.reward_range[1]
    out = {}
    for name in VARIANTS:
        reward = jnp.minimum(r_hat + bonus.reward, hi) if name in ("reward", "all") else r_hat
        lo, up = box if name in ("follower", "all") else (nu_hat, nu_hat)
        radius = bonus.l1_radius if name in ("l1", "all") else None
        _, v, _ = box_plan(Model(features, spec.eta, p_hat, reward), lo, up, True, radius)
        out[name] = float(rho @ v[0])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args(argv)
    config = FULL_CONFIG
    game = make_game("tabular", config)
    spec = GameSpec.from_game(game, reward_range=tuple(config["reward_range"]))
    seeds = list(range(args.seeds))
    for bound in ("hoeffding", "best", "deterministic"):
        t0 = time.time()
        cfg = LearnerConfig.from_mapping(
            {
                **{k: config[k] for k in LEARNER_KEYS},
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
