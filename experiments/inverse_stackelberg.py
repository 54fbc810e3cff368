"""Inverse Stackelberg: learn a quantal follower's utilities in normal-form commitment games
with fewer rounds than PURE (Wu et al. 2022): round robin, Bayesian fits and optimal designs
(docs/math.md eq. 9-10, docs/results/inverse_stackelberg).

    python experiments/inverse_stackelberg.py               # CI-scale settings
    python experiments/inverse_stackelberg.py --full        # 10x10, six alphas, N up to 10^7
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("inverse_stackelberg")
