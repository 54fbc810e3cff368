"""Coverage of frequentist confidence sets (Wald, likelihood-ratio with the chi-square and the
paper's finite-sample radius) and Bayesian credible sets (Laplace, NUTS) for the follower's
``theta``, its response probabilities and the leader value of a fixed policy, across sample
sizes, with a misspecified and a near-deterministic case; plus simulation-based calibration of
the posteriors (docs/math.md §7, experiment 3).

    python experiments/confidence_sets.py                 # CI-scale settings
    python experiments/confidence_sets.py --full          # the full run
"""

from bayes_qse.experiments import experiment_main

if __name__ == "__main__":
    experiment_main("confidence_sets")
