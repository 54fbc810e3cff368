"""Inspect one NUTS posterior of the follower's ``theta`` on a named game with ArviZ: summary
(R-hat, ESS, HDI), trace and rank plots, posterior against the truth, the follower's response
probabilities at chosen states, and the DataTree saved as netCDF (docs/math.md §7, experiment 4).

    python experiments/posterior_inspection.py            # CI-scale settings
    python experiments/posterior_inspection.py --full     # longer chains, more data
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("posterior_inspection")
