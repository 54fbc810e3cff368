"""Security games against a SUQR attacker: sample efficiency of learning the weights (MLE vs
posterior mean, Wald-set coverage), online regret of greedy / Thompson / optimistic defenders,
and planning on the posterior (quantile rule) vs on a point estimate with few data
(docs/math.md eq. 7, eq. 8; §7).

    python experiments/security_games.py            # CI-scale settings
    python experiments/security_games.py --full     # the published settings
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("security_games")
